"""Do the realized transitions equal the exact group elements? — checks that see slow drift.

A construction's parameters are float64 numbers (unit keys like (½, √3/2) are rounded), so its
transition matrices are only near the group elements it means. Running words cannot tell a drift
of 10⁻³ from none — the nearest-codeword decoder absorbs it for hundreds of steps (a 120.1°
rotation passes every word of length ≤ 100) — but comparing the matrices can:

* :func:`deviation` — ``max |A_realized − A_exact|`` with the exact element given in sympy (algebraic
  numbers: cos and sin of rational multiples of π), evaluated at 60 digits;
* :func:`representation_defect` — when the exact elements are not written down (the icosahedral
  rotations), ``max_{q,a} |M_a M_q − M_{a∘q}|`` and ``|M_e − I|``: realized matrices that satisfy the
  group's multiplication table this closely are within that distance of an exact representation;
* :func:`layers_report` — every layer that declares the transitions it means (``Layer.exact``: sympy,
  or the float matrices of such a representation) against its realized transitions, layer by layer;
  :func:`lrnnspec.proofs.verify.verify` runs it, so a construction that declares them is verified only
  if no token drifts.

Both must stay below :func:`precision_bound` — the error float64 inputs can cause: each factor
``I − β k kᵀ`` with a rounded unit key (|δk_i| ≤ u = 2⁻⁵³) and β ∈ [0, 2] is off by at most
≈ 2β(2n)u entrywise, a product of n_h factors by n_h times that; the bound takes 16·n·n_h·u, a
margin of 4 over that estimate (measured deviations are ≤ 2·10⁻¹⁶). A word of length t then stays
within t·bound of the exact product, so the exact-arithmetic decoding is right for
t < margin / bound ≈ 10¹³ steps — a statement about every practical length, which a drifted
construction (10⁻³ per step: wrong after ≈ 500 steps) cannot make.
"""

from __future__ import annotations

import mpmath
import numpy as np

U64 = 2.0 ** -53


def precision_bound(n: int, n_h: int) -> float:
    """Entrywise tolerance for a product of ``n_h`` generalized Householder factors of size ``n`` built
    from float64 inputs (module docstring)."""
    return 16.0 * n * max(n_h, 1) * U64


def rotation2(k: int, m: int):
    """The exact rotation by 2πk/m (sympy)."""
    import sympy as sp

    a = 2 * sp.pi * sp.Rational(k, m)
    return sp.Matrix([[sp.cos(a), -sp.sin(a)], [sp.sin(a), sp.cos(a)]])


def reflection2(p: int, q: int):
    """The exact ``Href(pπ/q) = [[cos α, sin α], [sin α, −cos α]]``, α = pπ/q (sympy)."""
    import sympy as sp

    a = sp.pi * sp.Rational(p, q)
    return sp.Matrix([[sp.cos(a), sp.sin(a)], [sp.sin(a), -sp.cos(a)]])


def _mp(value) -> mpmath.mpf:
    """One exact entry at 60 digits: a sympy number evaluated, a float taken as it is."""
    if hasattr(value, "evalf"):
        return mpmath.mpf(str(value.evalf(60)))
    return mpmath.mpf(float(value))


def permutation(p):
    """The exact permutation matrix of ``p`` (``P[p[i], i] = 1``; sympy integers)."""
    import sympy as sp

    return sp.Matrix(len(p), len(p), lambda i, j: int(p[j] == i))


def transposition(i: int, j: int, n: int):
    """The exact matrix of the swap (i j) on n points — what ``I − 2vvᵀ``, v = (e_i − e_j)/√2, means."""
    p = list(range(n))
    p[i], p[j] = j, i
    return permutation(p)


def write(j: int, n: int):
    """``I − e_j e_jᵀ`` (sympy): the transition of a coordinate write (key e_j, β = 1)."""
    import sympy as sp

    return sp.eye(n) - sp.Matrix(n, n, lambda a, b: int(a == b == j))


def deviation(realized: np.ndarray, exact) -> float:
    """``max |realized − exact|`` (exact: a sympy matrix, evaluated at 60 digits, or a float matrix)."""
    realized = np.asarray(realized, dtype=np.float64)
    if realized.shape != tuple(exact.shape):
        return float("inf")
    with mpmath.workdps(60):
        worst = mpmath.mpf(0)
        for i in range(exact.shape[0]):
            for j in range(exact.shape[1]):
                worst = max(worst, abs(mpmath.mpf(float(realized[i, j])) - _mp(exact[i, j])))
    return float(worst)


def representation_defect(mats: list[np.ndarray], table: np.ndarray) -> float:
    """``max(|M_0 − I|, max_{q,a} |M_a M_q − M_{table[q,a]}|)`` (entrywise, float64; element 0 = e)."""
    m = np.asarray(mats, dtype=np.float64)
    worst = float(np.max(np.abs(m[0] - np.eye(m.shape[1]))))
    prod = np.einsum("aij,qjk->qaik", m, m)
    return max(worst, float(np.max(np.abs(prod - m[np.asarray(table)]))))


def transitions_report(layer, exact: dict) -> dict:
    """Compare ``layer.transition(t)`` with ``exact[t]`` (sympy) for every listed token."""
    n = layer.transition(0).shape[0]
    bound = precision_bound(n, layer.n_h)
    devs = {int(t): deviation(layer.transition(t), e) for t, e in exact.items()}
    worst = max(devs.values())
    return {"max |A_realized − A_exact|": worst, "bound": bound, "tokens compared": len(devs),
            "ok": bool(worst <= bound)}


def layers_report(layers) -> dict | None:
    """:func:`transitions_report` of every layer that declares its exact transitions (``Layer.exact``),
    summed up: ``ok`` iff each stays within its own bound; None when no layer declares them."""
    reports = [(layer.name, transitions_report(layer, layer.exact)) for layer in layers if layer.exact is not None]
    if not reports:
        return None
    name, worst = max(reports, key=lambda r: r[1]["max |A_realized − A_exact|"] / r[1]["bound"])
    return {"max |A_realized − A_exact|": worst["max |A_realized − A_exact|"], "bound": worst["bound"],
            "worst layer": name, "layers compared": len(reports),
            "tokens compared": sum(r["tokens compared"] for _, r in reports),
            "drifting layers": [n for n, r in reports if not r["ok"]], "ok": all(r["ok"] for _, r in reports)}
