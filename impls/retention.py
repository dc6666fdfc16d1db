"""retention (RetNet) — S_t = γ_h S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t (FLA ``chunk_retention``).

q, k [B,T,H,K]; v [B,T,HV,V]; γ_h = 1 − 2^(−5−h) per value head unless ``gamma`` [HV] is given
(a keyword FLA lacks); initial_state / final state [N,HV,K,V]. Runs the scalar-gate core with
g_t = log γ_h. Returns (o [B,T,HV,V], final_state or None).
"""

from __future__ import annotations

import torch

from .driver import Chunked, call
from .gated_linear import scalar_gate_core
from .registry import register_forms


def _prepare(x, p):
    g = torch.log(p.gamma).expand(*x["v"].shape[:3])
    return {"q": x["q"], "k": x["k"], "v": x["v"], "g": g}


CHUNKED = Chunked(prepare=_prepare, core=scalar_gate_core)


def recurrent_retention(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None, *,
                        gamma=None):
    return call("recurrent", "retention", CHUNKED, dict(q=q, k=k, v=v, gamma=gamma), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens)


def chunk_retention(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None, *,
                    gamma=None, chunk_size=64):
    return call("chunk", "retention", CHUNKED, dict(q=q, k=k, v=v, gamma=gamma), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def parallel_retention(q, k, v, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None, *,
                       gamma=None):
    return call("parallel", "retention", CHUNKED, dict(q=q, k=k, v=v, gamma=gamma), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens)


FORMS = register_forms("retention", {"recurrent": recurrent_retention, "chunk": chunk_retention, "parallel": parallel_retention})
