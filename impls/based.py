"""based — o_t = Σ_{s≤t} f(scale·q_t·k_s) v_s [/ (Σ_{s≤t} f(scale·q_t·k_s) + eps)], f(a) = 1 + a + a²/2.

FLA ``parallel_based`` / ``fused_chunk_based``'s signature, (q, k, v, scale=None, use_norm=True), plus the
state arguments of the other forms: initial_state / final state the moments (s0, S1, S2[, z0, z1, z2]) in
the spec's order (FLA's based ops keep no state). q, k [B,T,H,K]; v [B,T,H,V]. Returns (o [B,T,H,V] in v's
dtype, the state tuple or None).

**Chunk** (:func:`based_core`). Per chunk of C steps entering with the moments M:

    o_t = [n(M, q̃_t) + Σ_{s≤t} f(q̃_t·k_s) v_s] / [d(M, q̃_t) + Σ_{s≤t} f(q̃_t·k_s) w_s + eps]

(n, d the spec's Taylor read of the moments; w_s = 1 on real steps and 0 on padding, so padded steps add
nothing to the count z0), and the moments advance by the chunk's sums Σ v, Kᵀ V, Σ (k ⊗ k) vᵀ (and Σ w,
Σ k, Σ k ⊗ k) — a prefix sum over chunks. Cost per chunk O(C²(K + V) + C·K²·V).
"""

from __future__ import annotations

import torch

from .chunks import causal_mask, from_chunks, to_chunks
from .driver import Chunked, call
from .registry import register_forms


def _read(m0, m1, m2, q):
    """m0 + q m1 + ½ (q ⊗ q)·m2 per row of q [.., C, K]; m0 [.., V], m1 [.., K, V], m2 [.., K, K, V]."""
    return m0[..., None, :] + q @ m1 + 0.5 * torch.einsum("...ci,...cj,...ijv->...cv", q, q, m2)


def _prefix(initial, updates):
    """Entering moments of each chunk: initial + Σ of the earlier chunks' updates (axis 2)."""
    if updates.shape[2] == 0:
        return updates, initial
    total = torch.cumsum(updates, dim=2)
    entering = torch.cat([torch.zeros_like(updates[:, :, :1]), total[:, :, :-1]], dim=2) + initial[:, :, None]
    return entering, initial + total[:, :, -1]


def based_core(xs, state, p, size):
    """The chunk form (module docstring). xs: q, k [N,T,H,K], v [N,T,H,V], w [N,T,H]; state the moments."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))                    # [N,H,NC,C,·]
    w = to_chunks(xs["w"][..., None], size)                                          # [N,H,NC,C,1]
    q = q * p.scale
    a = q @ k.transpose(-1, -2)
    f = (1.0 + a + 0.5 * a * a).masked_fill(~causal_mask(size, q.device), 0.0)      # [N,H,NC,C,C]
    kk = k[..., :, None] * k[..., None, :]                                           # [N,H,NC,C,K,K]
    ups = {"s0": v.sum(-2), "S1": k.transpose(-1, -2) @ v, "S2": torch.einsum("...cij,...cv->...ijv", kk, v)}
    if p.use_norm:
        ups |= {"z0": w.sum((-2, -1)), "z1": (w * k).sum(-2), "z2": (w[..., None] * kk).sum(-3)}
    entering, final = {}, {}
    for name, up in ups.items():
        entering[name], final[name] = _prefix(state[name], up)
    o = _read(entering["s0"], entering["S1"], entering["S2"], q) + f @ v
    if p.use_norm:
        den = _read(entering["z0"][..., None], entering["z1"][..., None], entering["z2"][..., None], q) + f @ w
        o = o / (den + p.eps)
    return from_chunks(o), final


CHUNKED = Chunked(prepare=lambda x, p: {"q": x["q"], "k": x["k"], "v": x["v"],
                                        "w": torch.ones_like(x["v"][..., 0])}, core=based_core)


def _run(form, q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens, chunk_size=None):
    return call(form, "based", CHUNKED, dict(q=q, k=k, v=v), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size, use_norm=use_norm)


def recurrent_based(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False,
                    cu_seqlens=None):
    return _run("recurrent", q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens)


def chunk_based(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False, cu_seqlens=None,
                chunk_size=64):
    return _run("chunk", q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens, chunk_size)


def parallel_based(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False, cu_seqlens=None):
    return _run("parallel", q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens)


FORMS = register_forms("based", {"recurrent": recurrent_based, "chunk": chunk_based, "parallel": parallel_based})
