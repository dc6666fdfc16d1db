"""simple_gla — S_t = e^{g_t} S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t (FLA ``chunk_simple_gla``).

q, k [B,T,H,K]; v [B,T,HV,V]; g [B,T,HV] ≤ 0, or a constant ``g_gamma`` [HV] (give one);
initial_state / final state [N,HV,K,V]. Returns (o [B,T,HV,V], final_state or None).
"""

from __future__ import annotations

from lrnnspec.spec.errors import SpecError

from .driver import Chunked, call
from .gated_linear import scalar_gate_core
from .registry import register_forms

CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "g")}, core=scalar_gate_core)


def _gate(g, g_gamma, v):
    if (g is None) == (g_gamma is None):
        raise SpecError("g", "give exactly one of g [B,T,HV] and g_gamma [HV]")
    if g is not None:
        return g
    if getattr(g_gamma, "dim", lambda: -1)() != 1 or g_gamma.shape[0] != v.shape[2]:
        raise SpecError("g_gamma", f"must be a tensor of shape [HV] = [{v.shape[2]}], "
                                   f"got {tuple(getattr(g_gamma, 'shape', ()))}")
    return g_gamma.to(v.device).expand(v.shape[0], v.shape[1], v.shape[2])


def recurrent_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None, output_final_state=False,
                         cu_seqlens=None):
    return call("recurrent", "simple_gla", CHUNKED, dict(q=q, k=k, v=v, g=_gate(g, g_gamma, v)), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens)


def chunk_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None, output_final_state=False,
                     cu_seqlens=None, chunk_size=64):
    return call("chunk", "simple_gla", CHUNKED, dict(q=q, k=k, v=v, g=_gate(g, g_gamma, v)), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def parallel_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None, output_final_state=False,
                        cu_seqlens=None):
    return call("parallel", "simple_gla", CHUNKED, dict(q=q, k=k, v=v, g=_gate(g, g_gamma, v)), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens)


FORMS = register_forms("simple_gla", {"recurrent": recurrent_simple_gla, "chunk": chunk_simple_gla, "parallel": parallel_simple_gla})
