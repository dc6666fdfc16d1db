"""delta_rule (DeltaNet) in Triton — S_t = (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

The gated delta rule's kernels (:mod:`.gated_delta_rule`) with no gate (``HAS_G=False``: no
cumulative gate, Γ = the causal mask). Per chunk of C steps entering with S₀, A_ts = β_t (k_t·k_s)
(s < t), Ā = (I + A)⁻¹ by forward substitution, W = Ā (β ⊙ K), U = Ā (β ⊙ V) − W S₀,
S_C = S₀ + Kᵀ U, O = scale · [Q S₀ + ((Q Kᵀ) ⊙ causal) U].

FLA ``chunk_delta_rule``'s signature: q, k [B,T,H,K] (k unit-norm, or ``use_qk_l2norm_in_kernel``);
v [B,T,HV,V] (HV % H == 0); beta [B,T,HV] ∈ [0, 2]; initial_state / final state [N,HV,K,V];
``chunk_size`` ∈ {16, 32, 64}. Returns (o [B,T,HV,V] in v's dtype, final state (float32) or None).
Validation, GVA, varlen and padding are the shared driver's (:mod:`lrnnspec.impls.driver`).
Precision contract ``fp32``: inputs up-cast to fp32, fp32 state, fp32 ieee dot products.
"""

from __future__ import annotations

from lrnnspec.impls.delta_rule import normalize_qk
from lrnnspec.impls.driver import Chunked, call, check_chunk_size
from lrnnspec.impls.registry import register_forms

from .gated_delta_rule import CHUNK_SIZES, CONTRACTS, delta_core

__all__ = ["chunk_delta_rule", "FORMS", "CONTRACTS"]

CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "beta")}, core=delta_core)


def chunk_delta_rule(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                     use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    check_chunk_size(chunk_size, CHUNK_SIZES)
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "delta_rule", CHUNKED, dict(q=q, k=k, v=v, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


FORMS = register_forms("delta_rule", {"chunk": chunk_delta_rule}, contracts=CONTRACTS)
