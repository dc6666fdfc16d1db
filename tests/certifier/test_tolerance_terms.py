"""The tolerance's data-dependent terms and the kernel's declared contract: each term is what its
docstring says, on hand-checkable inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrnnspec.harness.certificate import certify
from lrnnspec.harness.sequence import axis_permutations
from lrnnspec.impls.chunks import overflow_safe_exp
from lrnnspec.impls.simple_gla import chunk_simple_gla
from lrnnspec.spec.errors import SpecError
from lrnnspec.spec.numerics import conditioning
from lrnnspec.strategies import Case


def ut_conditioning(case: Case):
    return conditioning(case.family, case.arrays, case.dims, case.segments)


def _delta_case(beta: str, keys: str, T: int = 12, segments=None, K: int = 4) -> Case:
    return Case("delta_rule", {"B": 1, "T": T, "H": 2, "HV": 2, "K": K, "V": 3},
                {"q": "normal", "k": keys, "v": "normal", "beta": beta}, {"eigenvalue_range": "[-1,1]"}, 7, segments)


def test_ut_conditioning_is_one_without_writes():
    kappa = ut_conditioning(_delta_case("zero", "random"))
    assert kappa.shape == (1, 12, 2, 1) and np.all(kappa == 1.0)


def test_ut_conditioning_is_skeel_condition_of_the_chunk_system():
    case = _delta_case("two", "near_parallel", T=5)
    k, beta = case.arrays["k"][0, :, 0], case.arrays["beta"][0, :, 0]
    L = np.eye(5) + np.tril(beta[:, None] * (k @ k.T), -1)
    skeel = np.max(np.abs(np.linalg.inv(L)) @ np.abs(L) @ np.ones(5))
    kappa = ut_conditioning(case)
    assert kappa[0, -1, 0, 0] == pytest.approx(skeel, rel=1e-12)
    assert kappa[0, -1, 0, 0] > 5.0           # near-parallel reflections: an ill-conditioned solve


def test_ut_conditioning_is_a_running_maximum_restarted_per_sequence():
    case = _delta_case("two", "near_parallel", T=10, segments=[0, 6, 6, 10])
    kappa = ut_conditioning(case)[0, :, :, 0]
    assert np.all(np.diff(kappa[:6], axis=0) >= 0) and np.all(np.diff(kappa[6:], axis=0) >= 0)
    assert np.allclose(kappa[0], 1.0, rtol=1e-12) and np.allclose(kappa[6], 1.0, rtol=1e-12)   # first step: L = [1]
    assert np.all(kappa[5] > 1.0)


def test_ut_conditioning_is_only_for_the_delta_families():
    case = Case("simple_gla", {"B": 1, "T": 4, "H": 1, "HV": 1, "K": 2, "V": 2},
                {"q": "normal", "k": "normal", "v": "normal", "g": "typical"}, {}, 0)
    assert ut_conditioning(case) is None


def test_axis_permutations_keep_each_value_head_with_its_key_head():
    case = Case("gated_delta_rule", {"B": 3, "T": 2, "H": 3, "HV": 6, "K": 2, "V": 2},
                {"q": "normal", "k": "random", "v": "normal", "g": "typical", "beta": "uniform"}, {}, 11)
    p = axis_permutations(case)
    assert sorted(p["B"]) == [0, 1, 2] and not np.array_equal(p["B"], np.arange(3))
    assert np.array_equal(p["N"], p["B"])
    assert [int(j) // 2 for j in p["HV"]] == [int(h) for h in np.repeat(p["H"], 2)]


def test_overflow_safe_exp_has_no_nan_gradient_where_exp_overflows():
    x = torch.tensor([-1.0, 100.0], requires_grad=True)      # e^100 overflows float32
    y = overflow_safe_exp(x)
    assert torch.isinf(y[1])
    (g,) = torch.autograd.grad((y * torch.tensor([2.0, 0.0])).sum(), x)
    assert torch.equal(g, torch.tensor([2.0 * float(torch.exp(torch.tensor(-1.0))), 0.0]))
    (plain,) = torch.autograd.grad((torch.exp(x) * torch.tensor([2.0, 0.0])).sum(), x)
    assert torch.isnan(plain[1])                              # what torch.exp gives


def test_declared_contract_is_the_baseline_and_is_recorded():
    cert = certify(chunk_simple_gla, "simple_gla", dtypes=["fp32"], properties=["forward"], max_examples=3,
                   contracts={"fp32": "tf32"})
    assert cert.contracts == {"fp32": "tf32"} and cert.certified


@pytest.mark.parametrize("contracts, rule", [({"fp31": "fp32"}, "keys must be dtypes"),
                                             ({"fp32": "fp33"}, "unknown format")])
def test_bad_contract_is_rejected_naming_the_argument(contracts, rule):
    with pytest.raises(SpecError, match=rf"contracts.*{rule}"):
        certify(chunk_simple_gla, "simple_gla", dtypes=["fp32"], contracts=contracts)


def test_compare_never_reports_nan_and_judges_only_what_the_format_can():
    from lrnnspec.harness.tolerance import compare

    ref = np.array([1.0, 2.0, 3.0])
    emulated = np.array([np.inf, np.nan, 3.0])         # the fp16 sequential evaluation overflowed (twice)
    for got, ok in (([np.inf, 5.0, 3.0], True),        # unjudged where the emulation broke down
                    ([1.0, 2.0, np.inf], False),       # overflow where the format does fine
                    ([1.0, np.nan, 3.0], False)):      # NaN output: always rejected
        with np.errstate(all="raise"):
            cmp = compare(np.array(got), ref, emulated, "fp16", time_axis=None, length=4,
                          exponent_mass=np.zeros(3))
        assert not np.isnan(cmp.worst) and cmp.ok is ok, (got, cmp.worst)


def test_the_operand_term_grants_one_rounding_of_a_formed_operand_and_no_more():
    """A bf16 kernel may round a formed dot operand (the intra-chunk scores q kᵀ) to bf16, as the mixed-bf16
    contract allows: an error up to u_bf16 · Σ|terms| where the read-out cancels (y = 1e-3, Σ|terms| = 1) and
    the sequential baseline is exact. Twice that, or the same error under a contract with fp32 operands, fails."""
    from lrnnspec.harness.tolerance import compare, operand_roundoff

    assert operand_roundoff("mixed-bf16") == 2.0 ** -8 and operand_roundoff("mixed-fp16") == 2.0 ** -11
    assert operand_roundoff("fp32") == operand_roundoff("bf16") == operand_roundoff("fp64") == 0.0
    ref, mag = np.array([1e-3]), np.array([1.0])
    fp32_operands = "input=bf16,operand=fp32,accumulate=fp32,state=fp32,output=bf16"
    for error, contract, ok in ((0.9 * 2.0 ** -8, None, True), (2.2 * 2.0 ** -8, None, False),
                                (0.9 * 2.0 ** -8, fp32_operands, False)):
        cmp = compare(ref + error, ref, ref, "bf16", time_axis=None, length=1, magnitude=mag, contract=contract)
        assert cmp.ok is ok, (error, contract, cmp.worst)
