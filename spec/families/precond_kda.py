"""precond_kda — kda whose write key is preconditioned by a running per-channel second moment of the keys
(FLA's ``naive_recurrent_precond_kda``): two states, S [K, V] and the moment A [K],

    A_t = e^{g_atk,t} A_{t−1} + β_atk,t (k_t ⊙ k_t)
    m_t = x^{−σ(log(|A_t| + eps) − c)},   σ(r) = r / (1 + |r|)        (a squash into (1/x, x) per channel)
    S'  = Diag(e^{g_t}) S_{t−1},   S_t = S' + β_t (k_t ⊙ m_t) (v_t − S'ᵀ k_t)ᵀ,   o_t = scale · S_tᵀ q_t

with options x (> 1, default 1.5), eps (> 0, default 1e-6) and c = ``log_atk_scale`` (default −0.2).
Shapes: q, k [B,T,H,K] (k unit-norm); v [B,T,H,V]; g [B,T,H,K] ≤ 0; g_atk [B,T,H] ≤ 0; beta_atk
[B,T,H] ≥ 0 (in [0, 1]); beta [B,T,H] ∈ [0, 1]; states S [N,H,K,V], A [N,H,K]; output [B,T,H,V].
A is a decayed sum of squares, ≥ 0 from any reachable state; the definition reads |A| in the logarithm so
that an arbitrary initial A has a value too (FLA's reference takes log(A + eps): NaN for an initial A < −eps —
a kernel may assume A ≥ 0, and certifying one on drawn initial states needs them drawn ≥ 0).
With x = 1 (m ≡ 1) it is kda (:func:`lrnnspec.spec.mappings.precond_kda_to_kda`).
Eigenvalues: of (I − β (k ⊙ m) kᵀ) Diag(e^g): 1 − β kᵀ(k ⊙ m) along k with kᵀ(k ⊙ m) ∈ (1/x, x) for unit k;
β ≤ 1 and x ≤ 2 keep it in (−1, 1] (the transition is not symmetric: no contraction is claimed).
"""

import math

from ..family import (
    LOG_GATE, SCALE, UNIT_KEYS, Domain, Family, Input, Option, StateComponent, positive_finite, register,
)
from ._common import delta_chunk_flops, readout_q

UNIT_RATE = Domain(0.0, 1.0, "a rate in [0, 1]")


def _above_one(x):
    try:
        ok = math.isfinite(float(x)) and float(x) >= 1.0
    except (TypeError, ValueError):
        ok = False
    return None if ok else "must be a finite number ≥ 1"


def _finite(x):
    try:
        ok = math.isfinite(float(x))
    except (TypeError, ValueError):
        ok = False
    return None if ok else "must be a finite number"


def step(ar, s, x, p):
    k = x["k"]
    A = ar.state(ar.add(ar.mul(ar.exp(x["g_atk"])[..., None], s["A"]), ar.mul(x["beta_atk"][..., None], ar.mul(k, k))))
    r = ar.sub(ar.log(ar.add(ar.abs(A), ar.const(p.eps))), ar.const(p.log_atk_scale))
    squash = ar.div(r, ar.add(ar.const(1.0), ar.abs(r)))
    m = ar.exp(ar.mul(ar.const(-math.log(p.x)), squash))
    decayed = ar.mul(ar.exp(x["g"])[..., :, None], s["S"])
    err = ar.sub(x["v"], ar.dot(decayed, k[..., :, None], axis=-2))
    write = ar.mul(x["beta"][..., None], ar.mul(k, m))
    return {"S": ar.state(ar.add(decayed, ar.outer(write, err))), "A": A}


FAMILY = register(Family(
    name="precond_kda",
    recurrence="A_t = e^{g_atk}A_{t-1} + β_atk k⊙k;  m = x^{−σ(log(|A|+eps) − c)};  S_t = S' + β(k⊙m)(v − S'ᵀk)ᵀ, "
               "S' = Diag(e^{g_t})S_{t-1};  o_t = scale·S_tᵀq_t",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
            Input("g", ("B", "T", "H", "K"), LOG_GATE, doc="key-channel log decay of S", role="log_gate"),
            Input("g_atk", ("B", "T", "H"), LOG_GATE, doc="log decay of the key moment A", role="log_gate"),
            Input("beta_atk", ("B", "T", "H"), UNIT_RATE, doc="weight of k ⊙ k entering A", role="write_gate"),
            Input("beta", ("B", "T", "H"), UNIT_RATE, doc="writing strength", role="write_strength")),
    state=(StateComponent("S", ("N", "H", "K", "V")),
           StateComponent("A", ("N", "H", "K"), "decayed Σ β_atk k⊙k (kept ≥ 0)")),
    chunk_flops=delta_chunk_flops,
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout_q,
    options=(SCALE, UNIT_KEYS,
             Option("x", 1.5, "the preconditioner's range: m ∈ (1/x, x)", check=_above_one),
             Option("eps", 1e-6, "added to A inside the logarithm", check=positive_finite),
             Option("log_atk_scale", -0.2, "the squash's center c", check=_finite)),
    eigenvalues="of (I − β(k⊙m)kᵀ)·Diag(e^g): 1 − β kᵀ(k⊙m) along k, in (−1, 1] for β ≤ 1, x ≤ 2 (not symmetric)",
    unit_keys=("k",),
    flops=lambda d: 10.0 * d["B"] * d["T"] * d["H"] * d["K"] * d["V"],
    source="FLA chunk_precond_kda / naive_recurrent_precond_kda (KDA with an ATK preconditioner)",
    rounding="A ← exp(g_atk)·A + β_atk·(k·k) (state); r = log(|A| + eps) − c; σ = r / (1 + |r|); m = exp(−log(x)·σ); "
             "S' = exp(g)·S (row-wise); e = v − Σ_k S'·k; S ← S' + (β·(k·m))⊗e (state); o = Σ_k S·(q·scale)",
))
