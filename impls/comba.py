"""comba — S_t = (e^{g_t} I − β_t k_t p_tᵀ) S_{t−1} + β_t k_t v_tᵀ (the error reads the state before the decay).

FLA ``chunk_comba``'s argument order for every form (``fused_recurrent_comba`` puts p before v, the naive
reference β before g — not here): q, k, p [B,T,H,K] (k unit-norm, or ``use_qk_l2norm_in_kernel=True``,
which normalizes q, k and p as FLA does); v [B,T,HV,V] (HV % H == 0); g [B,T,HV] ≤ 0 (head-wise log decay);
beta [B,T,HV] ∈ [0, 2]; initial_state / final state [N,HV,K,V]. Returns (o [B,T,HV,V] in v's dtype,
final_state or None).

Chunk: the erase-key delta core of :mod:`.kda` (derivation there) with erase key e = β p, written value
β v, write key k, the head-wise gate, and the read before the decay (``exclusive``: R_t = G_{t−1}).
"""

from __future__ import annotations

from lrnnspec.spec.errors import SpecError

from .delta import l2norm
from .driver import Chunked, call
from .kda import erase_core
from .registry import register_forms


def _inputs(x, p):
    beta = x["beta"][..., None]
    return {"q": x["q"], "k": x["k"], "e": beta * x["p"], "w": beta * x["v"], "g": x["g"]}


def _core(xs, state, p, size):
    o, S = erase_core(xs["q"], xs["k"], xs["e"], xs["w"], xs["g"], state["S"], p.scale, size, exclusive=True)
    return o, {"S": S}


CHUNKED = Chunked(prepare=_inputs, core=_core)


def _run(form, q, k, v, p, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, cu_seqlens,
         chunk_size=None):
    if not isinstance(use_qk_l2norm_in_kernel, bool):
        raise SpecError("use_qk_l2norm_in_kernel", f"must be True or False, got {use_qk_l2norm_in_kernel!r}")
    if use_qk_l2norm_in_kernel:
        q, k, p = l2norm(q), l2norm(k), l2norm(p)
    return call(form, "comba", CHUNKED, dict(q=q, k=k, v=v, p=p, g=g, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def recurrent_comba(q, k, v, p, g, beta, scale=None, initial_state=None, output_final_state=False,
                    use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, p, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


def chunk_comba(q, k, v, p, g, beta, scale=None, initial_state=None, output_final_state=False,
                use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, p, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens, chunk_size)


FORMS = register_forms("comba", {"recurrent": recurrent_comba, "chunk": chunk_comba})
