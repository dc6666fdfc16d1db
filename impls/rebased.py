"""rebased — o_t = Σ_{s≤t} (scale·q_t·k_s)² v_s [/ (Σ_{s≤t} (scale·q_t·k_s)² + eps)].

FLA ``parallel_rebased``'s signature, (q, k, v, scale=None, use_norm=True), plus the state arguments of the
other forms: initial_state / final state (S2[, z2]) in the spec's order (FLA's rebased ops keep no state).
q, k [B,T,H,K]; v [B,T,H,V]. Returns (o [B,T,H,V] in v's dtype, the state tuple or None).

**Chunk** (:func:`rebased_core`): per chunk entering with the moments (S2, z2),
o_t = [q̃_tᵀ S2 q̃_t + Σ_{s≤t} (q̃_t·k_s)² v_s] / [q̃_tᵀ z2 q̃_t + Σ_{s≤t} (q̃_t·k_s)² + eps], the moments
advancing by the chunk's Σ (k ⊗ k) vᵀ and Σ k ⊗ k (padded steps have k = 0 and add nothing) — a prefix
sum over chunks. Cost per chunk O(C²(K + V) + C·K²·V).
"""

from __future__ import annotations

import torch

from .based import _prefix
from .chunks import causal_mask, from_chunks, to_chunks
from .driver import Chunked, call
from .registry import register_forms


def rebased_core(xs, state, p, size):
    """The chunk form (module docstring). xs: q, k [N,T,H,K], v [N,T,H,V]; state the moments."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))                    # [N,H,NC,C,·]
    q = q * p.scale
    a = q @ k.transpose(-1, -2)
    f = (a * a).masked_fill(~causal_mask(size, q.device), 0.0)
    kk = k[..., :, None] * k[..., None, :]                                           # [N,H,NC,C,K,K]
    ups = {"S2": torch.einsum("...cij,...cv->...ijv", kk, v)}
    if p.use_norm:
        ups["z2"] = kk.sum(-3)
    entering, final = {}, {}
    for name, up in ups.items():
        entering[name], final[name] = _prefix(state[name], up)
    o = torch.einsum("...ci,...cj,...ijv->...cv", q, q, entering["S2"]) + f @ v
    if p.use_norm:
        den = torch.einsum("...ci,...cj,...ij->...c", q, q, entering["z2"])[..., None] + f.sum(-1, keepdim=True)
        o = o / (den + p.eps)
    return from_chunks(o), final


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v")}, core=rebased_core)


def _run(form, q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens, chunk_size=None):
    return call(form, "rebased", CHUNKED, dict(q=q, k=k, v=v), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size, use_norm=use_norm)


def recurrent_rebased(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False,
                      cu_seqlens=None):
    return _run("recurrent", q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens)


def chunk_rebased(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False,
                  cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens, chunk_size)


def parallel_rebased(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False,
                     cu_seqlens=None):
    return _run("parallel", q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens)


FORMS = register_forms("rebased", {"recurrent": recurrent_rebased, "chunk": chunk_rebased,
                                   "parallel": parallel_rebased})
