"""dplr (diagonal plus low rank) — S_t = Diag(e^{gk_t}) S_{t−1} + b_t (a_tᵀ S_{t−1}) + k_t v_tᵀ.

The low-rank term acts on the pre-decay state (FLA's order); o_t = scale · S_tᵀ q_t.
FLA ``chunk_dplr_delta_rule`` / ``fused_recurrent_dplr_delta_rule`` argument order for every form:
q, k, a, b, gk [B,T,H,K] (gk ≤ 0, key-channel log decay); v [B,T,H,V]; initial_state / final state
[N,H,K,V]. Returns (o [B,T,H,V] in v's dtype, final_state or None). RWKV-7 is q = r, gk = w,
a = −κ̂, b = κ̂ ⊙ iclr with scale 1.

Chunk form: :mod:`.dplr_core` (derivation there). ``chunk_size`` default 16, FLA's default too
(measured on CPU at T = 4096, K = V = 64, one thread, gates in the factored range: C = 8/16/32/64
≈ 124/80/72/80 ms forward; the pairwise scores cost O(C) per step, the chunk loop O(T/C) small
products; under strong gates the exact sub-chunk scores make larger C costlier).
"""

from __future__ import annotations

from .dplr_core import dplr_core
from .driver import Chunked, call
from .registry import register_forms

CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "a", "b", "gk")}, core=dplr_core)


def _run(form, q, k, v, a, b, gk, scale, initial_state, output_final_state, cu_seqlens, chunk_size=None):
    return call(form, "dplr", CHUNKED, dict(q=q, k=k, v=v, a=a, b=b, gk=gk), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def recurrent_dplr_delta_rule(q, k, v, a, b, gk, scale=None, initial_state=None, output_final_state=False,
                              cu_seqlens=None):
    return _run("recurrent", q, k, v, a, b, gk, scale, initial_state, output_final_state, cu_seqlens)


def chunk_dplr_delta_rule(q, k, v, a, b, gk, scale=None, initial_state=None, output_final_state=False,
                          cu_seqlens=None, chunk_size=16):
    return _run("chunk", q, k, v, a, b, gk, scale, initial_state, output_final_state, cu_seqlens, chunk_size)


FORMS = register_forms("dplr", {"recurrent": recurrent_dplr_delta_rule, "chunk": chunk_dplr_delta_rule})
