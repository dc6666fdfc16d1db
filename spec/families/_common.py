"""Pieces several family definitions share: declarations of q/k/v and the standard read-out."""

from __future__ import annotations

import numpy as np

from ..errors import DomainError
from ..family import BETA_0_1, BETA_0_2, Input, Option

Q = Input("q", ("B", "T", "H", "K"), doc="queries", role="query")
K_ = Input("k", ("B", "T", "H", "K"), doc="keys", role="key")
V_ = Input("v", ("B", "T", "HV", "V"), doc="values (HV value heads; HV % H == 0 for GVA)", role="value")
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


def gated_linear_chunk_flops(d: dict, c: int) -> float:
    """Chunkwise matmuls of the gated linear families per batch element, head and token: Q Kᵀ
    (2C²K), (A ⊙ Γ) V (2C²V), the inter-chunk read-out Q S and the state update Kᵀ V (2CKV each):
    2C(K + V) + 4KV (a key-wise gate only rescales Q and K element-wise)."""
    return d["B"] * d["HV"] * d["T"] * (2 * c * (d["K"] + d["V"]) + 4 * d["K"] * d["V"])


def delta_chunk_flops(d: dict, c: int) -> float:
    """Chunkwise (UT / WY) matmuls of the delta families per batch element, head and token:
    A = (β ⊙ K) Kᵀ (2C²K), (I + A)⁻¹ by forward substitution (C³/3), W (2C²K), U₀ (2C²V), U = U₀ − W S
    (2CKV), Q Kᵀ (2C²K), (QKᵀ ⊙ Γ) U (2C²V), Q S (2CKV), Kᵀ U (2CKV): 6CK + 4CV + 6KV + C²/3."""
    k, v = d["K"], d["V"]
    return d["B"] * d["HV"] * d["T"] * (6 * c * k + 4 * c * v + 6 * k * v + c * c / 3)
