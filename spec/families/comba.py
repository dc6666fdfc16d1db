"""comba — S_t = (e^{g_t} I − β_t k_t p_tᵀ) S_{t−1} + β_t k_t v_tᵀ: a delta rule whose error reads the state
with its own key p (closed-loop control, Hu et al. 2025), on the state **before** this step's decay.

As FLA's chunk_comba and fused_recurrent_comba compute it: u_t = β_t (v_t − S_{t−1}ᵀ p_t);
S_t = e^{g_t} S_{t−1} + k_t u_tᵀ; o_t = scale · S_tᵀ q_t. (FLA's ``naive_recurrent_comba`` decays first
and reads e^{g_t} S_{t−1} instead — a different recurrence, which its kernels do not compute.)
Shapes: q, k, p [B,T,H,K] (k unit-norm); v [B,T,HV,V]; g, beta [B,T,HV]; state S [N,HV,K,V];
output [B,T,HV,V] (grouped value heads as in chunk_comba).
With p = k and g = 0 it is delta_rule; it is dplr with a = p, b = −β k, k ← β k, gk = g
(:func:`lrnnspec.spec.mappings.comba_to_dplr`).
Eigenvalues of e^{g} I − β k pᵀ: e^{g} (K − 1 times) and e^{g} − β pᵀk; with p = c k (Comba's p = d ⊙ k
with a per-head d) the transition is symmetric, a contraction when −1 ≤ e^{g} − βc ≤ 1. β ∈ [0, 2]
reaches −1 only where e^{g} − βc does: unlike gated_delta_rule's e^{g}(1 − β), the decay does not
scale the reflection. The draws (``sample``) keep p = c k with c ≤ (1 + e^{g})/β.
"""

import numpy as np

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Family, Input, StateComponent, register
from ..numerics import erase_conditioning
from ._common import DELTA_RANGE, K_, Q, S_KV, V_, beta_domain, delta_chunk_flops, readout_q


def step(ar, s, x, p):
    S = s["S"]
    u = ar.mul(x["beta"][..., None], ar.sub(x["v"], ar.dot(S, x["p"][..., :, None], axis=-2)))
    decayed = ar.mul(ar.exp(x["g"])[..., None, None], S)
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], u)))}


def conditioning(fam, arrays, dims, segments):
    """κ of the chunk's UT system: erase key β_t p_t, write key k_t, head-wise gate g, the read before the
    decay (:func:`lrnnspec.spec.numerics.erase_conditioning` with ``exclusive``)."""
    beta = arrays["beta"]
    group = beta.shape[2] // arrays["k"].shape[2]
    k, p = (np.repeat(arrays[n], group, axis=2) for n in ("k", "p"))
    return erase_conditioning(beta[..., None] * p, k, arrays["g"], dims["T"], segments, exclusive=True)


def sample_contraction(rng, arrays, dims):
    """Comba-style stable draws: p = c ⊙ k with one c ∈ [0, 1] per token and key head, at most
    (1 + e^{g})/β over the head's value heads, so that the eigenvalue e^{g} − βc along k stays in [−1, 1]."""
    k, g, beta = arrays["k"], arrays["g"], arrays["beta"]
    B, T, H = k.shape[:3]
    group = beta.shape[2] // H
    with np.errstate(divide="ignore"):
        cap = np.where(beta > 0, (1.0 + np.exp(g)) / np.where(beta > 0, beta, 1.0), 1.0)
    cap = np.minimum(1.0, cap.reshape(B, T, H, group).min(axis=-1))
    return {"p": (rng.uniform(0.0, 1.0, (B, T, H)) * cap)[..., None] * k}


FAMILY = register(Family(
    name="comba",
    recurrence="S_t = (exp(g_t)·I − β_t k_t p_tᵀ)·S_{t-1} + β_t k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  ‖k_t‖ = 1",
    inputs=(Q, K_, V_,
            Input("p", ("B", "T", "H", "K"), doc="the error's read key (Comba's p = d ⊙ k)", role="low_rank"),
            Input("g", ("B", "T", "HV"), LOG_GATE, doc="head-wise log decay", role="log_gate"),
            Input("beta", ("B", "T", "HV"), beta_domain, doc="writing strength", role="write_strength")),
    state=(StateComponent("S", S_KV),),
    chunk_flops=delta_chunk_flops,
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="{e^g, e^g − β pᵀk}: with p = k and g = 0, 1 − β ∈ [−1, 1] for β ∈ [0, 2] (eigenvalue_range); "
                "a strong decay with β pᵀk > 1 + e^g leaves the unit disk (the parameterization does not bound it)",
    unit_keys=("k",), conditioning=conditioning, sample=sample_contraction,
    flops=lambda d: 8.0 * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"],
    source="Hu et al. 2025 (Comba); FLA chunk_comba / fused_recurrent_comba",
    rounding="r = Σ_k S·p (pre-decay); u = β·(v − r); d = exp(g); S ← d·S + k⊗u (state); o = Σ_k S·(q·scale)",
))
