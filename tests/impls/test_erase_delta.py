"""The delta-type families with a key-channel decay or a separate erase key — kda, gdn2, comba — and
their one chunk core (:func:`lrnnspec.impls.kda.erase_core`), against the spec.

Properties: every form equals the spec's fp64 evaluation in float64 on Hypothesis-drawn cases across
chunk boundaries (16, 64), varlen with empty segments, GVA, initial states, β up to 2, and on a long
tier (T up to 512, chunk 64); gates of exactly 0 beside −30 on other channels (the exact sub-chunk
scores, not the factored ones) agree with the spec for every chunk size and give finite gradients equal
to float64 autograd of the recurrent form; ``use_qk_l2norm_in_kernel`` normalizes q and k as FLA does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrnnspec.spec import get_family
from lrnnspec.strategies import Case, cases

from ._families import assert_matches_spec, form, rel_err, run, vjp

FAMILIES = ("kda", "gdn2", "comba")
FP64_TOL = 1e-11


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=12)
@given(data=st.data())
def test_forms_equal_spec_fp64_across_chunk_boundaries_and_varlen(family, data):
    chunk = data.draw(st.sampled_from([16, 64]), label="chunk")
    case = data.draw(cases(family, chunk_size=chunk, max_len=3 * chunk + 1), label="case")
    for name in ("recurrent", "chunk"):
        assert_matches_spec(form(family, name), case, FP64_TOL, chunk)


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=3)
@given(data=st.data())
def test_chunk_form_equals_spec_on_the_long_tier(family, data):
    case = data.draw(cases(family, chunk_size=64, long_len=512, max_batch=1, max_heads=1, varlen=False), label="case")
    assert_matches_spec(form(family, "chunk"), case, FP64_TOL, 64)


def _strong_gate_case(family, T, seed):
    """A drawn-shape case whose log gates are, per element, exactly 0 or −30 (every chunk's total decay
    leaves float32's range, so the chunk form takes the exact sub-chunk scores)."""
    fam = get_family(family)
    names = {d for i in fam.inputs for d in i.dims}
    dims = {"B": 1, "T": T, "H": 1, "K": 5, "V": 3} | ({"HV": 2} if "HV" in names else {})
    regimes = {i.name: ("random" if i.name in fam.unit_keys else "typical" if i.role == "log_gate" else "uniform"
                        if i.role in ("write_strength", "write_gate") else "normal")
               for i in fam.inputs if not i.optional}
    base = Case(family, dims, regimes, {}, seed, initial_state="normal")
    rng = np.random.default_rng(seed)
    arrays = dict(base.arrays)
    for i in fam.with_role("log_gate"):
        shape = arrays[i.name].shape
        arrays[i.name] = np.where(rng.random(shape) < 0.5, 0.0, -30.0)
    return base.with_values(arrays, base.state)


@pytest.mark.parametrize("family", FAMILIES)
def test_strong_gates_take_the_exact_scores_and_agree_with_the_spec(family):
    case = _strong_gate_case(family, 37, seed=5)
    for chunk in (4, 16, 64):
        assert_matches_spec(form(family, "chunk"), case, FP64_TOL, chunk)


@pytest.mark.parametrize("family", FAMILIES)
def test_strong_gate_gradients_are_finite_and_equal_recurrent_autograd(family):
    case = _strong_gate_case(family, 21, seed=6)
    want = vjp(*run(form(family, "recurrent"), case, requires_grad=True))
    got = vjp(*run(form(family, "chunk"), case, chunk=16, requires_grad=True))
    for name, g in want.items():
        assert torch.isfinite(got[name]).all(), f"d/d{name} not finite"
        assert rel_err(got[name], g.numpy()) <= 1e-9, f"d/d{name}"


@pytest.mark.parametrize("family", FAMILIES)
def test_qk_l2norm_in_kernel_normalizes_queries_and_keys(family):
    fn = form(family, "chunk").fn
    case = _strong_gate_case(family, 9, seed=7)
    x = case.torch(torch.float64)
    normalized = ("q", "k", "p") if family == "comba" else ("q", "k")          # FLA's comba normalizes p too
    raw = {**x, **{n: (2.0 + i) * x[n] for i, n in enumerate(normalized)}}
    o, _ = fn(**raw, use_qk_l2norm_in_kernel=True, chunk_size=4)
    unit = {**x, **{n: raw[n] / torch.sqrt((raw[n] ** 2).sum(-1, keepdim=True) + 1e-6) for n in normalized}}
    want, _ = fn(**unit, chunk_size=4)
    assert torch.allclose(o, want, rtol=1e-12, atol=1e-12)
