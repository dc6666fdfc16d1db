"""The families added for the rest of the field — kda, gdn2, comba (the erase-key delta core of
:mod:`lrnnspec.impls.kda`), rwkv6, lightning_attn, hgrn, gated_oja_rule, based, rebased — their recurrent and
chunk forms against the spec.

Properties: every form equals the spec's fp64 evaluation in float64 on Hypothesis-drawn cases across
chunk boundaries (16, 64), varlen with empty segments, GVA where the family has it, initial states,
β up to 2, and on a long tier (T up to 512, chunk 64); log gates of exactly 0 beside −30 on other
channels (every chunk's total decay leaves float32's range: the exact sub-chunk scores, not the
factored ones) agree with the spec for every chunk size and give finite gradients equal to float64
autograd of the recurrent form; lightning attention's forms follow the layer index.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrnnspec.strategies import cases

from ._families import assert_matches_spec, form, rel_err, run, strong_gate_case, vjp

FAMILIES = ("kda", "gdn2", "comba", "rwkv6", "lightning_attn", "hgrn", "gated_oja_rule", "based", "rebased")
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


@pytest.mark.parametrize("family", FAMILIES)
def test_strong_gates_take_the_exact_scores_and_agree_with_the_spec(family):
    case = strong_gate_case(family, 37, seed=5)
    for chunk in (4, 16, 64):
        assert_matches_spec(form(family, "chunk"), case, FP64_TOL, chunk)


@pytest.mark.parametrize("family", FAMILIES)
def test_strong_gate_gradients_are_finite_and_equal_recurrent_autograd(family):
    case = strong_gate_case(family, 21, seed=6)
    want = vjp(*run(form(family, "recurrent"), case, requires_grad=True))
    got = vjp(*run(form(family, "chunk"), case, chunk=16, requires_grad=True))
    for name, g in want.items():
        assert torch.isfinite(got[name]).all(), f"d/d{name} not finite"
        assert rel_err(got[name], g.numpy()) <= 1e-9, f"d/d{name}"


@pytest.mark.parametrize("layer_idx", [0, 5, 12])
def test_lightning_forms_follow_the_layer_index(layer_idx):
    case = strong_gate_case("lightning_attn", 37, seed=8)
    case = case.with_values({n: a for n, a in case.arrays.items() if n != "g_gamma"}, case.state)
    case.options.update(layer_idx=layer_idx, num_layers=12)
    for name in ("recurrent", "chunk"):
        assert_matches_spec(form("lightning_attn", name), case, FP64_TOL, 16)


def test_momentum_form_takes_flas_defaults_and_stacked_state():
    # p = None reads with k, β = η = None are ones, FLA's stacked [2, N, H, K, V] initial state is (S, M)
    case = strong_gate_case("momentum_delta_rule", 9, seed=9)
    x = case.torch(torch.float64)
    S0, M0 = (torch.randn(1, 1, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) for i in (1, 2))
    fn = form("momentum_delta_rule", "recurrent").fn
    ones = torch.ones_like(x["beta"])
    o, (S, M) = fn(**{**x, "p": None, "beta": None, "eta": None}, initial_state=torch.stack([S0, M0]),
                   output_final_state=True)
    want, (S_w, M_w) = fn(**{**x, "p": x["k"], "beta": ones, "eta": ones}, initial_state=(S0, M0),
                          output_final_state=True)
    assert torch.equal(o, want) and torch.equal(S, S_w) and torch.equal(M, M_w)

