"""gsa (Gated Slot Attention, Zhang et al. 2024; ABC with gates) — two chained gated scans over NS memory slots
with a softmax between them:

    H^k_t = H^k_{t−1} Diag(e^{g_t}) + k_t s_tᵀ          [K, NS]   (slot keys)
    a_t   = softmax(H^{kᵀ}_t (scale · q_t))             [NS]      (the read's slot weights)
    H^v_t = Diag(e^{g_t}) H^v_{t−1} + s_t v_tᵀ          [NS, V]   (slot values)
    o_t   = H^{vᵀ}_t a_t

Shapes: q, k [B,T,H,K]; v [B,T,H,V]; s [B,T,H,NS] (the slot write weights: the first scan's values, the
second's keys); g [B,T,H,NS] ≤ 0 (per-slot log decay of both states); states h_k [N,H,K,NS], h_v [N,H,NS,V];
output [B,T,H,V] (FLA ``chunk_gsa`` / ``fused_recurrent_gsa`` / ``naive_recurrent_gsa``; NS is the number of
slots M). FLA also takes ``g=None``, deriving the gates from s (z = logcumsumexp(s) over time,
g_t = z_{t−1} − z_t, s ← e^{s − z}: ABC's normalization) — an input transformation, not this definition; and
query heads that are a multiple of the key heads (not taken here: one H).
The softmax: m = max over slots (exact), e = exp(logits − m), a = e / Σ e.
Eigenvalues: e^{g} ∈ [0, 1] per slot (log-space gate: no negative decay); the read-out is not linear in h_k.
"""

from ..family import LOG_GATE, SCALE, Family, Input, StateComponent, register


def step(ar, s, x, p):
    d = ar.exp(x["g"])                                            # [N, H, NS]
    return {"h_k": ar.state(ar.add(ar.mul(s["h_k"], d[..., None, :]), ar.outer(x["k"], x["s"]))),
            "h_v": ar.state(ar.add(ar.mul(d[..., :, None], s["h_v"]), ar.outer(x["s"], x["v"])))}


def softmax(ar, z):
    """softmax over the last axis: m = max (exact, left to right), e = exp(z − m), a = e / Σ e (left to right)."""
    m = z[..., 0]
    for i in range(1, z.shape[-1]):
        m = ar.maximum(m, z[..., i])
    e = ar.exp(ar.sub(z, m[..., None]))
    return ar.div(e, ar.sum(e, axis=-1)[..., None])


def readout(ar, s, x, p):
    logits = ar.dot(s["h_k"], ar.mul(x["q"], p.scale)[..., :, None], axis=-2)      # [N, H, NS]
    return ar.dot(s["h_v"], softmax(ar, logits)[..., :, None], axis=-2)           # [N, H, V]


FAMILY = register(Family(
    name="gsa",
    recurrence="H^k_t = H^k_{t-1}Diag(e^{g_t}) + k_t s_tᵀ;  H^v_t = Diag(e^{g_t})H^v_{t-1} + s_t v_tᵀ;  "
               "o_t = H^v_tᵀ softmax(H^k_tᵀ (scale·q_t))",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
            Input("s", ("B", "T", "H", "NS"), doc="slot write weights (NS slots)", role="value"),
            Input("g", ("B", "T", "H", "NS"), LOG_GATE, doc="per-slot log decay", role="log_gate")),
    state=(StateComponent("h_k", ("N", "H", "K", "NS"), "slot keys: decayed Σ k sᵀ"),
           StateComponent("h_v", ("N", "H", "NS", "V"), "slot values: decayed Σ s vᵀ")),
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout, options=(SCALE,),
    eigenvalues="e^g ∈ [0, 1] per slot (log-space gate: no negative decay); the read-out is not linear in h_k",
    flops=lambda d: 4.0 * d["B"] * d["T"] * d["H"] * d["NS"] * (d["K"] + d["V"] + 1.0),
    source="Zhang et al. 2024 (Gated Slot Attention); FLA chunk_gsa / fused_recurrent_gsa / naive_recurrent_gsa",
    rounding="d = exp(g); h_k ← h_k·d + k⊗s, h_v ← d·h_v + s⊗v (states); z = Σ_k h_k·(q·scale); m = max z; "
             "e = exp(z − m); a = e / Σ e; o = Σ_slots h_v·a",
))
