"""momentum_delta_rule — M_t = μ_t M_{t−1} + η_t k_t (S_{t−1}ᵀp̂_t − v_t)ᵀ, S_t = α_t S_{t−1} − β_t M_t,
o_t = scale · S_tᵀ q_t (the spec's definition run by torch; no chunk form yet).

FLA ``fused_recurrent_momentum_delta_rule``'s signature: q, k [B,T,H,K]; v [B,T,H,V]; log_alpha, log_mu
[B,T,H]; p [B,T,H,K] (None → k); beta, eta [B,T,H] (None → 1); initial_state / final state the pair
(S, M), each [N,H,K,V] (a tuple, or FLA's stacked [2,N,H,K,V]). Two defaults differ from FLA's public op,
which match its naive reference ``recurrent_momentum_delta_rule_ref`` and the spec instead:
``use_qk_l2norm_in_kernel=False`` (q, k, p enter unit-norm; True normalizes them as FLA does) and
``use_p_times_alpha=False`` (the error reads S_{t−1} with p_t; True with α_t·p_t). Returns
(o [B,T,H,V] in v's dtype, (S, M) or None).
"""

from __future__ import annotations

import torch

from lrnnspec.spec.errors import SpecError

from .delta import l2norm
from .driver import call
from .registry import register_forms


def recurrent_momentum_delta_rule(q, k, v, log_alpha, log_mu, p=None, beta=None, eta=None, scale=None,
                                  initial_state=None, output_final_state=False, cu_seqlens=None,
                                  use_qk_l2norm_in_kernel=False, use_p_times_alpha=False):
    if not isinstance(use_qk_l2norm_in_kernel, bool):
        raise SpecError("use_qk_l2norm_in_kernel", f"must be True or False, got {use_qk_l2norm_in_kernel!r}")
    p = k if p is None else p
    if use_qk_l2norm_in_kernel:
        q, k, p = l2norm(q), l2norm(k), l2norm(p)
    ones = torch.ones_like(q[..., 0]) if isinstance(q, torch.Tensor) else None
    beta = ones if beta is None else beta
    eta = ones if eta is None else eta
    if isinstance(initial_state, torch.Tensor) and initial_state.dim() == 5 and initial_state.shape[0] == 2:
        initial_state = (initial_state[0], initial_state[1])                 # FLA's stacked pair
    return call("recurrent", "momentum_delta_rule", None,
                dict(q=q, k=k, v=v, log_alpha=log_alpha, log_mu=log_mu, p=p, beta=beta, eta=eta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                use_p_times_alpha=use_p_times_alpha)


FORMS = register_forms("momentum_delta_rule", {"recurrent": recurrent_momentum_delta_rule})
