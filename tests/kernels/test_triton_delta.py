"""Triton kernels of the delta families (kernels/gated_delta_rule.py, delta_rule.py, delta_product.py),
run on CPU under the Triton interpreter.

Properties: the op's forward and backward equal float64 autograd of ``impls.delta.ut_core`` (the
chunkwise reference) for gated and ungated inputs, head dims that are not powers of two, every
chunk size, β up to 2, strong gates and a read-out stride (DeltaProduct, including chunks that
are not a power of two); each public function equals the spec's fp64 evaluation and its gradients
(every input and the initial state, with a final-state cotangent) equal float64 autograd of the
impls chunk form, across T not a multiple of the chunk, varlen with empty and length-1 segments,
initial and final state, GVA; the final-state cotangent alone reaches every input; float32 and
float16 inputs keep the dtype contract and stay near the fp64 result (values and gradients);
``torch.library.opcheck`` passes and ``torch.compile(fullgraph=True, backend="aot_eager")`` gives
the eager results; a chunk_size outside {16, 32, 64} raises a ValueError naming chunk_size.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lrnnspec.impls import delta_product as impl_dp  # noqa: E402
from lrnnspec.impls import delta_rule as impl_dr  # noqa: E402
from lrnnspec.impls import gated_delta_rule as impl_gdn  # noqa: E402
from lrnnspec.impls.delta import ut_core  # noqa: E402
from lrnnspec.impls.driver import default_chunk_size  # noqa: E402
from lrnnspec.kernels import delta_product, delta_rule, gated_delta_rule  # noqa: E402
from lrnnspec.kernels.gated_delta_rule import gated_delta_chunk, gated_delta_chunk_fwd  # noqa: E402
from lrnnspec.spec import evaluate  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
                                reason="needs a GPU or TRITON_INTERPRET=1")

KERNELS = {"gated_delta_rule": gated_delta_rule.chunk_gated_delta_rule, "delta_rule": delta_rule.chunk_delta_rule,
           "delta_product": delta_product.chunk_gated_delta_product}
IMPLS = {"gated_delta_rule": impl_gdn.chunk_gated_delta_rule, "delta_rule": impl_dr.chunk_delta_rule,
         "delta_product": impl_dp.chunk_gated_delta_product}
ARGS = {"gated_delta_rule": ("q", "k", "v", "g", "beta"), "delta_rule": ("q", "k", "v", "beta"),
        "delta_product": ("q", "k", "v", "g", "beta")}


# --- helpers ---------------------------------------------------------------------------------------
def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def make_inputs(family, *, B=1, T=20, H=1, HV=1, K=5, V=3, n_h=1, gate="mixed", seed=0, dtype=torch.float64):
    """Spec-named inputs: unit keys, β ∈ [0, 2] with exact 0 and 2 among them, gates from a regime
    (``mixed``: 0, weak, typical and strong −30 elements; ``strong``; ``weak``; None: no g)."""
    gen = torch.Generator().manual_seed(seed)
    Tk = T * n_h
    x = {"q": torch.randn(B, T, H, K, generator=gen, dtype=torch.float64),
         "k": _unit(torch.randn(B, Tk, H, K, generator=gen, dtype=torch.float64)),
         "v": torch.randn(B, Tk, HV, V, generator=gen, dtype=torch.float64)}
    beta = 2.0 * torch.rand(B, Tk, HV, generator=gen, dtype=torch.float64)
    pick = torch.randint(0, 4, beta.shape, generator=gen)
    x["beta"] = torch.where(pick == 0, torch.full_like(beta, 2.0), torch.where(pick == 1, 0.0 * beta, beta))
    if family != "delta_rule" and gate is not None:
        u = torch.rand(B, T, HV, generator=gen, dtype=torch.float64)
        weak = torch.nn.functional.logsigmoid(4.0 + torch.randn(B, T, HV, generator=gen, dtype=torch.float64))
        strong = -5.0 - 25.0 * u
        if gate == "strong":
            x["g"] = strong
        elif gate == "weak":
            x["g"] = weak
        else:
            which = torch.randint(0, 4, u.shape, generator=gen)
            x["g"] = torch.where(which == 0, 0.0 * u, torch.where(which == 1, weak, torch.where(which == 2, -u, strong)))
    return {n: t.to(dtype) for n, t in x.items()}


def make_state(N, HV, K, V, seed=1):
    return torch.randn(N, HV, K, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def run(fn_table, family, x, init=None, cu_seqlens=None, chunk_size=None, scale=None, **kw):
    args = [x.get(n) for n in ARGS[family]]
    if family == "delta_product":
        kw["num_householder"] = x["k"].shape[1] // max(x["q"].shape[1], 1)
    if chunk_size is not None:
        kw["chunk_size"] = chunk_size
    if cu_seqlens is not None:
        kw["cu_seqlens"] = torch.tensor(cu_seqlens, dtype=torch.long)
    return fn_table[family](*args, scale=scale, initial_state=init, output_final_state=True, **kw)


def spec(family, x, init=None, cu_seqlens=None, scale=None, **opts):
    opts = opts if scale is None else {**opts, "scale": scale}
    ref = evaluate(family, {n: t.detach().double().numpy() for n, t in x.items()}, engine="fp64",
                   initial_state=None if init is None else init.detach().double().numpy(),
                   cu_seqlens=None if cu_seqlens is None else np.asarray(cu_seqlens, dtype=np.int64), **opts)
    S = ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state
    return ref.output, S


def rel_err(got, want) -> float:
    got = got.detach().double().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = want.detach().double().cpu().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    return float(np.max(np.abs(got - want), initial=0.0)) / max(1.0, float(np.max(np.abs(want), initial=0.0)))


def assert_close(name, got, want, tol):
    err = rel_err(got, want)
    assert err <= tol, f"{name}: relative error {err:.3e} > {tol:.0e}"


def grads(leaves: dict, o, S, seed=0, w_out=1.0, w_state=1.0):
    """Gradients of ⟨W_o, o⟩ + ⟨W_S, S⟩ (random W) with respect to every leaf."""
    gen = torch.Generator().manual_seed(seed)
    loss = w_out * (o.double() * torch.randn(o.shape, generator=gen, dtype=torch.float64)).sum()
    loss = loss + w_state * (S.double() * torch.randn(S.shape, generator=gen, dtype=torch.float64)).sum()
    out = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return {n: (torch.zeros_like(v) if g is None else g) for (n, v), g in zip(leaves.items(), out)}


def leaves_of(x, init, dtype=torch.float64):
    xs = {n: t.detach().to(dtype).requires_grad_() for n, t in x.items()}
    s = None if init is None else init.detach().to(torch.float64 if dtype == torch.float64 else torch.float32) \
        .requires_grad_()
    return xs, s


# --- the op against ut_core --------------------------------------------------------------------------
OP_CASES = [  # (gate, K, V, chunk, every, N, H)
    ("mixed", 5, 3, 16, 1, 2, 1),
    (None, 8, 16, 32, 1, 1, 2),
    ("strong", 20, 7, 64, 1, 1, 1),
    ("weak", 4, 3, 48, 3, 1, 1),      # DeltaProduct n_h = 3: a 48-step chunk in a 64-row block
    (None, 3, 5, 32, 2, 1, 1),
    ("mixed", 4, 4, 24, 1, 1, 1),    # the op takes any chunk: 24 steps in a 32-row block (partial 16-block)
    ("mixed", 5, 40, 16, 1, 1, 1),   # the backward's value loop: two blocks of 32 columns, the second partial
    (None, 3, 33, 16, 1, 1, 1),
]


@pytest.mark.parametrize("gate,K,V,chunk,every,N,H", OP_CASES,
                         ids=[f"{g}-K{k}-V{v}-C{c}-n{e}" for g, k, v, c, e, *_ in OP_CASES])
def test_op_forward_and_backward_equal_ut_core_fp64_autograd(gate, K, V, chunk, every, N, H):
    T = 2 * chunk
    x = make_inputs("gated_delta_rule", B=N, T=T // every, H=H, HV=H, K=K, V=V, n_h=every, gate=gate, seed=chunk)
    g = None
    if gate is not None:  # per micro-step gates
        g = make_inputs("gated_delta_rule", B=N, T=T, H=H, HV=H, K=1, V=1, gate=gate, seed=K)["g"]
    ins = {"q": x["q"], "k": x["k"], "v": x["v"], "g": g, "beta": x["beta"], "state": make_state(N, H, K, V)}
    a = {n: (t.clone().requires_grad_() if t is not None else None) for n, t in ins.items()}
    b = {n: (t.clone().requires_grad_() if t is not None else None) for n, t in ins.items()}
    o, S = gated_delta_chunk(a["q"], a["k"], a["v"], a["g"], a["beta"], a["state"], 0.7, chunk, every)
    o2, S2 = ut_core(b["q"], b["k"], b["v"], b["beta"], b["g"], b["state"], 0.7, chunk, every=every)
    assert o.dtype == S.dtype == torch.float64
    assert_close("output", o, o2, 1e-12)
    assert_close("final state", S, S2, 1e-12)
    got = grads({n: t for n, t in a.items() if t is not None}, o, S, seed=3)
    want = grads({n: t for n, t in b.items() if t is not None}, o2, S2, seed=3)
    for n in got:
        assert_close(f"d{n}", got[n], want[n], 1e-11)


# --- the public functions against the spec and the impls ------------------------------------------------
PUBLIC_CASES = [
    # family, dims, n_h, gate, cu_seqlens, chunk (None: the default)
    ("gated_delta_rule", dict(B=1, T=37, H=1, HV=2, K=5, V=3), 1, "mixed", [0, 0, 1, 20, 20, 37], 16),
    ("gated_delta_rule", dict(B=2, T=21, H=2, HV=2, K=3, V=5), 1, "strong", None, 16),
    ("delta_rule", dict(B=2, T=33, H=1, HV=2, K=6, V=4), 1, None, None, 32),
    ("delta_rule", dict(B=1, T=19, H=1, HV=1, K=5, V=3), 1, None, [0, 1, 1, 19], 16),
    ("delta_product", dict(B=1, T=13, H=1, HV=2, K=4, V=3), 2, "mixed", [0, 0, 1, 9, 13], 16),
    ("delta_product", dict(B=2, T=11, H=1, HV=1, K=5, V=3), 3, None, None, None),
]


@pytest.mark.parametrize("family,dims,n_h,gate,cu,chunk", PUBLIC_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(PUBLIC_CASES)])
def test_public_form_equals_spec_and_impls_gradients_fp64(family, dims, n_h, gate, cu, chunk):
    x = make_inputs(family, n_h=n_h, gate=gate, seed=len(cu or []) + n_h, **dims)
    N = len(cu) - 1 if cu is not None else dims["B"]
    init = make_state(N, dims["HV"], dims["K"], dims["V"])
    scale = 0.8 if family == "delta_rule" else None
    xs, s = leaves_of(x, init)
    o, S = run(KERNELS, family, xs, s, cu, chunk, scale)
    assert o.dtype == S.dtype == torch.float64 and S.shape == init.shape
    want_o, want_S = spec(family, x, init, cu, scale)
    assert_close("output vs spec", o, want_o, 1e-11)
    assert_close("final state vs spec", S, want_S, 1e-11)
    xr, sr = leaves_of(x, init)
    o2, S2 = run(IMPLS, family, xr, sr, cu, 16 if chunk is None else chunk, scale)
    got = grads({**xs, "initial_state": s}, o, S, seed=7)
    want = grads({**xr, "initial_state": sr}, o2, S2, seed=7)
    for n in got:
        assert_close(f"d{n}", got[n], want[n], 1e-10)


def test_final_state_cotangent_alone_reaches_every_input():
    """A loss on the final state only: the kernel's backward must use dS_final (not drop it)."""
    x = make_inputs("gated_delta_rule", B=1, T=40, H=1, HV=1, K=4, V=4, gate="weak", seed=11)
    init = make_state(1, 1, 4, 4)
    xs, s = leaves_of(x, init)
    o, S = run(KERNELS, "gated_delta_rule", xs, s, chunk_size=16)
    xr, sr = leaves_of(x, init)
    o2, S2 = run(IMPLS, "gated_delta_rule", xr, sr, chunk_size=16)
    got = grads({**xs, "initial_state": s}, o, S, w_out=0.0)
    want = grads({**xr, "initial_state": sr}, o2, S2, w_out=0.0)
    for n in ("k", "v", "g", "beta", "initial_state"):
        assert float(want[n].abs().max()) > 1e-3, f"reference d{n} vanishes: the test would not detect a drop"
        assert_close(f"d{n}", got[n], want[n], 1e-10)
    assert float(got["q"].abs().max()) == 0.0


def test_empty_sequence_passes_the_state_through():
    x = make_inputs("gated_delta_rule", B=2, T=0, H=1, HV=1, K=3, V=2)
    init = make_state(2, 1, 3, 2)
    o, S = run(KERNELS, "gated_delta_rule", x, init, chunk_size=16)
    assert o.shape == (2, 0, 1, 2)
    assert torch.equal(S, init) and S.data_ptr() != init.data_ptr()


def test_non_contiguous_inputs_and_chunk_size_64_over_two_chunks():
    x = make_inputs("gated_delta_rule", B=1, T=70, H=2, HV=2, K=4, V=3, gate="weak", seed=5)
    strided = {n: t.transpose(1, 2).contiguous().transpose(1, 2) for n, t in x.items()}
    assert not strided["q"].is_contiguous()
    o, S = run(KERNELS, "gated_delta_rule", strided, chunk_size=64)
    want_o, want_S = spec("gated_delta_rule", x)
    assert_close("output", o, want_o, 1e-11)
    assert_close("final state", S, want_S, 1e-11)


# --- low precision -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol,gtol", [(torch.float32, 2e-5, 1e-4), (torch.float16, 2e-5, 1e-4)],
                         ids=["fp32", "fp16"])
def test_low_precision_dtype_contract_values_and_gradients(dtype, tol, gtol):
    """Inputs rounded to ``dtype``; the kernel computes in fp32: output in ``dtype`` (rounded from an
    fp32 result within ``tol`` of fp64), state fp32, gradients within ``gtol`` of fp64 autograd."""
    x = make_inputs("gated_delta_rule", B=1, T=37, H=1, HV=2, K=5, V=3, gate="mixed", seed=2)
    x = {n: t.to(dtype).double() for n, t in x.items()}          # exactly representable in dtype
    init = make_state(1, 2, 5, 3)
    xs, s = leaves_of(x, init, dtype)
    o, S = run(KERNELS, "gated_delta_rule", xs, s, chunk_size=16)
    assert o.dtype == dtype and S.dtype == torch.float32
    want_o, want_S = spec("gated_delta_rule", {n: t.detach().double() for n, t in xs.items()}, init,
                          require_unit_keys=False)   # keys rounded to dtype are unit to its eps only
    out_ulp = {torch.float32: 0.0, torch.float16: 2.0 ** -11}[dtype]
    assert_close("output", o, want_o, tol + out_ulp)
    assert_close("final state", S, want_S, tol)
    xr, sr = leaves_of({n: t.detach().double() for n, t in xs.items()}, s.detach().double())
    o2, S2 = run(IMPLS, "gated_delta_rule", xr, sr, chunk_size=16)
    got = grads({**xs, "initial_state": s}, o, S, seed=4)
    want = grads({**xr, "initial_state": sr}, o2, S2, seed=4)
    for n in got:
        assert got[n].dtype == (dtype if n != "initial_state" else torch.float32)
        # the output's cotangent reaches the kernel rounded to dtype: every gradient carries that rounding
        assert_close(f"d{n}", got[n], want[n], gtol + out_ulp)


# --- torch.library: opcheck and torch.compile ------------------------------------------------------------
def _op_args(gate=True, every=1, dtype=torch.float32, T=16, chunk=16, H=1):
    gen = torch.Generator().manual_seed(0)
    N, K, V = 1, 4, 3
    q = torch.randn(N, T // every, H, K, generator=gen, dtype=dtype)
    k = _unit(torch.randn(N, T, H, K, generator=gen, dtype=dtype))
    v = torch.randn(N, T, H, V, generator=gen, dtype=dtype)
    g = -torch.rand(N, T, H, generator=gen, dtype=dtype) if gate else None
    beta = 2 * torch.rand(N, T, H, generator=gen, dtype=dtype)
    state = torch.randn(N, H, K, V, generator=gen, dtype=dtype)
    return q, k, v, g, beta, state, 0.5, chunk, every


@pytest.mark.parametrize("gate,every", [(True, 1), (False, 2)], ids=["gated", "ungated-every2"])
def test_opcheck_passes(gate, every):
    args = _op_args(gate, every)
    args = tuple(a.requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
    torch.library.opcheck(gated_delta_chunk_fwd, args)


def test_torch_compile_aot_eager_fullgraph_equals_eager():
    args = _op_args(True, 1, T=32, H=2)
    a = [t.clone().requires_grad_() if isinstance(t, torch.Tensor) else t for t in args]
    b = [t.clone().requires_grad_() if isinstance(t, torch.Tensor) else t for t in args]

    def f(q, k, v, g, beta, state):
        o, S = gated_delta_chunk(q, k, v, g, beta, state, 0.5, 16)
        return (o * o).sum() + (S * S.sin()).sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    lc = compiled(*a[:6])
    le = f(*b[:6])
    assert torch.equal(lc, le)
    gc = torch.autograd.grad(lc, a[:6])
    ge = torch.autograd.grad(le, b[:6])
    for n, x, y in zip(("q", "k", "v", "g", "beta", "state"), gc, ge):
        assert torch.equal(x, y), f"d{n} differs between compiled and eager"


# --- argument checks ----------------------------------------------------------------------------------------
BAD_CHUNKS = [(f, bad) for f in KERNELS for bad in (8, 48, 128, 0, True, 16.0, "16", None)
              if not (f == "delta_product" and bad is None)]   # None: delta_product's default (from n_h)


@pytest.mark.parametrize("family,bad", BAD_CHUNKS, ids=[f"{f}-{b!r}" for f, b in BAD_CHUNKS])
def test_chunk_size_outside_16_32_64_raises_naming_it(family, bad):
    x = make_inputs(family, B=1, T=5, H=1, HV=1, K=3, V=2, n_h=2 if family == "delta_product" else 1)
    with pytest.raises(ValueError, match="chunk_size"):
        KERNELS[family](*[x.get(n) for n in ARGS[family]], chunk_size=bad)


def test_public_signatures_match_impls_and_modules_declare_contract():
    import inspect

    for family, fn in KERNELS.items():
        assert inspect.signature(fn) == inspect.signature(IMPLS[family]), family
    for module in (gated_delta_rule, delta_rule, delta_product):
        assert module.CONTRACTS["fp32"] == "fp32" and module.CONTRACTS["fp16"] == "mixed-fp16"
        assert list(module.FORMS) == ["chunk"]
        assert "chunk" in module.__doc__
    sizes = delta_product.CHUNK_SIZES
    assert default_chunk_size(1, sizes) == 64 and default_chunk_size(2, sizes) == 32
    assert default_chunk_size(3, sizes) == 16 and default_chunk_size(8, sizes) == 16


def test_torch_compile_of_the_public_function_equals_eager():
    """The public function compiles with graph breaks in the driver (its SimpleNamespace of options
    stops ``fullgraph=True``; the core above compiles as one graph) and gives the eager values."""
    x = make_inputs("gated_delta_rule", B=1, T=20, H=1, HV=1, K=4, V=3, gate="weak", seed=3, dtype=torch.float32)

    def f(q, k, v, g, beta):
        o, S = gated_delta_rule.chunk_gated_delta_rule(q, k, v, g, beta, output_final_state=True, chunk_size=16)
        return o, S

    oc, Sc = torch.compile(f, backend="aot_eager")(*[x[n] for n in ARGS["gated_delta_rule"]])
    oe, Se = f(*[x[n] for n in ARGS["gated_delta_rule"]])
    assert torch.equal(oc, oe) and torch.equal(Sc, Se)
