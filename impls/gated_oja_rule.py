"""gated_oja_rule — S_t = S_{t−1} Diag(e^{gv_t}) (I − β_t v_t v_tᵀ) + β_t k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

FLA ``chunk_gated_oja_rule`` / ``fused_recurrent_gated_oja_rule``'s signature for every form: q, k
[B,T,H,K]; v [B,T,HV,V] (unit-norm); gv [B,T,HV,V] ≤ 0; beta [B,T,HV] ∈ [0, 2]; initial_state / final
state [N,HV,K,V]; ``use_q_l2norm`` / ``use_k_l2norm`` normalize q / k as FLA does (v is not normalized
by FLA either). Returns (o [B,T,HV,V] in v's dtype, final_state or None).

**Chunk** (:func:`oja_core`): the erase-key delta core of :mod:`.kda` on the transposed state X = Sᵀ
[V, K] — erase key β v, write key v, written value β k, the value-column gate gv, the read after the
decay — with the read-out along X's other axis. Per chunk of C steps entering with X₀, G_t = Σ_{j≤t} gv_j:

    A_ts = β_t Σ_c v_tc v_sc e^{G_tc − G_sc} (s < t),  𝒯 = (I + A)⁻¹,
    U = U₀ − 𝒲 X₀,  U₀ = 𝒯 (β ⊙ K),  𝒲 = 𝒯 (e^{G} ⊙ β ⊙ V)   (:func:`.delta.chunk_scan`)       [C, K]
    X_C = e^{G_C} ⊙ X₀ + Ṽᵀ U,  Ṽ = e^{G_C − G} ⊙ V                                       [V, K]
    o_t = scale · [e^{G_t} ⊙ (X₀ q_t) + Σ_{s≤t} (u_s · q_t) e^{G_t − G_s} ⊙ v_s]             [V]

The last sum is e^{G} ⊙ (tril(Q Uᵀ) (e^{−G} ⊙ V)) when every |G| < ``FACTORED_RANGE`` (one host
check), else the pairwise decays [C, C, V] are formed with the mask before the exp (every exponent
≤ 0); A likewise (:func:`.gated_linear.key_gate_scores`). Cost per chunk O(C²(K + V) + C·K·V + C³/3).
"""

from __future__ import annotations

import torch

from lrnnspec.spec.errors import SpecError

from .chunks import causal_mask, masked_exp
from .delta import chunk_major, chunk_scan, from_chunk_major, l2norm, unit_lower_inverse
from .driver import Chunked, call
from .gated_linear import FACTORED_RANGE, key_gate_scores
from .registry import register_forms


def oja_core(xs, state, p, size):
    """The chunk form (module docstring). xs: q, k [N,T,HV,K], v, gv [N,T,HV,V], beta [N,T,HV]; state
    S₀ [N,HV,K,V]; T % size == 0. Returns (o [N,T,HV,V], {"S": final state})."""
    q, k, v, gv, beta = (xs[n] for n in ("q", "k", "v", "gv", "beta"))
    batch, dk, dv = k.shape[0], k.shape[-1], v.shape[-1]
    nc = k.shape[1] // size
    S0 = state["S"]
    if nc == 0:
        return v.new_zeros(v.shape), {"S": S0}
    G = chunk_major(gv, size).cumsum(-2)                                             # [NC,NH,C,V]
    last = G[..., -1:, :]
    bc = chunk_major(beta[..., None], size)                                          # [NC,NH,C,1]
    vc = chunk_major(v, size)
    e_in = torch.exp(G) * bc * vc                                                    # e^{G} ⊙ β v
    factored = float(G.detach().abs().max()) < FACTORED_RANGE
    if factored:
        v_neg = torch.exp(-G) * vc
        A = e_in @ v_neg.transpose(-1, -2)                                           # upper part unread
    else:
        A = key_gate_scores(bc * vc, vc, G, strict=True)
    T = unit_lower_inverse(A)
    vtT = (torch.exp(last - G) * vc).transpose(-1, -2)                               # Ṽᵀ [NC,NH,V,C]
    decay = torch.exp(last).transpose(-1, -2)                                        # [NC,NH,V,1]
    X0 = S0.transpose(-1, -2).reshape(-1, dv, dk)                                    # [NH,V,K]
    entering, U, X = chunk_scan(X0, T @ (bc * chunk_major(k, size)), T @ e_in, vtT, decay)
    qc = chunk_major(q, size) * p.scale                                              # [NC,NH,C,K]
    M = (qc @ U.transpose(-1, -2)).masked_fill(~causal_mask(size, q.device), 0.0)   # u_s·q_t, s ≤ t
    if factored:
        intra = torch.exp(G) * (M @ v_neg)
    else:
        decays = masked_exp(G[..., :, None, :] - G[..., None, :, :], causal_mask(size, q.device)[..., None])
        intra = (M[..., None] * decays * vc[..., None, :, :]).sum(-2)
    o = torch.exp(G) * (qc @ entering.transpose(-1, -2)) + intra
    return from_chunk_major(o, batch), {"S": X.reshape(*S0.shape[:2], dv, dk).transpose(-1, -2)}


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "gv", "beta")}, core=oja_core)


def _run(form, q, k, v, gv, beta, scale, initial_state, output_final_state, use_q_l2norm, use_k_l2norm,
         cu_seqlens, chunk_size=None):
    for name, flag in (("use_q_l2norm", use_q_l2norm), ("use_k_l2norm", use_k_l2norm)):
        if not isinstance(flag, bool):
            raise SpecError(name, f"must be True or False, got {flag!r}")
    q = l2norm(q) if use_q_l2norm else q
    k = l2norm(k) if use_k_l2norm else k
    return call(form, "gated_oja_rule", CHUNKED, dict(q=q, k=k, v=v, gv=gv, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def recurrent_gated_oja_rule(q, k, v, gv, beta, scale=None, initial_state=None, output_final_state=False,
                             use_q_l2norm=False, use_k_l2norm=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, gv, beta, scale, initial_state, output_final_state, use_q_l2norm,
                use_k_l2norm, cu_seqlens)


def chunk_gated_oja_rule(q, k, v, gv, beta, scale=None, initial_state=None, output_final_state=False,
                         use_q_l2norm=False, use_k_l2norm=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, gv, beta, scale, initial_state, output_final_state, use_q_l2norm, use_k_l2norm,
                cu_seqlens, chunk_size)


FORMS = register_forms("gated_oja_rule", {"recurrent": recurrent_gated_oja_rule, "chunk": chunk_gated_oja_rule})
