"""simple_gla — scalar (head-wise) decay: S_t = e^{g_t} S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

Shapes: q, k [B,T,H,K]; v [B,T,HV,V]; g [B,T,HV] log-space gate ≤ 0; state S [N,HV,K,V].
Eigenvalues: e^{g} ∈ [0, 1]. Log-space: the parameterization cannot express a negative decay.
"""

from ..family import LOG_GATE, SCALE, Family, Input, StateComponent, register
from ._common import K_, Q, S_KV, V_, gated_linear_chunk_flops, readout_q


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(x["g"])[..., None, None], s["S"])
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], x["v"])))}


FAMILY = register(Family(
    name="simple_gla",
    recurrence="S_t = exp(g_t)·S_{t-1} + k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  g: [B,T,HV] ≤ 0",
    inputs=(Q, K_, V_, Input("g", ("B", "T", "HV"), LOG_GATE, doc="head-wise log decay", role="log_gate")),
    state=(StateComponent("S", S_KV),),
    chunk_flops=gated_linear_chunk_flops,
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE,),
    eigenvalues="exp(g) ∈ [0, 1]; log-space, cannot be negative",
    source="FLA chunk_simple_gla (GRFA / Mamba2-SSD-like)",
    rounding="d = exp(g); S ← d·S (acc) + k⊗v (state); o = Σ_k S·(q·scale)",
))
