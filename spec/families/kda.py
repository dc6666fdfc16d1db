"""kda (Kimi Delta Attention) — S_t = (I − β_t k_t k_tᵀ) Diag(e^{g_t}) S_{t−1} + β_t k_t v_tᵀ.

The gated delta rule with a decay per key channel. The decay comes **before** the error term (FLA's
order, as in gated_delta_rule): S' = Diag(e^{g_t}) S_{t−1} (row c of S scaled by e^{g_tc});
u_t = β_t (v_t − S'ᵀ k_t); S_t = S' + k_t u_tᵀ; o_t = scale · S_tᵀ q_t.
Shapes: q, k [B,T,H,K] (k unit-norm); v [B,T,HV,V]; g [B,T,HV,K] ≤ 0; beta [B,T,HV];
state S [N,HV,K,V]; output [B,T,HV,V] (grouped value heads: HV % H == 0, q and k shared by
HV / H value heads, as FLA's chunk_kda and naive_recurrent_kda).
With g constant over the key channels it is gated_delta_rule (:func:`lrnnspec.spec.mappings.kda_to_gated_delta_rule`).
FLA's gate options (``use_gate_in_kernel``, ``A_log``, ``dt_bias``, ``lower_bound``, ``safe_gate``) and
``use_beta_sigmoid_in_kernel`` compute g and β before the recurrence; this spec takes g and β as
they enter it (``safe_gate`` is a promise g ∈ [lower_bound, 0), inside this domain).
Eigenvalues: M = (I − β k kᵀ) D with D = Diag(e^{g}) is similar to the symmetric
D^{1/2} (I − β k kᵀ) D^{1/2} (D invertible; the limit otherwise), whose norm is ≤ 1 for β ∈ [0, 2]:
real, in [−1, 1] ([0, 1] for β ∈ [0, 1]).
"""

import numpy as np

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Family, Input, StateComponent, register
from ..numerics import erase_conditioning
from ._common import DELTA_RANGE, K_, Q, S_KV, V_, beta_domain, delta_chunk_flops, delta_update, readout_q


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(x["g"])[..., :, None], s["S"])
    return {"S": ar.state(delta_update(ar, decayed, x["k"], x["v"], x["beta"]))}


def conditioning(fam, arrays, dims, segments):
    """κ of the chunk's UT system: erase key β_t k_t, write key k_t, key-channel gate g (read after the
    decay), :func:`lrnnspec.spec.numerics.erase_conditioning`."""
    beta = arrays["beta"]
    k = np.repeat(arrays["k"], beta.shape[2] // arrays["k"].shape[2], axis=2)
    return erase_conditioning(beta[..., None] * k, k, arrays["g"], dims["T"], segments)


FAMILY = register(Family(
    name="kda",
    recurrence="S_t = (I − β_t k_t k_tᵀ)·Diag(exp(g_t))·S_{t-1} + β_t k_t v_tᵀ;  o_t = scale·S_tᵀq_t;  "
               "g: [B,T,HV,K] ≤ 0;  ‖k_t‖ = 1",
    inputs=(Q, K_, V_,
            Input("g", ("B", "T", "HV", "K"), LOG_GATE, doc="key-channel log decay", role="log_gate"),
            Input("beta", ("B", "T", "HV"), beta_domain, doc="writing strength", role="write_strength")),
    state=(StateComponent("S", S_KV),),
    chunk_flops=delta_chunk_flops,
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="of (I − β k kᵀ)·Diag(e^g): real, in [−1, 1] for β ∈ [0, 2] (similar to a symmetric "
                "contraction); [0, 1] for β ∈ [0, 1] (eigenvalue_range)",
    unit_keys=("k",), conditioning=conditioning,
    flops=lambda d: 8.0 * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"],
    source="Kimi Team 2025 (Kimi Linear, KDA); FLA chunk_kda / naive_recurrent_kda; HF kimi_linear",
    rounding="d = exp(g) per key channel; S' = d·S (row-wise); r = Σ_k S'·k; u = β·(v − r); S ← S' + k⊗u "
             "(state); o = Σ_k S·(q·scale)",
))
