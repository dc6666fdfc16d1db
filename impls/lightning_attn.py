"""lightning_attn — S_t = e^{g_h} S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t, g_h = −(8/H)(1 − l/L)·h.

FLA ``chunk_lightning_attn`` / ``fused_recurrent_lightning_attn``'s signature for every form: q, k
[B,T,H,K]; v [B,T,H,V]; ``layer_idx`` l and ``num_layers`` L (0 ≤ l ≤ L; FLA requires them, here left out
they mean the first layer, whose decays −8h/H do not depend on L); initial_state / final state
[N,H,K,V]; and, keyword-only (FLA's lightning functions lack it), ``g_gamma`` [H], the per-head log decays
in place of the layer's schedule. Returns (o [B,T,H,V] in v's dtype, final_state or None).
The chunk form runs the scalar-gate core of :mod:`.gated_linear` with g_t = g_h.
"""

from __future__ import annotations

from .driver import Chunked, call
from .gated_linear import scalar_gate_core
from .registry import register_forms


def _prepare(x, p):
    v = x["v"]
    return {"q": x["q"], "k": x["k"], "v": v, "g": p.g_gamma.expand(*v.shape[:3])}


CHUNKED = Chunked(prepare=_prepare, core=scalar_gate_core)


def _run(form, q, k, v, g_gamma, layer_idx, num_layers, scale, initial_state, output_final_state, cu_seqlens,
         chunk_size=None):
    return call(form, "lightning_attn", CHUNKED, dict(q=q, k=k, v=v, g_gamma=g_gamma), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size, layer_idx=layer_idx, num_layers=num_layers)


def recurrent_lightning_attn(q, k, v, layer_idx=None, num_layers=None, scale=None, initial_state=None,
                             output_final_state=False, cu_seqlens=None, *, g_gamma=None):
    return _run("recurrent", q, k, v, g_gamma, layer_idx, num_layers, scale, initial_state, output_final_state,
                cu_seqlens)


def chunk_lightning_attn(q, k, v, layer_idx=None, num_layers=None, scale=None, initial_state=None,
                         output_final_state=False, cu_seqlens=None, chunk_size=64, *, g_gamma=None):
    return _run("chunk", q, k, v, g_gamma, layer_idx, num_layers, scale, initial_state, output_final_state,
                cu_seqlens, chunk_size)


FORMS = register_forms("lightning_attn", {"recurrent": recurrent_lightning_attn, "chunk": chunk_lightning_attn})
