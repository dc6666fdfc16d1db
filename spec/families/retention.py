"""retention (RetNet) — S_t = γ_h S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

Shapes: q, k [B,T,H,K]; v [B,T,HV,V]; optional gamma [HV] in (0, 1], default γ_h = 1 − 2^(−5−h)
for value head h (exact in float64); state S [N,HV,K,V]; output [B,T,HV,V].
Eigenvalues: γ_h ∈ (0, 1].
"""

import numpy as np

from ..family import SCALE, Domain, Family, Input, StateComponent, register
from ._common import K_, Q, S_KV, V_, readout_q

GAMMA = Domain(np.nextafter(0.0, 1.0), 1.0, "a decay in (0, 1]")


def default_gamma(dims, options=None):
    return {"gamma": 1.0 - 2.0 ** (-5.0 - np.arange(dims["HV"], dtype=np.float64))}


def step(ar, s, x, p):
    decayed = ar.mul(p.gamma[None, :, None, None], s["S"])
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], x["v"])))}


FAMILY = register(Family(
    name="retention",
    recurrence="S_t = γ_h S_{t-1} + k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  γ_h = 1 − 2^(−5−h)",
    inputs=(Q, K_, V_, Input("gamma", ("HV",), GAMMA, optional=True, doc="per-head decay", role="decay")),
    state=(StateComponent("S", S_KV),),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE,),
    eigenvalues="γ_h ∈ (0, 1]: a fixed positive decay, cannot be negative",
    source="Sun et al. 2023 (RetNet); FLA chunk_retention",
    rounding="S ← γ·S (acc) + k⊗v (state); o = Σ_k S·(q·scale)",
    defaults=default_gamma,
))
