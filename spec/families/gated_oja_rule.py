"""gated_oja_rule — the gated delta rule with the roles of k and v exchanged (Oja's rule): the state
decays along its value columns and erases along the value direction v_t, then writes k:

    S' = S_{t−1} Diag(e^{gv_t}),   k'_t = β_t (k_t − S' v_t),   S_t = S' + k'_t v_tᵀ,   o_t = scale · S_tᵀ q_t
    i.e.  S_t = S_{t−1} Diag(e^{gv_t}) (I − β_t v_t v_tᵀ) + β_t k_t v_tᵀ.

Shapes: q, k [B,T,H,K]; v [B,T,HV,V] (unit-norm: the erased direction; FLA's tests normalize it);
gv [B,T,HV,V] ≤ 0 (log decay per value column); beta [B,T,HV]; state S [N,HV,K,V]; output [B,T,HV,V]
(grouped value heads as in FLA's chunk_gated_oja_rule / fused_recurrent_gated_oja_rule).
Transposed, X = Sᵀ [V, K] follows kda with key v, value k and gate gv: X_t = (I − β v vᵀ) Diag(e^{gv}) X_{t−1}
+ β v kᵀ (:func:`lrnnspec.spec.mappings.gated_oja_rule_to_kda`; the read-out S_tᵀq_t = X_t q_t contracts the
other axis, so the identity is between states).
Eigenvalues: as kda's, of (I − β v vᵀ) Diag(e^{gv}) — real, in [−1, 1] for β ∈ [0, 2] with unit v ([0, 1]
for β ∈ [0, 1]).
"""

import numpy as np

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Family, Input, StateComponent, register
from ..numerics import erase_conditioning
from ._common import DELTA_RANGE, S_KV, beta_domain, delta_chunk_flops, readout_q


def step(ar, s, x, p):
    decayed = ar.mul(s["S"], ar.exp(x["gv"])[..., None, :])
    r = ar.dot(decayed, x["v"][..., None, :], axis=-1)
    kp = ar.mul(x["beta"][..., None], ar.sub(x["k"], r))
    return {"S": ar.state(ar.add(decayed, ar.outer(kp, x["v"])))}


def conditioning(fam, arrays, dims, segments):
    """κ of the chunk's UT system, in the transposed view: erase key β_t v_t, write key v_t, the value-column
    gate gv, the read after the decay (:func:`lrnnspec.spec.numerics.erase_conditioning`)."""
    v = arrays["v"]
    return erase_conditioning(arrays["beta"][..., None] * v, v, arrays["gv"], dims["T"], segments)


FAMILY = register(Family(
    name="gated_oja_rule",
    recurrence="S_t = S_{t-1}·Diag(exp(gv_t))·(I − β_t v_t v_tᵀ) + β_t k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  "
               "gv: [B,T,HV,V] ≤ 0;  ‖v_t‖ = 1",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="written vectors (Oja's targets)", role="value"),
            Input("v", ("B", "T", "HV", "V"), doc="the erased and written direction (unit-norm)", role="key"),
            Input("gv", ("B", "T", "HV", "V"), LOG_GATE, doc="value-column log decay", role="log_gate"),
            Input("beta", ("B", "T", "HV"), beta_domain, doc="writing strength", role="write_strength")),
    state=(StateComponent("S", S_KV),),
    chunk_flops=delta_chunk_flops,
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="of (I − β v vᵀ)·Diag(e^gv) (the transposed transition): real, in [−1, 1] for β ∈ [0, 2] "
                "with unit v; [0, 1] for β ∈ [0, 1] (eigenvalue_range)",
    unit_keys=("v",), conditioning=conditioning,
    flops=lambda d: 8.0 * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"],
    source="FLA chunk_gated_oja_rule / fused_recurrent_gated_oja_rule (gated Oja's rule)",
    rounding="d = exp(gv) per value column; S' = S·d (column-wise); r = Σ_v S'·v; k' = β·(k − r); "
             "S ← S' + k'⊗v (state); o = Σ_k S·(q·scale)",
))
