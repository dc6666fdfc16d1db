"""Chunk core of the stabilized mLSTM (spec: :mod:`lrnnspec.spec.families.mlstm`).

The spec's recurrence, per head, with λ_t = logσ(f_t) (≤ 0) and i_t the input-gate preactivation:

    m_t = max(λ_t + m_{t−1}, i_t)
    C_t = e^{λ_t + m_{t−1} − m_t} C_{t−1} + e^{i_t − m_t} k_t v_tᵀ,   n_t likewise with k_t
    h_t = C_tᵀ q̃_t / (max(|n_tᵀ q̃_t|, e^{−m_t}) + eps),               q̃_t = scale · q_t

**Unrolling it over one chunk.** Let a chunk start from (C₀, n₀, m₀) and number its steps
t = 1..L. Write D_{t,s} = Σ_{s<r≤t} λ_r (the decay from step s to step t, D_{t,t} = 0) and
F_t = D_{t,0} = Σ_{r≤t} λ_r. By induction on t,

    m_t = max(F_t + m₀, max_{s≤t} (D_{t,s} + i_s))                       (1)
        = F_t + max(m₀, max_{s≤t} (i_s − F_s)),

because max distributes over "+ λ_t": max(λ_t + max(F_{t−1} + m₀, max_{s<t}(D_{t−1,s} + i_s)), i_t)
is (1) with D_{t,s} = λ_t + D_{t−1,s}. The stabilized state is the unstabilized one times e^{−m_t}
(spec docstring), and the unstabilized one is a plain gated sum, so

    C_t = e^{F_t + m₀ − m_t} C₀ + Σ_{s≤t} e^{D_{t,s} + i_s − m_t} k_s v_sᵀ     (2)

and n_t the same with k_s in place of k_s v_sᵀ. By (1) every exponent in (2) is ≤ 0: the
intra-chunk weights W_{t,s} = e^{D_{t,s} + i_s − m_t} and the inter-chunk factor
g_t = e^{F_t + m₀ − m_t} lie in [0, 1], and the largest of them equals 1 — nothing overflows,
whatever the gate preactivations. D is formed as a *segment sum* (a masked cumulative sum over the
[L, L] matrix of λ_r, r ∈ (s, t]) rather than F_t − F_s, so strong forget gates cost no
cancellation.

**Output** (q̃ [L, K], k [L, K], v [L, V], W [L, L] lower-triangular):

    S      = (q̃ kᵀ) ⊙ W                                    [L, L]
    num_t  = g_t · (q̃_tᵀ C₀) + (S v)_t                      [L, V]
    nq_t   = g_t · (q̃_tᵀ n₀) + Σ_s S_{t,s}                  [L]
    h_t    = num_t / (max(|nq_t|, e^{−m_t}) + eps)

**Chunk to chunk.** With μ = max_s (D_{L,s} + i_s) (the last row of (1)'s inner max),
U = Σ_s e^{D_{L,s} + i_s − μ} k_s v_sᵀ and u = Σ_s e^{D_{L,s} + i_s − μ} k_s (each weight ≤ 1),
(1)–(2) at t = L read

    m_L = max(F_L + m₀, μ),   C_L = e^{F_L + m₀ − m_L} C₀ + e^{μ − m_L} U,   n_L likewise with u,

two factors in [0, 1], one of them 1. U, u, F_L, μ are computed for all chunks at once; the
entering states then follow by a short loop over chunks (NC steps of [K, V] work).

Shapes: q, k [N,T,H,K]; v [N,T,H,V]; i, λ [N,T,H] (T a multiple of the chunk size L, heads already
GVA-expanded); state C [N,H,K,V], n [N,H,K], m [N,H]. The parallel form is this core with L = T.
Padding (steps past a sequence's end) is neutral: λ = 0, i = ``I_PAD`` — a finite sentinel, so
m never sees −∞ and no ∞ − ∞ arises — gives m_t = m_{t−1}, weight e^{I_PAD − m} = 0 exactly.
"""

from __future__ import annotations

import torch

from .chunks import causal_mask, from_chunks, masked_exp, overflow_safe_exp, to_chunks

I_PAD = -1e30          # input-gate preactivation of padded steps (finite in float32 and float64)


def segment_sum(lam: torch.Tensor) -> torch.Tensor:
    """D[..., t, s] = Σ_{s<r≤t} lam[..., r] for s ≤ t (other entries: garbage, mask them).

    lam [..., L] → [..., L, L]; a masked cumulative sum, no differences of running sums."""
    size = lam.shape[-1]
    strict = causal_mask(size, lam.device, strict=True)
    terms = torch.where(strict, lam[..., :, None].expand(*lam.shape, size), lam.new_zeros(()))
    return terms.cumsum(-2)


def mlstm_core(xs, state, p, size):
    """(h [N,T,H,V], final {C, n, m}) for xs {q, k, v, i, lam} — see the module docstring."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))             # [N,H,NC,L,·]
    i, lam = to_chunks(xs["i"], size), to_chunks(xs["lam"], size)           # [N,H,NC,L]
    nc = q.shape[2]
    if nc == 0:
        n_, t_, h_, _ = xs["q"].shape
        return xs["v"].new_zeros((n_, t_, h_, xs["v"].shape[-1])), dict(state)
    q = q * p.scale
    mask = causal_mask(size, q.device)
    logits = torch.where(mask, segment_sum(lam) + i[..., None, :], q.new_full((), -torch.inf))  # D + i
    inner = logits.amax(-1)                                                 # max_{s≤t}(D_ts + i_s)
    F = lam.cumsum(-1)                                                      # [N,H,NC,L]

    # chunk ends: m_L = max(F_L + m₀, μ), C_L = e^{F_L+m₀−m_L} C₀ + e^{μ−m_L} U
    mu, F_end = inner[..., -1], F[..., -1]                                  # [N,H,NC]
    w_end = torch.exp(logits[..., -1, :] - mu[..., None])                   # [N,H,NC,L], ≤ 1
    k_end = k * w_end[..., None]
    U = k_end.transpose(-1, -2) @ v                                         # [N,H,NC,K,V]
    u = k_end.sum(-2)                                                       # [N,H,NC,K]
    C, n, m = state["C"], state["n"], state["m"]
    entering = []
    for c in range(nc):
        entering.append((C, n, m))
        carried = F_end[:, :, c] + m
        m_new = torch.maximum(carried, mu[:, :, c])
        alpha, beta = torch.exp(carried - m_new), torch.exp(mu[:, :, c] - m_new)
        C = alpha[..., None, None] * C + beta[..., None, None] * U[:, :, c]
        n = alpha[..., None] * n + beta[..., None] * u[:, :, c]
        m = m_new
    C0, n0, m0 = (torch.stack(t, dim=2) for t in zip(*entering))           # [N,H,NC,K,V] [..,K] [N,H,NC]

    # outputs within each chunk
    carried = F + m0[..., None]                                             # F_t + m₀
    m_t = torch.maximum(carried, inner)                                     # (1)
    g = torch.exp(carried - m_t)                                            # [N,H,NC,L], ≤ 1
    S = (q @ k.transpose(-1, -2)) * masked_exp(logits - m_t[..., None], mask)
    num = S @ v + g[..., None] * (q @ C0)                                   # [N,H,NC,L,V]
    nq = S.sum(-1) + g * (q @ n0[..., None])[..., 0]                        # [N,H,NC,L]
    den = torch.maximum(nq.abs(), overflow_safe_exp(-m_t)) + p.eps
    return from_chunks(num / den[..., None]), {"C": C, "n": n, "m": m}
