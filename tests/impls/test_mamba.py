"""impls.mamba (S6, mamba_ssm ``selective_scan_fn`` convention) and impls.scan against the spec.

Properties: both forms equal the spec's fp64 evaluation in float64 (both eigenvalue ranges,
delta_softplus on and off, with and without D, z, delta_bias, initial states, varlen with empty
and length-1 segments, T across chunk boundaries); every scan method equals a plain loop for
negative and zero decays, forwards and backwards; float32 stays within a documented tolerance;
chunk gradients (every input and the initial state) equal float64 autograd of the recurrent
form; the channel-first layout and the state round-trip; bad arguments raise SpecError
subclasses naming the argument.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrnnspec.impls import mamba, scan
from lrnnspec.spec import evaluate
from lrnnspec.spec.errors import OptionError, ShapeError, SpecError, VarlenError
from lrnnspec.strategies import cases

CHUNK = 4
FORMS = list(mamba.FORMS)
CHANNEL_FIRST = ("u", "delta", "z", "B", "C")


def channel_first(x: dict) -> dict:
    return {n: (t.transpose(1, 2) if n in CHANNEL_FIRST else t) for n, t in x.items()}


def run(form, x, state=None, cu_seqlens=None, chunk=CHUNK, **options):
    """Call a form with spec-layout inputs; returns (output [B,T,D], last state [N,D,NS])."""
    kw = dict(options)
    if form == "chunk":
        kw["chunk_size"] = chunk
    out, last = mamba.FORMS[form](**channel_first(x), return_last_state=True, initial_state=state,
                                  cu_seqlens=cu_seqlens, **kw)
    return out.transpose(1, 2), last


def close(name, got, want, tol):
    got = got.detach().double().numpy()
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    err = float(np.max(np.abs(got - want), initial=0.0))
    assert err <= tol * scale, f"{name}: max error {err:.3e} > {tol:.0e} × {scale:.3g}"


@pytest.mark.parametrize("form", FORMS)
@given(case=cases("mamba", chunk_size=CHUNK, max_len=14))
def test_form_equals_spec_fp64(form, case):
    x, state = case.torch(torch.float64), case.torch_state(dtype=torch.float64)
    cu = None if case.segments is None else torch.tensor(case.segments)
    ref = case.reference()
    out, last = run(form, x, None if state is None else state["h"], cu, **case.options)
    close("out", out, ref.output, 1e-12)
    final = ref.final_state["h"] if isinstance(ref.final_state, dict) else ref.final_state
    close("last_state", last, final, 1e-12)


def _inputs(seed=0, B=2, T=9, D=3, NS=4, softplus=True, optional=True, strong=False):
    g = np.random.default_rng(seed)
    delta = g.standard_normal((B, T, D)) * (8.0 if strong else 1.0)
    x = {"u": g.standard_normal((B, T, D)), "delta": delta if softplus else np.abs(delta),
         "A": -g.uniform(0.0, 3.0, (D, NS)), "B": g.standard_normal((B, T, NS)), "C": g.standard_normal((B, T, NS))}
    if optional:
        x.update(D=g.standard_normal(D), z=g.standard_normal((B, T, D)), delta_bias=g.uniform(0, 0.5, D))
    return x, g.standard_normal((B, D, NS))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("eigenvalue_range", ["[0,1]", "[-1,1]"])
@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("optional", [False, True])
@pytest.mark.parametrize("T", [1, CHUNK - 1, CHUNK, CHUNK + 1, 13])
def test_options_grid_equals_spec_fp64(form, eigenvalue_range, softplus, optional, T):
    x, h0 = _inputs(T, T=T, softplus=softplus, optional=optional, strong=True)
    opts = dict(delta_softplus=softplus, eigenvalue_range=eigenvalue_range)
    ref = evaluate("mamba", x, initial_state=h0, **opts)
    out, last = run(form, {k: torch.tensor(v) for k, v in x.items()}, torch.tensor(h0), **opts)
    close("out", out, ref.output, 1e-12)
    close("last_state", last, ref.final_state, 1e-12)


def test_zero_decay_and_varlen_padding_are_exact():
    # A = 0 rows (a = 1, or a = 1 at "[-1,1]"), Δ = 0 steps (a = 1, no drive), empty and length-1 segments
    x, _ = _inputs(3, B=1, T=10, optional=True, softplus=False)
    x["A"][0] = 0.0
    x["delta"][0, 2:4] = 0.0
    cu = np.array([0, 1, 1, 6, 10, 10])
    h0 = np.random.default_rng(1).standard_normal((5, 3, 4))
    for rng in ("[0,1]", "[-1,1]"):
        ref = evaluate("mamba", x, initial_state=h0, cu_seqlens=cu, eigenvalue_range=rng)
        out, last = run("chunk", {k: torch.tensor(v) for k, v in x.items()}, torch.tensor(h0), torch.tensor(cu),
                        eigenvalue_range=rng)
        close("out", out, ref.output, 1e-12)
        close("last_state", last, ref.final_state, 1e-12)


def _loop(a, b, h0, reverse):
    h, out = h0, []
    steps = range(a.shape[1] - 1, -1, -1) if reverse else range(a.shape[1])
    for t in steps:
        h = a[:, t] * h + b[:, t]
        out.append(h)
    if not out:
        return b.clone(), h0
    return torch.stack(out[::-1] if reverse else out, dim=1), h


@pytest.mark.parametrize("method", scan.METHODS)
@pytest.mark.parametrize("reverse", [False, True])
@given(nc=st.integers(0, 3), size=st.sampled_from([1, 2, 3, 4, 8]), seed=st.integers(0, 2**16),
       kind=st.sampled_from(["signed", "zeros", "unit"]))
def test_scan_methods_equal_a_plain_loop(method, reverse, nc, size, seed, kind):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(2, nc * size, 3, 2, generator=g, dtype=torch.float64) * 2 - 1     # a ∈ [−1, 1]
    if kind == "zeros":
        a = torch.where(torch.rand(a.shape, generator=g, dtype=torch.float64) < 0.3, 0.0, a)
    elif kind == "unit":
        a = torch.sign(a)                                                             # ±1: no decay at all
    b = torch.randn(a.shape, generator=g, dtype=torch.float64)
    h0 = torch.randn(2, 3, 2, generator=g, dtype=torch.float64)
    want, want_last = _loop(a, b, h0, reverse)
    got, last = scan.scan(a.clone(), b.clone(), h0, size, method, reverse=reverse)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(last, want_last, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("method", [m for m in scan.S6_METHODS if m != "fused"])
@pytest.mark.parametrize("eigenvalue_range", ["[0,1]", "[-1,1]"])
def test_s6_methods_agree_in_value_and_gradient(method, eigenvalue_range, monkeypatch):
    x, h0 = _inputs(5, B=2, T=11, strong=True)
    x, h0 = {k: torch.tensor(v) for k, v in x.items()}, torch.tensor(h0)
    opts = dict(eigenvalue_range=eigenvalue_range, delta_softplus=True)

    def with_method(name):
        monkeypatch.setattr(scan.selective_scan_core, "__defaults__", (name,))
        return run("chunk", x, h0, **opts), _vjp("chunk", x, h0, 0, **opts)

    (want, want_grad), (got, got_grad) = with_method("fused"), with_method(method)
    for p, q in zip(got, want):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-13)
    for name in want_grad:
        torch.testing.assert_close(got_grad[name], want_grad[name], rtol=1e-11, atol=1e-11)


FP32_TOL = 1e-5  # × max(1, max|out|) × √T: float32 rounding of the same recurrence (measured ~1e-7)


@pytest.mark.parametrize("form", FORMS)
@given(case=cases("mamba", chunk_size=CHUNK, max_len=14, varlen=False))
def test_float32_within_tolerance(form, case):
    case = case.rounded(torch.float32)
    x, state = case.torch(torch.float32), case.torch_state(dtype=torch.float32)
    ref = case.reference()
    out, last = run(form, x, None if state is None else state["h"], **case.options)
    assert out.dtype == torch.float32 and last.dtype == torch.float32
    if np.max(np.abs(ref.output), initial=0.0) < 1e4:
        close("out", out, ref.output, FP32_TOL * max(1, case.dims["T"]) ** 0.5)


def _vjp(form, x, h0, seed, **opts):
    xs = {k: v.clone().requires_grad_() for k, v in x.items()}
    h0 = h0.clone().requires_grad_()
    out, last = run(form, xs, h0, **opts)
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    loss = loss + (last * torch.randn(last.shape, generator=g, dtype=last.dtype)).sum()
    leaves = {**xs, "initial_state": h0}
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)      # T = 0: inputs unused
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}


@given(case=cases("mamba", chunk_size=CHUNK, max_len=14, varlen=False, max_batch=1), seed=st.integers(0, 1000))
def test_chunk_gradients_equal_recurrent_autograd(case, seed):
    x = case.torch(torch.float64)
    state = case.torch_state(dtype=torch.float64)
    h0 = state["h"] if state is not None else torch.randn(1, x["u"].shape[2], x["B"].shape[2], dtype=torch.float64)
    want = _vjp("recurrent", x, h0, seed, **case.options)
    got = _vjp("chunk", x, h0, seed, **case.options)
    for name, g in want.items():
        close(f"d/d{name}", got[name], g.numpy(), 1e-9)


@pytest.mark.parametrize("form", FORMS)
def test_layout_and_state_round_trip(form):
    x, h0 = _inputs(2, T=11)
    x = {k: torch.tensor(v) for k, v in x.items()}
    h0 = torch.tensor(h0)
    opts = dict(delta_softplus=True, eigenvalue_range="[-1,1]")
    full, last = run(form, x, h0, **opts)
    cut = lambda sl: {k: (v[:, sl] if v.dim() == 3 else v) for k, v in x.items()}  # noqa: E731
    first, mid = run(form, cut(slice(0, 6)), h0, **opts)
    second, end = run(form, cut(slice(6, None)), mid, **opts)
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(end, last, rtol=1e-12, atol=1e-12)
    # channel-first in, channel-first out, and the defaults: no softplus, "[0,1]", zeros initial state
    plain = {k: (x[k].abs() if k == "delta" else x[k]) for k in ("u", "delta", "A", "B", "C")}
    y = mamba.FORMS[form](*channel_first(plain).values())
    ref = evaluate("mamba", plain)
    np.testing.assert_allclose(y.transpose(1, 2).numpy(), ref.output, rtol=1e-12, atol=1e-12)


def test_forms_share_signature_and_defaults():
    head = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "delta_softplus", "return_last_state"]
    for name, fn in mamba.FORMS.items():
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        assert [p.name for p in params[:len(head)]] == head, name
        assert [p.default for p in params[5:len(head)]] == [None, None, None, False, False]
        assert sig.parameters["initial_state"].default is None and sig.parameters["cu_seqlens"].default is None
        assert sig.parameters["eigenvalue_range"].default == "[0,1]"
    assert inspect.signature(mamba.chunk_selective_scan).parameters["chunk_size"].default == 64
    assert set(mamba.FORMS) == {"recurrent", "chunk"} and mamba.CONVENTION == "mamba_ssm"


def _peer_args(B=2, D=3, NS=4, L=5):
    g = torch.Generator().manual_seed(0)
    return dict(u=torch.randn(B, D, L, generator=g), delta=torch.rand(B, D, L, generator=g),
                A=-torch.rand(D, NS, generator=g), B=torch.randn(B, NS, L, generator=g),
                C=torch.randn(B, NS, L, generator=g))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mutate, error, argument", [
    (lambda a: a.update(u=a["u"].transpose(1, 2)), ShapeError, "delta"),                 # time-first u
    (lambda a: a.update(B=a["B"][:, None]), ShapeError, "B"),                             # grouped [B,G,N,L]
    (lambda a: a.update(C=a["C"][0].T), ShapeError, "C"),                                 # wrong 2-D C
    (lambda a: a.update(A=a["A"].T), ShapeError, "A"),                                    # A [N,D]
    (lambda a: a.update(D=torch.ones(4)), ShapeError, "D"),
    (lambda a: a.update(z=torch.ones(2, 3, 4)), ShapeError, "z"),
    (lambda a: a.update(delta_bias=torch.ones(3, 1)), ShapeError, "delta_bias"),
    (lambda a: a.update(initial_state=torch.zeros(2, 4, 3)), ShapeError, "initial_state"),
    (lambda a: a.update(cu_seqlens=torch.tensor([0, 2, 5])), VarlenError, "cu_seqlens"),  # B = 2
    (lambda a: a.update(eigenvalue_range="[-2,2]"), OptionError, "eigenvalue_range"),
    (lambda a: a.update(delta_softplus=1), OptionError, "delta_softplus"),
    (lambda a: a.update(return_last_state=None), SpecError, "return_last_state"),
    (lambda a: a.update(u=None), SpecError, "u"),
])
def test_bad_arguments_raise_naming_the_argument(form, mutate, error, argument):
    args = _peer_args()
    mutate(args)
    with pytest.raises(error) as info:
        mamba.FORMS[form](**args)
    assert info.value.argument == argument, str(info.value)


def test_varlen_initial_state_is_per_sequence():
    a = _peer_args(B=1, L=7)
    cu = torch.tensor([0, 3, 3, 7])
    h0 = torch.randn(3, 3, 4)
    out, last = mamba.chunk_selective_scan(**a, return_last_state=True, initial_state=h0, cu_seqlens=cu,
                                           chunk_size=4)
    assert out.shape == (1, 3, 7) and last.shape == (3, 3, 4)
    torch.testing.assert_close(last[1], h0[1])                   # the empty sequence keeps its initial state
    with pytest.raises(ShapeError) as info:
        mamba.chunk_selective_scan(**a, initial_state=torch.zeros(1, 3, 4), cu_seqlens=cu)
    assert info.value.argument == "initial_state"
