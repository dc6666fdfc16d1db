"""dplr (diagonal plus low rank; RWKV-7) — S_t = Diag(e^{gk_t}) S_{t−1} + b_t (a_tᵀ S_{t−1}) + k_t v_tᵀ.

The low-rank term acts on the **pre-decay** state (FLA's order). o_t = scale · S_tᵀ q_t.
Shapes: q, k, a, b, gk [B,T,H,K] (gk ≤ 0); v [B,T,H,V]; state S [N,H,K,V].
delta_rule is dplr with a = −β k, b = k, v ← β v, gk = 0; RWKV-7 is dplr with q = r, gk = w,
a = −κ̂, b = κ̂ ⊙ iclr and scale 1 (:mod:`lrnnspec.spec.mappings`).
Eigenvalues: those of Diag(e^{gk}) + b aᵀ — unconstrained by the parameterization (RWKV-7 keeps
them in [−1, 1] with unit κ̂ and iclr ∈ [0, 2]).
"""

import numpy as np

from ..family import LOG_GATE, SCALE, Family, Input, StateComponent, register
from ._common import readout_q


def step(ar, s, x, p):
    S = s["S"]
    at = ar.dot(S, x["a"][..., :, None], axis=-2)
    decayed = ar.mul(ar.exp(x["gk"])[..., :, None], S)
    return {"S": ar.state(ar.add(ar.add(decayed, ar.outer(x["b"], at)), ar.outer(x["k"], x["v"])))}


def sample_rwkv7(rng, arrays, dims):
    """RWKV-7-style draws: a = −κ̂, b = κ̂ ⊙ iclr with unit κ̂ and iclr ∈ [0, 1] (a stable transition)."""
    kappa = rng.standard_normal(arrays["a"].shape)
    kappa /= np.linalg.norm(kappa, axis=-1, keepdims=True)
    return {"a": -kappa, "b": kappa * rng.uniform(0.0, 1.0, kappa.shape)}


FAMILY = register(Family(
    name="dplr",
    recurrence="S_t = Diag(exp(gk_t))·S_{t-1} + b_t(a_tᵀS_{t-1}) + k_t v_tᵀ;  o_t = scale·S_tᵀq_t",
    inputs=(
        Input("q", ("B", "T", "H", "K"), doc="queries (RWKV-7 r)", role="query"),
        Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
        Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
        Input("a", ("B", "T", "H", "K"), doc="low-rank read vector (RWKV-7 −κ̂)", role="low_rank"),
        Input("b", ("B", "T", "H", "K"), doc="low-rank write vector (RWKV-7 κ̂ ⊙ iclr)", role="low_rank"),
        Input("gk", ("B", "T", "H", "K"), LOG_GATE, doc="key-channel log decay (RWKV-7 w)", role="log_gate"),
    ),
    state=(StateComponent("S", ("N", "H", "K", "V")),),
    flops=lambda d: 8.0 * d["B"] * d["T"] * d["H"] * d["K"] * d["V"],   # the low-rank read aᵀS: twice the work
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout_q, options=(SCALE,),
    eigenvalues="of Diag(e^gk) + b aᵀ: set by a and b (RWKV-7: [−1, 1] with unit κ̂, iclr ∈ [0, 2])",
    sample=sample_rwkv7,
    source="FLA chunk_dplr_delta_rule / chunk_rwkv7; Peng et al. 2025 (RWKV-7)",
    rounding="r = Σ_k S·a (pre-decay); d = exp(gk); S ← (d·S + b⊗r) + k⊗v (state); o = Σ_k S·(q·scale)",
))
