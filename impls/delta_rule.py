"""delta_rule (DeltaNet) — S_t = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

FLA ``chunk_delta_rule`` / ``fused_recurrent_delta_rule`` / ``parallel_delta_rule``, one argument
order for every form: q, k [B,T,H,K] (k unit-norm, or ``use_qk_l2norm_in_kernel=True``);
v [B,T,HV,V] (HV % H == 0, grouped value heads); beta [B,T,HV] ∈ [0, 2]; initial_state / final
state [N,HV,K,V]. Returns (o [B,T,HV,V] in v's dtype, final_state (float32/float64) or None).
The chunk form is the UT transform of :mod:`.delta`; the parallel form is that core with one chunk.
"""

from __future__ import annotations

from lrnnspec.spec.errors import SpecError

from .delta import delta_rule_core, l2norm
from .driver import Chunked, call
from .registry import register_forms

CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "beta")}, core=delta_rule_core)


def normalize_qk(q, k, use_qk_l2norm_in_kernel):
    """FLA's ``use_qk_l2norm_in_kernel``: L2-normalize q and k (differentiably) before binding."""
    if not isinstance(use_qk_l2norm_in_kernel, bool):
        raise SpecError("use_qk_l2norm_in_kernel", f"must be True or False, got {use_qk_l2norm_in_kernel!r}")
    return (l2norm(q), l2norm(k)) if use_qk_l2norm_in_kernel else (q, k)


def _run(form, q, k, v, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, cu_seqlens,
         chunk_size=None):
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call(form, "delta_rule", CHUNKED, dict(q=q, k=k, v=v, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def recurrent_delta_rule(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                         use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


def chunk_delta_rule(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                     use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens, chunk_size)


def parallel_delta_rule(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                        use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("parallel", q, k, v, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


FORMS = register_forms("delta_rule", {"recurrent": recurrent_delta_rule, "chunk": chunk_delta_rule, "parallel": parallel_delta_rule})
