"""impls.mlstm (mlstm_kernels convention) against the spec.

Properties: every form equals the spec's fp64 evaluation in float64 (T across chunk boundaries,
varlen with empty and length-1 segments, initial states with nonzero m, extreme gate
preactivations); float32 stays within a documented tolerance; chunk and parallel gradients (all
inputs and the initial state) equal float64 autograd of the recurrent form; the head-first
layout and the (c, n, m [B,NH,1]) states round-trip; bad arguments raise SpecError subclasses
naming the argument.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrnnspec.impls import mlstm
from lrnnspec.spec import evaluate
from lrnnspec.spec.errors import ShapeError, SpecError, VarlenError
from lrnnspec.strategies import cases

CHUNK = 4
FORMS = list(mlstm.FORMS)


def head_first(x: dict) -> dict:
    return {n: x[n].transpose(1, 2) for n in ("q", "k", "v", "i", "f")}


def run(form, x, state=None, cu_seqlens=None, chunk=CHUNK, **options):
    """Call a form with spec-layout inputs; returns (h [spec layout], {C, n, m [N,HV]})."""
    kw = dict(options)
    if form == "chunk":
        kw["chunk_size"] = chunk
    if state is not None:
        kw.update(c_initial=state["C"], n_initial=state["n"], m_initial=state["m"][..., None])
    h, (c, n, m) = mlstm.FORMS[form](**head_first(x), return_last_states=True, cu_seqlens=cu_seqlens, **kw)
    assert m.shape[-1] == 1, "m is returned as [N,NH,1]"
    return h.transpose(1, 2), {"C": c, "n": n, "m": m[..., 0]}


def close(name, got, want, tol):
    got = got.detach().double().numpy()
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    err = float(np.max(np.abs(got - want), initial=0.0))
    assert err <= tol * scale, f"{name}: max error {err:.3e} > {tol:.0e} × {scale:.3g}"
    return err / scale


def check_against_spec(form, case, tol=1e-12):
    x, state = case.torch(torch.float64), case.torch_state(dtype=torch.float64)
    cu = None if case.segments is None else torch.tensor(case.segments)
    ref = case.reference()
    h, last = run(form, x, state, cu, **case.options)
    close("h", h, ref.output, tol)
    for name in ("C", "n", "m"):
        close(name, last[name], ref.final_state[name], tol)


@pytest.mark.parametrize("form", FORMS)
@given(case=cases("mlstm", chunk_size=CHUNK, max_len=14))
def test_form_equals_spec_fp64(form, case):
    check_against_spec(form, case)


def _extreme(seed, T, B=2, H=2, K=3, V=2, gate_scale=60.0):
    g = np.random.default_rng(seed)
    x = {"q": g.standard_normal((B, T, H, K)), "k": g.standard_normal((B, T, H, K)),
         "v": g.standard_normal((B, T, H, V)),
         "i": gate_scale * g.standard_normal((B, T, H)), "f": gate_scale * g.standard_normal((B, T, H))}
    state = {"C": g.standard_normal((B, H, K, V)), "n": g.standard_normal((B, H, K)),
             "m": 3.0 * g.standard_normal((B, H))}
    return x, state


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("gate_scale", [1e3, 60.0, 0.1])
@pytest.mark.parametrize("T", [1, CHUNK - 1, CHUNK, CHUNK + 1, 13])
def test_extreme_gate_preactivations_equal_spec_fp64(form, gate_scale, T):
    # |i|, |f| up to ~3000: m moves by thousands, e^{-m} under/overflows, logσ(f) ≈ f — no NaN, exact m
    x, state = _extreme(T, T, gate_scale=gate_scale)
    ref = evaluate("mlstm", x, initial_state=state)
    h, last = run(form, {k: torch.tensor(v) for k, v in x.items()}, {k: torch.tensor(v) for k, v in state.items()})
    assert torch.isfinite(h).all()
    close("h", h, ref.output, 1e-12)
    for name in ("C", "n", "m"):
        close(name, last[name], ref.final_state[name], 1e-12)


@pytest.mark.parametrize("form", ["chunk", "parallel"])
def test_varlen_padding_is_neutral(form):
    # empty, length-1 and chunk-straddling segments; padded steps must leave C, n, m unchanged
    x, state = _extreme(5, 11, B=1, gate_scale=5.0)
    cu = [0, 0, 1, 6, 6, 11]
    state = {k: np.repeat(v, 5, axis=0) for k, v in state.items()}
    ref = evaluate("mlstm", x, initial_state=state, cu_seqlens=np.array(cu))
    h, last = run(form, {k: torch.tensor(v) for k, v in x.items()}, {k: torch.tensor(v) for k, v in state.items()},
                  torch.tensor(cu))
    close("h", h, ref.output, 1e-12)
    for name in ("C", "n", "m"):
        close(name, last[name], ref.final_state[name], 1e-12)


FP32_TOL = 2e-5  # × max(1, max|h|) × √T: float32 rounding of the same math (measured ~1e-6)


@pytest.mark.parametrize("form", FORMS)
@given(case=cases("mlstm", chunk_size=CHUNK, max_len=14, varlen=False))
def test_float32_within_tolerance(form, case):
    case = case.rounded(torch.float32)
    x, state = case.torch(torch.float32), case.torch_state(dtype=torch.float32)
    ref = case.reference()
    h, last = run(form, x, state, **case.options)
    assert h.dtype == torch.float32 and last["C"].dtype == torch.float32
    if np.max(np.abs(ref.output), initial=0.0) < 1e4:
        close("h", h, ref.output, FP32_TOL * max(1, case.dims["T"]) ** 0.5)


def _vjp(form, x, state, seed):
    xs = {k: v.clone().requires_grad_() for k, v in x.items()}
    st_ = {k: v.clone().requires_grad_() for k, v in state.items()}
    h, last = run(form, xs, st_)
    g = torch.Generator().manual_seed(seed)
    loss = (h * torch.randn(h.shape, generator=g, dtype=h.dtype)).sum()
    loss = loss + sum((v * torch.randn(v.shape, generator=g, dtype=v.dtype)).sum() for v in last.values())
    leaves = {**xs, **{f"initial {k}": v for k, v in st_.items()}}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)   # T = 0: inputs unused
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}


@pytest.mark.parametrize("form", ["chunk", "parallel"])
@given(case=cases("mlstm", chunk_size=CHUNK, max_len=14, varlen=False, max_batch=1),
       seed=st.integers(0, 1000))
def test_gradients_equal_recurrent_autograd(form, case, seed):
    x = case.torch(torch.float64)
    state = case.torch_state(dtype=torch.float64) or {
        "C": torch.randn(1, x["v"].shape[2], x["q"].shape[3], x["v"].shape[3], dtype=torch.float64),
        "n": torch.randn(1, x["v"].shape[2], x["q"].shape[3], dtype=torch.float64),
        "m": torch.randn(1, x["v"].shape[2], dtype=torch.float64)}
    want = _vjp("recurrent", x, state, seed)
    got = _vjp(form, x, state, seed)
    for name, g in want.items():
        close(f"d/d{name}", got[name], g.numpy(), 1e-9)


@pytest.mark.parametrize("form", FORMS)
def test_layout_and_state_round_trip(form):
    # running [0, t) then [t, T) from the returned (c, n, m [B,NH,1]) equals one run over [0, T)
    x, state = _extreme(1, 11, gate_scale=3.0)
    x = {k: torch.tensor(v) for k, v in x.items()}
    st0 = {k: torch.tensor(v) for k, v in state.items()}
    full, last = run(form, x, st0)
    first, mid = run(form, {k: v[:, :6] for k, v in x.items()}, st0)
    second, end = run(form, {k: v[:, 6:] for k, v in x.items()}, mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, rtol=1e-12, atol=1e-12)
    for name in last:
        torch.testing.assert_close(end[name], last[name], rtol=1e-12, atol=1e-12)
    # head-first in, head-first out: h [B,NH,S,DHHV] is the spec's [B,T,HV,V] transposed
    h = mlstm.FORMS[form](*head_first(x).values())
    ref = evaluate("mlstm", x)
    np.testing.assert_allclose(h.transpose(1, 2).numpy(), ref.output, rtol=1e-12, atol=1e-12)


def test_forms_share_signature_and_defaults():
    sigs = {name: inspect.signature(fn) for name, fn in mlstm.FORMS.items()}
    head = ["q", "k", "v", "i", "f", "c_initial", "n_initial", "m_initial", "return_last_states", "eps"]
    for name, sig in sigs.items():
        params = list(sig.parameters.values())
        assert [p.name for p in params[:len(head)]] == head, name
        assert params[head.index("eps")].default == 1e-6
        assert sig.parameters["cu_seqlens"].default is None and sig.parameters["scale"].default is None
    assert sigs["chunk"].parameters["chunk_size"].default == 64
    assert "chunk_size" not in sigs["recurrent"].parameters and "chunk_size" not in sigs["parallel"].parameters
    assert mlstm.CONVENTION == "mlstm_kernels"


def _inputs(B=2, H=2, S=5, K=3, V=2):
    g = torch.Generator().manual_seed(0)
    return dict(q=torch.randn(B, H, S, K, generator=g), k=torch.randn(B, H, S, K, generator=g),
                v=torch.randn(B, H, S, V, generator=g), i=torch.randn(B, H, S, generator=g),
                f=torch.randn(B, H, S, generator=g))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mutate, error, argument", [
    (lambda a: a.update(q=a["q"].transpose(1, 2)[..., 0]), ShapeError, "q"),              # 3-D q
    (lambda a: a.update(i=a["i"][..., None]), ShapeError, "i"),                           # i with a trailing axis
    (lambda a: a.update(k=a["k"].transpose(1, 2)), ShapeError, "k"),                      # time-first k
    (lambda a: a.update(f=a["f"][:, :, :-1]), ShapeError, "f"),                           # S mismatch
    (lambda a: a.update(v=a["v"].numpy()), SpecError, "v"),                               # not a tensor
    (lambda a: a.update(c_initial=torch.zeros(2, 2, 3, 2), n_initial=torch.zeros(2, 2, 3),
                        m_initial=torch.zeros(2, 2)), ShapeError, "m_initial"),           # m [B,NH]
    (lambda a: a.update(c_initial=torch.zeros(2, 2, 3, 2), n_initial=torch.zeros(2, 2, 3),
                        m_initial=torch.zeros(2, 2, 2)), ShapeError, "m_initial"),        # m [B,NH,2]
    (lambda a: a.update(c_initial=torch.zeros(2, 2, 2, 3), n_initial=torch.zeros(2, 2, 3),
                        m_initial=torch.zeros(2, 2, 1)), ShapeError, "c_initial"),        # c transposed
    (lambda a: a.update(c_initial=torch.zeros(2, 2, 3, 2)), SpecError, "n_initial"),      # states go together
    (lambda a: a.update(cu_seqlens=torch.tensor([0, 2, 5])), VarlenError, "cu_seqlens"),  # B = 2
    (lambda a: a.update(return_last_states="yes"), SpecError, "return_last_states"),
    (lambda a: a.update(eps=-1.0), SpecError, "eps"),
    (lambda a: a.update(scale=0.0), SpecError, "scale"),
])
def test_bad_arguments_raise_naming_the_argument(form, mutate, error, argument):
    args = _inputs()
    mutate(args)
    with pytest.raises(error) as info:
        mlstm.FORMS[form](**args)
    assert info.value.argument == argument, str(info.value)


def test_bad_chunk_size_raises():
    for bad in (0, -4, 2.5, True):
        with pytest.raises(SpecError) as info:
            mlstm.chunk_mlstm(**_inputs(), chunk_size=bad)
        assert info.value.argument == "chunk_size"


def test_varlen_states_are_per_sequence():
    a = _inputs(B=1, S=7)
    cu = torch.tensor([0, 3, 3, 7])
    h, (c, n, m) = mlstm.chunk_mlstm(**a, return_last_states=True, cu_seqlens=cu, chunk_size=4)
    assert h.shape == (1, 2, 7, 2) and c.shape == (3, 2, 3, 2) and n.shape == (3, 2, 3) and m.shape == (3, 2, 1)
    assert (c[1] == 0).all() and (m[1] == 0).all()   # the empty sequence keeps its (zero) initial state
