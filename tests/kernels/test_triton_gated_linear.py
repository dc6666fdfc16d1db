"""Triton chunk kernels of gla and simple_gla (lrnnspec.kernels.gla / .simple_gla), run by the Triton
interpreter on the CPU.

Properties: in float64 the kernels equal the PyTorch chunk form (lrnnspec.impls) — output, final
state and the gradients of q, k, v, the gate and the initial state, including the final-state
cotangent — to rounding, across T not a multiple of the chunk, every chunk size, GVA and K, V that are
not powers of two; they equal the spec's fp64 engine (forward) and the spec's VJP (float64 autograd
of the recurrent form) on Hypothesis-drawn cases (varlen with empty segments, initial states, gate
regimes, scales); varlen with empty and length-1 segments; very strong gates (−20 per step over a
64-step chunk) stay finite and accurate in float32 where a factored e^{±G} form would overflow;
zero and vanishing gates; fp16 inputs keep the dtype contract; g_gamma; torch.library.opcheck on the
four ops; torch.compile (aot_eager, fullgraph) of the ops; clear errors for chunk_size and bad op
arguments.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is first imported: the kernels run on the CPU

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lrnnspec.harness import conventions  # noqa: E402
from lrnnspec.impls import gla as impl_gla  # noqa: E402
from lrnnspec.impls import simple_gla as impl_sgla  # noqa: E402
from lrnnspec.kernels import _gated_linear_triton as tri  # noqa: E402
from lrnnspec.kernels import gla as kern_gla  # noqa: E402
from lrnnspec.kernels import simple_gla as kern_sgla  # noqa: E402
from lrnnspec.spec import evaluate  # noqa: E402
from lrnnspec.spec.errors import SpecError  # noqa: E402
from lrnnspec.strategies import cases  # noqa: E402

KERNEL = {"gla": kern_gla.chunk_gla, "simple_gla": kern_sgla.chunk_simple_gla}
IMPL_CHUNK = {"gla": impl_gla.chunk_gla, "simple_gla": impl_sgla.chunk_simple_gla}
IMPL_RECURRENT = {"gla": impl_gla.recurrent_gla, "simple_gla": impl_sgla.recurrent_simple_gla}
OPS = {"gla": (tri.gla_chunk_fwd, tri.gla_chunk_bwd),
       "simple_gla": (tri.simple_gla_chunk_fwd, tri.simple_gla_chunk_bwd)}
FAMILIES = ["gla", "simple_gla"]


# --- helpers --------------------------------------------------------------------------------------
def make_inputs(family, *, B=1, T=20, H=1, HV=None, K=20, V=12, gate="typical", seed=0, dtype=torch.float64,
                n_states=None):
    """q, k [B,T,H,K], v [B,T,HV,V], g [B,T,HV(,K)] ≤ 0 and an initial state [N,HV,K,V] (float32
    unless dtype is float64)."""
    HV = HV or H
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64)

    gshape = (B, T, HV, K) if family == "gla" else (B, T, HV)
    u = torch.rand(gshape, generator=gen, dtype=torch.float64)
    if gate == "typical":
        g = torch.nn.functional.logsigmoid(randn(*gshape) + 2.0)
    elif gate == "strong":
        # −10…−20 per step where strong (a 64-step chunk decays by ~e^{−1000}), near 0 elsewhere
        strong = (torch.arange(gshape[-1]) % 2 == 0) if family == "gla" else (torch.arange(T) % 3 != 1)[:, None]
        g = torch.where(strong, -10.0 - 10.0 * u, -1e-3 * u)
    elif gate == "zero":
        g = torch.zeros(gshape, dtype=torch.float64)
    elif gate == "weak":
        g = -1e-7 * u
    else:
        raise ValueError(gate)
    x = dict(q=randn(B, T, H, K), k=randn(B, T, H, K), v=randn(B, T, HV, V), g=g)
    x = {n: t.to(dtype) for n, t in x.items()}
    s0 = randn(n_states or B, HV, K, V).to(torch.float64 if dtype == torch.float64 else torch.float32)
    return x, s0


def run(fn, x, s0, *, grad=True, seed=1, **kw):
    """o, final state and (with ``grad``) the gradients of ⟨w_o, o⟩ + ⟨w_S, S_T⟩ w.r.t. every input
    and the initial state, for fixed random cotangents w."""
    leaves = {n: t.detach().clone().requires_grad_(grad) for n, t in x.items()}
    init = None if s0 is None else s0.detach().clone().requires_grad_(grad)
    o, S = fn(**leaves, initial_state=init, output_final_state=True, **kw)
    if not grad:
        return o, S, None
    gen = torch.Generator().manual_seed(seed)
    loss = (o.double() * torch.randn(o.shape, generator=gen, dtype=torch.float64)).sum() \
        + (S.double() * torch.randn(S.shape, generator=gen, dtype=torch.float64)).sum()
    names = list(leaves) + ([] if init is None else ["initial_state"])
    tensors = list(leaves.values()) + ([] if init is None else [init])
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return o, S, {n: torch.zeros_like(t) if d is None else d for n, t, d in zip(names, tensors, grads)}


def assert_close(name, got, want, tol):
    got = np.asarray(got.detach().double() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    want = np.asarray(want.detach().double() if isinstance(want, torch.Tensor) else want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    assert np.all(np.isfinite(got)), f"{name}: non-finite values"
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    err = float(np.max(np.abs(got - want), initial=0.0))
    assert err <= tol * scale, f"{name}: max error {err:.3e} > {tol:.0e} × {scale:.3g}"


def spec_reference(family, x, s0, cu=None, **options):
    return evaluate(family, {n: t.detach().double().numpy() for n, t in x.items()},
                    initial_state=None if s0 is None else s0.detach().double().numpy(),
                    cu_seqlens=None if cu is None else np.asarray(cu, dtype=np.int64), **options)


def compare_runs(got, want, tol, grad_tol=None):
    (o, S, g), (o2, S2, g2) = got, want
    assert_close("output", o, o2, tol)
    assert_close("final state", S, S2, tol)
    for name in (g2 or {}):
        assert_close(f"d/d{name}", g[name], g2[name], grad_tol or tol)


# --- float64: the kernels are the chunk recurrence, to rounding ------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("chunk_size,T", [(16, 35), (32, 37), (64, 45)])
def test_fp64_forward_and_backward_equal_impls_chunk_form(family, chunk_size, T):
    """T not a multiple of the chunk, 1 query head → 2 value heads (GVA), K = 20, V = 12."""
    x, s0 = make_inputs(family, B=1, T=T, H=1, HV=2, K=20, V=12, seed=chunk_size)
    got = run(KERNEL[family], x, s0, chunk_size=chunk_size)
    want = run(IMPL_CHUNK[family], x, s0, chunk_size=chunk_size)
    compare_runs(got, want, 1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_fp64_several_key_and_value_blocks(family, monkeypatch):
    """Blocks capped at 16 so that K = 20 and V = 18 take two masked blocks each: every loop over K and
    V blocks and every grid over them runs more than once."""
    monkeypatch.setattr(tri, "MAX_BLOCK", 16)
    monkeypatch.setattr(tri, "MAX_BLOCK_3D", 16)
    x, s0 = make_inputs(family, B=1, T=40, H=1, K=20, V=18, seed=23)
    got = run(KERNEL[family], x, s0, chunk_size=32)
    want = run(IMPL_CHUNK[family], x, s0, chunk_size=32)
    compare_runs(got, want, 1e-12)


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fp64_equals_spec_engine_and_spec_vjp_on_drawn_cases(family, data):
    case = data.draw(cases(family, chunk_size=16, max_len=34, max_heads=1))
    x = case.torch(torch.float64, requires_grad=True)
    init = case.torch_state(dtype=torch.float64, requires_grad=True)
    cu = None if case.segments is None else torch.tensor(case.segments)
    o, state = conventions.call(KERNEL[family], "fla", family, x, state_names=["S"], initial_state=init,
                                want_state=True, cu_seqlens=cu, chunk_size=16, options=case.options)
    ref = case.reference()
    assert_close("output", o, ref.output, 1e-11)
    assert_close("final state", state["S"], ref.final_state, 1e-11)
    # the spec's VJP: float64 autograd of the recurrent form (the spec's step/readout run by torch)
    xr = case.torch(torch.float64, requires_grad=True)
    initr = case.torch_state(dtype=torch.float64, requires_grad=True)
    o2, state2 = conventions.call(IMPL_RECURRENT[family], "fla", family, xr, state_names=["S"], initial_state=initr,
                                  want_state=True, cu_seqlens=cu, options=case.options)
    gen = torch.Generator().manual_seed(case.seed % 1000)
    wo = torch.randn(o.shape, generator=gen, dtype=torch.float64)
    ws = torch.randn(state["S"].shape, generator=gen, dtype=torch.float64)
    leaves = [*x.values(), *(init or {}).values()]
    leaves2 = [*xr.values(), *(initr or {}).values()]
    loss, loss2 = (o * wo).sum() + (state["S"] * ws).sum(), (o2 * wo).sum() + (state2["S"] * ws).sum()
    if not loss2.requires_grad:  # T = 0 without an initial state: nothing to differentiate
        return
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    grads2 = torch.autograd.grad(loss2, leaves2, allow_unused=True)
    for name, g, g2, leaf in zip([*x, "initial_state"], grads, grads2, leaves):
        assert_close(f"d/d{name}", torch.zeros_like(leaf) if g is None else g,
                     torch.zeros_like(leaf) if g2 is None else g2, 1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_varlen_with_empty_and_length_one_segments(family):
    cu = [0, 0, 1, 1, 19, 36, 37]                     # empty, 1, empty, 18, 17 (crosses a chunk), 1
    x, s0 = make_inputs(family, B=1, T=37, H=1, K=5, V=3, seed=3, n_states=len(cu) - 1)
    cu_t = torch.tensor(cu, dtype=torch.int64)
    got = run(KERNEL[family], x, s0, cu_seqlens=cu_t, chunk_size=16)
    ref = spec_reference(family, x, s0, cu)
    assert_close("output vs spec", got[0], ref.output, 1e-11)
    assert_close("final state vs spec", got[1], ref.final_state, 1e-11)
    # the empty segments' final states are their initial states, exactly
    for i in (0, 2):
        assert torch.equal(got[1][i], s0[i])
    compare_runs(got, run(IMPL_CHUNK[family], x, s0, cu_seqlens=cu_t, chunk_size=16), 1e-12)


# --- float32: strong and weak gates ------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_strong_gates_stay_finite_and_accurate_in_fp32(family):
    """Log gates of −10…−20 per step over a 64-step chunk: e^{−G} would overflow (G ≈ −1000), so the
    kernel must keep every exponent ≤ 0. Forward against the spec's fp64 engine, gradients against
    float64 autograd of the chunk form, both on the same (fp32) inputs."""
    x, s0 = make_inputs(family, B=1, T=70, H=1, K=16, V=16, gate="strong", seed=5, dtype=torch.float32)
    got = run(KERNEL[family], x, s0, chunk_size=64)
    ref = spec_reference(family, x, s0)
    assert_close("output", got[0], ref.output, 2e-5)
    assert_close("final state", got[1], ref.final_state, 2e-5)
    want = run(IMPL_CHUNK[family], {n: t.double() for n, t in x.items()}, s0.double(), chunk_size=64)
    for name, g in got[2].items():
        assert_close(f"d/d{name}", g, want[2][name], 1e-4)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("gate", ["zero", "weak"])
def test_zero_and_vanishing_gates_in_fp32(family, gate):
    x, s0 = make_inputs(family, B=1, T=40, H=1, K=8, V=8, gate=gate, seed=7, dtype=torch.float32)
    o, S, grads = run(KERNEL[family], x, s0, chunk_size=16)
    ref = spec_reference(family, x, s0)
    assert_close("output", o, ref.output, 1e-5)
    assert_close("final state", S, ref.final_state, 1e-5)
    want = run(IMPL_CHUNK[family], {n: t.double() for n, t in x.items()}, s0.double(), chunk_size=16)
    for name, g in grads.items():
        assert_close(f"d/d{name}", g, want[2][name], 1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_fp16_inputs_keep_the_dtype_contract_and_accuracy(family):
    x, s0 = make_inputs(family, B=1, T=33, H=2, K=8, V=5, seed=9, dtype=torch.float16)
    o, S, grads = run(KERNEL[family], x, s0, chunk_size=32)
    assert o.dtype == torch.float16 and S.dtype == torch.float32
    assert all(grads[n].dtype == torch.float16 for n in x) and grads["initial_state"].dtype == torch.float32
    ref = spec_reference(family, x, s0)                 # fp64 on the fp16 inputs
    assert_close("output", o, ref.output, 2e-3)         # fp16 output rounding: 2^-11 relative
    assert_close("final state", S, ref.final_state, 1e-5)
    want = run(IMPL_CHUNK[family], {n: t.double() for n, t in x.items()}, s0.double(), chunk_size=32)
    for name, g in grads.items():
        assert_close(f"d/d{name}", g, want[2][name], 2e-3)


def test_simple_gla_g_gamma_equals_the_expanded_gate():
    x, s0 = make_inputs("simple_gla", B=1, T=20, H=2, K=4, V=4, seed=11)
    x.pop("g")
    gamma = -torch.tensor([0.1, 3.0], dtype=torch.float64)
    got = run(lambda **kw: kern_sgla.chunk_simple_gla(**kw, g_gamma=gamma), x, s0, chunk_size=16)
    want = run(lambda **kw: impl_sgla.chunk_simple_gla(**kw, g=gamma.expand(1, 20, 2)), x, s0, chunk_size=16)
    compare_runs(got, want, 1e-12)
    leaf, full = gamma.clone().requires_grad_(), gamma.expand(1, 20, 2).clone().requires_grad_()
    (d_gamma,) = torch.autograd.grad(kern_sgla.chunk_simple_gla(**x, g_gamma=leaf, initial_state=s0)[0].sum(), leaf)
    (d_full,) = torch.autograd.grad(impl_sgla.chunk_simple_gla(**x, g=full, initial_state=s0)[0].sum(), full)
    assert_close("d/dg_gamma", d_gamma, d_full.sum((0, 1)), 1e-12)
    with pytest.raises(SpecError, match="g"):
        kern_sgla.chunk_simple_gla(**x, initial_state=s0)


# --- torch.library: opcheck and torch.compile ---------------------------------------------------------
def _op_args(family, T=32, K=5, V=3, seed=13):
    x, s0 = make_inputs(family, B=1, T=T, H=1, K=K, V=V, seed=seed, dtype=torch.float32)
    return x["q"], x["k"], x["v"], x["g"], s0


@pytest.mark.parametrize("family", FAMILIES)
def test_opcheck_forward_and_backward_ops(family):
    fwd, bwd = OPS[family]
    q, k, v, g, s0 = _op_args(family)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, g, s0)]
    torch.library.opcheck(fwd, (*leaves, 0.3, 16))
    torch.library.opcheck(bwd, (q, k, v, g, s0, torch.randn_like(v), torch.randn_like(s0), 0.3, 16))


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_compile_aot_eager_fullgraph_of_the_op(family):
    fwd, _ = OPS[family]
    args = _op_args(family, seed=17)

    def fn(q, k, v, g, s0):
        o, S = fwd(q * 1.0, k, v, g, s0, 0.25, 16)
        return (o * o).sum() + S.sum(), o

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    a = [t.clone().requires_grad_() for t in args]
    b = [t.clone().requires_grad_() for t in args]
    loss_c, o_c = compiled(*a)
    loss_e, o_e = fn(*b)
    assert torch.equal(o_c, o_e)
    for ga, gb in zip(torch.autograd.grad(loss_c, a), torch.autograd.grad(loss_e, b)):
        assert torch.equal(ga, gb)


def test_torch_compile_fullgraph_through_the_public_function_matches_eager():
    x, s0 = make_inputs("gla", B=1, T=20, H=1, K=4, V=4, dtype=torch.float32)
    call = lambda **kw: kern_gla.chunk_gla(**kw, initial_state=s0, output_final_state=True, chunk_size=16)  # noqa: E731
    compiled = torch.compile(call, fullgraph=True, backend="aot_eager")(**x)
    eager = call(**x)
    assert all(torch.equal(a, b) for a, b in zip(compiled, eager))


# --- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bad", [8, 48, 128, 0, -16, 64.0, "64", True, None])
def test_chunk_size_outside_16_32_64_is_a_value_error_naming_it(family, bad):
    x, s0 = make_inputs(family, B=1, T=5, H=1, K=4, V=4)
    with pytest.raises(ValueError, match="chunk_size") as info:
        KERNEL[family](**x, initial_state=s0, chunk_size=bad)
    assert isinstance(info.value, SpecError) and info.value.argument == "chunk_size"


@pytest.mark.parametrize("family", FAMILIES)
def test_ops_reject_bad_arguments_naming_them(family):
    fwd, _ = OPS[family]
    q, k, v, g, s0 = _op_args(family)
    bad = {
        "q": (q.half(), k.half(), v.half(), g.half(), s0.half(), 1.0, 16),            # the op computes in fp32/fp64
        "k": (q, k.double(), v, g, s0, 1.0, 16),
        "g": (q, k, v, g[..., :1] if family == "gla" else g[..., None], s0, 1.0, 16),
        "initial_state": (q, k, v, g, s0[:, :, :-1], 1.0, 16),
    }
    for name, args in bad.items():
        with pytest.raises(SpecError) as info:
            fwd(*args)
        assert info.value.argument == name, (name, str(info.value))
    with pytest.raises(SpecError, match="multiple of chunk_size"):
        fwd(q[:, :20], k[:, :20], v[:, :20], g[:, :20], s0, 1.0, 16)
    with pytest.raises(SpecError, match="chunk_size"):
        fwd(q, k, v, g, s0, 1.0, 8)


@pytest.mark.parametrize("family", FAMILIES)
def test_inputs_are_not_modified_and_runs_are_bitwise_deterministic(family):
    x, s0 = make_inputs(family, B=1, T=20, H=1, K=6, V=6, dtype=torch.float32, seed=19)
    before = {n: t.clone() for n, t in x.items()}, s0.clone()
    o1, S1 = KERNEL[family](**x, initial_state=s0, output_final_state=True, chunk_size=16)
    o2, S2 = KERNEL[family](**x, initial_state=s0, output_final_state=True, chunk_size=16)
    assert torch.equal(o1, o2) and torch.equal(S1, S2)
    assert all(torch.equal(x[n], before[0][n]) for n in x) and torch.equal(s0, before[1])
