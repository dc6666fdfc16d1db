"""Pieces several family definitions share: declarations of q/k/v and the standard read-out."""

from __future__ import annotations

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
    choices=("[-1,1]", "[0,1]"),
)


def read_scaled(ar, S, q, p):
    """o = S_tᵀ (scale · q_t): q [N,H,K], S [N,H,K,V] → [N,H,V]. Rounds: q·scale, products, partial sums."""
    return ar.dot(S, ar.mul(q, p.scale)[..., :, None], axis=-2)


def delta_update(ar, S, k, v, beta):
    """S + k (β (v − Sᵀk))ᵀ, i.e. (I − β k kᵀ) S + β k vᵀ. Rounds: Sᵀk, v − ·, β·, k ⊗ u, S + ·."""
    r = ar.dot(S, k[..., :, None], axis=-2)
    u = ar.mul(beta[..., None], ar.sub(v, r))
    return ar.add(S, ar.outer(k, u))
