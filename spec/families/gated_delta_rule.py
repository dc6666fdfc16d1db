"""gated_delta_rule (Gated DeltaNet) — S_t = (I − β_t k_t k_tᵀ) e^{g_t} S_{t−1} + β_t k_t v_tᵀ.

The decay is applied **before** the error term (FLA's order, "forget before error"):
S' = e^{g_t} S_{t−1}; u_t = β_t (v_t − S'ᵀ k_t); S_t = S' + k_t u_tᵀ; o_t = scale · S_tᵀ q_t.
Shapes: q, k [B,T,H,K] (k unit-norm); v [B,T,HV,V]; g, beta [B,T,HV]; state S [N,HV,K,V].
Eigenvalues: e^{g} and e^{g}(1 − β): within [−1, 1] for β ∈ [0, 2].
"""

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Family, Input, StateComponent, register
from ..numerics import ut_conditioning
from ._common import DELTA_RANGE, K_, Q, S_KV, V_, beta_domain, delta_chunk_flops, delta_update, readout_q


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(x["g"])[..., None, None], s["S"])
    return {"S": ar.state(delta_update(ar, decayed, x["k"], x["v"], x["beta"]))}


FAMILY = register(Family(
    name="gated_delta_rule",
    recurrence="S_t = (I − β_t k_t k_tᵀ)·exp(g_t)·S_{t-1} + β_t k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  ‖k_t‖ = 1",
    inputs=(Q, K_, V_,
            Input("g", ("B", "T", "HV"), LOG_GATE, doc="head-wise log decay", role="log_gate"),
            Input("beta", ("B", "T", "HV"), beta_domain, doc="writing strength", role="write_strength")),
    state=(StateComponent("S", S_KV),),
    chunk_flops=delta_chunk_flops,
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="{e^g, e^g(1 − β)} ⊂ [−1, 1] for β ∈ [0, 2] (eigenvalue_range)",
    unit_keys=("k",), conditioning=ut_conditioning,
    flops=lambda d: 8.0 * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"],
    source="Yang et al. 2025 (Gated DeltaNet); FLA chunk_gated_delta_rule",
    rounding="d = exp(g); S' = d·S; r = Σ_k S'·k; u = β·(v − r); S ← S' + k⊗u (state); o = Σ_k S·(q·scale)",
))
