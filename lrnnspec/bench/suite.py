"""The benchmark suite behind ``lrnnspec bench`` (pytest-benchmark; also collected from benchmarks/).

Workload (issue: CPU, 2 threads): B = 1, T = 4096, H = 4, K = V = 64, float32; Mamba (S6) with
D = 256 channels and NS = 16 states; DeltaProduct with n_h = 2. Chunk size 64 everywhere.
Every measurement of one run lands in one JSON file; :mod:`lrnnspec.bench.report` turns it into
``reports/bench.md`` with the ratios (same run, same shapes):

* ``forward[<family>-<form>]``  our forms, forward only;
* ``fla_forward[<family>]``     our chunk form and fla-core 0.6.0's pure-PyTorch chunkwise reference,
  forward, timed alternately (each side's median in ``extra_info``);
* ``fla_backward[<family>]``    the same for forward + backward (sum of outputs as the loss);
* ``hf_forward[<family>-<shape>]``, ``hf_backward[<family>-<shape>]``  the same against HF transformers'
  pure-PyTorch chunk fallbacks (:mod:`lrnnspec.peers.hf`) at each shape of :data:`SHAPES` (H = HV, and
  grouped value heads HV = 2H);
* ``matmul``                    a 2048×2048×2048 float32 ``torch.matmul``: the machine's GFLOP/s;
* ``matmul_chunk``              a batch of NC·H = 256 products of 64×64 by 64×64 (``torch.bmm``): the rate a
  chunkwise form's matmuls can reach at chunk size 64 (the ceiling the HF section's floors use).
"""

from __future__ import annotations

import inspect
import os
import statistics
import time

import pytest
import torch

from lrnnspec.harness.conventions import call_sequence, convention_for
from lrnnspec.impls import implementations
from lrnnspec.peers.fla import CHUNK_REFERENCES as FLA_REFERENCES
from lrnnspec.peers.hf import CHUNK_REFERENCES as HF_REFERENCES
from lrnnspec.spec import all_families, get_family, numerics, random_inputs
from lrnnspec.spec.prepare import active_state

B, T, H, K, V, CHUNK = 1, 4096, 4, 64, 64, 64
SIZES = dict(B=B, T=T, H=H, K=K, V=V, D=256, NS=16, n_h=2)
SHAPES = {"H4": {}, "H4-HV8": {"HV": 8}}     # the HF comparison's shapes, as changes to SIZES
MATMUL_N = 2048
THREADS = 2


def setup_module(module):  # noqa: ARG001 - pytest hook
    torch.set_num_threads(THREADS)


def shape_sizes(shape: str) -> dict[str, int]:
    """The sizes of one of :data:`SHAPES`."""
    return SIZES | SHAPES[shape]


def inputs(family: str, requires_grad: bool = False, sizes: dict = SIZES,
           dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    x = random_inputs(family, seed=0, **sizes)
    return {k: torch.tensor(v, dtype=dtype, requires_grad=requires_grad) for k, v in x.items()}


def nominal_flops(family: str, sizes: dict = SIZES) -> float:
    """FLOPs of the recurrence itself at ``sizes`` (the family's ``flops`` hook, see
    :func:`lrnnspec.spec.numerics.nominal_flops`), per call."""
    return numerics.nominal_flops(family, sizes)


def chunk_flops(family: str, sizes: dict = SIZES) -> float | None:
    """Matmul FLOPs of the chunkwise algorithm at ``sizes`` and chunk :data:`CHUNK` (the family's
    ``chunk_flops`` hook), per call; None where the family declares none."""
    fam = get_family(family)
    return None if fam.chunk_flops is None else float(fam.chunk_flops(sizes | {"HV": sizes.get("HV") or sizes["H"]},
                                                                     CHUNK))


def _call(impl, x, sizes: dict = SIZES):
    fam = get_family(impl.family)
    conv = convention_for(impl.convention, impl.family)
    params = inspect.signature(impl.fn).parameters
    kwargs = {"chunk_size": CHUNK} if impl.form == "chunk" else {}
    kwargs |= {kw: sizes[dim] for kw, dim in conv.dims.items() if kw in params}
    return call_sequence(impl.fn, convention=conv.to_json(), inputs=x, initial_state=None,
                         want_state=conv.always_state or conv.final_state in params,
                         state_names=[c.name for c in active_state(fam, {o.name: o.default for o in fam.options})],
                         kwargs=kwargs)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


ROUNDS_FAST, ROUNDS_GRAD = 15, 5  # pairs for the side-by-side comparisons with fla-core
ROUNDS_HF = 9                     # forward pairs against HF transformers (its KDA fallback takes ~1 s a call)
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
    benchmarks by more than the ratios being measured. Also records the 1-minute load average at the end
    (``load``) and the machine's ``cores``: what else was running."""
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
    benchmark.extra_info.update(load=os.getloadavg()[0], cores=os.cpu_count())


def _chunk_form(family: str):
    """Our chunk form of ``family``; skips the benchmark where the family has none."""
    forms = implementations(family, "chunk")
    if not forms:
        pytest.skip(f"{family} has no chunk form")
    (impl,) = forms
    return impl


def _versus_forward(benchmark, family: str, name: str, peer, sizes: dict = SIZES, rounds: int = ROUNDS_FAST) -> None:
    """Our chunk form and ``peer`` (a callable on spec inputs, the side called ``name``), forward, timed
    alternately."""
    impl = _chunk_form(family)
    x = inputs(family, sizes=sizes)
    with torch.no_grad():
        _side_by_side(benchmark, rounds, ours=lambda: _call(impl, x, sizes), **{name: lambda: peer(x)})


def _versus_backward(benchmark, family: str, name: str, peer, sizes: dict = SIZES) -> None:
    """The same for forward + backward (:func:`_backward`)."""
    impl = _chunk_form(family)
    _side_by_side(benchmark, ROUNDS_GRAD, ours=_backward(lambda x: _call(impl, x, sizes), family, sizes),
                  **{name: _backward(peer, family, sizes)})


@pytest.mark.parametrize("family", sorted(FLA_REFERENCES))
def test_fla_forward(benchmark, family):
    pytest.importorskip("fla")
    benchmark.extra_info.update(family=family, form="fla", flops=nominal_flops(family))
    _versus_forward(benchmark, family, "fla", FLA_REFERENCES[family][1])


def _backward(fn, family, sizes: dict = SIZES):
    """One forward + backward step against a dense random output gradient, as in training (the
    gradient of ``.sum()`` is a stride-0 expanded tensor, which sends batched matmuls down a
    one-matrix-at-a-time path and would time that instead)."""
    x = inputs(family, requires_grad=True, sizes=sizes)
    out = _first(fn(x))
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)

    def step():
        _first(fn(x)).backward(grad)

    return step


@pytest.mark.parametrize("family", sorted(FLA_REFERENCES))
def test_fla_backward(benchmark, family):
    pytest.importorskip("fla")
    benchmark.extra_info.update(family=family, form="fla")
    _versus_backward(benchmark, family, "fla", FLA_REFERENCES[family][1])


def _hf_setup(benchmark, family: str, shape: str) -> dict[str, int]:
    """Skips without transformers or our chunk form; records the row's family, shape, nominal FLOPs and the
    chunkwise algorithm's matmul FLOPs; returns the shape's sizes."""
    try:
        HF_REFERENCES[family].load()
    except ImportError as e:
        pytest.skip(f"{HF_REFERENCES[family].target} is not importable: {e}")
    _chunk_form(family)
    sizes = shape_sizes(shape)
    benchmark.extra_info.update(family=family, form="hf", shape=shape, flops=nominal_flops(family, sizes),
                                chunk_flops=chunk_flops(family, sizes))
    return sizes


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("family", sorted(HF_REFERENCES))
def test_hf_forward(benchmark, family, shape):
    sizes = _hf_setup(benchmark, family, shape)
    _versus_forward(benchmark, family, "hf", HF_REFERENCES[family], sizes, rounds=ROUNDS_HF)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("family", sorted(HF_REFERENCES))
def test_hf_backward(benchmark, family, shape):
    sizes = _hf_setup(benchmark, family, shape)
    _versus_backward(benchmark, family, "hf", HF_REFERENCES[family], sizes)


def test_matmul(benchmark):
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    benchmark.extra_info.update(flops=2.0 * MATMUL_N ** 3)
    _timed(benchmark, lambda: a @ b, rounds=5)


def test_matmul_chunk(benchmark):
    """The chunk forms' own matmul shape: T / 64 · H = 256 independent 64×64 @ 64×64 products, batched."""
    batch = T // CHUNK * H
    a, b = torch.randn(batch, CHUNK, CHUNK), torch.randn(batch, CHUNK, CHUNK)
    benchmark.extra_info.update(flops=2.0 * batch * CHUNK ** 3, batch=batch)
    _timed(benchmark, lambda: torch.bmm(a, b), rounds=25)


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
