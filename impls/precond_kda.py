"""precond_kda — kda with its write key preconditioned by a running key moment A (the spec's definition run
by torch; no chunk form yet).

FLA ``chunk_precond_kda`` / ``naive_recurrent_precond_kda``'s argument order: q, k [B,T,H,K] (k unit-norm);
v [B,T,H,V]; g [B,T,H,K] ≤ 0; g_atk [B,T,H] ≤ 0; beta_atk, beta [B,T,H] ∈ [0, 1]; the options x, eps,
log_atk_scale (a number: FLA's per-head tensor is not taken). The state is the pair (S [N,H,K,V],
A [N,H,K]), passed and returned as FLA's other multi-state ops do, ``initial_state=(S, A)`` → ``(o, (S, A))``;
FLA's reference takes ``initial_state`` and ``initial_A_state`` and returns ``(o, S, A)``.
Returns (o [B,T,H,V] in v's dtype, (S, A) or None).
"""

from __future__ import annotations

from .driver import call
from .registry import register_forms


def recurrent_precond_kda(q, k, v, g, g_atk, beta_atk, beta, scale=None, initial_state=None,
                          output_final_state=False, x=1.5, eps=1e-6, log_atk_scale=-0.2, cu_seqlens=None):
    return call("recurrent", "precond_kda", None, dict(q=q, k=k, v=v, g=g, g_atk=g_atk, beta_atk=beta_atk, beta=beta),
                scale=scale, initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                x=x, eps=eps, log_atk_scale=log_atk_scale)


FORMS = register_forms("precond_kda", {"recurrent": recurrent_precond_kda})
