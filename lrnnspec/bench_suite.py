"""The benchmark suite behind ``lrnnspec bench`` (pytest-benchmark; also collected from benchmarks/).

Workload (issue: CPU, 2 threads): B = 1, T = 4096, H = 4, K = V = 64, float32; Mamba (S6) with
D = 256 channels and NS = 16 states; DeltaProduct with n_h = 2. Chunk size 64 everywhere.
Every measurement of one run lands in one JSON file; :mod:`lrnnspec.bench_report` turns it into
``reports/bench.md`` with the ratios (same run, same shapes):

* ``forward[<family>-<form>]``  our forms, forward only;
* ``fla_forward[<family>]``     our chunk form and fla-core 0.6.0's pure-PyTorch chunkwise reference,
  forward, timed alternately (each side's median in ``extra_info``);
* ``fla_backward[<family>]``    the same for forward + backward (sum of outputs as the loss);
* ``matmul``                    a 2048×2048×2048 float32 ``torch.matmul``: the machine's GFLOP/s.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from lrnnspec import conventions
from lrnnspec.impls import implementations
from lrnnspec.spec import get_family, random_inputs
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
    """FLOPs of the recurrence itself (the work any algorithm must do), per call:
    state update + read-out, 2 FLOPs per multiply-add. K×V-state families: 4·B·T·HV·K·V
    (delta families 8·…: the extra Sᵀk read; DeltaProduct n_h + 1 reads and writes per token);
    Mamba: 6·B·T·D·NS."""
    if family == "mamba":
        return 6.0 * B * T * SIZES["D"] * SIZES["NS"]
    per = {"delta_rule": 8, "gated_delta_rule": 8, "dplr": 8, "delta_product": 4 * (SIZES["n_h"] + 1)}.get(family, 4)
    return float(per) * B * T * H * K * V


def _call(impl, x):
    fam = get_family(impl.family)
    names = [c.name for c in active_state(fam, {o.name: o.default for o in fam.options})]
    caps = conventions.capabilities(impl.fn, impl.convention, impl.family)
    return conventions.call(impl.fn, impl.convention, impl.family, x, state_names=names, want_state=caps.final_state,
                            chunk_size=CHUNK if impl.form == "chunk" else None)


# --- fla-core's pure-PyTorch chunkwise references, called on the same spec-layout inputs ----------------
def _heads_first(*ts):
    return [t.transpose(1, 2) for t in ts]


def _fla_simple_gla(x):
    from fla.ops.simple_gla.naive import naive_chunk_simple_gla
    return naive_chunk_simple_gla(x["q"], x["k"], x["v"], x["g"], chunk_size=CHUNK)


def _fla_linear_attention(x):
    from fla.ops.linear_attn.naive import naive_chunk_linear_attn
    return naive_chunk_linear_attn(x["q"], x["k"], x["v"])


def _fla_delta_rule(x):
    from fla.ops.delta_rule.naive import delta_rule_chunkwise
    q, k, v = _heads_first(x["q"], x["k"], x["v"])
    return delta_rule_chunkwise(q, k, v, x["beta"].transpose(1, 2), chunk_size=CHUNK)


def _fla_gated_delta_rule(x):
    from fla.ops.gated_delta_rule.naive import naive_chunk_gated_delta_rule
    return naive_chunk_gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], chunk_size=CHUNK)


def _fla_dplr(x):
    from fla.ops.generalized_delta_rule.dplr.naive import dplr_chunkwise
    q, k, v, a, b, gk = _heads_first(*(x[n] for n in ("q", "k", "v", "a", "b", "gk")))
    return dplr_chunkwise(q, k, v, a, b, gk, chunk_size=CHUNK)


# family → (fla-core function, adapter)
FLA_REFERENCES = {
    "linear_attention": ("naive_chunk_linear_attn", _fla_linear_attention),
    "simple_gla": ("naive_chunk_simple_gla", _fla_simple_gla),
    "delta_rule": ("delta_rule_chunkwise", _fla_delta_rule),
    "gated_delta_rule": ("naive_chunk_gated_delta_rule", _fla_gated_delta_rule),
    "dplr": ("dplr_chunkwise", _fla_dplr),
}


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


# --- pLSTM on a 2-D grid (issue 6): node-by-node recurrence vs the chunked parallel form -------------
PLSTM_SIDE, PLSTM_H, PLSTM_K = 64, 4, 32


def _plstm_forms():
    from lrnnspec.impls import plstm
    from lrnnspec.spec import grid, random_dag_inputs

    graph = grid(PLSTM_SIDE, PLSTM_SIDE)
    raw = random_dag_inputs("plstm", graph, seed=0, B=1, H=PLSTM_H, K=PLSTM_K, V=PLSTM_K)
    x = {k: torch.from_numpy(v).float() for k, v in raw.items()}
    flat = {k: v.reshape(1, PLSTM_SIDE * PLSTM_SIDE, *v.shape[3:]) for k, v in x.items()}
    return {"recurrent": lambda: plstm.recurrent(graph, **flat), "chunk": lambda: plstm.chunked_2d(**x, chunk=8)}


def test_plstm_forward(benchmark):
    benchmark.extra_info.update(family="plstm")
    with torch.no_grad():
        _side_by_side(benchmark, ROUNDS_PLSTM, **_plstm_forms())
