"""``lrnnspec bench``: run the benchmark suite (pytest-benchmark) and write reports/bench.md."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def _bench(args) -> int:
    try:
        import pytest
        import pytest_benchmark  # noqa: F401
    except ImportError:
        print("lrnnspec: error: lrnnspec bench needs pytest and pytest-benchmark "
              "(pip install 'lrnnspec[test]')", file=sys.stderr)
        return 2
    import lrnnspec.bench_suite as suite
    from lrnnspec.bench_report import render

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "bench.json"
        argv = [suite.__file__, "-q", "-p", "no:cacheprovider", "-o", "python_files=bench_suite.py",
                "--benchmark-json", str(raw), "--benchmark-only"]
        if args.k:
            argv += ["-k", args.k]
        code = pytest.main(argv)
        if code not in (0, 5) or not raw.exists():
            print(f"lrnnspec: error: the benchmark run failed (pytest exit code {int(code)})", file=sys.stderr)
            return 1
        data = json.loads(raw.read_text())
    (out / "bench.json").write_text(json.dumps(data, indent=1))
    (out / "bench.md").write_text(render(data))
    print(f"wrote {out / 'bench.md'} and {out / 'bench.json'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the PyTorch forms against each other and fla-core; "
                                     "writes bench.md + bench.json")
    p.add_argument("--out", default="reports", help="directory for bench.md and bench.json (default reports/)")
    p.add_argument("-k", default=None, help="pytest -k expression selecting benchmarks (e.g. 'simple_gla')")
    p.set_defaults(func=_bench)
