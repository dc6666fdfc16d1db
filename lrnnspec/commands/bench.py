"""``lrnnspec bench``: run the benchmark suite (pytest-benchmark) and write reports/bench.md.

``--device cuda`` runs the GPU suite (:mod:`lrnnspec.bench.gpu_suite`) instead and writes
reports/bench-gpu.md + bench-gpu.json (:mod:`lrnnspec.bench.gpu_report`); it needs a CUDA device.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def _bench(args) -> int:
    if getattr(args, "device", "cpu") == "cuda":
        return _bench_cuda(args)
    if not _have_pytest_benchmark("lrnnspec bench"):
        return 2
    import lrnnspec.bench.suite as suite
    from lrnnspec.bench.report import render

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    code, data = _run_suite(suite, args.k)
    if code not in (0, 5) or data is None:
        print(f"lrnnspec: error: the benchmark run failed (pytest exit code {code})", file=sys.stderr)
        return 1
    (out / "bench.json").write_text(json.dumps(data, indent=1))
    (out / "bench.md").write_text(render(data))
    print(f"wrote {out / 'bench.md'} and {out / 'bench.json'}")
    return 0


def _have_pytest_benchmark(what: str) -> bool:
    try:
        import pytest  # noqa: F401
        import pytest_benchmark  # noqa: F401
    except ImportError:
        print(f"lrnnspec: error: {what} needs pytest and pytest-benchmark (pip install 'lrnnspec[test]')",
              file=sys.stderr)
        return False
    return True


def _run_suite(suite, k: str | None, plugins=()) -> tuple[int, dict | None]:
    """Run a benchmark suite module under pytest-benchmark; (pytest exit code, its JSON or None)."""
    import pytest

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "bench.json"
        argv = [suite.__file__, "-q", "-p", "no:cacheprovider", "-o", f"python_files={Path(suite.__file__).name}",
                "--benchmark-json", str(raw), "--benchmark-only"]
        if k:
            argv += ["-k", k]
        code = int(pytest.main(argv, plugins=list(plugins)))
        return code, (json.loads(raw.read_text()) if raw.exists() else None)


class _Outcomes:
    """pytest plugin: why a benchmark has no measurement (name → "skipped: …" / "failed: …")."""

    def __init__(self):
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("::")[-1]
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.outcomes[name] = "skipped: " + reason.removeprefix("Skipped: ")
        elif report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            self.outcomes.setdefault(name, f"failed ({report.when}): " + message.splitlines()[0][:200])


def _bench_cuda(args) -> int:
    import torch

    if not torch.cuda.is_available():
        print(f"lrnnspec: error: --device cuda: no CUDA device is available (torch.cuda.is_available() is False; "
              f"torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'}); run on a machine with an "
              f"NVIDIA GPU, or use --device cpu", file=sys.stderr)
        return 2
    if not _have_pytest_benchmark("--device cuda: lrnnspec bench"):
        return 2
    import lrnnspec.bench.gpu_suite as suite
    from lrnnspec.bench.gpu_report import render_summary, summarize

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recorder = _Outcomes()
    code, data = _run_suite(suite, args.k, plugins=[recorder])
    if data is None:
        if not recorder.outcomes:
            print(f"lrnnspec: error: the GPU benchmark run failed (pytest exit code {code})", file=sys.stderr)
            return 1
        data = {"benchmarks": []}       # every benchmark skipped or failed: report why
    data["outcomes"] = recorder.outcomes
    summary = summarize(data)
    (out / "bench-gpu.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    (out / "bench-gpu.md").write_text(render_summary(summary))
    print(f"wrote {out / 'bench-gpu.md'} and {out / 'bench-gpu.json'}")
    if not data["benchmarks"]:
        print(f"lrnnspec: error: no GPU benchmark produced a measurement (pytest exit code {code}); the report says "
              f"why for each", file=sys.stderr)
        return 1
    if code not in (0, 5):
        failed = sorted(n for n, o in recorder.outcomes.items() if o.startswith("failed"))
        print(f"lrnnspec: error: {len(failed)} GPU benchmark(s) failed (pytest exit code {code}); the report marks "
              f"them: {', '.join(failed) or 'see the pytest output'}", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the PyTorch forms against each other and fla-core; "
                                     "writes bench.md + bench.json (--device cuda: the GPU kernels, bench-gpu.md)")
    p.add_argument("--out", default="reports", help="directory for bench.md + bench.json (with --device cuda: "
                                                    "bench-gpu.md + bench-gpu.json; default reports/)")
    p.add_argument("-k", default=None, help="pytest -k expression selecting benchmarks (e.g. 'simple_gla')")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu (default): the CPU suite → bench.md + bench.json; cuda: our Triton kernels vs fla-core's "
                        "on the GPU (needs CUDA) → bench-gpu.md + bench-gpu.json")
    p.set_defaults(func=_bench)
