"""kda (Kimi Delta Attention) — S_t = (I − β_t k_t k_tᵀ) Diag(e^{g_t}) S_{t−1} + β_t k_t v_tᵀ, and the
chunk core it shares with gdn2 and comba.

FLA ``chunk_kda`` / ``naive_recurrent_kda``'s argument order for every form: q, k [B,T,H,K] (k unit-norm,
or ``use_qk_l2norm_in_kernel=True``); v [B,T,HV,V] (HV % H == 0: grouped value heads); g [B,T,HV,K] ≤ 0
(key-channel log decay); beta [B,T,HV] ∈ [0, 2]; initial_state / final state [N,HV,K,V] (not
``state_v_first``). Returns (o [B,T,HV,V] in v's dtype, final_state or None). FLA's in-kernel gate and β
activations (``use_gate_in_kernel``, ``A_log``, ``dt_bias``, ``lower_bound``, ``safe_gate``,
``use_beta_sigmoid_in_kernel``, ``allow_neg_eigval``) are not taken: g and β enter as the recurrence uses them.

**The erase-key delta core** (:func:`erase_core`). Per (sequence, head), state S [K, V], each step

    S' = Diag(e^{g_t}) S_{t−1},   u_t = w_t − Ŝ_tᵀ e_t,   S_t = S' + k_t u_tᵀ,   o_t = scale · S_tᵀ q_t

with e_t [K] the erase key (its strength included), w_t [V] the written value, k_t [K] the write key,
g_t [K] or a scalar per head, and Ŝ_t = S' (the read after the decay: KDA e = βk, w = βv; GDN-2
e = b ⊙ k, w = w ⊙ v) or Ŝ_t = S_{t−1} (``exclusive``: the read before it, FLA's Comba kernels).
One chunk of C steps entering with S₀; G_t = Σ_{j≤t} g_j (chunk-local, per channel), R_t = G_t, or
G_{t−1} when exclusive; for s < t every exponent R_t − G_s is ≤ 0. Unrolled,

    S_t  = e^{G_t} ⊙ S₀ + Σ_{s≤t} (e^{G_t − G_s} ⊙ k_s) u_sᵀ
    u_t  = w_t − (e^{R_t} ⊙ e_t)ᵀ S₀ − Σ_{s<t} A_ts u_s,    A_ts = Σ_c e_tc k_sc e^{R_tc − G_sc}

so (I + A) U = W_v − (e^{R} ⊙ E) S₀ [C, V], and with 𝒯 = (I + A)⁻¹ (unit lower triangular):

    U  = U₀ − 𝒲 S₀,   U₀ = 𝒯 W_v,   𝒲 = 𝒯 (e^{R} ⊙ E)                      ([C, V], [C, K])
    S_C = e^{G_C} ⊙ S₀ + K̃ᵀ U,   K̃ = e^{G_C − G} ⊙ K                       ([K, V])
    O  = scale · [(e^{G} ⊙ Q) S₀ + P U],   P_ts = Σ_c q_tc k_sc e^{G_tc − G_sc} (s ≤ t)   ([C, V])

The chunks are coupled only through S₀ (the loop of :func:`.delta.chunk_scan`, d = e^{G_C} over the
state's rows). Scores: when every |G| < ``FACTORED_RANGE`` (one host check) e^{R_t − G_s} =
e^{R_t}·e^{−G_s} exactly to rounding, and A = (e^{R} ⊙ E)(e^{−G} ⊙ K)ᵀ, P = (e^{G} ⊙ Q)(e^{−G} ⊙ K)ᵀ
(the solve reads only A's strict lower part; P is masked); otherwise
:func:`.gated_linear.key_gate_scores` (exact sub-chunk factors, every exponent ≤ 0), the exclusive
A by a shift: with ê_r = e_{r+1}, Â_rs = Σ_c ê_rc k_sc e^{G_rc − G_sc} (s ≤ r) gives A_ts = Â_{t−1,s}.
Cost per chunk O(C²K + C²V + C·K·V + C³/3).
"""

from __future__ import annotations

import torch

from .chunks import causal_mask
from .delta import chunk_major, chunk_scan, from_chunk_major, unit_lower_inverse
from .delta_rule import normalize_qk
from .driver import Chunked, call
from .gated_linear import FACTORED_RANGE, key_gate_scores
from .registry import register_forms


def erase_core(q, k, e, w, g, state, scale: float, size: int, exclusive: bool = False):
    """The erase-key delta core (module docstring).

    q, k, e [N, T, H, K]; w [N, T, H, V]; g [N, T, H, K] (per key channel), [N, T, H] (per head) or
    None; state S₀ [N, H, K, V]; ``size`` = C steps per chunk, T % C == 0.
    Returns (o [N, T, H, V], final state [N, H, K, V])."""
    batch, dk, dv = k.shape[0], k.shape[-1], w.shape[-1]
    nc = k.shape[1] // size
    if nc == 0:
        return w.new_zeros(w.shape), state
    if g is None:
        g = k.new_zeros(k.shape[:3])
    gate = chunk_major(g if g.dim() == 4 else g[..., None], size)                   # [NC,NH,C,K|1]
    G = gate.cumsum(-2)
    R = G - gate if exclusive else G
    last = G[..., -1:, :]                                                            # [NC,NH,1,K|1]
    q_in = chunk_major(q, size, torch.exp(G))                                        # e^{G} ⊙ Q
    e_in = chunk_major(e, size, torch.exp(R))                                        # e^{R} ⊙ E
    incl = causal_mask(size, k.device).to(k.dtype) * scale
    if float(G.detach().abs().max()) < FACTORED_RANGE:
        knT = chunk_major(k, size, torch.exp(-G)).transpose(-1, -2)                  # (e^{−G} ⊙ K)ᵀ
        A = e_in @ knT                                                               # upper part unread
        P = (q_in @ knT).mul_(incl)
    else:
        Gk = G.expand(*G.shape[:-1], dk)
        kc, ec = chunk_major(k, size), chunk_major(e, size)
        if exclusive:
            nxt = torch.cat([ec[..., 1:, :], ec.new_zeros((*ec.shape[:2], 1, dk))], dim=-2)   # ê_r = e_{r+1}
            hat = key_gate_scores(nxt, kc, Gk)
            A = torch.cat([hat.new_zeros((*hat.shape[:2], 1, size)), hat[..., :-1, :]], dim=-2)
        else:
            A = key_gate_scores(ec, kc, Gk, strict=True)
        P = key_gate_scores(chunk_major(q, size) * scale, kc, Gk)
    T = unit_lower_inverse(A)                                                        # (I + A)⁻¹
    ktT = chunk_major(k, size, torch.exp(last - G)).transpose(-1, -2)                # K̃ᵀ [NC,NH,K,C]
    decay = torch.exp(last).transpose(-1, -2)                                        # [NC,NH,K|1,1]
    entering, writes, S = chunk_scan(state.reshape(-1, dk, dv), T @ chunk_major(w, size), T @ e_in, ktT, decay)
    o = torch.bmm(P.flatten(0, 1), writes.flatten(0, 1)).baddbmm_(
        q_in.flatten(0, 1), entering.flatten(0, 1), alpha=scale).unflatten(0, (nc, -1))
    return from_chunk_major(o, batch), S.reshape(state.shape)


def _kda_inputs(x, p):
    beta = x["beta"][..., None]
    return {"q": x["q"], "k": x["k"], "e": beta * x["k"], "w": beta * x["v"], "g": x["g"]}


def _kda_core(xs, state, p, size):
    o, S = erase_core(xs["q"], xs["k"], xs["e"], xs["w"], xs["g"], state["S"], p.scale, size)
    return o, {"S": S}


CHUNKED = Chunked(prepare=_kda_inputs, core=_kda_core)


def _run(form, q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel, cu_seqlens,
         chunk_size=None):
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call(form, "kda", CHUNKED, dict(q=q, k=k, v=v, g=g, beta=beta), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def recurrent_kda(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                  use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    return _run("recurrent", q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens)


def chunk_kda(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
              use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    return _run("chunk", q, k, v, g, beta, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
                cu_seqlens, chunk_size)


FORMS = register_forms("kda", {"recurrent": recurrent_kda, "chunk": chunk_kda})
