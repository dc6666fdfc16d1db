"""Chunk cores of the gated linear-attention recurrence S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ.

Per chunk of C steps with entering state S₀ and chunk-local cumulative log gates G_i = Σ_{j≤i} g_j:

    o_i   = (q_i ⊙ e^{G_i})ᵀ S₀ + Σ_{j≤i} [Σ_k q_ik k_jk e^{G_ik − G_jk}] v_j
    S_end = Diag(e^{G_C}) S₀ + Σ_j (k_j ⊙ e^{G_C − G_j}) v_jᵀ

Every exponent is ≤ 0 (G is non-increasing), so nothing overflows however strong the gates.
``scalar_gate_core``: g [N,T,H] (simple_gla, retention, Mamba-2 SSD, linear attention with no
gate): the decay matrix e^{G_i − G_j} is [C, C] and intra-chunk scores are one matmul.
``key_gate_core``: g [N,T,H,K] (GLA): e^{G_ik − G_jk} depends on the channel k. If every chunk's
total decay is within float32's exponent range it factors as e^{G_ik}·e^{−G_jk} (one matmul, FLA's
form); otherwise, within sub-chunks
of s steps the [s, s, K] factor is formed exactly; across sub-chunks it factors through the
cumulative gate R at the end of the previous sub-chunk, e^{G_i − G_j} = e^{G_i − R}·e^{R − G_j},
both factors ≤ 1 (j < sub-chunk start ≤ i). Cost O(C²K + C·s·K) per chunk.
Shapes: q, k [N,T,H,K], v [N,T,H,V], state S [N,H,K,V]; T a multiple of C.
"""

from __future__ import annotations

import math

import torch

from .chunks import causal_mask, from_chunks, masked_exp, scan_chunk_states, to_chunks


def scalar_gate_core(xs, state, p, size):
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    q = q * p.scale
    mask = causal_mask(size, q.device)
    scores = q @ k.transpose(-1, -2)
    if xs.get("g") is None:
        intra = scores.masked_fill(~mask, 0.0) @ v
        q_in, k_out, decay = q, k, None
    else:
        G = to_chunks(xs["g"], size).cumsum(-1)                              # [N,H,NC,C]
        intra = (scores * masked_exp(G[..., :, None] - G[..., None, :], mask)) @ v
        last = G[..., -1:]
        q_in = q * torch.exp(G)[..., None]
        k_out = k * torch.exp(last - G)[..., None]
        decay = torch.exp(last)[..., None]                                   # [N,H,NC,1,1]
    entering, final = scan_chunk_states(state["S"], decay, k_out.transpose(-1, -2) @ v)
    return from_chunks(intra.add_(q_in @ entering)), {"S": final}


def sub_chunk(size: int) -> int:
    """Sub-chunk length s of :func:`key_gate_core`: 16, or ⌈√C⌉ for long chunks (bounds memory)."""
    return min(size, max(16, math.isqrt(size - 1) + 1))


# |G| below which e^{±G} is a normal float32 (e^{60} ≈ 1e26, e^{−60} ≈ 9e−27): the factored form is exact
# to rounding there, and one matmul.
FACTORED_RANGE = 60.0


def key_gate_scores(q, k, G, strict: bool = False):
    """A[i, j] = Σ_k q_ik k_jk e^{G_ik − G_jk} for j ≤ i (j < i when ``strict``), else 0.

    q, k, G [..., C, K] with G non-increasing along C, starting ≤ 0. When every chunk's total decay
    stays within ``FACTORED_RANGE`` (one host check), A = (q ⊙ e^{G})(k ⊙ e^{−G})ᵀ, masked; otherwise
    the sub-chunk form below, whose exponents are all ≤ 0. Returns [..., C, C]."""
    size, dim = q.shape[-2], q.shape[-1]
    if G.numel() and float(G[..., -1, :].detach().min()) > -FACTORED_RANGE:
        A = (q * G.exp()) @ (k * torch.exp(-G)).transpose(-1, -2)
        return A.masked_fill(~causal_mask(size, q.device, strict), 0.0)
    s = sub_chunk(size)
    nsub = -(-size // s)
    pad = nsub * s - size
    if pad:
        q, k, G = (torch.cat([t, t.new_zeros((*t.shape[:-2], pad, dim))], dim=-2) for t in (q, k, G))
        G[..., size:, :] = G[..., size - 1:size, :]
    lead = q.shape[:-2]
    qb, kb, Gb = (t.reshape(*lead, nsub, s, dim) for t in (q, k, G))
    # diagonal blocks, exact: [.., nsub, s, s, K]
    local = causal_mask(s, q.device, strict)[..., None]
    diag = (qb[..., :, None, :] * kb[..., None, :, :]
            * masked_exp(Gb[..., :, None, :] - Gb[..., None, :, :], local)).sum(-1)
    # off-diagonal blocks through the reference R_a = G at the end of sub-chunk a − 1
    ref = torch.cat([G.new_zeros((*lead, 1, dim)), Gb[..., :-1, -1, :]], dim=-2)          # [.., nsub, K]
    q_ref = qb * torch.exp(Gb - ref[..., :, None, :])
    before = (torch.arange(nsub * s, device=q.device)[None, :] < (torch.arange(nsub, device=q.device) * s)[:, None])
    k_ref = k[..., None, :, :] * masked_exp(ref[..., :, None, :] - G[..., None, :, :], before[..., None])
    off = q_ref @ k_ref.transpose(-1, -2)                                                  # [.., nsub, s, C']
    eye = torch.eye(nsub, dtype=q.dtype, device=q.device)
    blocks = diag[..., :, :, None, :] * eye[:, None, :, None]                              # [.., nsub, s, nsub, s]
    A = off.reshape(*lead, nsub * s, nsub * s) + blocks.reshape(*lead, nsub * s, nsub * s)
    return A[..., :size, :size]


def key_gate_core(xs, state, p, size):
    q, k, v, g = (to_chunks(xs[n], size) for n in ("q", "k", "v", "g"))
    q = q * p.scale
    G = g.cumsum(-2)                                                          # [N,H,NC,C,K]
    intra = key_gate_scores(q, k, G) @ v
    last = G[..., -1:, :]
    q_in = q * torch.exp(G)
    k_out = k * torch.exp(last - G)
    decay = torch.exp(last).transpose(-1, -2)                                 # [N,H,NC,K,1]
    entering, final = scan_chunk_states(state["S"], decay, k_out.transpose(-1, -2) @ v)
    return from_chunks(intra + q_in @ entering), {"S": final}
