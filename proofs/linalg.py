"""Generalized Householder (GH) matrices and the small linear algebra the constructions need.

``gh(k, β) = I − β k kᵀ`` with ``‖k‖ = 1``: eigenvalue ``1 − β`` along ``k`` and 1 on ``k^⊥``, so
β ∈ [0, 2] ⇔ eigenvalues in [−1, 1] ⇔ ‖gh‖₂ ≤ 1; β = 2 is a reflection, β = 1 the projection onto
``k^⊥`` (Grazzi et al. 2025, §3 and eq. (3)).

Product order, fixed once for the whole package (DeltaProduct applies its micro-steps in order
j = 1..n_h, each multiplying on the left): ``gh_product([(k1, β1), ..., (kn, βn)]) = G_n ⋯ G_1``.
"""

from __future__ import annotations

import numpy as np

from lrnnspec.spec.errors import DomainError, ShapeError


def unit(x) -> np.ndarray:
    """``x / ‖x‖`` (float64); a zero vector is rejected."""
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x)
    if not np.isfinite(n) or n == 0:
        raise DomainError("x", f"must be a finite nonzero vector to normalize, got {x!r}")
    return x / n


def check_factor(k, beta, *, beta_max: float = 2.0, tol: float = 1e-12) -> None:
    """The hypothesis of every GH factor: ``‖k‖ = 1`` (within ``tol``) and ``β ∈ [0, beta_max]``."""
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 1:
        raise ShapeError("k", f"must be a vector, got shape {k.shape}")
    if abs(np.linalg.norm(k) - 1.0) > tol:
        raise DomainError("k", f"must have unit L2 norm (±{tol:g}), got ‖k‖ = {np.linalg.norm(k)!r}")
    if not (0.0 <= float(beta) <= beta_max):
        raise DomainError("beta", f"must lie in [0, {beta_max}], got {beta!r}")


def gh(k, beta) -> np.ndarray:
    """``I − β k kᵀ`` for a unit vector ``k`` and β ∈ [0, 2]."""
    check_factor(k, beta)
    k = np.asarray(k, dtype=np.float64)
    return np.eye(k.size) - float(beta) * np.outer(k, k)


def gh_product(factors) -> np.ndarray:
    """``G_n ⋯ G_1`` for factors ``[(k_1, β_1), ..., (k_n, β_n)]`` (first factor applied first)."""
    factors = list(factors)
    if not factors:
        raise ShapeError("factors", "need at least one (k, β) factor")
    out = np.eye(np.asarray(factors[0][0]).size)
    for k, beta in factors:
        out = gh(k, beta) @ out
    return out


def swap_key(i: int, j: int, n: int) -> np.ndarray:
    """``(e_i − e_j)/√2``: ``I − 2 v vᵀ`` is the permutation matrix of the transposition (i j)."""
    if not (0 <= i < n and 0 <= j < n and i != j):
        raise DomainError("i, j", f"must be two distinct indices in [0, {n}), got {i}, {j}")
    v = np.zeros(n)
    v[i], v[j] = 1.0, -1.0
    return v / np.sqrt(2.0)


def rotation2(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def reflection2(alpha: float) -> np.ndarray:
    """``Href(α) = [[cos α, sin α], [sin α, −cos α]]``: the reflection about the line at angle α/2
    (Grazzi et al. 2025, App. D). Equals ``gh(n, 2)`` with ``n = (−sin(α/2), cos(α/2))``."""
    c, s = np.cos(alpha), np.sin(alpha)
    return np.array([[c, s], [s, -c]])


def reflection2_key(alpha: float) -> np.ndarray:
    """The unit normal ``n`` with ``I − 2 n nᵀ = Href(α)``."""
    return np.array([-np.sin(alpha / 2), np.cos(alpha / 2)])


def rotation3(axis, angle: float) -> np.ndarray:
    """Rodrigues' formula: rotation by ``angle`` about the unit ``axis``."""
    a = unit(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def rotation_as_reflections(axis, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals ``(u, v)`` with ``(I − 2vvᵀ)(I − 2uuᵀ) = rotation3(axis, angle)`` [ours, standard]:
    any ``u ⊥ a`` and ``v = cos(θ/2) u + sin(θ/2) (a × u)`` — the two mirror planes contain the axis
    and meet at angle θ/2, and reflecting in two planes rotates by twice the angle between them."""
    a = unit(axis)
    helper = np.eye(3)[np.argmin(np.abs(a))]
    u = unit(np.cross(a, helper))
    v = np.cos(angle / 2) * u + np.sin(angle / 2) * np.cross(a, u)
    return u, unit(v)


def axis_angle(rot: np.ndarray) -> tuple[np.ndarray, float]:
    """Axis and angle of a rotation matrix in SO(3) (angle in [0, π]; any axis for the identity)."""
    rot = np.asarray(rot, dtype=np.float64)
    angle = float(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)))
    if angle < 1e-9:
        return np.array([1.0, 0.0, 0.0]), 0.0
    if np.pi - angle < 1e-6:  # half turn: axis from the symmetric part R + I = 2 a aᵀ
        m = (rot + np.eye(3)) / 2
        return unit(m[np.argmax(np.diag(m))]), np.pi
    a = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    return unit(a), angle


def spectral_class(a: np.ndarray, tol: float = 1e-9) -> dict:
    """Eigenvalues of ``a`` and the predicates the impossibility theorems use:
    ``real_nonnegative`` (Grazzi Thm 1: all real and ≥ 0) and ``real`` (Grazzi Thm 2)."""
    ev = np.linalg.eigvals(np.asarray(a, dtype=np.float64))
    real = bool(np.all(np.abs(ev.imag) <= tol))
    return {
        "eigenvalues": ev,
        "real": real,
        "real_nonnegative": real and bool(np.all(ev.real >= -tol)),
        "max_abs_imag": float(np.max(np.abs(ev.imag))) if ev.size else 0.0,
    }
