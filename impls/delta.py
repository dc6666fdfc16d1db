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

from .chunks import causal_mask


def chunk_major(t: torch.Tensor, size: int) -> torch.Tensor:
    """[N, T, H, *rest] → [NC, N·H, size, *rest] contiguous (T a multiple of ``size``): chunk c is
    the contiguous batch of matrices ``out[c]``."""
    n, length, h, *rest = t.shape
    t = t.reshape(n, length // size, size, h, *rest).movedim(3, 2)            # [N,NC,H,C,*]
    return t.transpose(0, 1).reshape(length // size, n * h, size, *rest)


def from_chunk_major(t: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`chunk_major`: [NC, N·H, C, *rest] → [N, NC·C, H, *rest]."""
    nc, nh, size, *rest = t.shape
    t = t.reshape(nc, n, nh // n, size, *rest).permute(1, 0, 3, 2, *range(4, 4 + len(rest)))
    return t.reshape(n, nc * size, nh // n, *rest)


def unit_lower_inverse(A: torch.Tensor) -> torch.Tensor:
    """(I + strict_lower(A))⁻¹ for A [..., C, C]. The diagonal and upper part of A are not read, and
    the gradient reaching A is projected onto its strictly lower part (``solve_triangular``'s
    backward), so A needs no mask. Solving against I and multiplying afterwards was 1.5–3× faster
    on CPU (MKL) than one ``solve_triangular`` with the K + V right-hand sides."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(A.shape)
    return torch.linalg.solve_triangular(A, eye, upper=False, unitriangular=True)


def ut_core(q, k, v, beta, g, state, scale: float, size: int, every: int = 1):
    """Chunkwise (gated) delta rule.

    q [N, T/every, H, K]; k [N, T, H, K]; v [N, T, H, V]; beta [N, T, H]; g [N, T, H] or None;
    state S₀ [N, H, K, V]; ``size`` = C steps per chunk, T % C == 0 and C % every == 0.
    Returns (o [N, T/every, H, V], final state [N, H, K, V]).

    Layout: chunk-major [NC, N·H, C, ·] so that the chunk loop slices contiguous batches."""
    n = every
    batch, dk, dv = k.shape[0], k.shape[-1], v.shape[-1]
    nc = k.shape[1] // size
    kc, vc = chunk_major(k, size), chunk_major(v, size)                       # [NC,NH,C,K], [NC,NH,C,V]
    bc = chunk_major(beta[..., None], size)[..., 0]                           # [NC,NH,C]
    qc = chunk_major(q, size // n)                                            # [NC,NH,C/n,K]
    incl = causal_mask(size, k.device).to(k.dtype)                            # [C,C] 0/1
    kT = kc.transpose(-1, -2).contiguous()                                    # [NC,NH,K,C]
    kk, scores = kc @ kT, qc @ kT                                             # [..,C,C], [..,C/n,C]
    if g is None:
        A = kk * bc[..., None]
        ke = kc
    else:
        G = chunk_major(g[..., None], size)[..., 0].cumsum(-1)                # [NC,NH,C]
        # Γ: exponents clamped to ≤ 0 before exp (only non-causal entries are > 0), then masked
        decay = torch.exp((G[..., :, None] - G[..., None, :]).clamp_max(0.0)) * incl
        A = kk * decay * bc[..., None]
        ke = kc * torch.exp(G)[..., None]
    Tb = torch.linalg.solve_triangular(A, torch.diag_embed(bc), upper=False,
                                       unitriangular=True)                 # (I + A)⁻¹ diag(β)
    U0, W = Tb @ vc, Tb @ ke                                                  # [..,C,V], [..,C,K]
    if g is None:
        ktT = kT
    else:
        last = G[..., -1:]
        ktT = kT * torch.exp(last - G)[..., None, :]                          # K̃ᵀ [NC,NH,K,C]
        chunk_decay = torch.exp(last)[..., None]                              # [NC,NH,1,1]
    S = state.reshape(-1, dk, dv)
    if nc == 0:
        return q.new_zeros((*q.shape[:-1], dv)), state
    entering, writes = [], []
    # unbind, not indexing: the backward of x[c] writes a full-size zero tensor per chunk (O(NC²))
    U0s, Ws, ktTs = U0.unbind(0), W.unbind(0), ktT.unbind(0)
    decays = None if g is None else chunk_decay.unbind(0)
    for c in range(nc):
        entering.append(S)
        U = torch.baddbmm(U0s[c], Ws[c], S, alpha=-1.0)                       # U₀ − W S
        writes.append(U)
        S = torch.baddbmm(S if g is None else S * decays[c], ktTs[c], U)
    # the scale rides on baddbmm's beta and alpha (or on the [C, C] mask): no pass over Q for it
    alpha = scale
    if g is None:
        scores, alpha = scores.mul_(incl[n - 1::n] * scale), 1.0
        q_in = qc
    else:
        scores = scores * decay[..., n - 1::n, :]
        q_in = qc * torch.exp(G[..., n - 1::n])[..., None]
    o = torch.baddbmm(q_in.flatten(0, 1) @ torch.stack(entering).flatten(0, 1), scores.flatten(0, 1),
                      torch.stack(writes).flatten(0, 1), beta=scale, alpha=alpha).unflatten(0, (nc, -1))   # (QKᵀ ⊙ Γ) U + Q̃ S₀
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
