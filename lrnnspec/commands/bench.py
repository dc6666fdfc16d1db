"""``lrnnspec bench``: run the benchmark suite (pytest-benchmark) and write reports/bench.md.

``--device cuda`` runs the GPU suite (:mod:`lrnnspec.bench.gpu_suite`) instead and writes
reports/bench-gpu.md + bench-gpu.json (:mod:`lrnnspec.bench.gpu_report`); it needs a CUDA device.

Exit codes: 0 the report was written, 1 a benchmark failed, 2 a usage error (``-k`` selecting no
benchmark, an --out that is not a writable directory, pytest-benchmark missing), 3 could not run
here (``--device cuda`` without CUDA). Reports are written atomically.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from lrnnspec.errors import UsageError


def _check(args) -> Path:
    from . import checks

    if args.k is not None:
        checks.text_option("-k", args.k)
        if not args.k.strip():
            raise UsageError("-k", "must be a pytest -k expression, not empty", args.k)
    if args.device == "cuda":
        checks.device("cuda")
    if not _have_pytest_benchmark("lrnnspec bench"):
        raise UsageError("bench", "needs pytest and pytest-benchmark (pip install 'lrnnspec[test]')")
    out = checks.out_dir(args.out)
    args.out_lock = checks.OutLock(out)
    return out


def _no_match(code: int, k: str | None) -> None:
    if code == 5:           # pytest: no tests collected / all deselected
        raise UsageError("-k", "selects no benchmark", k) if k else UsageError("bench", "the suite collected no "
                                                                                         "benchmark")
    if code == 4:           # pytest: usage error (a -k expression it cannot parse)
        raise UsageError("-k", "is not a valid pytest -k expression", k)


def _bench(args) -> int:
    out = _check(args)
    if args.device == "cuda":
        return _bench_cuda(args, out)
    import lrnnspec.bench.suite as suite
    from lrnnspec.atomic import write_text
    from lrnnspec.bench.report import render

    code, data = _run_suite(suite, args.k)
    _no_match(code, args.k)
    if code != 0 or data is None:
        print(f"lrnnspec bench: error: the benchmark run failed (pytest exit code {code})", file=sys.stderr)
        return 1
    write_text(out / "bench.json", json.dumps(data, indent=1))
    write_text(out / "bench.md", render(data))
    print(f"wrote {out / 'bench.md'} and {out / 'bench.json'}")
    return 0


def _have_pytest_benchmark(what: str) -> bool:
    try:
        import pytest  # noqa: F401
        import pytest_benchmark  # noqa: F401
    except ImportError:
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


def _bench_cuda(args, out: Path) -> int:
    import lrnnspec.bench.gpu_suite as suite
    from lrnnspec.atomic import write_text
    from lrnnspec.bench.gpu_report import render_summary, summarize

    recorder = _Outcomes()
    code, data = _run_suite(suite, args.k, plugins=[recorder])
    if not recorder.outcomes:
        _no_match(code, args.k)
    if data is None:
        if not recorder.outcomes:
            print(f"lrnnspec bench: error: the GPU benchmark run failed (pytest exit code {code})", file=sys.stderr)
            return 1
        data = {"benchmarks": []}       # every benchmark skipped or failed: report why
    data["outcomes"] = recorder.outcomes
    summary = summarize(data)
    write_text(out / "bench-gpu.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    write_text(out / "bench-gpu.md", render_summary(summary))
    print(f"wrote {out / 'bench-gpu.md'} and {out / 'bench-gpu.json'}")
    if not data["benchmarks"]:
        print(f"lrnnspec bench: error: no GPU benchmark produced a measurement (pytest exit code {code}); the report says "
              f"why for each", file=sys.stderr)
        return 1
    if code not in (0, 5):
        failed = sorted(n for n, o in recorder.outcomes.items() if o.startswith("failed"))
        print(f"lrnnspec bench: error: {len(failed)} GPU benchmark(s) failed (pytest exit code {code}); the report marks "
              f"them: {', '.join(failed) or 'see the pytest output'}", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    import argparse

    p = sub.add_parser("bench", help="benchmark the PyTorch forms against each other and fla-core; "
                                     "writes bench.md + bench.json (--device cuda: the GPU kernels, bench-gpu.md)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports", help="directory for bench.md + bench.json (with --device cuda: "
                                                    "bench-gpu.md + bench-gpu.json; default reports/)")
    p.add_argument("-k", default=None, help="pytest -k expression selecting benchmarks (e.g. 'simple_gla')")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cpu (default): the CPU suite → bench.md + bench.json; cuda: our Triton kernels vs fla-core's "
                        "on the GPU (needs CUDA) → bench-gpu.md + bench-gpu.json")
    p.set_defaults(func=_bench)
