"""gla — key-channel decay: S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

Shapes: q, k [B,T,H,K]; g [B,T,HV,K] (≤ 0); v [B,T,HV,V]; state S [N,HV,K,V].
HGRN2 is gla with k = 1 − e^{g} (see :func:`lrnnspec.spec.mappings.hgrn2_to_gla`).
Eigenvalues: e^{g} ∈ [0, 1] per key channel; log-space, cannot be negative.
"""

from ..family import LOG_GATE, SCALE, Family, Input, StateComponent, register
from ._common import K_, Q, S_KV, V_, gated_linear_chunk_flops, readout_q


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(x["g"])[..., :, None], s["S"])
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], x["v"])))}


FAMILY = register(Family(
    name="gla",
    recurrence="S_t = Diag(exp(g_t))·S_{t-1} + k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  g: [B,T,HV,K] ≤ 0",
    inputs=(Q, K_, V_, Input("g", ("B", "T", "HV", "K"), LOG_GATE, doc="key-channel log decay", role="log_gate")),
    state=(StateComponent("S", S_KV),),
    chunk_flops=gated_linear_chunk_flops,
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE,),
    eigenvalues="exp(g) ∈ [0, 1] per channel; log-space, cannot be negative",
    source="Yang et al. 2024 (GLA); FLA chunk_gla; HGRN2 (Qin et al. 2024) via k = 1 − exp(g)",
    rounding="d = exp(g); S ← d·S (acc) + k⊗v (state); o = Σ_k S·(q·scale)",
))
