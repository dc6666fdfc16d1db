"""Random layers for the impossibility witnesses: spec-family parameters whose transitions have a
real spectrum (nonnegative for Theorem 1, possibly negative for Theorem 2).

Each kind names an architecture row of the prediction matrix:

=============  ===================  ============================================================
kind           family               transition on the letter ``1``
=============  ===================  ============================================================
``gh[0,1]``    delta_rule [0,1]     ``I − β k kᵀ``, β ∈ [0.05, 0.95] (DeltaNet)
``gh2[0,1]``   delta_product [0,1]  product of two such factors (DeltaProduct n_h = 2; real
                                    spectrum in [0, 1] by Grazzi et al. Prop. 1.3)
``diag[0,1]``  mamba [0,1]          ``diag(exp(Δ·A))`` (Mamba)
``gh[-1,1]``   delta_rule [-1,1]    ``I − β k kᵀ``, β ∈ [0.05, 2] (symmetric: real spectrum)
``diag[-1,1]`` mamba [-1,1]         ``diag(2·exp(Δ·A) − 1)``, some entries saturated to −1
=============  ===================  ============================================================

All are contractions (‖A‖₂ ≤ 1), which :func:`lrnnspec.proofs.castmodel.cast_orbit` needs. β is kept
away from 1 so that rounding the unit key cannot push an eigenvalue below 0.
"""

from __future__ import annotations

import numpy as np

from lrnnspec.spec.errors import DomainError

from .construction import Layer

NONNEGATIVE_KINDS = ("gh[0,1]", "gh2[0,1]", "diag[0,1]")
REAL_KINDS = NONNEGATIVE_KINDS + ("gh[-1,1]", "diag[-1,1]")


def _labels(states: np.ndarray) -> np.ndarray:
    """Label = sign of the first state coordinate (the next layer's token)."""
    flat = np.asarray(states, dtype=np.float64).reshape(states.shape[0], -1)
    return (flat[:, 0] > 0).astype(np.int64)


def _unit(rng, n):
    x = rng.normal(size=n)
    return x / np.linalg.norm(x)


def random_layer(kind: str, rng: np.random.Generator, n: int = 2, tokens: int = 1) -> Layer:
    """A layer of ``kind`` with ``tokens`` random tokens, state width ``n`` and a random initial state.
    Its decoder is the sign of the first coordinate (used to drive a next layer)."""
    if kind not in REAL_KINDS:
        raise DomainError("kind", f"must be one of {REAL_KINDS}, got {kind!r}")
    if not isinstance(n, int) or n < 1:
        raise DomainError("n", f"must be a positive integer, got {n!r}")
    if kind.startswith("gh"):
        n_h = 2 if kind.startswith("gh2") else 1
        hi = 2.0 if kind == "gh[-1,1]" else 0.95
        k = np.array([[_unit(rng, n) for _ in range(n_h)] for _ in range(tokens)])
        beta = rng.uniform(0.05, hi, size=(tokens, n_h))
        v = rng.uniform(-1, 1, size=(tokens, n_h, 1))
        fam = "delta_product" if n_h == 2 else "delta_rule"
        rng_opt = "[-1,1]" if kind == "gh[-1,1]" else "[0,1]"
        return Layer(fam, {"k": k, "beta": beta, "v": v}, rng.uniform(-1, 1, size=(1, n, 1)), _labels,
                     options={"eigenvalue_range": rng_opt}, name=kind)
    A = -rng.uniform(0.1, 3.0, size=(n, 1))
    delta = np.ones((tokens, n))
    if kind == "diag[-1,1]":
        sat = rng.random((tokens, n)) < 0.5
        delta = np.where(sat, 1024.0, 1.0)  # exp(−1024·rate) underflows: a = 2·0 − 1 = −1
    u = rng.uniform(-1, 1, size=(tokens, n))
    B = rng.uniform(-1, 1, size=(tokens, 1))
    C = np.ones((tokens, 1))
    rng_opt = "[-1,1]" if kind == "diag[-1,1]" else "[0,1]"
    return Layer("mamba", {"delta": delta, "u": u, "B": B, "C": C}, rng.uniform(-1, 1, size=(n, 1)), _labels,
                 options={"eigenvalue_range": rng_opt}, static={"A": A}, name=kind)
