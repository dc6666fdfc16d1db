"""delta_rule (DeltaNet) — S_t = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

Evaluated as FLA does: u_t = β_t (v_t − S_{t−1}ᵀ k_t), S_t = S_{t−1} + k_t u_tᵀ.
Shapes: q, k [B,T,H,K] (k unit-norm); v [B,T,HV,V]; beta [B,T,HV]; state S [N,HV,K,V].
Eigenvalues: 1 (multiplicity K − 1) and 1 − β along k: β ∈ [0, 2] gives [−1, 1] (β = 2 a reflection),
β ∈ [0, 1] gives [0, 1] — the declared ``eigenvalue_range``.
"""

from ..family import SCALE, UNIT_KEYS, Family, Input, StateComponent, register
from ..numerics import ut_conditioning
from ._common import DELTA_RANGE, K_, Q, S_KV, V_, beta_domain, delta_update, readout_q


def step(ar, s, x, p):
    return {"S": ar.state(delta_update(ar, s["S"], x["k"], x["v"], x["beta"]))}


FAMILY = register(Family(
    name="delta_rule",
    recurrence="S_t = (I − β_t k_t k_tᵀ)·S_{t-1} + β_t k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  ‖k_t‖ = 1",
    inputs=(Q, K_, V_, Input("beta", ("B", "T", "HV"), beta_domain, doc="writing strength", role="write_strength")),
    state=(StateComponent("S", S_KV),),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="{1, 1 − β}: [0,1] for β ∈ [0,1], [−1,1] for β ∈ [0,2] (eigenvalue_range)",
    unit_keys=("k",), conditioning=ut_conditioning,
    flops=lambda d: 8.0 * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"],
    source="Schlag et al. 2021; Yang et al. 2024 (parallel DeltaNet); FLA chunk_delta_rule",
    rounding="r = Σ_k S·k; u = β·(v − r); S ← S + k⊗u (state); o = Σ_k S·(q·scale)",
))
