"""gsa — gated slot attention: H^k_t = H^k_{t−1} Diag(e^{g_t}) + k_t s_tᵀ, H^v_t = Diag(e^{g_t}) H^v_{t−1} + s_t v_tᵀ,
o_t = H^{vᵀ}_t softmax(H^{kᵀ}_t (scale·q_t)) (the spec's definition run by torch; no chunk form yet).

FLA ``fused_recurrent_gsa`` / ``naive_recurrent_gsa``'s signature: q, k [B,T,H,K]; v [B,T,H,V]; s, g
[B,T,H,M] (M slots; g ≤ 0 required here — FLA's g=None, gates derived from s, is not taken); scale (None →
K^-1/2); initial_state / final state the pair (h_k [N,H,K,M], h_v [N,H,M,V]); cu_seqlens. Returns
(o [B,T,H,V] in v's dtype, (h_k, h_v) or None).
"""

from __future__ import annotations

from lrnnspec.spec.errors import SpecError

from .driver import call
from .registry import register_forms


def recurrent_gsa(q, k, v, s, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    if g is None:
        raise SpecError("g", "the per-slot log decay is required (FLA's g=None, gates derived from s, is not taken)")
    return call("recurrent", "gsa", None, dict(q=q, k=k, v=v, s=s, g=g), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens)


FORMS = register_forms("gsa", {"recurrent": recurrent_gsa})
