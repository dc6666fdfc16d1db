"""gdn2 (Gated DeltaNet 2) — S_t = (I − k_t (b_t ⊙ k_t)ᵀ) Diag(e^{g_t}) S_{t−1} + k_t (w_t ⊙ v_t)ᵀ.

KDA with the scalar β split into a channel-wise erase gate b on the key axis and a channel-wise write
gate w on the value axis. The decay comes first (FLA's order): S' = Diag(e^{g_t}) S_{t−1};
u_t = w_t ⊙ v_t − S'ᵀ (b_t ⊙ k_t); S_t = S' + k_t u_tᵀ; o_t = scale · S_tᵀ q_t.
Shapes: q, k, g, b [B,T,H,K] (k unit-norm, g ≤ 0); v, w [B,T,H,V]; state S [N,H,K,V]; output
[B,T,H,V] (no grouped value heads: FLA's chunk_gdn2 and naive_recurrent_gdn2 take one head count).
With b = w = β (broadcast) it is kda (:func:`lrnnspec.spec.mappings.kda_to_gdn2`).
Eigenvalues: with B = Diag(b), b ≥ 0, (I − k kᵀ B) D (D = Diag(e^{g})) is similar to
(I − B^{1/2} k kᵀ B^{1/2}) D, itself similar to D^{1/2} (I − B^{1/2} k kᵀ B^{1/2}) D^{1/2}: symmetric, of
norm ≤ 1 when bᵀ(k ⊙ k) ≤ 2 — real, in [−1, 1] for b ∈ [0, 2] ([0, 1] for b ∈ [0, 1]).
"""

import numpy as np

from ..family import LOG_GATE, SCALE, UNIT_KEYS, Domain, Family, Input, StateComponent, register
from ..numerics import erase_conditioning
from ._common import DELTA_RANGE, beta_domain, delta_chunk_flops, readout_q

WRITE_GATE = Domain(0.0, 2.0, "a write gate in [0, 2]")


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(x["g"])[..., :, None], s["S"])
    erase = ar.dot(decayed, ar.mul(x["b"], x["k"])[..., :, None], axis=-2)
    u = ar.sub(ar.mul(x["w"], x["v"]), erase)
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], u)))}


def conditioning(fam, arrays, dims, segments):
    """κ of the chunk's UT system: erase key b_t ⊙ k_t, write key k_t, key-channel gate g (read after the
    decay), :func:`lrnnspec.spec.numerics.erase_conditioning`."""
    return erase_conditioning(arrays["b"] * arrays["k"], arrays["k"], arrays["g"], dims["T"], segments)


FAMILY = register(Family(
    name="gdn2",
    recurrence="S_t = (I − k_t(b_t⊙k_t)ᵀ)·Diag(exp(g_t))·S_{t-1} + k_t(w_t⊙v_t)ᵀ;  o_t = scale·S_tᵀq_t;  "
               "g, b: [B,T,H,K];  w: [B,T,H,V];  ‖k_t‖ = 1",
    inputs=(
        Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
        Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
        Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
        Input("g", ("B", "T", "H", "K"), LOG_GATE, doc="key-channel log decay", role="log_gate"),
        Input("b", ("B", "T", "H", "K"), beta_domain, doc="key-channel erase gate", role="write_strength"),
        Input("w", ("B", "T", "H", "V"), WRITE_GATE, doc="value-channel write gate", role="write_gate"),
    ),
    state=(StateComponent("S", ("N", "H", "K", "V")),),
    chunk_flops=delta_chunk_flops,
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout_q, options=(SCALE, DELTA_RANGE, UNIT_KEYS),
    eigenvalues="of (I − k(b⊙k)ᵀ)·Diag(e^g): real, in [−1, 1] for b ∈ [0, 2] (similar to a symmetric "
                "contraction); [0, 1] for b ∈ [0, 1] (eigenvalue_range)",
    unit_keys=("k",), conditioning=conditioning,
    flops=lambda d: 8.0 * d["B"] * d["T"] * d["H"] * d["K"] * d["V"],
    source="FLA chunk_gdn2 / naive_recurrent_gdn2 (Gated DeltaNet 2)",
    rounding="d = exp(g) per key channel; S' = d·S (row-wise); r = Σ_k S'·(b·k); u = w·v − r; S ← S' + k⊗u "
             "(state); o = Σ_k S·(q·scale)",
))
