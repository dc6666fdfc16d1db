"""The one chunk core of the delta families: the UT (WY) transform with an optional scalar gate.

Recurrence, per (sequence, head), state S [K, V]:

    S_t = (I − β_t k_t k_tᵀ) e^{g_t} S_{t−1} + β_t k_t v_tᵀ,       o_t = scale · S_tᵀ q_t

(g ≡ 0: DeltaNet; g given: Gated DeltaNet with the decay before the error term, FLA's order).
Equivalently S_t = e^{g_t} S_{t−1} + k_t u_tᵀ with the *error write*
u_t = β_t (v_t − (e^{g_t} S_{t−1})ᵀ k_t).

Chunkwise, for one chunk of C steps entering with S₀ and chunk-local cumulative log gate
G_t = Σ_{j≤t} g_j (all shapes per (sequence, head); K = key dim, V = value dim):

    S_t  = e^{G_t} S₀ + Σ_{s≤t} e^{G_t − G_s} k_s u_sᵀ
    u_t  = β_t v_t − β_t e^{G_t} S₀ᵀ k_t − Σ_{s<t} β_t e^{G_t − G_s} (k_t·k_s) u_s

so with Γ [C, C], Γ_ts = e^{G_t − G_s} for s ≤ t (else 0), and the strictly lower
A [C, C], A_ts = β_t Γ_ts (k_t·k_s) (s < t):

    (I + A) U = diag(β) (V − e^{G} K S₀)
    T  = (I + A)⁻¹ diag(β)                    [C, C]   (unit lower triangular solve: the UT transform)
    U  = U₀ − W S₀,   U₀ = T V [C, V],   W = T (e^{G} ⊙ K) [C, K]
    S_C = e^{G_C} S₀ + K̃ᵀ U,                 K̃ = e^{G_C − G} ⊙ K [C, K]
    O   = scale · [(e^{G} ⊙ Q) S₀ + ((Q Kᵀ) ⊙ Γ) U]                               [C, V]

The chunks are independent except through S₀: everything but "U_c = U₀_c − W_c S_c,
S_{c+1} = e^{G_C} S_c + K̃_cᵀ U_c" is batched over all chunks; that recurrence is a loop over
chunks of two ``baddbmm`` each (the only S₀-dependent matmuls), and O follows batched from the
stacked entering states and U. Every exponent is ≤ 0 (G is non-increasing; the pairwise
differences are clamped to ≤ 0 before ``exp`` and the non-causal entries then zeroed), so nothing
overflows however strong the gates. β ∈ [0, 2] (eigenvalue 1 − β ∈ [−1, 1]) needs nothing
special: I + A is unit lower triangular whatever β.

**Read-out every n-th step** (DeltaProduct): run on the interleaved micro-step sequence with the
token's gate at its first micro-step, and read out only at the last micro-step of each token —
``q`` then has C/n rows per chunk; row r reads the state after step r·n + n − 1, i.e. it uses
rows n − 1, 2n − 1, … of Γ (and of the causal mask) and G at those steps.

Cost per chunk O(C²K + C²V + C·K·V + C³/3).
"""

from __future__ import annotations

import torch

from .chunks import causal_mask, unit_lower_inverse  # noqa: F401 - unit_lower_inverse re-exported
from .gated_linear import FACTORED_RANGE


def chunk_major(t: torch.Tensor, size: int, factor: torch.Tensor | None = None) -> torch.Tensor:
    """[N, T, H, *rest] → [NC, N·H, size, *rest] contiguous (T a multiple of ``size``): chunk c is
    the contiguous batch of matrices ``out[c]``. With ``factor`` [NC, N·H, size, *r] (contiguous; r a
    prefix of rest, the remaining axes broadcast): factor ⊙ t in that layout, the scaling and the
    copy in one pass (the product takes the layout of its first operand, the factor; the strided
    view of t is only read)."""
    n, length, h, *rest = t.shape
    nc = length // size
    t = t.reshape(n, nc, size, h, *rest).movedim(3, 2).transpose(0, 1)        # [NC,N,H,C,*] view
    if factor is not None:
        t = factor.reshape(nc, n, h, *factor.shape[2:], *([1] * (t.dim() - factor.dim() - 1))) * t
    # contiguous, not reshape: for N = 1 reshape returns a view with C and H interleaved, which every
    # matmul (and every elementwise result, inheriting its strides) would copy again
    return t.contiguous().view(nc, n * h, size, *rest)


def from_chunk_major(t: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`chunk_major`: [NC, N·H, C, *rest] → [N, NC·C, H, *rest]."""
    nc, nh, size, *rest = t.shape
    t = t.reshape(nc, n, nh // n, size, *rest).permute(1, 0, 3, 2, *range(4, 4 + len(rest)))
    return t.reshape(n, nc * size, nh // n, *rest)


class _ChunkScan(torch.autograd.Function):
    """The chunk recurrence of the UT-transform cores (:func:`ut_core`, :func:`.dplr_core.dplr_core`)
    as one autograd node, with σ = ±1:

        E_0 = S₀,   U_c = U₀_c + σ W_c E_c,   E_{c+1} = d_c ⊙ E_c + K̃_cᵀ U_c + R_c     (c = 0 … NC − 1)

    S₀ [NH, K, V]; U₀ [NC, NH, C, V] (a fresh tensor: U is written over it); W [NC, NH, C, K];
    K̃ᵀ [NC, NH, K, C]; d [NC, NH, 1 or K, 1] (decay over the state's rows) or None (1); R
    [NC, NH, K, V] or None (0). Returns (E [NC, NH, K, V] the entering states, U [NC, NH, C, V], E_NC
    the final state). Forward writes every E_c, U_c in place into one buffer each (no per-chunk
    allocation or copy, no stack). Backward is the loop reversed with H = ∂E_{c+1}:
    ∂U_c = Ū_c + K̃_c H (the total cotangent of U_c) and H ← Ē_c + d_c ⊙ H + σ W_cᵀ ∂U_c; the rest
    batched: ∂U₀ = ∂U, ∂W = σ ∂U Eᵀ, ∂K̃ᵀ = H_{·+1} Uᵀ, ∂d_c = Σ E_c ⊙ H_{c+1} (over d's broadcast
    axes), ∂R = H_{·+1}."""

    @staticmethod
    def forward(ctx, S0, U0, W, ktT, d, R, sign: float):
        nc = U0.shape[0]
        E = S0.new_empty((nc + 1, *S0.shape))
        U = U0
        ctx.mark_dirty(U0)
        E[0] = S0
        # per-chunk views made once (one unbind each), not by indexing at every step
        Es, Us, Ws, ks = E.unbind(0), U.unbind(0), W.unbind(0), ktT.unbind(0)
        ds, Rs = (None if t is None else t.unbind(0) for t in (d, R))
        for c in range(nc):
            Us[c].baddbmm_(Ws[c], Es[c], alpha=sign)
            if d is None and R is None:
                torch.baddbmm(Es[c], ks[c], Us[c], out=Es[c + 1])
            else:
                if R is None:
                    torch.mul(Es[c], ds[c], out=Es[c + 1])
                elif d is None:
                    torch.add(Rs[c], Es[c], out=Es[c + 1])
                else:
                    torch.addcmul(Rs[c], ds[c], Es[c], out=Es[c + 1])
                Es[c + 1].baddbmm_(ks[c], Us[c])
        ctx.save_for_backward(E, U, W, ktT, d)
        ctx.sign, ctx.has_R = sign, R is not None
        return E[:nc], U, E[nc]

    @staticmethod
    def backward(ctx, gE, gU, gS):
        E, U, W, ktT, d = ctx.saved_tensors
        sign, nc = ctx.sign, U.shape[0]
        H = torch.empty_like(E)                         # H[c] = ∂E_c (total), H[NC] = ∂S_final
        gUt = gU.clone(memory_format=torch.contiguous_format)
        H[nc] = gS
        for c in range(nc - 1, -1, -1):
            gUt[c].baddbmm_(ktT[c].transpose(-1, -2), H[c + 1])
            if d is None:
                torch.add(gE[c], H[c + 1], out=H[c])
            else:
                torch.addcmul(gE[c], d[c], H[c + 1], out=H[c])
            H[c].baddbmm_(W[c].transpose(-1, -2), gUt[c], alpha=sign)
        E, after = E[:nc], H[1:]
        g_d = None
        if d is not None and ctx.needs_input_grad[4]:
            g_d = (E * after).sum_to_size(d.shape)
        g_W = (gUt @ E.transpose(-1, -2)).mul_(sign)
        return H[0], gUt, g_W, after @ U.transpose(-1, -2), g_d, after if ctx.has_R else None, None


def chunk_scan(S0, U0, W, ktT, d=None, R=None, sign: float = -1.0):
    """:class:`_ChunkScan` (σ = ``sign``); returns (entering states, U, final state)."""
    return _ChunkScan.apply(S0, U0, W, ktT, d, R, sign)


def ut_core(q, k, v, beta, g, state, scale: float, size: int, every: int = 1):
    """Chunkwise (gated) delta rule.

    q [N, T/every, H, K]; k [N, T, H, K]; v [N, T, H, V]; beta [N, T, H]; g [N, T, H] or None;
    state S₀ [N, H, K, V]; ``size`` = C steps per chunk, T % C == 0 and C % every == 0.
    Returns (o [N, T/every, H, V], final state [N, H, K, V]).

    Layout: chunk-major [NC, N·H, C, ·] so that the chunk loop (:func:`chunk_scan`) slices
    contiguous batches. β rides on the rows: T = (I + A)⁻¹, U₀ = T (β ⊙ V), W = T (β ⊙ e^{G} ⊙ K),
    each scaled operand made in one pass with its chunk copy (:func:`chunk_major`'s factor). Gated,
    when every |G| < ``FACTORED_RANGE`` (one host check; e^{±G} are then normal floats and each
    product exact to rounding): Γ_ts = e^{G_t}·e^{−G_s}, so with K⁻ = e^{−G} ⊙ K the scores are
    A = (β ⊙ e^{G} ⊙ K) K⁻ᵀ and Q̃ K⁻ᵀ (row scalings only; A's upper part is never read).
    Otherwise Γ is formed exactly (exponents clamped to ≤ 0)."""
    n = every
    batch, dk, dv = k.shape[0], k.shape[-1], v.shape[-1]
    nc = k.shape[1] // size
    if nc == 0:
        return q.new_zeros((*q.shape[:-1], dv)), state
    bc = chunk_major(beta[..., None], size)[..., 0]                           # [NC,NH,C]
    vb = chunk_major(v, size, bc)                                             # β ⊙ V [NC,NH,C,V]
    G = None if g is None else chunk_major(g[..., None], size)[..., 0].cumsum(-1)     # [NC,NH,C]
    factored = G is not None and float(G.detach().abs().max()) < FACTORED_RANGE
    if factored:
        eG = torch.exp(G)
        kb = chunk_major(k, size, bc * eG)                                    # β ⊙ e^{G} ⊙ K
        knT = chunk_major(k, size, torch.exp(-G)).transpose(-1, -2)           # K⁻ᵀ
        q_in = chunk_major(q, size // n, eG[..., n - 1::n].contiguous())      # e^{G} ⊙ Q
        A = kb @ knT                                                          # [..,C,C]
        scores = q_in @ knT                                                   # [..,C/n,C]
    else:
        kc, q_in = chunk_major(k, size), chunk_major(q, size // n)            # [NC,NH,C,K], [..,C/n,K]
        kT = kc.transpose(-1, -2)
        scores = q_in @ kT
        if G is None:
            kb = chunk_major(k, size, bc)                                     # β ⊙ K
            A = kb @ kT
        else:
            # Γ: exponents clamped to ≤ 0 before exp (only non-causal entries are > 0), then masked
            decay = torch.exp((G[..., :, None] - G[..., None, :]).clamp_max(0.0)) * causal_mask(size, k.device)
            kb = chunk_major(k, size, bc * torch.exp(G))                      # β ⊙ e^{G} ⊙ K
            A = (kc @ kT) * decay * bc[..., None]
            q_in = q_in * torch.exp(G[..., n - 1::n])[..., None]
            scores = scores * decay[..., n - 1::n, :]
    T = unit_lower_inverse(A)                                                 # (I + A)⁻¹
    if G is None:
        ktT, d = kT, None
    else:
        last = G[..., -1:]
        ktT = chunk_major(k, size, torch.exp(last - G)).transpose(-1, -2)     # K̃ᵀ [NC,NH,K,C]
        d = torch.exp(last)[..., None]                                        # e^{G_C} [NC,NH,1,1]
    entering, writes, S = chunk_scan(state.reshape(-1, dk, dv), T @ vb, T @ kb, ktT, d)
    # the scale rides on baddbmm's beta and alpha (or on the [C, C] mask): no pass over Q for it
    if G is None or factored:
        scores, alpha = scores.mul_(causal_mask(size, k.device)[n - 1::n].to(k.dtype) * scale), 1.0
    else:
        alpha = scale
    # in place on the fresh product (bmm's backward keeps its inputs, not its output)
    o = torch.bmm(q_in.flatten(0, 1), entering.flatten(0, 1)).baddbmm_(
        scores.flatten(0, 1), writes.flatten(0, 1), beta=scale, alpha=alpha).unflatten(0, (nc, -1))
    return from_chunk_major(o, batch), S.reshape(state.shape)


def delta_rule_core(xs, state, p, size):
    """:class:`~.driver.Chunked` core of delta_rule and gated_delta_rule (g optional)."""
    o, S = ut_core(xs["q"], xs["k"], xs["v"], xs["beta"], xs.get("g"), state["S"], p.scale, size)
    return o, {"S": S}


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """FLA's ``l2norm`` (``use_qk_l2norm_in_kernel``): x / √(Σ x² + eps) over the last axis,
    computed in float32 (float64 for float64 input), differentiable."""
    if not isinstance(x, torch.Tensor):
        return x
    y = x.float() if x.dtype != torch.float64 else x
    return y * torch.rsqrt((y * y).sum(-1, keepdim=True) + eps)
