"""Floating-point formats and round-to-nearest-even onto them.

A format is (precision p, minimum normal exponent emin, maximum exponent emax): its finite values
are ``m · 2^e`` with ``e ∈ [emin, emax]`` and ``m`` a p-bit significand; below ``2^emin`` the spacing
stays ``2^(emin − p + 1)`` (gradual underflow).

``Format.round(x)`` maps float64 values to the nearest value of the format, ties to even, with IEEE
overflow: a value that rounds past the largest finite number becomes ±inf, or NaN for the fp8
e4m3 ("fn") format, which has no infinity. Rounding is exact arithmetic on float64: ``x / q`` and
``rint(·) · q`` only rescale by a power of two ``q`` (the spacing at x's binade), so the only rounding
is the single ``rint`` (half-to-even). Inputs already in float64 are therefore rounded once —
no double rounding through float32, unlike casting via ``ml_dtypes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EngineError


@dataclass(frozen=True)
class Format:
    name: str
    precision: int  # significand bits, implicit bit included
    emin: int
    emax: int
    has_inf: bool = True
    max_finite: float = 0.0  # 0 → (2 − 2^(1−p)) · 2^emax

    @property
    def largest(self) -> float:
        return self.max_finite or float(np.ldexp(2.0 - 2.0 ** (1 - self.precision), self.emax))

    @property
    def unit_roundoff(self) -> float:
        """u = 2^−p: the relative error bound of one rounding to nearest."""
        return 2.0 ** -self.precision

    @property
    def eps(self) -> float:
        """Spacing just above 1 (= 2u)."""
        return 2.0 ** (1 - self.precision)

    @property
    def smallest_subnormal(self) -> float:
        return float(np.ldexp(1.0, self.emin - self.precision + 1))

    def round(self, x) -> np.ndarray:
        """Round float64 values to this format (nearest, ties to even). Returns float64."""
        x = np.asarray(x, dtype=np.float64)
        if self.name == "fp64":
            return x
        with np.errstate(over="ignore", invalid="ignore"):
            _, e = np.frexp(x)  # |x| ∈ [2^(e−1), 2^e)
            exponent = np.maximum(e - 1, self.emin)
            quantum = np.ldexp(1.0, exponent - (self.precision - 1))
            y = np.rint(x / quantum) * quantum
            overflow = np.abs(y) > self.largest
            if np.any(overflow):
                y = np.where(overflow, np.copysign(np.inf, x) if self.has_inf else np.nan, y)
        return y

    def is_representable(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (self.round(x) == x) | ~np.isfinite(x)

    def ulp(self, x) -> np.ndarray:
        """Spacing of the format at |x| (the subnormal spacing below 2^emin)."""
        _, e = np.frexp(np.asarray(x, dtype=np.float64))
        return np.ldexp(1.0, np.maximum(e - 1, self.emin) - (self.precision - 1))


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("fp64", 53, -1022, 1023),
        Format("fp32", 24, -126, 127),
        Format("tf32", 11, -126, 127),
        Format("fp16", 11, -14, 15),
        Format("bf16", 8, -126, 127),
        Format("fp8_e4m3", 4, -6, 8, has_inf=False, max_finite=448.0),
        Format("fp8_e5m2", 3, -14, 15),
    )
}

ALIASES = {
    "float64": "fp64", "double": "fp64", "float32": "fp32", "float": "fp32", "float16": "fp16",
    "half": "fp16", "bfloat16": "bf16", "e4m3": "fp8_e4m3", "float8_e4m3fn": "fp8_e4m3",
    "e5m2": "fp8_e5m2", "float8_e5m2": "fp8_e5m2",
}


def get_format(name: str | Format, argument: str = "format") -> Format:
    if isinstance(name, Format):
        return name
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in FORMATS:
        raise EngineError(argument, f"unknown format {name!r}; known formats: {', '.join(FORMATS)}")
    return FORMATS[key]
