"""mesa_net — H^kk_t = e^{g_t} H^kk_{t−1} + β_t k_t k_tᵀ, H^kv_t = e^{g_t} H^kv_{t−1} + β_t k_t v_tᵀ,
o_t = H^kv_tᵀ (H^kk_t + Diag(λ))⁻¹ q_t (the spec's definition run by torch, its exact solve included —
Gaussian elimination with partial pivoting, differentiable; no chunk form yet).

FLA ``chunk_mesa_net``'s argument order: q, k [B,T,H,K]; v [B,T,H,V]; g, beta [B,T,H]; lamb [H,K] (> 0);
``h_kk_init`` [N,H,K,K], ``h_kv_init`` [N,H,K,V]; ``output_final_state``; ``use_qk_l2norm_in_kernel``
(q and k normalized as FLA does); ``cu_seqlens``. The state is also taken as FLA's other multi-state ops
take it, ``initial_state=(h_kk, h_kv)`` (one of the two spellings, not both), and returned as they return
it: ``(o, (h_kk, h_kv))`` — FLA's ``chunk_mesa_net`` returns ``(o, h_kk, h_kv)`` flat. There is no
``max_CG_iteration``: this form solves exactly (FLA's kernels approximate the solve by conjugate gradient).
V need not equal K (FLA's kernels require it). Returns (o [B,T,H,V] in v's dtype, (h_kk, h_kv) or None).
"""

from __future__ import annotations

from lrnnspec.spec.errors import SpecError

from .delta import l2norm
from .driver import call
from .registry import register_forms


def recurrent_mesa_net(q, k, v, g, beta, lamb, h_kk_init=None, h_kv_init=None, output_final_state=False, *,
                       use_qk_l2norm_in_kernel=False, cu_seqlens=None, initial_state=None):
    if not isinstance(use_qk_l2norm_in_kernel, bool):
        raise SpecError("use_qk_l2norm_in_kernel", f"must be True or False, got {use_qk_l2norm_in_kernel!r}")
    if h_kk_init is not None or h_kv_init is not None:
        if initial_state is not None:
            raise SpecError("initial_state", "give the state either as initial_state=(h_kk, h_kv) or as "
                                             "h_kk_init / h_kv_init, not both")
        if h_kk_init is None or h_kv_init is None:
            raise SpecError("h_kk_init" if h_kk_init is None else "h_kv_init",
                            "the two states go together: give both h_kk_init and h_kv_init, or neither")
        initial_state = (h_kk_init, h_kv_init)
    if use_qk_l2norm_in_kernel:
        q, k = l2norm(q), l2norm(k)
    return call("recurrent", "mesa_net", None, dict(q=q, k=k, v=v, g=g, beta=beta, lamb=lamb),
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens)


FORMS = register_forms("mesa_net", {"recurrent": recurrent_mesa_net})
