"""Products of generalized Householder matrices (Grazzi et al. 2025, Prop. 1).

1. ``N ∈ M^n_k([−1, 1]) ⇒ ‖N‖₂ ≤ 1``: every factor ``I − β k kᵀ`` (β ∈ [0, 2]) is symmetric with
   eigenvalues {1, 1 − β} ⊂ [−1, 1], and the norm is submultiplicative.
3. For ``N ∈ M^n_k([0, 1])`` with k ≤ 2 every eigenvalue is real in [0, 1]: ``G₂G₁`` with
   ``G_i`` positive semidefinite is similar to ``G₁^{1/2} G₂ G₁^{1/2}`` (PSD) when G₁ is invertible,
   and a limit of such products otherwise.
   For three [0, 1] factors this fails: ``THREE_FACTOR_EXAMPLE`` (rational unit keys, rational β) has
   non-real eigenvalues, proved exactly from the discriminant of its characteristic polynomial
   (sympy) — a kept regression example (research/theorems.md §2.5 found one numerically).
[ours, research/theorems.md §2.5]: two factors with β ∈ [0, 2] had complex eigenvalues only when both
β > 1 (the 2-D span has determinant (1 − β₁)(1 − β₂)); reported as an observation.
"""

from __future__ import annotations

import time

import numpy as np

from .linalg import gh_product
from .result import CheckResult, check

SOURCE = "Grazzi et al. 2025, Prop. 1"
SAMPLES = {"ci": 2000, "dev": 20000, "certify": 200000}


def stereographic_unit(y) -> list:
    """A rational unit vector from rational ``y ∈ Q^{n−1}``: ``(2y, |y|² − 1) / (|y|² + 1)`` (sympy)."""
    import sympy as sp

    y = [sp.Rational(v) for v in y]
    s = sum(v * v for v in y)
    return [2 * v / (s + 1) for v in y] + [(s - 1) / (s + 1)]


# keys as rational points y (stereographic) and β's: found by a seeded search, kept verbatim
THREE_FACTOR_EXAMPLE = {
    "y": [("1", "-5/4"), ("-1/3", "-3/2"), ("1/3", "-4/5")],
    "beta": ["9/10", "3/4", "9/10"],
}


def random_product(rng: np.random.Generator, n: int, k: int, beta_lo: float, beta_hi: float) -> tuple:
    keys = rng.normal(size=(k, n))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    betas = rng.uniform(beta_lo, beta_hi, size=k)
    return keys, betas, gh_product(zip(keys, betas))


def three_factor_exact() -> dict:
    """The regression example: exact product, characteristic polynomial, its discriminant (< 0 ⇒ a pair
    of non-real eigenvalues), and the numerical eigenvalues."""
    import sympy as sp

    keys = [sp.Matrix(stereographic_unit(y)) for y in THREE_FACTOR_EXAMPLE["y"]]
    betas = [sp.Rational(b) for b in THREE_FACTOR_EXAMPLE["beta"]]
    N = sp.eye(3)
    for k, b in zip(keys, betas):
        assert sp.simplify((k.T * k)[0] - 1) == 0
        N = (sp.eye(3) - b * k * k.T) * N
    lam = sp.Symbol("lam")
    poly = sp.Poly(N.charpoly(lam).as_expr(), lam)
    disc = sp.discriminant(poly.as_expr(), lam)
    ev = np.linalg.eigvals(np.array(N.evalf(30).tolist(), dtype=np.float64))
    return {"discriminant": str(disc), "discriminant_negative": bool(disc < 0),
            "betas_in_[0,1]": all(0 <= b <= 1 for b in betas), "eigenvalues": [complex(e) for e in ev]}


@check("householder.norm")
def norm_bound(profile: str) -> CheckResult:
    start = time.perf_counter()
    rng = np.random.default_rng(31)
    worst = 0.0
    count = SAMPLES.get(profile, 2000)
    for _ in range(count):
        n, k = int(rng.integers(2, 6)), int(rng.integers(1, 7))
        *_, N = random_product(rng, n, k, 0.0, 2.0)
        worst = max(worst, float(np.linalg.norm(N, 2)))
    ok = worst <= 1 + 1e-12
    return CheckResult("householder.norm", "Products of GH matrices with β ∈ [0,2] are contractions", SOURCE + ".1",
                       "every factor: unit key, β ∈ [0, 2]", "verified" if ok else "failed",
                       {"samples": count, "sizes": "n ∈ [2,5], k ∈ [1,6] factors", "max ‖N‖₂": worst},
                       time.perf_counter() - start)


@check("householder.two_factor_real")
def two_factor_real(profile: str) -> CheckResult:
    start = time.perf_counter()
    rng = np.random.default_rng(32)
    count = SAMPLES.get(profile, 2000)
    worst_imag, worst_range, complex_when_one_le1 = 0.0, 0.0, 0
    for _ in range(count):
        n, k = int(rng.integers(2, 6)), int(rng.integers(1, 3))
        *_, N = random_product(rng, n, k, 0.0, 1.0)
        ev = np.linalg.eigvals(N)
        worst_imag = max(worst_imag, float(np.max(np.abs(ev.imag))))
        worst_range = max(worst_range, float(np.max(np.maximum(-ev.real, ev.real - 1))))
        _, betas, N2 = random_product(rng, n, 2, 0.0, 2.0)
        if np.max(np.abs(np.linalg.eigvals(N2).imag)) > 1e-9 and min(betas) <= 1:
            complex_when_one_le1 += 1
    ok = worst_imag <= 1e-9 and worst_range <= 1e-9
    return CheckResult("householder.two_factor_real", "At most two [0,1] GH factors: eigenvalues real in [0,1]",
                       SOURCE + ".3", "k ≤ 2 factors, unit keys, β ∈ [0, 1]", "verified" if ok else "failed",
                       {"samples": count, "max |Im λ|": worst_imag, "max distance of Re λ outside [0,1]": worst_range,
                        "[ours] two factors β ∈ [0,2] with complex λ while some β ≤ 1": complex_when_one_le1,
                        "three factors": "see householder.three_factor_complex"},
                       time.perf_counter() - start)


@check("householder.three_factor_complex")
def three_factor_complex(profile: str) -> CheckResult:
    start = time.perf_counter()
    r = three_factor_exact()
    ok = r["discriminant_negative"] and r["betas_in_[0,1]"]
    return CheckResult("householder.three_factor_complex",
                       "Three [0,1] GH factors can have non-real eigenvalues (kept regression example)",
                       SOURCE + ".3 (k ≤ 2 is sharp); research/theorems.md §2.5",
                       "three factors, rational unit keys, β ∈ [0, 1]; exact sympy discriminant < 0",
                       "verified" if ok else "failed",
                       {**THREE_FACTOR_EXAMPLE, **{k: (v if k != "eigenvalues" else [str(np.round(e, 6)) for e in v])
                                                   for k, v in r.items()}},
                       time.perf_counter() - start)
