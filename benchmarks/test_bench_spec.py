"""Speed of the spec's fp64 engine (the fast oracle): T = 4096, H = 4, K = V = 64, B = 1.

Run with ``pytest benchmarks --benchmark-only``. Target (issue: spec): well under a second per family.
"""

import pytest

from lrnnspec.spec import Fp64Engine, all_families, random_inputs
from lrnnspec.spec.prepare import prepare


@pytest.mark.parametrize("family", [f.name for f in all_families(kind="sequence")])  # time-axis families
def test_fp64_engine_T4096(benchmark, family):
    x = random_inputs(family, seed=0, B=1, T=4096, H=4, K=64, V=64, D=256, NS=16, n_h=2)
    prep = prepare(family, x)
    engine = Fp64Engine()
    benchmark.pedantic(engine.evaluate, args=(prep,), rounds=3, iterations=1)
