"""The three engines agree with each other, and the exact engine's error bound is honest."""

import mpmath
import numpy as np
import pytest

from lrnnspec.spec import evaluate

from ._helpers import FAMILIES, assert_same_evaluation, draw, states

U64 = 2.0**-53


@pytest.mark.parametrize("family", FAMILIES)
def test_fp64_agrees_with_exact_within_bound_plus_fp64_roundoff(family):
    x, init = draw(family, seed=1, T=9)
    exact = evaluate(family, x, initial_state=init, engine="exact")
    fast = evaluate(family, x, initial_state=init, engine="fp64")
    # fp64 roundoff: a first-order forward error bound for T steps of a non-expansive recurrence whose
    # steps are inner products of length ≤ K·n_h, each rounding ≤ u64 relative to the magnitudes M
    # involved: |ŷ − y| ≤ c·(T + K·n_h)·u64·M with a small constant c (16) and M the largest magnitude.
    pairs = [(fast.output, exact.output, exact.output_bound)]
    pairs += [(states(fast.final_state)[n], s, states(exact.final_state_bound)[n])
              for n, s in states(exact.final_state).items()]
    magnitude = max(1.0, *(np.max(np.abs(e)) for _, e, _ in pairs))
    allowance = 16 * (9 + 3 * 2) * U64 * magnitude
    for got, want, bound in pairs:
        err = np.abs(got - want)
        assert np.all(err <= bound + allowance), f"max excess {np.max(err - bound - allowance):.3e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_emulate_fp64_is_bitwise_fp64_in_sequential_order(family):
    x, init = draw(family, seed=2)
    emulated = evaluate(family, x, initial_state=init, engine="emulate:fp64")
    sequential = evaluate(family, x, initial_state=init, engine="fp64:sequential")
    assert_same_evaluation(emulated, sequential, family)


@pytest.mark.parametrize("family", FAMILIES)
def test_exact_bound_holds_against_much_higher_precision(family):
    # prec=64 → the reported value is the 128-bit evaluation; its raw error must be ≤ |y_128 − y_64|
    x, init = draw(family, seed=3)
    low = evaluate(family, x, initial_state=init, engine="exact", prec=64)
    truth = evaluate(family, x, initial_state=init, engine="exact", prec=512)
    with mpmath.workprec(1024):
        for hi, lo, ref in [(low.raw["output"], low.raw["output_lo"], truth.raw["output"])] + [
                (low.raw["state"][n], low.raw["state_lo"][n], truth.raw["state"][n]) for n in low.raw["state"]]:
            for h, l, r in zip(hi.reshape(-1), lo.reshape(-1), ref.reshape(-1)):
                assert abs(h - r) <= abs(h - l), f"error {abs(h - r)} exceeds claimed bound {abs(h - l)}"
        # and the float64 values with their full bound
        for got, bound, ref in [(low.output, low.output_bound, truth.raw["output"])]:
            for g, b, r in zip(got.reshape(-1), bound.reshape(-1), ref.reshape(-1)):
                assert abs(mpmath.mpf(g) - r) <= b


@pytest.mark.parametrize("family", FAMILIES)
def test_arb_ball_encloses_the_high_precision_value(family):
    pytest.importorskip("flint")
    x, init = draw(family, seed=4)
    ball = evaluate(family, x, initial_state=init, engine="exact:arb")
    truth = evaluate(family, x, initial_state=init, engine="exact", prec=512)
    with mpmath.workprec(1024):
        for g, b, r in zip(ball.output.reshape(-1), ball.output_bound.reshape(-1), truth.raw["output"].reshape(-1)):
            assert abs(mpmath.mpf(g) - r) <= b
    assert np.all(ball.output_bound <= 2 * np.spacing(np.abs(ball.output)) + 1e-300)


@pytest.mark.parametrize("family", FAMILIES)
def test_emulated_low_precision_error_is_of_the_format_order(family):
    # a sanity check that emulation rounds (error well above fp64) but stays a faithful evaluation
    x, init = draw(family, seed=5)
    exact = evaluate(family, x, initial_state=init, engine="exact")
    for contract, u in (("fp32", 2.0**-24), ("bf16", 2.0**-8)):
        em = evaluate(family, x, initial_state=init, engine=f"emulate:{contract}")
        err = np.max(np.abs(em.output - exact.output))
        scale = max(1.0, np.max(np.abs(exact.output)))
        assert 0 < err <= 200 * u * scale, f"{contract}: error {err:.3e} vs u {u:.3e}"


def test_engine_names_are_validated():
    from lrnnspec.spec import EngineError
    x, init = draw("delta_rule")
    for engine, argument in (("fp32", "engine"), ("emulate:", "engine"), ("exact:gmp", "backend"), (3, "engine")):
        with pytest.raises(EngineError) as info:
            evaluate("delta_rule", x, engine=engine)
        assert info.value.argument == argument
    with pytest.raises(EngineError) as info:
        evaluate("delta_rule", x, engine="exact", prec=32)
    assert info.value.argument == "prec"
    with pytest.raises(EngineError) as info:
        evaluate("delta_rule", x, engine="fp64", prec=256)
    assert info.value.argument == "prec"
