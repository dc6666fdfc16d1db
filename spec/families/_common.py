"""Pieces several family definitions share: declarations of q/k/v and the standard read-out."""

from __future__ import annotations

import numpy as np

from ..errors import DomainError
from ..family import BETA_0_1, BETA_0_2, Input, Option

Q = Input("q", ("B", "T", "H", "K"), doc="queries")
K_ = Input("k", ("B", "T", "H", "K"), doc="keys")
V_ = Input("v", ("B", "T", "HV", "V"), doc="values (HV value heads; HV % H == 0 for GVA)")
S_KV = ("N", "HV", "K", "V")


def beta_domain(options):
    return BETA_0_2 if options["eigenvalue_range"] == "[-1,1]" else BETA_0_1


DELTA_RANGE = Option(
    "eigenvalue_range", "[-1,1]",
    "declared range of the transition's eigenvalue 1 − β along k: '[-1,1]' admits β ∈ [0, 2] "
    "(negative eigenvalues, reflections at β = 2), '[0,1]' restricts β to [0, 1]",
    choices=("[-1,1]", "[0,1]"), domain_only=True,
)


def read_scaled(ar, S, q, p):
    """o = S_tᵀ (scale · q_t): q [N,H,K], S [N,H,K,V] → [N,H,V]. Rounds: q·scale, products, partial sums."""
    return ar.dot(S, ar.mul(q, p.scale)[..., :, None], axis=-2)


def readout_q(ar, s, x, p):
    """The standard read-out after the update: o_t = S_tᵀ (scale · q_t)."""
    return read_scaled(ar, s["S"], x["q"], p)


def skip_and_gate(ar, y, D, u, z):
    """Mamba's tail: y + D ⊙ u (when D is given), then ⊙ silu(z) (when z is given)."""
    if D is not None:
        y = ar.add(y, ar.mul(D, u))
    return y if z is None else ar.mul(y, ar.silu(z))


def step_size(ar, d, bias, softplus: bool):
    """Mamba's Δ: d (+ bias), through softplus when asked."""
    if bias is not None:
        d = ar.add(d, bias)
    return ar.softplus(d) if softplus else d


def check_step_size(inputs, options, name, bias, softplus):
    """Δ = name + bias must be ≥ 0 unless it goes through softplus."""
    if not options[softplus]:
        d = inputs[name] + (inputs[bias] if inputs.get(bias) is not None else 0.0)
        if np.any(d < 0):
            raise DomainError(name, f"{name} + {bias} must be ≥ 0 when {softplus}=False (Δ is a step size)")


def delta_update(ar, S, k, v, beta):
    """S + k (β (v − Sᵀk))ᵀ, i.e. (I − β k kᵀ) S + β k vᵀ. Rounds: Sᵀk, v − ·, β·, k ⊗ u, S + ·."""
    r = ar.dot(S, k[..., :, None], axis=-2)
    u = ar.mul(beta[..., None], ar.sub(v, r))
    return ar.add(S, ar.outer(k, u))
