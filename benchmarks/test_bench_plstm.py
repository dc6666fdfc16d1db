"""pLSTM 2-D forward on a 64×64 grid, H = 4, K = V = 32, B = 1, float32, CPU: the node-by-node
recurrence against the parallel forms, side by side (group ``plstm-2d-64x64``).

Run: ``pytest benchmarks/test_bench_plstm.py --benchmark-only``. Target (issue 6): the parallel
(chunked) form ≥ 20× faster than the node-by-node recurrence; ``test_parallel_speedup`` measures the
ratio directly (best of 3 runs each) and prints it.
"""

import time

import numpy as np
import pytest
import torch

from lrnnspec.impls import plstm as P
from lrnnspec.spec import grid, random_dag_inputs

SIDE, H, K, V = 64, 4, 32, 32
GRAPH = grid(SIDE, SIDE)


@pytest.fixture(scope="module")
def inputs():
    x = random_dag_inputs("plstm", GRAPH, seed=0, B=1, H=H, K=K, V=V)
    return {k: torch.from_numpy(v).float() for k, v in x.items()}


def _flat(t):
    return {k: v.reshape(1, SIDE * SIDE, *v.shape[3:]) for k, v in t.items()}


FORMS = {
    "recurrent": lambda t: P.recurrent(GRAPH, **_flat(t)).reshape(1, SIDE, SIDE, H, V),
    "chunked_c8": lambda t: P.chunked_2d(**t, chunk=8),
    "chunked_c16": lambda t: P.chunked_2d(**t, chunk=16),
    "parallel_full_gating_matrix": lambda t: P.parallel_2d(**t),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_plstm_2d_64x64(benchmark, inputs, form):
    benchmark.group = "plstm-2d-64x64"
    with torch.no_grad():
        out = benchmark.pedantic(FORMS[form], args=(inputs,), rounds=2, iterations=1, warmup_rounds=1)
    assert out.shape == (1, SIDE, SIDE, H, V)


def _best(f, t, n=3):
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        f(t)
        best = min(best, time.perf_counter() - start)
    return best


def test_parallel_speedup(inputs):
    with torch.no_grad():
        FORMS["chunked_c8"](inputs)
        rec = _best(FORMS["recurrent"], inputs)
        par = _best(FORMS["chunked_c8"], inputs)
        ref = FORMS["recurrent"](inputs)
        err = float((FORMS["chunked_c8"](inputs) - ref).abs().max() / ref.abs().max())
    print(f"\nplstm 2-D 64x64 H={H} K=V={K} fp32: recurrent {rec * 1e3:.1f} ms, chunked(c=8) {par * 1e3:.1f} ms, "
          f"ratio {rec / par:.1f}x, max rel diff {err:.2e}, threads {torch.get_num_threads()}")
    assert err < 1e-4
    assert rec / par >= 20
