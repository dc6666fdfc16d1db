"""The benchmark suite behind ``lrnnspec bench`` (pytest-benchmark; also collected from benchmarks/).

Workload (issue: CPU, 2 threads): B = 1, T = 4096, H = 4, K = V = 64, float32; Mamba (S6) with
D = 256 channels and NS = 16 states; DeltaProduct with n_h = 2. Chunk size 64 everywhere.
Every measurement of one run lands in one JSON file; :mod:`lrnnspec.bench.report` turns it into
``reports/bench.md`` with the ratios (same run, same shapes):

* ``forward[<family>-<form>]``  our forms, forward only;
* ``fla_forward[<family>]``     our chunk form and fla-core 0.6.0's pure-PyTorch chunkwise reference,
  forward, timed alternately (each side's median in ``extra_info``);
* ``fla_backward[<family>]``    the same for forward + backward (sum of outputs as the loss);
* ``matmul``                    a 2048×2048×2048 float32 ``torch.matmul``: the machine's GFLOP/s.
"""

from __future__ import annotations

import inspect
import statistics
import time

import pytest
import torch

from lrnnspec.harness.conventions import call_sequence, convention_for
from lrnnspec.impls import implementations
from lrnnspec.peers.fla import CHUNK_REFERENCES as FLA_REFERENCES
from lrnnspec.spec import all_families, get_family, numerics, random_inputs
from lrnnspec.spec.prepare import active_state

B, T, H, K, V, CHUNK = 1, 4096, 4, 64, 64, 64
SIZES = dict(B=B, T=T, H=H, K=K, V=V, D=256, NS=16, n_h=2)
MATMUL_N = 2048
THREADS = 2


def setup_module(module):  # noqa: ARG001 - pytest hook
    torch.set_num_threads(THREADS)


def inputs(family: str, requires_grad: bool = False) -> dict[str, torch.Tensor]:
    x = random_inputs(family, seed=0, **SIZES)
    return {k: torch.tensor(v, dtype=torch.float32, requires_grad=requires_grad) for k, v in x.items()}


def nominal_flops(family: str) -> float:
    """FLOPs of the recurrence itself at the benchmark's sizes (the family's ``flops`` hook, see
    :func:`lrnnspec.spec.numerics.nominal_flops`), per call."""
    return numerics.nominal_flops(family, SIZES)


def _call(impl, x):
    fam = get_family(impl.family)
    conv = convention_for(impl.convention, impl.family)
    params = inspect.signature(impl.fn).parameters
    kwargs = {"chunk_size": CHUNK} if impl.form == "chunk" else {}
    kwargs |= {kw: SIZES[dim] for kw, dim in conv.dims.items() if kw in params}
    return call_sequence(impl.fn, convention=conv.to_json(), inputs=x, initial_state=None,
                         want_state=conv.always_state or conv.final_state in params,
                         state_names=[c.name for c in active_state(fam, {o.name: o.default for o in fam.options})],
                         kwargs=kwargs)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


ROUNDS_FAST, ROUNDS_GRAD = 15, 5  # pairs for the side-by-side comparisons with fla-core
ROUNDS_PLSTM = 5                  # pairs for pLSTM's recurrent vs chunked (the recurrence takes ~1 s)


def _timed(benchmark, fn, rounds):
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 1 else 0)


FORWARD = [i for i in implementations() if i.form in ("recurrent", "chunk")]


@pytest.mark.parametrize("impl", FORWARD, ids=lambda i: i.id)
def test_forward(benchmark, impl):
    x = inputs(impl.family)
    benchmark.extra_info.update(family=impl.family, form=impl.form, flops=nominal_flops(impl.family),
                                target=impl.target)
    with torch.no_grad():
        _timed(benchmark, lambda: _call(impl, x), rounds=1 if impl.form == "recurrent" else 5)


def _side_by_side(benchmark, rounds: int, **sides) -> None:
    """Time the named ``sides`` alternately (the order flips every round) for one warm-up round and
    ``rounds`` rounds; ``extra_info`` gets each side's median in seconds. Interleaved, all sides see the
    same machine state — allocator, caches, other processes — which drifts between separate
    benchmarks by more than the ratios being measured."""
    times = {side: [] for side in sides}
    order = list(sides.items())

    def one_round():
        for side, fn in order:
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
        order.reverse()

    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({side: statistics.median(t[1:]) for side, t in times.items()})


@pytest.mark.parametrize("family", sorted(FLA_REFERENCES))
def test_fla_forward(benchmark, family):
    pytest.importorskip("fla")
    (impl,) = implementations(family, "chunk")
    x = inputs(family)
    benchmark.extra_info.update(family=family, form="fla", flops=nominal_flops(family))
    with torch.no_grad():
        _side_by_side(benchmark, ROUNDS_FAST, ours=lambda: _call(impl, x), fla=lambda: FLA_REFERENCES[family][1](x))


def _backward(fn, family):
    """One forward + backward step against a dense random output gradient, as in training (the
    gradient of ``.sum()`` is a stride-0 expanded tensor, which sends batched matmuls down a
    one-matrix-at-a-time path and would time that instead)."""
    x = inputs(family, requires_grad=True)
    out = _first(fn(x))
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)

    def step():
        _first(fn(x)).backward(grad)

    return step


@pytest.mark.parametrize("family", sorted(FLA_REFERENCES))
def test_fla_backward(benchmark, family):
    pytest.importorskip("fla")
    (impl,) = implementations(family, "chunk")
    benchmark.extra_info.update(family=family, form="fla")
    _side_by_side(benchmark, ROUNDS_GRAD, ours=_backward(lambda x: _call(impl, x), family),
                  fla=_backward(FLA_REFERENCES[family][1], family))


def test_matmul(benchmark):
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    benchmark.extra_info.update(flops=2.0 * MATMUL_N ** 3)
    _timed(benchmark, lambda: a @ b, rounds=5)


# --- a DAG family (pLSTM) on a 2-D grid (issue 6): node-by-node recurrence vs the chunked 2-D form -----
PLSTM_SIDE, PLSTM_H, PLSTM_K = 64, 4, 32
DAG_FORMS = {"recurrent": "recurrent", "chunk": "chunked_2d"}     # its registered forms, timed side by side


def _dag_forms(family: str):
    from lrnnspec.spec import grid, random_dag_inputs

    forms = {i.form: i.fn for i in implementations(family, kinds=("dag",))}
    graph = grid(PLSTM_SIDE, PLSTM_SIDE)
    raw = random_dag_inputs(family, graph, seed=0, B=1, H=PLSTM_H, K=PLSTM_K, V=PLSTM_K)
    x = {k: torch.from_numpy(v).float() for k, v in raw.items()}
    flat = {k: v.reshape(1, PLSTM_SIDE * PLSTM_SIDE, *v.shape[3:]) for k, v in x.items()}
    recurrent, chunked = forms[DAG_FORMS["recurrent"]], forms[DAG_FORMS["chunk"]]
    return {"recurrent": lambda: recurrent(graph, **flat), "chunk": lambda: chunked(**x, chunk_size=8)}


@pytest.mark.parametrize("family", [f.name for f in all_families(kind="dag")])
def test_dag_forward(benchmark, family):
    benchmark.extra_info.update(family=family, kind="dag")
    with torch.no_grad():
        _side_by_side(benchmark, ROUNDS_PLSTM, **_dag_forms(family))
