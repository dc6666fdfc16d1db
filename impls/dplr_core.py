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

Scores: when every |G| < ``FACTORED_RANGE`` (one host check; e^{±G} are then normal floats)
e^{G_t − G_s} = e^{G_t}·e^{−G_s} factors exactly to rounding, and the four matrices are the matmuls
of the rows {e^{G⁻} ⊙ 𝐚, e^{G} ⊙ Q} against the columns {e^{−G} ⊙ B, e^{−G} ⊙ K}, then masked (the
non-causal entries are finite, < e^{2·FACTORED_RANGE}); B̃ = e^{G_C} ⊙ (e^{−G} ⊙ B), K̃ likewise.
Otherwise (strong gates) they come from
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
from .delta import chunk_major, chunk_scan, from_chunk_major, unit_lower_inverse
from .gated_linear import FACTORED_RANGE

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

    Chunk-major layout [NC, N·H, C, ·]. The gated operands e^{G} ⊙ Q, e^{G⁻} ⊙ 𝐚 (and, factored,
    e^{−G} ⊙ B, e^{−G} ⊙ K) are each made in one pass with their chunk copy (the factor of
    :func:`.delta.chunk_major`). Scores: factored (module docstring) four matmuls, A_ab negated (the
    solve reads only its strict lower part, so it needs no mask), A_ak, A_qb, A_qk masked in place,
    the scale on the A_q· masks; or :func:`pair_scores`. Then (I − A_ab)⁻¹ by one triangular solve,
    W₀ = (I − A_ab)⁻¹ A_ak V, W_a = (I − A_ab)⁻¹ (e^{G⁻} ⊙ 𝐚); the loop (:func:`.delta.chunk_scan`)
    carries W_c = W₀_c + W_a,c S and S ← e^{G_C} ⊙ S + K̃_cᵀ V_c + B̃_cᵀ W_c; finally
    O = A_qk V + A_qb W + scale · (e^{G} ⊙ Q) S₀, accumulated in place on one product."""
    batch = xs["q"].shape[0]
    gk, v = chunk_major(xs["gk"], size), chunk_major(xs["v"], size)          # [NC,NH,C,K], [NC,NH,C,V]
    nc, nh, dk, dv = v.shape[0], v.shape[1], gk.shape[-1], v.shape[-1]
    S = state["S"].reshape(-1, dk, dv)
    if nc == 0:
        return xs["v"].new_zeros(xs["v"].shape), {"S": state["S"]}
    G = gk.cumsum(-2)                                                               # [..,C,K]
    last = G[..., -1:, :]                                                           # [..,1,K]
    q_in = chunk_major(xs["q"], size, torch.exp(G))                                 # e^{G} ⊙ Q
    a_in = chunk_major(xs["a"], size, torch.exp(G - gk))                            # e^{G⁻} ⊙ 𝐚
    flat = (nc * nh, size, -1)
    strict = causal_mask(size, G.device, strict=True).to(G.dtype)
    if float(G.detach().abs().max()) < FACTORED_RANGE:
        inv = torch.exp(-G)
        bn, kn = chunk_major(xs["b"], size, inv), chunk_major(xs["k"], size, inv)   # e^{−G} ⊙ B, e^{−G} ⊙ K
        a3, q3 = a_in.reshape(flat), q_in.reshape(flat)
        bnT, knT = bn.reshape(flat).transpose(-1, -2), kn.reshape(flat).transpose(-1, -2)
        neg_ab = torch.bmm(a3, bnT).neg_()                                          # −A_ab, upper part unread
        A_ak = torch.bmm(a3, knT).mul_(strict)
        incl = causal_mask(size, G.device).to(G.dtype) * p.scale
        A_qb, A_qk = torch.bmm(q3, bnT).mul_(incl), torch.bmm(q3, knT).mul_(incl)
        decay = torch.exp(last)                                                     # e^{G_C} [..,1,K]
        bt, kt = bn * decay, kn * decay                                             # B̃, K̃
    else:
        q, a, b, k = (chunk_major(xs[n], size) for n in ("q", "a", "b", "k"))
        a_next = torch.cat([a[..., 1:, :], a.new_zeros((nc, nh, 1, dk))], dim=-2)   # â_r = a_{r+1}
        scores = pair_scores(torch.stack([a_next, q * p.scale], dim=-3), torch.stack([b, k], dim=-3), G,
                             sub_chunk(size)).reshape(nc * nh, 2, 2, size, size)    # [..,2,2,C,C]
        # A_ab, A_ak: rows of Â shifted down by one (A[t] = Â[t−1]); row 0 is zero
        shifted = torch.cat([scores.new_zeros((nc * nh, 2, 1, size)), scores[:, 0, :, :-1, :]], dim=-2)
        neg_ab, A_ak, A_qb, A_qk = -shifted[:, 0], shifted[:, 1], scores[:, 1, 0], scores[:, 1, 1]
        to_end = torch.exp(last - G)
        bt, kt, decay = b * to_end, k * to_end, torch.exp(last)
    T = unit_lower_inverse(neg_ab).view(nc, nh, size, size)                        # (I − A_ab)⁻¹
    v3 = v.view(flat)
    W0 = T @ (A_ak @ v3).view(nc, nh, size, dv)                                     # [..,C,V], not a view
    Wa = T @ a_in                                                                   # [..,C,K]
    Hv = kt.transpose(-1, -2) @ v                                                   # K̃ᵀ V [..,K,V]
    entering, writes, S = chunk_scan(S, W0, Wa, bt.transpose(-1, -2), decay.transpose(-1, -2), Hv, sign=1.0)
    # in place on the fresh product (bmm's backward keeps its inputs, not its output)
    o = torch.bmm(A_qk, v3).baddbmm_(A_qb, writes.view(flat)).baddbmm_(q_in.reshape(flat), entering.view(-1, dk, dv),
                                                                      alpha=p.scale)
    return from_chunk_major(o.view(nc, nh, size, dv), batch), {"S": S.reshape(state["S"].shape)}
