"""rwkv6 — S_t = Diag(e^{w_t}) S_{t−1} + k_t v_tᵀ, o_t = scale · (S_{t−1} + Diag(u) k_t v_tᵀ)ᵀ q_t.

FLA ``chunk_rwkv6`` / ``fused_recurrent_rwkv6``'s argument order for every form (FLA's first argument is
named ``r``, the receptance; here ``q``, as the spec and FLA's naive reference name it): q, k, w [B,T,H,K]
(w ≤ 0, the key-channel log decay); v [B,T,H,V]; u [H,K] (the bonus); initial_state / final state
[N,H,K,V]. Returns (o [B,T,H,V] in v's dtype, final_state or None).

**Chunk** (:func:`rwkv6_core`). One chunk of C steps entering with S₀, chunk-local cumulative gates
G_t = Σ_{j≤t} w_j and the read's R_t = G_{t−1} = G_t − w_t (S_{t−1} has not seen w_t):

    o_t  = scale · [(e^{R_t} ⊙ q_t)ᵀ S₀ + Σ_{s<t} A_ts v_s + (q_tᵀ (u ⊙ k_t)) v_t],
           A_ts = Σ_c q_tc k_sc e^{R_tc − G_sc}   (s < t: every exponent ≤ 0)
    S_C  = e^{G_C} ⊙ S₀ + Σ_s (e^{G_C − G_s} ⊙ k_s) v_sᵀ

A is the strictly lower part of gla's scores with the read shifted by one step: with q̂_r = q_{r+1},
Â_rs = Σ_c q̂_rc k_sc e^{G_rc − G_sc} (s ≤ r, :func:`.gated_linear.key_gate_scores`: factored when
the chunk's total decay is within float32's range, exact sub-chunk factors otherwise) and
A_ts = Â_{t−1,s}. The diagonal is the bonus, not a decayed score. Chunks are coupled through S₀
(:func:`.chunks.scan_chunk_states`). Cost per chunk O(C²K + C²V + C·K·V).
"""

from __future__ import annotations

import torch

from .chunks import from_chunks, scan_chunk_states, to_chunks
from .driver import Chunked, call
from .gated_linear import key_gate_scores
from .registry import register_forms


def rwkv6_core(xs, state, p, size):
    """The chunk form (module docstring). xs: q, k, w [N, T, H, K], v [N, T, H, V]; p.u [H, K];
    state S₀ [N, H, K, V]; T % size == 0. Returns (o [N, T, H, V], {"S": final state})."""
    q, k, v, w = (to_chunks(xs[n], size) for n in ("q", "k", "v", "w"))         # [N,H,NC,C,·]
    q = q * p.scale
    G = w.cumsum(-2)
    nxt = torch.cat([q[..., 1:, :], q.new_zeros((*q.shape[:-2], 1, q.shape[-1]))], dim=-2)   # q̂_r = q_{r+1}
    hat = key_gate_scores(nxt, k, G)
    A = torch.cat([hat.new_zeros((*hat.shape[:-2], 1, size)), hat[..., :-1, :]], dim=-2)
    bonus = (q * p.u[None, :, None, None, :] * k).sum(-1, keepdim=True)            # [N,H,NC,C,1]
    last = G[..., -1:, :]
    decay = torch.exp(last).transpose(-1, -2)                                      # [N,H,NC,K,1]
    entering, final = scan_chunk_states(state["S"], decay, (k * torch.exp(last - G)).transpose(-1, -2) @ v)
    o = A @ v + bonus * v + (q * torch.exp(G - w)) @ entering
    return from_chunks(o), {"S": final}


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "w")}, core=rwkv6_core)


def _run(form, q, k, v, w, u, scale, initial_state, output_final_state, cu_seqlens, chunk_size=None):
    return call(form, "rwkv6", CHUNKED, dict(q=q, k=k, v=v, w=w, u=u), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def recurrent_rwkv6(q, k, v, w, u, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, w, u, scale, initial_state, output_final_state, cu_seqlens)


def chunk_rwkv6(q, k, v, w, u, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                chunk_size=64):
    return _run("chunk", q, k, v, w, u, scale, initial_state, output_final_state, cu_seqlens, chunk_size)


FORMS = register_forms("rwkv6", {"recurrent": recurrent_rwkv6, "chunk": chunk_rwkv6})
