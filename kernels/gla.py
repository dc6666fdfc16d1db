"""gla — Triton chunkwise GLA: S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

q, k [B,T,H,K]; v [B,T,HV,V]; g [B,T,HV,K] ≤ 0 (per-key log decay, FLA's ``gk``); initial_state /
final state [N,HV,K,V] float32; ``cu_seqlens`` int64 [N+1] (B = 1) packs N sequences. Returns
(o [B,T,HV,V] in v's dtype, final_state or None); differentiable in q, k, v, g and initial_state.

Per chunk of C ∈ {16, 32, 64} steps, with G_i = Σ_{j≤i} g_j (chunk-local) and h the entering state:

    o_i   = scale · [(q_i ⊙ e^{G_i})ᵀ h + Σ_{j≤i} (Σ_k q_ik k_jk e^{G_ik − G_jk}) v_j]
    h'    = Diag(e^{G_C}) h + Σ_j (k_j ⊙ e^{G_C − G_j}) v_jᵀ

with every exponent ≤ 0 (intra-chunk scores on 16-row sub-chunks, see
:mod:`lrnnspec.kernels._gated_linear_triton`, which holds the kernels, their grids and the backward).
The signature, argument checks, GVA, varlen packing, padding of T and the dtype policy are those of
:func:`lrnnspec.impls.gla.chunk_gla` (the shared driver :mod:`lrnnspec.impls.driver`); the chunk core is
the Triton op ``torch.ops.lrnnspec.gla_chunk_fwd`` (fp32 throughout: inputs up-cast, ieee fp32 dots,
fp32 state). On the CPU the kernels run under ``TRITON_INTERPRET=1`` (set before triton is imported).
"""

from __future__ import annotations

from lrnnspec.impls.driver import Chunked, call, check_chunk_size
from lrnnspec.impls.registry import register_forms

from ._gated_linear_triton import CHUNK_SIZES, gla_chunk_bwd, gla_chunk_fwd

CONTRACTS = {"fp64": "fp64", "fp32": "fp32", "fp16": "mixed-fp16", "bf16": "mixed-bf16"}
"""Declared precision contracts: inputs up-cast to fp32 (fp64 stays fp64), fp32 state, IEEE fp32 dots."""


def _core(xs, state, p, size):
    o, final = gla_chunk_fwd(xs["q"], xs["k"], xs["v"], xs["g"], state["S"], float(p.scale), size)
    return o, {"S": final}


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "g")}, core=_core)


def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None, chunk_size=64):
    check_chunk_size(chunk_size, CHUNK_SIZES)
    return call("chunk", "gla", CHUNKED, dict(q=q, k=k, v=v, g=g), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


FORMS = register_forms("gla", {"chunk": chunk_gla}, contracts=CONTRACTS)

__all__ = ["chunk_gla", "FORMS", "CONTRACTS", "gla_chunk_fwd", "gla_chunk_bwd"]
