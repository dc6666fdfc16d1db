"""gdn2 (Gated DeltaNet 2) — S_t = (I − k_t (b_t ⊙ k_t)ᵀ) Diag(e^{g_t}) S_{t−1} + k_t (w_t ⊙ v_t)ᵀ.

FLA ``chunk_gdn2`` / ``naive_recurrent_gdn2``'s argument order for every form: q, k, g, b [B,T,H,K]
(k unit-norm, or ``use_qk_l2norm_in_kernel=True``; g ≤ 0 the key-channel log decay; b ∈ [0, 2] the
erase gate); v, w [B,T,H,V] (w the write gate); initial_state / final state [N,H,K,V]. Returns
(o [B,T,H,V] in v's dtype, final_state or None). FLA's in-kernel gate (``use_gate_in_kernel``,
``lower_bound``, ``safe_gate``) is not taken: g enters as the recurrence uses it.

Chunk: the erase-key delta core of :mod:`.kda` (derivation there) with erase key e = b ⊙ k, written
value w ⊙ v, write key k and the key-channel gate, the read after the decay.
"""

from __future__ import annotations

from .delta_rule import normalize_qk
from .driver import Chunked, call
from .kda import erase_core
from .registry import register_forms


def _inputs(x, p):
    return {"q": x["q"], "k": x["k"], "e": x["b"] * x["k"], "w": x["w"] * x["v"], "g": x["g"]}


def _core(xs, state, p, size):
    o, S = erase_core(xs["q"], xs["k"], xs["e"], xs["w"], xs["g"], state["S"], p.scale, size)
    return o, {"S": S}


CHUNKED = Chunked(prepare=_inputs, core=_core)


def _run(form, q, k, v, g, b, w, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, cu_seqlens,
         chunk_size=None):
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call(form, "gdn2", CHUNKED, dict(q=q, k=k, v=v, g=g, b=b, w=w), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def recurrent_gdn2(q, k, v, g, b, w, scale=None, initial_state=None, output_final_state=False,
                   use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, g, b, w, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


def chunk_gdn2(q, k, v, g, b, w, scale=None, initial_state=None, output_final_state=False,
               use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, g, b, w, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens, chunk_size)


FORMS = register_forms("gdn2", {"recurrent": recurrent_gdn2, "chunk": chunk_gdn2})
