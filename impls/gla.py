"""gla — S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t (FLA ``chunk_gla``).

q, k [B,T,H,K]; v [B,T,HV,V]; g [B,T,HV,K] ≤ 0 (key-channel log decay); initial_state / final
state [N,HV,K,V]. FLA's ``fused_recurrent_gla`` names the gate ``gk``; here every form calls it
``g``, in the same position. Returns (o [B,T,HV,V], final_state or None).
"""

from __future__ import annotations

from .driver import Chunked, call
from .gated_linear import key_gate_core
from .registry import register_forms

CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "g")}, core=key_gate_core)


def recurrent_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    return call("recurrent", "gla", CHUNKED, dict(q=q, k=k, v=v, g=g), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens)


def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None, chunk_size=64):
    return call("chunk", "gla", CHUNKED, dict(q=q, k=k, v=v, g=g), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def parallel_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    return call("parallel", "gla", CHUNKED, dict(q=q, k=k, v=v, g=g), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens)


FORMS = register_forms("gla", {"recurrent": recurrent_gla, "chunk": chunk_gla, "parallel": parallel_gla})
