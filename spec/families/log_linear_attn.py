"""log_linear_attn (log-linear attention, Guo et al. 2025) — gated linear attention whose past is split into
Fenwick-tree buckets, each read with its own weight:

    o_t = scale · Σ_{s≤t} (q_t·k_s) e^{G_t − G_s} λ_t^{(ℓ(t,s))} v_s,    G_t = Σ_{r≤t} g_r,
    ℓ(t,s) = bit_length(t ⊕ s)   (positions counted from the sequence's start; ℓ(t,t) = 0)

(FLA's ``naive_log_linear_attn`` builds the same level masks from bit tests; levels ℓ ≥ L, past the last
of the L given weights, weigh 0, as in FLA's ``chunk_log_linear_attn``, which loads them as 0).

As a recurrence: the past {s ≤ t} splits into buckets B_ℓ(t) = {s : bit_length(t ⊕ s) = ℓ}: B_0 = {t},
and for ℓ ≥ 1 the 2^{ℓ−1} positions before t with bits ≥ ℓ−1 cleared when bit ℓ−1 of t is set (else
empty). The state holds one matrix per level, S_ℓ = Σ_{s∈B_ℓ(t)} e^{G_t − G_s} k_s v_sᵀ, ℓ = 0 … L−1, and
the position p (tokens seen). The step to token p (j = trailing zeros of p; j = ∞ at p = 0) decays every
level by e^{g}, merges levels 0 … j+1 into level j+1 (dropped when j+1 ≥ L: its tokens weigh 0 from now
on), empties levels 1 … j, and writes k vᵀ to level 0; the read-out is o = Σ_ℓ λ^{(ℓ)} S_ℓᵀ (scale·q).

Shapes: q, k [B,T,H,K]; v [B,T,HV,V] (HV % H == 0: FLA's G query/key heads, H value heads); g [B,T,HV] ≤ 0;
level_scales [B,T,HV,NS] (L = NS levels; any real weights); state levels [N,HV,NS,K,V] and position [N,HV]
(per head, equal across heads for a state reached from zero; a nonnegative integer: the tokens the state has seen, so that a continued sequence keeps its buckets; the
definition reads the nearest integer to |position|, so that every real state has a value — as precond_kda
reads |A| —, and a kernel may assume a nonnegative integer: state role ``position``).
scale defaults to 1 (FLA's). With every λ = 1 and enough levels it is simple_gla
(:func:`lrnnspec.spec.mappings.log_linear_attn_to_simple_gla`).
Eigenvalues: e^{g} ∈ [0, 1] on every level (log-space gate: no negative decay).
"""

import math

import numpy as np

from ..errors import DomainError
from ..family import LOG_GATE, Family, Input, Option, StateComponent, positive_finite, register

INFINITE = 1 << 62     # trailing zeros of position 0: every earlier level merges past the last


def trailing_zeros(p: np.ndarray) -> np.ndarray:
    """Trailing zero bits of nonnegative integers ``p`` (int64 arrays); :data:`INFINITE` for 0."""
    p = p.astype(np.int64)
    low = p & -p
    return np.where(p == 0, INFINITE, np.log2(np.maximum(low, 1)).astype(np.int64))


def positions(ar, pos) -> np.ndarray:
    """The position state as int64 [N, HV]: the nearest integer to |p| (a state drawn or perturbed off the integers
    still has a value; a kernel may assume nonnegative integers, and its position gradient is 0)."""
    c = np.asarray(ar.to_float(pos), dtype=np.float64)
    if not np.all(np.isfinite(c)) or np.any(np.abs(c) > 2.0 ** 52):
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(c) | (np.abs(c) > 2.0 ** 52))[0])
        raise DomainError("initial_state", f"component 'position' must hold the tokens a state has seen (a "
                                           f"nonnegative integer below 2^52); position[{', '.join(map(str, i))}] = "
                                           f"{c[i]!r}")
    return np.rint(np.abs(c)).astype(np.int64)


def step(ar, s, x, p):
    S, pos = s["levels"], positions(ar, s["position"])
    L = S.shape[-3]
    target = np.minimum(trailing_zeros(pos) + 1, L)            # the level the merge lands on (L: dropped)
    level = np.arange(L)
    shape = pos.shape + (L, 1, 1)                              # [N, HV, L, 1, 1]
    merge_in = ar.asarray((level <= target[..., None]).astype(np.float64).reshape(shape))
    onto = ar.asarray((level == target[..., None]).astype(np.float64).reshape(shape))
    keep = ar.asarray((level > target[..., None]).astype(np.float64).reshape(shape))
    first = ar.asarray((level == 0).astype(np.float64).reshape((1,) * (S.ndim - 3) + (L, 1, 1)))
    decayed = ar.mul(ar.exp(x["g"])[..., None, None, None], S)
    parts = ar.mul(merge_in, decayed)
    merged = parts[..., 0, :, :]
    for ell in range(1, L):                                    # left to right; masked-out terms add exact zeros
        merged = ar.add(merged, parts[..., ell, :, :])
    new = ar.add(ar.add(ar.mul(keep, decayed), ar.mul(onto, merged[..., None, :, :])),
                 ar.mul(first, ar.outer(x["k"], x["v"])[..., None, :, :]))
    return {"levels": ar.state(new), "position": ar.asarray((pos + 1).astype(np.float64))}


def readout(ar, s, x, p):
    S = s["levels"]
    qs = ar.mul(x["q"], p.scale)
    reads = ar.dot(S, qs[..., None, :, None], axis=-2)         # [N, HV, L, V]: S_ℓᵀ q̃ per level
    lam = x["level_scales"]
    o = ar.mul(lam[..., 0, None], reads[..., 0, :])
    for ell in range(1, S.shape[-3]):
        o = ar.add(o, ar.mul(lam[..., ell, None], reads[..., ell, :]))
    return o


def _scale(s):
    return None if s is None else positive_finite(s)


FAMILY = register(Family(
    name="log_linear_attn",
    recurrence="o_t = scale·Σ_{s≤t} (q_t·k_s) e^{G_t−G_s} λ_t^{(ℓ)} v_s,  ℓ = bit_length(t ⊕ s) (Fenwick levels; "
               "λ^{(ℓ)} = 0 for ℓ ≥ L);  state: S_ℓ = Σ_{s∈B_ℓ(t)} e^{G_t−G_s} k_s v_sᵀ per level, and t",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
            Input("v", ("B", "T", "HV", "V"), doc="values (HV value heads; HV % H == 0)", role="value"),
            Input("g", ("B", "T", "HV"), LOG_GATE, doc="head-wise log decay", role="log_gate"),
            Input("level_scales", ("B", "T", "HV", "NS"), doc="λ_t^{(ℓ)}: the read-out's weight of level ℓ "
                                                            "(L = NS levels; later levels weigh 0)",
                  role="level_weight")),
    state=(StateComponent("levels", ("N", "HV", "NS", "K", "V"), "S_ℓ: the decayed Σ k vᵀ of Fenwick bucket ℓ"),
           StateComponent("position", ("N", "HV"), "the tokens seen (a nonnegative integer)", role="position")),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout,
    options=(Option("scale", 1.0, "read-out scale (FLA's default 1); None → K^-1/2", check=_scale),),
    eigenvalues="e^g ∈ [0, 1] on every level (log-space gate: no negative decay)",
    flops=lambda d: 2.0 * d["B"] * d["T"] * d.get("HV", d["H"]) * d["K"] * d["V"] * (2.0 + 2.0 * math.log2(
        max(d["T"], 2))),
    source="Guo et al. 2025 (log-linear attention); FLA chunk_log_linear_attn / naive_log_linear_attn",
    rounding="d = exp(g); D_ℓ = d·S_ℓ; M = Σ_{ℓ ≤ j+1} D_ℓ (ℓ ascending); S_ℓ ← D_ℓ (ℓ > j+1), M (ℓ = j+1), 0 "
             "(1 ≤ ℓ ≤ j), k⊗v (ℓ = 0) (state; exact 0/1 selections); position ← position + 1 (exact); "
             "q̃ = q·scale; r_ℓ = Σ_k S_ℓ·q̃; o = Σ_ℓ λ_ℓ·r_ℓ (ℓ ascending)",
))
