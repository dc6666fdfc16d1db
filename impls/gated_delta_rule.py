"""gated_delta_rule (Gated DeltaNet) — S_t = (I − β_t k_t k_tᵀ) e^{g_t} S_{t−1} + β_t k_t v_tᵀ.

The decay comes before the error term (FLA's order): u_t = β_t (v_t − (e^{g_t} S_{t−1})ᵀ k_t).
FLA ``chunk_gated_delta_rule``'s argument order for every form (FLA's fused_recurrent puts gk/gv
between g and beta, the naive reference swaps g and beta — not here): q, k [B,T,H,K] (k unit-norm,
or ``use_qk_l2norm_in_kernel=True``); v [B,T,HV,V] (HV % H == 0); g [B,T,HV] ≤ 0 (log decay);
beta [B,T,HV] ∈ [0, 2]; initial_state / final state [N,HV,K,V] (FLA's default layout, not
``state_v_first``). Returns (o [B,T,HV,V] in v's dtype, final_state or None). Chunk: the UT
transform of :mod:`.delta` with the gate; parallel: the same core with one chunk.
"""

from __future__ import annotations

from .delta import delta_rule_core
from .delta_rule import normalize_qk
from .driver import Chunked, call
from .registry import register_forms

CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "beta", "g")}, core=delta_rule_core)


def _run(form, q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, cu_seqlens,
         chunk_size=None):
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call(form, "gated_delta_rule", CHUNKED, dict(q=q, k=k, v=v, g=g, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def recurrent_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                               use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


def chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                           use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens, chunk_size)


def parallel_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                              use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("parallel", q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


FORMS = register_forms("gated_delta_rule", {"recurrent": recurrent_gated_delta_rule, "chunk": chunk_gated_delta_rule,
         "parallel": parallel_gated_delta_rule})
