"""log_linear_attn — o_t = scale · Σ_{s≤t} (q_t·k_s) e^{G_t − G_s} λ_t^{(ℓ(t,s))} v_s with Fenwick levels
ℓ(t,s) = bit_length(t ⊕ s) (the spec's definition run by torch: one state per level, merged as the position
advances; no chunk form yet).

FLA ``chunk_log_linear_attn``'s signature: q, k [B,T,H,K] (FLA's G query/key heads); v [B,T,HV,V]; g [B,T,HV]
≤ 0; level_scales [B,T,HV,L] (levels ≥ L weigh 0); ``initial_state``; ``output_final_state``; ``cu_seqlens``;
``scale`` (default 1, None → K^-1/2). The state is the spec's: ``(levels [N,HV,L,K,V], position [N,HV])`` — the
per-level matrices and the tokens seen — passed and returned as a tuple; FLA's ``LogLinearAttentionState``
(the last partial chunk's raw q, k, v, g kept beside a chunk-level state) is not taken. Returns
(o [B,T,HV,V] in v's dtype, (levels, position) or None).
"""

from __future__ import annotations

from .driver import call
from .registry import register_forms


def recurrent_log_linear_attn(q, k, v, g, level_scales, initial_state=None, output_final_state=False,
                              cu_seqlens=None, scale=1.0):
    return call("recurrent", "log_linear_attn", None, dict(q=q, k=k, v=v, g=g, level_scales=level_scales),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens)


FORMS = register_forms("log_linear_attn", {"recurrent": recurrent_log_linear_attn})
