"""impls.delta_rule and impls.gated_delta_rule (one UT-transform core, impls.delta) against the spec.

Properties: every form equals the spec's fp64 evaluation in float64 (Hypothesis: T across chunk
boundaries, varlen with empty and length-1 segments, initial states, β ∈ {0, 1, 2, near, uniform},
gates absent / exactly 0 / strong (−5…−30) / mixed, GVA HV = 2H, near-parallel keys); explicit
edge cases of the same; float32 within 1e-4 (relative) of fp64; chunk and parallel gradients of
every input and the initial state equal float64 autograd of the recurrent form (finite under
g = −30); use_qk_l2norm_in_kernel normalizes q and k; every form has the same signature; bad
arguments raise SpecError naming the argument.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrnnspec.impls.delta import l2norm
from lrnnspec.spec import random_inputs
from lrnnspec.spec.errors import ShapeError, SpecError
from lrnnspec.strategies import cases

from ._delta_common import CHUNK, MODULES, assert_close, call, run_case, spec, vjp

FAMILIES = ("delta_rule", "gated_delta_rule")
FORMS = [(f, form) for f in FAMILIES for form in MODULES[f].FORMS]
FP64_TOL = 1e-12
FP32_TOL = 1e-4


def draw(family, **kw):
    return cases(family, chunk_size=CHUNK, max_len=14, **kw)


@pytest.mark.parametrize("family,form", FORMS)
@given(data=st.data())
def test_every_form_equals_spec_fp64(family, form, data):
    case = data.draw(draw(family))
    ref = case.reference()
    _, o, S = run_case(case, form)
    assert_close("output", o, ref.output, FP64_TOL)
    assert_close("final state", S, ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state,
                 FP64_TOL)


def _inputs(family, T, beta, g, HV=2, H=1, seed=0, near_parallel=False):
    x = random_inputs(family, seed=seed, B=2, T=T, H=H, HV=HV, K=5, V=3, initial_state=True)
    init = x.pop("initial_state")["S"]
    rng = np.random.default_rng(seed + 1)
    if near_parallel:
        base = rng.standard_normal((2, 1, H, 5))
        k = base + 1e-4 * rng.standard_normal(x["k"].shape)
        x["k"] = k / np.linalg.norm(k, axis=-1, keepdims=True)
    if beta == "random":
        x["beta"] = rng.uniform(0.0, 2.0, x["beta"].shape)
    else:
        x["beta"] = np.full(x["beta"].shape, float(beta))
    if family == "gated_delta_rule":
        x["g"] = {"zero": np.zeros(x["g"].shape), "strong": -rng.uniform(25.0, 30.0, x["g"].shape),
                  "mixed": np.where(rng.random(x["g"].shape) < 0.5, 0.0, -30.0), "typical": x["g"]}[g]
    return {k: torch.tensor(v) for k, v in x.items()}, torch.tensor(init)


@pytest.mark.parametrize("family,form", FORMS)
@pytest.mark.parametrize("T", [1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 1, 13])
def test_chunk_boundaries_beta_and_gates(family, form, T):
    for beta, g in [(0, "typical"), (1, "zero"), (2, "strong"), ("random", "mixed"), (2, "zero")]:
        x, init = _inputs(family, T, beta, g, seed=T)
        o, S = call(family, form, x, init)
        want_o, want_S = spec(family, x, init)
        assert_close(f"output β={beta} g={g}", o, want_o, FP64_TOL)
        assert_close(f"state β={beta} g={g}", S, want_S, FP64_TOL)


@pytest.mark.parametrize("family,form", FORMS)
def test_near_parallel_keys_with_reflections(family, form):
    """β = 2 on keys within 1e-4 of one direction: the ill-conditioned corner of the UT transform."""
    x, init = _inputs(family, 11, 2, "zero", near_parallel=True, seed=3)
    o, S = call(family, form, x, init)
    want_o, want_S = spec(family, x, init)
    assert_close("output", o, want_o, 1e-10)
    assert_close("state", S, want_S, 1e-10)


@pytest.mark.parametrize("family,form", FORMS)
def test_varlen_with_empty_and_unit_segments(family, form):
    cu = [0, 0, 1, 1, 6, 13]
    x = random_inputs(family, seed=5, B=1, T=13, H=1, HV=2, K=4, V=3)
    init = torch.randn(len(cu) - 1, 2, 4, 3, dtype=torch.float64)
    x = {k: torch.tensor(v) for k, v in x.items()}
    o, S = call(family, form, x, init, cu_seqlens=cu)
    want_o, want_S = spec(family, x, init, cu_seqlens=cu)
    assert_close("output", o, want_o, FP64_TOL)
    assert_close("state", S, want_S, FP64_TOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_default_chunk_size_and_long_sequence(family):
    """FLA's default chunk_size = 64 across two chunk boundaries, strong gates included."""
    x, init = _inputs(family, 131, "random", "mixed", HV=1, seed=7)
    o, S = call(family, "chunk", x, init, chunk=64)
    want_o, want_S = spec(family, x, init)
    assert_close("output", o, want_o, FP64_TOL)
    assert_close("state", S, want_S, FP64_TOL)


@pytest.mark.parametrize("family,form", [f for f in FORMS if f[1] != "recurrent"])
@given(data=st.data())
def test_float32_within_tolerance(family, form, data):
    case = data.draw(draw(family, max_batch=1, varlen=False)).rounded(torch.float32)
    ref = case.reference()
    x, o, S = run_case(case, form, dtype=torch.float32)
    assert o.dtype == torch.float32 and S.dtype == torch.float32
    want_S = ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state
    near_parallel = case.regimes.get("k") == "near_parallel"
    # near-parallel keys make (I + A)⁻¹ ill-conditioned (entries up to ~T at β = 2): looser there
    tol = FP32_TOL * (30 if near_parallel else 1) * max(1, case.dims["T"]) ** 0.5
    assert_close("output", o, ref.output, tol)
    assert_close("state", S, want_S, tol)


@pytest.mark.parametrize("family,form", [f for f in FORMS if f[1] != "recurrent"])
@given(data=st.data())
def test_gradients_equal_recurrent_fp64_autograd(family, form, data):
    case = data.draw(draw(family, max_batch=1))
    seed = case.seed % 1000
    want = vjp(*run_case(case, "recurrent", requires_grad=True), seed=seed)
    got = vjp(*run_case(case, form, requires_grad=True), seed=seed)
    for name, g in want.items():
        assert_close(f"d/d{name}", got[name], g.numpy(), 1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_finite_and_exact_under_extreme_gates(family):
    x, init = _inputs(family, 9, 2, "mixed", seed=11)
    leaves = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    S0 = init.clone().requires_grad_(True)
    want = vjp({**leaves, "S0": S0}, *call(family, "recurrent", leaves, S0))
    got = vjp({**leaves, "S0": S0}, *call(family, "chunk", leaves, S0))
    for name, g in got.items():
        assert torch.isfinite(g).all(), f"d/d{name} not finite"
        assert_close(f"d/d{name}", g, want[name].numpy(), 1e-9)


@pytest.mark.parametrize("family,form", FORMS)
def test_qk_l2norm_in_kernel(family, form):
    x, init = _inputs(family, 7, "random", "typical", seed=2)
    x["q"], x["k"] = 3.0 * torch.randn_like(x["q"]), 0.5 * torch.randn_like(x["k"])
    o, S = call(family, form, x, init, use_qk_l2norm_in_kernel=True)
    normed = dict(x, q=l2norm(x["q"]), k=l2norm(x["k"]))
    want_o, want_S = spec(family, normed, init, require_unit_keys=False)
    assert_close("output", o, want_o, FP64_TOL)
    assert_close("state", S, want_S, FP64_TOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_forms_share_one_signature(family):
    sigs = {form: inspect.signature(fn).parameters for form, fn in MODULES[family].FORMS.items()}
    base = [(n, p.default) for n, p in sigs["recurrent"].items()]
    for form, params in sigs.items():
        got = [(n, p.default) for n, p in params.items() if n != "chunk_size"]
        assert got == base, f"{form} signature differs from recurrent"
    assert sigs["chunk"]["chunk_size"].default == 64
    assert list(sigs["recurrent"])[:5] == (["q", "k", "v", "beta", "scale"] if family == "delta_rule"
                                           else ["q", "k", "v", "g", "beta"])


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_arguments_raise_spec_error_naming_them(family):
    x, init = _inputs(family, 5, 1, "typical", HV=1)
    fn = MODULES[family].FORMS["chunk"]

    def run(**changes):
        kw = dict(x)
        extra = {k: changes.pop(k) for k in list(changes) if k not in kw}
        kw.update(changes)
        return fn(**kw, **extra)

    cases_ = [
        (dict(chunk_size=0), "chunk_size"), (dict(chunk_size=2.5), "chunk_size"), (dict(chunk_size=True), "chunk_size"),
        (dict(use_qk_l2norm_in_kernel="yes"), "use_qk_l2norm_in_kernel"),
        (dict(output_final_state=1), "output_final_state"),
        (dict(beta=x["beta"][..., None]), "beta"), (dict(q=x["q"].numpy()), "q"),
        (dict(v=x["v"].to(torch.int64)), "v"),
        (dict(initial_state=torch.zeros(3, 1, 5, 3, dtype=torch.float64)), "initial_state"),
        (dict(cu_seqlens=torch.tensor([0, 5])), "cu_seqlens"),  # B = 2 with cu_seqlens
        (dict(k=x["k"][:, :4]), "k"),
    ]
    if family == "gated_delta_rule":
        cases_.append((dict(g=None), "g"))
    for changes, name in cases_:
        with pytest.raises(SpecError) as err:
            run(**changes)
        assert err.value.argument == name, f"{changes}: error names {err.value.argument!r}, expected {name!r}"
    with pytest.raises(ShapeError):
        run(beta=x["beta"][:, :, :1].expand(-1, -1, 3))  # HV mismatch between v and beta
