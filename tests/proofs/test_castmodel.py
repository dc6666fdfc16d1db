"""Properties of the finite-precision witnesses: the paper's cast and the eventual-period analysis."""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from lrnnspec.proofs.castmodel import _mp, cast, cast_orbit, exact_affine, stepwise_orbit
from lrnnspec.proofs.models import NONNEGATIVE_KINDS, REAL_KINDS, random_layer
from lrnnspec.spec import get_format
from lrnnspec.spec.errors import DomainError


def test_cast_rounds_ties_to_the_smaller_and_saturates():
    # 1 + 2^-11 is the midpoint of 1 and 1 + 2^-10 in fp16: the paper's cast takes the smaller one
    assert cast(1 + 2 ** -11, "fp16") == 1.0
    assert cast(1 + 3 * 2 ** -11, "fp16") == 1 + 2 ** -10  # round-to-even would give 1 + 2^-9
    assert cast(1e30, "fp16") == get_format("fp16").largest
    assert cast(-1e39, "bf16") == -get_format("bf16").largest


def test_linear_growth_saturates_at_the_analytic_step():
    # S_k = k in fp16: cast(k) = 65504 once k > 65488 (ulp 32 at the top, ties to the smaller)
    o = cast_orbit(_mp(np.eye(1)), _mp([[1.0]]), [_mp([[0.0]])], "fp16")
    assert (o.status, o.period, o.kbar) == ("ok", 1, 65489)


def test_reflection_gives_period_two():
    o = cast_orbit(_mp([[-1.0]]), _mp([[1.0]]), [_mp([[0.0]])], "bf16")
    assert (o.status, o.period) == ("ok", 2) and o.eventual == [[[0.0]], [[1.0]]]


def test_non_contraction_is_rejected():
    with pytest.raises(DomainError, match="contraction"):
        cast_orbit(_mp([[2.0]]), _mp([[1.0]]), [], "fp16")


@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(NONNEGATIVE_KINDS))
def test_nonnegative_spectrum_makes_the_cast_state_on_ones_eventually_constant(seed, kind):
    """Grazzi Thm 1 / Lemma 1: real nonnegative spectrum ⇒ Ĥ_k eventually constant (period 1)."""
    layer = random_layer(kind, np.random.default_rng(seed), n=2)
    ev = np.linalg.eigvals(layer.transition(0))
    assert np.all(np.abs(ev.imag) < 1e-9) and np.all(ev.real > -1e-9)
    A, B, H0 = exact_affine(layer, 0)
    o = cast_orbit(A, B, [H0], "fp16", max_iter=1500)
    assume(o.status == "ok")  # "slow" (eigenvalue near 1) or "tie" draws are discarded
    assert o.period == 1


@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(REAL_KINDS))
def test_real_spectrum_makes_the_cast_state_on_ones_eventually_two_periodic(seed, kind):
    """Grazzi Thm 2 (one layer): real spectrum ⇒ eventual period divides 2, so never counts mod 3."""
    layer = random_layer(kind, np.random.default_rng(seed), n=2)
    A, B, H0 = exact_affine(layer, 0)
    o = cast_orbit(A, B, [H0], "fp16", max_iter=1500)
    assume(o.status == "ok")
    assert o.period in (1, 2)


def test_stepwise_orbit_finds_tail_and_period():
    o = stepwise_orbit(lambda s: (s + 1) % 5 + (s >= 3) * 0, np.array(0), "x", 100)
    assert (o.status, o.tail, o.period) == ("ok", 0, 5)
    o = stepwise_orbit(lambda s: np.minimum(s + 1, 7), np.array(0), "x", 100)
    assert (o.tail, o.period) == (7, 1)
