"""rwkv6 (RWKV-6 "Finch") — GLA read before the update, with a bonus for the current token:

    S_t = Diag(e^{w_t}) S_{t−1} + k_t v_tᵀ,     o_t = scale · (S_{t−1} + Diag(u) k_t v_tᵀ)ᵀ q_t
        = scale · [S_{t−1}ᵀ q_t + (q_tᵀ (u ⊙ k_t)) v_t].

Shapes: q (RWKV's receptance r), k, w [B,T,H,K] (w ≤ 0: the key-channel log decay); v [B,T,H,V];
u [H,K] (the bonus, per head and key channel, not per token); state S [N,H,K,V]; output [B,T,H,V]
(no grouped value heads: FLA's chunk_rwkv6, fused_recurrent_rwkv6 and naive_recurrent_rwkv6 take one
head count). The read-out sees S_{t−1} (``read_before_update``): the current token reaches its own
output only through the bonus, weighted by u instead of by the decay.
Each token is two gla steps (:func:`lrnnspec.spec.mappings.rwkv6_to_gla`): one with no decay writing
(u ⊙ k_t) v_tᵀ, read by q_t, then one with gate w_t writing ((1 − e^{w_t} ⊙ u) ⊙ k_t) v_tᵀ, which
leaves exactly S_t.
Eigenvalues: e^{w} ∈ [0, 1] per key channel; log-space, cannot be negative (the bonus is in the read,
not in the transition).
"""

from ..family import LOG_GATE, SCALE, Family, Input, StateComponent, register
from ._common import gated_linear_chunk_flops


def step(ar, s, x, p):
    decayed = ar.mul(ar.exp(x["w"])[..., :, None], s["S"])
    return {"S": ar.state(ar.add(decayed, ar.outer(x["k"], x["v"])))}


def readout(ar, s, x, p):
    """o = S_{t−1}ᵀ (scale · q) + ((scale · q) · (u ⊙ k)) v: s is the state before the step."""
    qs = ar.mul(x["q"], p.scale)
    bonus = ar.dot(ar.mul(qs, p.u), x["k"], axis=-1)
    return ar.add(ar.dot(s["S"], qs[..., :, None], axis=-2), ar.mul(bonus[..., None], x["v"]))


FAMILY = register(Family(
    name="rwkv6",
    recurrence="S_t = Diag(exp(w_t))·S_{t-1} + k_t v_tᵀ;  o_t = scale·(S_{t-1} + Diag(u)k_t v_tᵀ)ᵀq_t;  "
               "w: [B,T,H,K] ≤ 0;  u: [H,K]",
    inputs=(
        Input("q", ("B", "T", "H", "K"), doc="receptance (queries)", role="query"),
        Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
        Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
        Input("w", ("B", "T", "H", "K"), LOG_GATE, doc="key-channel log decay", role="log_gate"),
        Input("u", ("H", "K"), doc="bonus of the current token's write in its own read-out", role="bonus"),
    ),
    state=(StateComponent("S", ("N", "H", "K", "V")),),
    chunk_flops=gated_linear_chunk_flops,
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout, options=(SCALE,), read_before_update=True,
    eigenvalues="exp(w) ∈ [0, 1] per key channel; log-space, cannot be negative",
    flops=lambda d: 6.0 * d["B"] * d["T"] * d["H"] * d["K"] * d["V"],
    source="Peng et al. 2024 (Eagle and Finch: RWKV-5/6); FLA chunk_rwkv6 / fused_recurrent_rwkv6 / "
           "naive_recurrent_rwkv6",
    rounding="q' = q·scale; b = Σ_k (q'·u)·k; o = Σ_k S_{t−1}·q' + b·v; d = exp(w); S ← d·S + k⊗v (state)",
))
