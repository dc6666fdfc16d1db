"""delta_product (Gated DeltaProduct) — n_h generalized Householder steps per token.

Per token t: S ← e^{g_t} S (when g is given); for j = 1..n_h:
S ← (I − β_{t,j} k_{t,j} k_{t,j}ᵀ) S + β_{t,j} k_{t,j} v_{t,j}ᵀ; then o_t = scale · S_tᵀ q_t.
FLA's interleaved layout: k [B,T·n_h,H,K] (unit-norm), v [B,T·n_h,HV,V], beta [B,T·n_h,HV] with
index t·n_h + j; q [B,T,H,K]; g [B,T,HV] optional (None: DeltaProduct without gate).
State S [N,HV,K,V]. ``cu_seqlens`` counts tokens (T), not micro-steps.
Transition per token: a product of n_h generalized Householder matrices (times e^{g}); for
β ∈ [0, 2] its norm is ≤ 1 and its eigenvalues lie in the closed unit disc (complex for n_h ≥ 2).
"""

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Family, Input, StateComponent, register
from ..numerics import ut_conditioning
from ._common import DELTA_RANGE, Q, S_KV, beta_domain, delta_update, readout_q


def step(ar, s, x, p):
    S = s["S"]
    if x.get("g") is not None:
        S = ar.mul(ar.exp(x["g"])[..., None, None], S)
    for j in range(x["k"].shape[1]):
        S = delta_update(ar, S, x["k"][:, j], x["v"][:, j], x["beta"][:, j])
    return {"S": ar.state(S)}


FAMILY = register(Family(
    name="delta_product",
    recurrence="S_t = Π_{j=n_h..1}(I − β_{t,j}k_{t,j}k_{t,j}ᵀ)·exp(g_t)·S_{t-1} + Σ_j (…)β_{t,j}k_{t,j}v_{t,j}ᵀ;  "
               "o_t = scale·S_tᵀq_t",
    inputs=(Q,
            Input("k", ("B", "T*n_h", "H", "K"), doc="keys, n_h per token, interleaved", role="key"),
            Input("v", ("B", "T*n_h", "HV", "V"), doc="values, n_h per token, interleaved", role="value"),
            Input("beta", ("B", "T*n_h", "HV"), beta_domain, doc="writing strengths, interleaved", role="write_strength"),
            Input("g", ("B", "T", "HV"), LOG_GATE, optional=True, doc="head-wise log decay (first micro-step)",
                  role="log_gate")),
    state=(StateComponent("S", S_KV),),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="products of n_h generalized Householder matrices: ‖·‖ ≤ 1 for β ∈ [0,2]; complex for n_h ≥ 2",
    unit_keys=("k",), conditioning=ut_conditioning,
    flops=lambda d: 4.0 * (d["n_h"] + 1) * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"],
    source="Siems et al. 2025 (DeltaProduct); FLA chunk_gated_delta_product",
    rounding="d = exp(g); S' = d·S; per micro-step: r = Σ_k S·k, u = β·(v − r), S ← S + k⊗u (acc); "
             "state rounding once per token; o = Σ_k S·(q·scale)",
))
