"""Chunk core of DPLR: S_t = Diag(e^{gk_t}) S_{t−1} + b_t (a_tᵀ S_{t−1}) + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

Derivation (per (sequence, head); state S [K, V]; one chunk of C steps entering with S₀;
q, k, a, b, gk rows [C, K] (stacked: Q, K, 𝐚, B), v rows [C, V]). Let G_t = Σ_{j≤t} gk_j [C, K]
(chunk-local, inclusive) and G⁻_t = G_{t−1} (exclusive, G⁻_1 = 0). The low-rank term reads the
**pre-decay** state through w_t = S_{t−1}ᵀ a_t [V] (one row of W [C, V]), so
S_t = e^{gk_t} ⊙ S_{t−1} + b_t w_tᵀ + k_t v_tᵀ (⊙ scaling row c of S by e^{gk_tc}), and unrolled

    S_t = e^{G_t} ⊙ S₀ + Σ_{s≤t} e^{G_t − G_s} ⊙ (b_s w_sᵀ + k_s v_sᵀ).

Reading S_{t−1} with a_t:

    w_t = (e^{G⁻_t} ⊙ a_t)ᵀ S₀ + Σ_{s<t} A_ab[t,s] w_s + Σ_{s<t} A_ak[t,s] v_s,
    A_xy[t,s] = Σ_c x_tc y_sc e^{G⁻_tc − G_sc}            (strictly lower, [C, C])

so W solves the unit-lower-triangular system (WY-like)

    (I − A_ab) W = A_ak V + (e^{G⁻} ⊙ 𝐚) S₀,   i.e.  W = W₀ + W_a S₀,
    [W₀ | W_a] = (I − A_ab)⁻¹ [A_ak V | e^{G⁻} ⊙ 𝐚]                        ([C, V] | [C, K]).

With B̃ = e^{G_C − G} ⊙ B, K̃ = e^{G_C − G} ⊙ K [C, K] (rows decayed to the chunk end):

    S_C = e^{G_C} ⊙ S₀ + K̃ᵀ V + B̃ᵀ W                                         [K, V]
    O   = scale · [(e^{G} ⊙ Q) S₀ + A_qb W + A_qk V],  A_qy[t,s] = Σ_c q_tc y_sc e^{G_tc − G_sc} (s ≤ t).

The chunks are coupled only through S₀: everything but "W_c = W₀_c + W_a,c S_c,
S_{c+1} = e^{G_C} ⊙ S_c + K̃_cᵀ V_c + B̃_cᵀ W_c" is batched over all chunks; that recurrence is
the only loop (two ``baddbmm`` and one ``addcmul`` per chunk), and O follows batched from the
stacked entering states and W.

Stability: the four key-channel-gated score matrices A_ab, A_ak, A_qb, A_qk come from
:func:`pair_scores` (sub-chunks as in :func:`.gated_linear.key_gate_scores`: exact [s, s, K]
factors inside sub-chunks, factorization through sub-chunk boundaries elsewhere, every exponent
≤ 0). The exclusive gate of the a-rows is handled by a shift, not by e^{−gk} (which overflows for
strong gates): with â_r = a_{r+1} (â_{C−1} = 0) the inclusive scores
Â_ab[r,s] = Σ_c â_rc b_sc e^{G_rc − G_sc} (s ≤ r) give A_ab[t,s] = Â_ab[t−1,s], since
G⁻_t = G_{t−1}. The four matrices are one call on the row sets {â, q} × column sets {b, k}.
"""

from __future__ import annotations

import torch

from .chunks import causal_mask
from .delta import chunk_major, from_chunk_major, unit_lower_inverse

SUB_CHUNK: dict[int, int] = {}      # overrides, chunk size → sub-chunk size (for tuning)


def sub_chunk(size: int) -> int:
    """Sub-chunk length s of :func:`pair_scores` for chunks of C = ``size`` steps: 2^⌊log₂(C)/2⌋
    (8 → 2, 16 → 4, 32 → 4, 64 → 8), the fastest measured on CPU at K = 64 (the diagonal blocks cost
    ≈ 6·s·K elementwise operations per step, the off-diagonal ones ≈ 2·(C/s)·K)."""
    if size in SUB_CHUNK:
        return SUB_CHUNK[size]
    return 1 << (max(size, 1).bit_length() - 1) // 2


def pair_scores(rows: torch.Tensor, cols: torch.Tensor, G: torch.Tensor, sub: int) -> torch.Tensor:
    """Key-channel-gated scores of every row set against every column set.

    rows [..., R, C, K], cols [..., Cn, C, K], G [..., C, K] non-increasing along C. Returns
    [..., R, Cn, C, C]: out[r, c, i, j] = Σ_k rows[r,i,k] cols[c,j,k] e^{G_ik − G_jk} for j ≤ i, else 0.

    Sub-chunks of s = ``sub`` steps (C padded to a multiple of s with zero rows and a constant G);
    ρ_a = G at the end of sub-chunk a − 1 (ρ_0 = 0), so ρ is non-increasing and every factor
    below has an exponent ≤ 0:

    * off-diagonal blocks (i in sub-chunk a, j in sub-chunk b < a):
      e^{G_i − G_j} = e^{G_i − ρ_a} · e^{ρ_a − ρ_{b+1}} · e^{ρ_{b+1} − G_j}; the middle factor
      D [nsub, nsub, K] (zero for b ≥ a) is applied to the column side, giving
      cols_ref [nsub(a), Cn, C, K] in one multiplication, then one matmul per sub-chunk a with
      all row sets stacked against all column sets;
    * diagonal blocks exactly: E[a,i,k,j] = e^{G_ik − G_jk} [nsub, s, K, s] (exponent clamped to
      ≤ 0 before ``exp``, non-causal entries then zeroed), shared by all pairs and contracted as
      one batched matmul over (a, i).
    """
    *lead, R, C, K = rows.shape
    Cn = cols.shape[-3]
    L = len(lead)
    s = max(1, min(sub, C))
    nsub = -(-C // s)
    Cp, pad = nsub * s, nsub * s - C
    if pad:
        rows = torch.cat([rows, rows.new_zeros((*lead, R, pad, K))], dim=-2)
        cols = torch.cat([cols, cols.new_zeros((*lead, Cn, pad, K))], dim=-2)
        G = torch.cat([G, G[..., -1:, :].expand(*lead, pad, K)], dim=-2)
    Gb = G.reshape(*lead, nsub, s, K)
    ends = Gb[..., -1, :]                                                                     # ρ_{a+1} [..,nsub,K]
    ref = torch.cat([G.new_zeros((*lead, 1, K)), ends[..., :-1, :]], dim=-2)                 # ρ_a
    rows_b = rows.reshape(*lead, R, nsub, s, K)
    cols_b = cols.reshape(*lead, Cn, nsub, s, K)
    # off-diagonal blocks
    rows_ref = rows_b.transpose(L, L + 1) * torch.exp(Gb - ref[..., :, None, :])[..., :, None, :, :]  # [..,nsub,R,s,K]
    strict = causal_mask(nsub, G.device, strict=True).to(G.dtype)[..., None]                  # b < a
    D = torch.exp((ref[..., :, None, :] - ends[..., None, :, :]).clamp_max(0.0)) * strict      # [..,a,b,K]
    cols_end = cols_b * torch.exp(ends[..., None, :, None, :] - Gb[..., None, :, :, :])        # [..,Cn,b,s,K]
    cols_ref = D[..., :, None, :, None, :] * cols_end[..., None, :, :, :, :]                  # [..,a,Cn,b,s,K]
    off = rows_ref.reshape(*lead, nsub, R * s, K) @ cols_ref.reshape(*lead, nsub, Cn * Cp, K).transpose(-1, -2)
    off = off.view(*lead, nsub, R, s, Cn, nsub, s)
    # diagonal blocks, exact
    local = causal_mask(s, G.device).to(G.dtype)[:, None, :]                                   # [i,1,j]
    E = torch.exp((Gb[..., :, :, None] - Gb.transpose(-1, -2)[..., None, :, :]).clamp_max(0.0)) * local
    cols_t = cols_b.permute(*range(L), L + 1, L + 3, L, L + 2)                                 # [..,nsub,K,Cn,s]
    EC = (E[..., :, :, None, :] * cols_t[..., :, None, :, :, :]).reshape(*lead, nsub, s, K, Cn * s)
    diag = rows_b.permute(*range(L), L + 1, L + 2, L, L + 3) @ EC                              # [..,nsub,s,R,Cn·s]
    diag = diag.view(*lead, nsub, s, R, Cn, s).transpose(L + 1, L + 2)                         # [..,a,R,s,Cn,s]
    torch.diagonal(off, 0, L, L + 4).add_(diag.movedim(L, -1))
    out = off.reshape(*lead, nsub, R, s, Cn, Cp).permute(*range(L), L + 1, L + 3, L, L + 2, L + 4)
    return out.reshape(*lead, R, Cn, Cp, Cp)[..., :C, :C]


def dplr_core(xs, state, p, size):
    """:class:`~.driver.Chunked` core: xs q, k, a, b, gk [N,T,H,K], v [N,T,H,V]; state S [N,H,K,V].

    Chunk-major layout [NC, N·H, C, ·]; the loop carries W_c = W₀_c + W_a,c S and
    S ← e^{G_C} ⊙ S + K̃_cᵀ V_c + B̃_cᵀ W_c (two ``baddbmm`` and one ``addcmul`` per chunk)."""
    batch = xs["q"].shape[0]
    q, k, a, b, gk = (chunk_major(xs[n], size) for n in ("q", "k", "a", "b", "gk"))   # [NC,NH,C,K]
    v = chunk_major(xs["v"], size)                                                  # [NC,NH,C,V]
    nc, dk, dv = v.shape[0], k.shape[-1], v.shape[-1]
    S = state["S"].reshape(-1, dk, dv)
    if nc == 0:
        return xs["v"].new_zeros(xs["v"].shape), {"S": state["S"]}
    q = q * p.scale
    G = gk.cumsum(-2)                                                               # [..,C,K]
    zero_row = G.new_zeros((*G.shape[:-2], 1, dk))
    G_excl = torch.cat([zero_row, G[..., :-1, :]], dim=-2)                          # G⁻
    a_next = torch.cat([a[..., 1:, :], zero_row], dim=-2)                           # â_r = a_{r+1}
    scores = pair_scores(torch.stack([a_next, q], dim=-3), torch.stack([b, k], dim=-3), G,
                         sub_chunk(size))                                           # [..,2,2,C,C]
    # A_ab, A_ak: rows shifted down by one (A[t] = Â[t−1]); row 0 is zero
    shifted = torch.cat([scores.new_zeros((*G.shape[:-2], 2, 1, size)), scores[..., 0, :, :-1, :]], dim=-2)
    A_ab, A_ak = shifted[..., 0, :, :], shifted[..., 1, :, :]
    A_qb, A_qk = scores[..., 1, 0, :, :], scores[..., 1, 1, :, :]
    T = unit_lower_inverse(-A_ab)                                                   # (I − A_ab)⁻¹
    W0 = T @ (A_ak @ v)                                                             # [..,C,V]
    Wa = T @ (a * torch.exp(G_excl))                                                # [..,C,K]
    last = G[..., -1:, :]                                                           # [..,1,K]
    to_end = torch.exp(last - G)
    btT = (b * to_end).transpose(-1, -2).contiguous()                               # [..,K,C]
    Hv = (k * to_end).transpose(-1, -2) @ v                                         # [..,K,V]
    chunk_decay = torch.exp(last).transpose(-1, -2)                                 # [..,K,1]
    entering, writes = [], []
    # unbind, not indexing: the backward of x[c] writes a full-size zero tensor per chunk (O(NC²))
    W0s, Was, Hvs, decays, btTs = (t.unbind(0) for t in (W0, Wa, Hv, chunk_decay, btT))
    for c in range(nc):
        entering.append(S)
        Wc = torch.baddbmm(W0s[c], Was[c], S)
        writes.append(Wc)
        S = torch.baddbmm(torch.addcmul(Hvs[c], decays[c], S), btTs[c], Wc)
    entering, writes = torch.stack(entering), torch.stack(writes)                  # [NC,NH,K,V], [NC,NH,C,V]
    o = (q * torch.exp(G)) @ entering + A_qb @ writes + A_qk @ v
    return from_chunk_major(o, batch), {"S": S.reshape(state["S"].shape)}
