"""simple_gla — Triton chunkwise simple GLA: S_t = e^{g_t} S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

q, k [B,T,H,K]; v [B,T,HV,V]; g [B,T,HV] ≤ 0 (per-head scalar log decay), or a constant ``g_gamma``
[HV] (give exactly one); initial_state / final state [N,HV,K,V] float32; ``cu_seqlens`` int64 [N+1]
(B = 1). Returns (o [B,T,HV,V] in v's dtype, final_state or None); differentiable in q, k, v, g
(or g_gamma) and initial_state.

Per chunk of C ∈ {16, 32, 64} steps, with G_i = Σ_{j≤i} g_j (chunk-local) and h the entering state:

    o_i = scale · [e^{G_i} hᵀ q_i + Σ_{j≤i} e^{min(G_i − G_j, 0)} (q_i · k_j) v_j]
    h'  = e^{G_C} h + Σ_j e^{G_C − G_j} k_j v_jᵀ

(kernels, grids and the backward in :mod:`lrnnspec.kernels._gated_linear_triton`). Signature, checks,
GVA, varlen, padding and dtype policy are those of :func:`lrnnspec.impls.simple_gla.chunk_simple_gla`
(the shared driver); the chunk core is the Triton op ``torch.ops.lrnnspec.simple_gla_chunk_fwd``
(fp32 throughout). On the CPU the kernels run under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

from lrnnspec.impls.driver import Chunked, call, check_chunk_size
from lrnnspec.impls.simple_gla import _gate
from lrnnspec.impls.registry import register_forms

from ._gated_linear_triton import CHUNK_SIZES, simple_gla_chunk_bwd, simple_gla_chunk_fwd

CONTRACTS = {"fp64": "fp64", "fp32": "fp32", "fp16": "mixed-fp16", "bf16": "mixed-bf16"}
"""Declared precision contracts: inputs up-cast to fp32 (fp64 stays fp64), fp32 state, IEEE fp32 dots."""


def _core(xs, state, p, size):
    o, final = simple_gla_chunk_fwd(xs["q"], xs["k"], xs["v"], xs["g"], state["S"], float(p.scale), size)
    return o, {"S": final}


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "g")}, core=_core)


def chunk_simple_gla(q, k, v, g=None, g_gamma=None, scale=None, initial_state=None, output_final_state=False,
                     cu_seqlens=None, chunk_size=64):
    check_chunk_size(chunk_size, CHUNK_SIZES)
    return call("chunk", "simple_gla", CHUNKED, dict(q=q, k=k, v=v, g=_gate(g, g_gamma, v)), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


FORMS = register_forms("simple_gla", {"chunk": chunk_simple_gla}, contracts=CONTRACTS)

__all__ = ["chunk_simple_gla", "FORMS", "CONTRACTS", "simple_gla_chunk_fwd", "simple_gla_chunk_bwd"]
