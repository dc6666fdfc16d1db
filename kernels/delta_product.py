"""delta_product (Gated DeltaProduct) in Triton — n_h generalized Householder steps per token.

Per token t: S ← e^{g_t} S (when g is given), then for j = 0..n_h−1
S ← (I − β_{t,j} k_{t,j} k_{t,j}ᵀ) S + β_{t,j} k_{t,j} v_{t,j}ᵀ; o_t = scale · S_tᵀ q_t.

The gated delta rule's kernels (:mod:`.gated_delta_rule`) on the interleaved micro-step sequence
(length T·n_h, index t·n_h + j) with g_t at micro-step 0 and 0 at the others, and a **read-out
stride** n_h inside the kernels (``EVERY=n_h``): q has chunk_size rows per chunk of chunk_size·n_h
micro-steps, and q row r reads the state after micro-step r·n_h + n_h − 1 of the chunk (G and the
causal mask at that step). No output is computed at the other micro-steps.

FLA ``chunk_gated_delta_product``'s signature (fla-core 0.6.0): q [B,T,H,K]; k [B,T·n_h,H,K]
(unit-norm, or ``use_qk_l2norm_in_kernel``), v [B,T·n_h,HV,V], beta [B,T·n_h,HV] ∈ [0, 2];
g [B,T,HV] ≤ 0 or None; ``num_householder`` = n_h (None infers it from k and q);
initial_state / final state [N,HV,K,V]; ``cu_seqlens`` counts tokens. ``chunk_size`` counts
**tokens** ∈ {16, 32, 64}: one kernel chunk is chunk_size·n_h micro-steps (padded to a power-of-two
block and masked when n_h is not a power of two). The default ``None`` takes the largest of
64, 32, 16 tokens with chunk_size·n_h ≤ 64 micro-steps (16 when n_h > 4), FLA's 64-step UT blocks.
Returns (o [B,T,HV,V] in v's dtype, final state (float32) or None). Validation, GVA, varlen
and padding are the shared driver's (:mod:`lrnnspec.impls.driver`), n_h checks those of
:mod:`lrnnspec.impls.delta_product`. Precision contract ``fp32``.
"""

from __future__ import annotations

from lrnnspec.impls.delta_product import _check_householder, _prepare
from lrnnspec.impls.delta_rule import normalize_qk
from lrnnspec.impls.driver import Chunked, call, check_chunk_size, default_chunk_size
from lrnnspec.impls.registry import register_forms

from .gated_delta_rule import CHUNK_SIZES, CONTRACTS, gated_delta_chunk

__all__ = ["chunk_gated_delta_product", "FORMS", "CONTRACTS"]


def _core(xs, state, p, size):
    k = xs["k"]
    n, length = k.shape[2], k.shape[1]

    def flat(t):
        return None if t is None else t.reshape(t.shape[0], length * n, *t.shape[3:])

    o, S = gated_delta_chunk(xs["q"], flat(k), flat(xs["v"]), flat(xs.get("g")), flat(xs["beta"]), state["S"],
                             p.scale, size * n, every=n)
    return o, {"S": S}


CHUNKED = Chunked(prepare=_prepare, core=_core)


def chunk_gated_delta_product(q, k, v, g=None, beta=None, num_householder=None, scale=None, initial_state=None,
                              output_final_state=False, use_qk_l2norm_in_kernel=False, cu_seqlens=None,
                              chunk_size=None):
    num_householder = _check_householder(q, k, num_householder)
    if chunk_size is None:
        chunk_size = default_chunk_size(num_householder, CHUNK_SIZES)
    check_chunk_size(chunk_size, CHUNK_SIZES)
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "delta_product", CHUNKED, dict(q=q, k=k, v=v, beta=beta, g=g), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


FORMS = register_forms("delta_product", {"chunk": chunk_gated_delta_product}, contracts=CONTRACTS)
