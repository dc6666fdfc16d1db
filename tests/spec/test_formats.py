"""Rounding onto every format is round-to-nearest-even with IEEE overflow, bit for bit."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.spec import FORMATS, EngineError, PrecisionContract, get_format

NATIVE = {
    "fp32": np.float32,
    "fp16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "fp8_e4m3": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
}


def _float32_values(rng, n=20000):
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):
        x = bits.view(np.float32).astype(np.float64)
    return x[np.isfinite(x)]


@pytest.mark.parametrize("name", NATIVE)
def test_round_matches_native_cast_bitwise(name):
    # float32 inputs: the native casts (numpy / ml_dtypes) round them once, so they are a correct reference
    rng = np.random.default_rng(0)
    fmt = FORMATS[name]
    scale = fmt.largest
    with np.errstate(over="ignore"):  # values beyond float32 become ±inf, on both sides
        x = np.concatenate([_float32_values(rng), rng.uniform(-2 * scale, 2 * scale, 5000),
                            rng.standard_normal(5000) * fmt.smallest_subnormal * 8]).astype(np.float32).astype(np.float64)
        native = x.astype(np.float32).astype(NATIVE[name]).astype(np.float64)
    ours = fmt.round(x)
    same = (ours == native) | (np.isnan(ours) & np.isnan(native))
    assert same.all(), f"{name}: first mismatch at x={x[~same][0]!r}: ours {ours[~same][0]!r}, native {native[~same][0]!r}"


def test_round_is_single_rounding_from_float64():
    # 1 + 2^-8 + 2^-30 is above the bf16 midpoint 1 + 2^-8: RNE gives 1 + 2^-7. Going through float32
    # first would drop 2^-30 and tie to even (1.0): the double-rounding error we avoid.
    x = 1 + 2.0**-8 + 2.0**-30
    assert FORMATS["bf16"].round(x) == 1 + 2.0**-7


def test_ties_go_to_even_and_overflow_is_ieee():
    bf16 = FORMATS["bf16"]
    assert bf16.round(1 + 2.0**-8) == 1.0  # tie, even significand
    assert bf16.round(1 + 3 * 2.0**-8) == 1 + 2.0**-6  # tie, rounds up to even
    assert bf16.round(np.float64(3.5e38)) == np.inf
    assert np.isnan(FORMATS["fp8_e4m3"].round(470.0))  # e4m3fn has no infinity
    assert FORMATS["fp8_e4m3"].round(460.0) == 448.0
    assert FORMATS["fp16"].round(65519.0) == 65504.0 and FORMATS["fp16"].round(65520.0) == np.inf


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_round_is_idempotent_and_monotone_neighbourhood(x):
    for fmt in FORMATS.values():
        y = fmt.round(x)
        if np.isfinite(y):
            assert fmt.round(y) == y
            assert abs(y - x) <= fmt.ulp(y) / 2 or abs(y - x) <= fmt.ulp(x) / 2


def test_tf32_keeps_ten_fraction_bits():
    tf32 = FORMATS["tf32"]
    assert tf32.round(1 + 2.0**-10) == 1 + 2.0**-10
    assert tf32.round(1 + 2.0**-12) == 1.0
    assert tf32.round(1e38) == pytest.approx(1e38, rel=2**-11)


def test_contract_parsing():
    c = PrecisionContract.parse("mixed-bf16")
    assert (c.input.name, c.operand.name, c.accumulate.name, c.state.name, c.output.name) == \
        ("bf16", "bf16", "fp32", "fp32", "bf16")
    assert PrecisionContract.parse("tf32").operand.name == "tf32"
    assert PrecisionContract.parse("tf32").state.name == "fp32"
    assert PrecisionContract.parse("input=fp16,state=fp64").to_dict() == {
        "input": "fp16", "operand": "fp32", "accumulate": "fp32", "state": "fp64", "output": "fp32"}
    assert PrecisionContract.parse("bf16").name == "bf16"


@pytest.mark.parametrize("text,argument", [
    ("fp7", "contract"), ("input=fp7", "contract.input"), ("stat=fp32", "contract"), ("", "contract"),
])
def test_bad_contracts_are_rejected_naming_the_argument(text, argument):
    with pytest.raises(EngineError) as info:
        PrecisionContract.parse(text)
    assert info.value.argument == argument


def test_unknown_format():
    with pytest.raises(EngineError, match="unknown format"):
        get_format("fp12")
