"""Chunk cores of the gated linear-attention recurrence S_t = Diag(e^{g_t}) S_{t−1} + k_t v_tᵀ.

Per chunk of C steps with entering state S₀ and chunk-local cumulative log gates G_i = Σ_{j≤i} g_j:

    o_i   = (q_i ⊙ e^{G_i})ᵀ S₀ + Σ_{j≤i} [Σ_k q_ik k_jk e^{G_ik − G_jk}] v_j
    S_end = Diag(e^{G_C}) S₀ + Σ_j (k_j ⊙ e^{G_C − G_j}) v_jᵀ

Every exponent is ≤ 0 (G is non-increasing), so nothing overflows however strong the gates.
``scalar_gate_core``: g [N,T,H] (simple_gla, retention, Mamba-2 SSD, linear attention with no
gate): the decay matrix e^{G_i − G_j} is [C, C] and intra-chunk scores are one matmul.
Fast path (guarded, one host-side check): when every |G| < ``FACTORED_RANGE`` (e^{±G} then normal
float32, the product exact to rounding), e^{G_i − G_j} = e^{G_i}·e^{−G_j}, so the scores are
(q ⊙ e^{G})(k ⊙ e^{−G})ᵀ — the left factor is the q_in the inter-chunk term needs anyway — and
the [C, C] decay matrix is never formed; otherwise it is formed exactly as e^{G_i − G_j + log scale}
with −inf above the diagonal (every exponent ≤ log scale). In both paths the scale rides on an
existing multiply (the [C, C] mask or decay, and ``baddbmm``'s alpha for q_in S₀), the inter-chunk
term is added in place onto the intra-chunk product, and the chunk states come from
:func:`.chunks.scan_scalar_states` (one autograd node). Without a gate, on CPU and without autograd,
the products run per head on strided views instead (:func:`_ungated_by_head`).
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

from .chunks import (
    blocked_scan, causal_mask, chunk_view, from_chunks, masked_exp, scan_chunk_states, scan_scalar_states, to_chunks,
)


def _tril_weights(size: int, scale: float, log: bool, like: torch.Tensor) -> torch.Tensor:
    """[C, C]: ``scale`` on and below the diagonal, 0 above; with ``log``: log(scale) and −inf."""
    mask = causal_mask(size, like.device)
    if log:
        return torch.full((size, size), math.log(scale), dtype=like.dtype, device=like.device).masked_fill_(
            ~mask, -math.inf)
    return mask.to(like.dtype).mul_(scale)


def _needs_grad(*ts) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


def _by_head(t: torch.Tensor) -> list[torch.Tensor]:
    """[N, H, ...] → the N·H views t[n, h] (no copy, whatever the strides)."""
    return [t_h for t_n in t.unbind(0) for t_h in t_n.unbind(0)]


def _ungated_by_head(xs, state, p, size):
    """No gate, CPU, no autograd: per (sequence, head), the four products on strided chunk views of the
    inputs — no layout copies — with the read-out written into the output buffer:

        U_c = k_cᵀ v_c,  E = scan(U) from S₀,  o_c = scale · (q_c E_c + tril(q_c k_cᵀ) v_c).

    Three [N, H, NC, ·, V] buffers (U, E, o) instead of seven; on two CPU cores this form took 15–27%
    less time than the batched one (six interleaved runs, T = 4096, H = 4, K = V = 64), whose copies
    and temporaries leave the cache and, once freed memory goes back to the OS, fault their pages in
    again on every call. One op per head per product, so it is not the form for a GPU, and ``out=``
    has no autograd: the batched form serves both."""
    q, k, v = (chunk_view(xs[n], size) for n in ("q", "k", "v"))          # [N,H,NC,C,·] strided views
    heads = [_by_head(t) for t in (q, k, v)]
    U = v.new_empty((*q.shape[:3], q.shape[-1], v.shape[-1]))
    for u, k_h, v_h in zip(_by_head(U), *heads[1:]):
        torch.bmm(k_h.transpose(1, 2), v_h, out=u)
    E = torch.empty_like(U)
    final = blocked_scan(state["S"], None, U, E)
    o = v.new_empty(v.shape)
    scale = float(p.scale)
    for o_h, e, q_h, k_h, v_h in zip(_by_head(o), _by_head(E), *heads):
        torch.bmm(q_h, e, out=o_h)
        o_h.baddbmm_(torch.bmm(q_h, k_h.transpose(1, 2)).tril_(), v_h, beta=scale, alpha=scale)
    return from_chunks(o), {"S": final}


def scalar_gate_core(xs, state, p, size):
    g = xs.get("g")
    if g is None and xs["v"].device.type == "cpu" and not _needs_grad(xs["q"], xs["k"], xs["v"], state["S"]):
        return _ungated_by_head(xs, state, p, size)
    v = to_chunks(xs["v"], size)                                             # [N,H,NC,C,V] contiguous
    shape, dv = (*v.shape[:-1], xs["q"].shape[-1]), v.shape[-1]
    scale = float(p.scale)
    v3 = v.flatten(0, 2)                                                     # [N·H·NC, C, V] view
    last = None
    if g is None:
        q3, k3 = (to_chunks(xs[n], size).flatten(0, 2) for n in ("q", "k"))
        # scale and causal mask in one multiply
        scores = torch.bmm(q3, k3.transpose(-1, -2)).mul_(_tril_weights(size, scale, False, v))
        q_in, k_out = q3, k3
    else:
        G = to_chunks(g, size).cumsum(-1)                                    # [N,H,NC,C]
        last = G[..., -1]                                                    # [N,H,NC]
        q, k = chunk_view(xs["q"], size), chunk_view(xs["k"], size)         # strided views
        # the contiguous factor first: each product is also the chunk copy (:func:`.chunks.chunk_view`)
        q_in = (torch.exp(G)[..., None] * q).flatten(0, 2)
        k_out = (torch.exp(last[..., None] - G)[..., None] * k).flatten(0, 2)
        if G.numel() and float(G.detach().abs().max()) < FACTORED_RANGE:
            # e^{G_i − G_j} = e^{G_i} · e^{−G_j}, both factors normal floats: one matmul on q_in
            k_neg = (torch.exp(-G)[..., None] * k).flatten(0, 2)
            scores = torch.bmm(q_in, k_neg.transpose(-1, -2)).mul_(_tril_weights(size, scale, False, v))
        else:
            # exact: e^{G_i − G_j + log scale}, −inf (→ 0) above the diagonal, exponents ≤ log scale
            log = scale > 0 and math.isfinite(scale)
            diff = (G[..., :, None] - G[..., None, :]).flatten(0, 2)
            decay = diff.add_(_tril_weights(size, scale if log else 1.0, True, v)).exp_()
            q3, k3 = (to_chunks(xs[n], size).flatten(0, 2) for n in ("q", "k"))
            scores = torch.bmm(q3, k3.transpose(-1, -2))
            scores = scores * decay if _needs_grad(scores, decay) else scores.mul_(decay)
            if not log:
                scores = scores * scale
    update = torch.bmm(k_out.transpose(-1, -2), v3).view(*shape[:3], shape[-1], dv)
    entering, final = scan_scalar_states(state["S"], last, update)
    # in place on the fresh bmm output (bmm's backward keeps its inputs, not its output)
    o = torch.bmm(scores, v3).baddbmm_(q_in, entering.flatten(0, 2), alpha=scale)
    return from_chunks(o.view(*shape[:-1], dv)), {"S": final}


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
