"""rebased (ReBased, Aksenov et al. 2024) — linear attention after the quadratic feature map:

    o_t = Σ_{s≤t} (q̃_t·k_s)² v_s  [ / (Σ_{s≤t} (q̃_t·k_s)² + eps) with ``use_norm`` ],   q̃ = scale · q.

As a recurrence on the keys' second moments ((q̃·k)² = q̃ᵀ (k ⊗ k) q̃), per (sequence, head):

    S2 += (k ⊗ k) vᵀ  [K, K, V];   z2 += k ⊗ k  [K, K] (use_norm);   o = q̃ᵀ S2 q̃  [ / (q̃ᵀ z2 q̃ + eps) ]

Shapes: q, k [B,T,H,K]; v [B,T,H,V]; states [N,H,K,K,V] and [N,H,K,K]; output [B,T,H,V]. The layer's learnable
affine map of the features (γ, β) is applied to q and k before the op, as in FLA's ``parallel_rebased`` /
``naive_parallel_rebased``, which keep no state. The normalizer is ≥ 0 from a zero state but can vanish
(q̃ ⊥ every key): eps keeps the quotient finite, not well-conditioned.
Eigenvalues: all 1 (no decay).
"""

import numpy as np

from ..family import SCALE, Family, Input, Option, StateComponent, positive_finite, register


def step(ar, s, x, p):
    kk = ar.outer(x["k"], x["k"])
    new = {"S2": ar.state(ar.add(s["S2"], ar.mul(kk[..., None], x["v"][..., None, None, :])))}
    if p.use_norm:
        new["z2"] = ar.state(ar.add(s["z2"], kk))
    return new


def _quadratic_read(ar, m2, qs):
    """q̃ᵀ m2 q̃ for m2 [..., K, K, V]: Σ_i q̃_i Σ_j m2[i, j] q̃_j."""
    return ar.dot(ar.dot(m2, qs[..., None, :, None], axis=-2), qs[..., :, None], axis=-2)


def readout(ar, s, x, p):
    qs = ar.mul(x["q"], p.scale)
    o = _quadratic_read(ar, s["S2"], qs)
    if p.use_norm:
        o = ar.div(o, ar.add(_quadratic_read(ar, s["z2"][..., None], qs), ar.const(p.eps)))
    return o


def shadow(arrays, abs_arrays, state, abs_state, options, cu_seqlens, output):
    """The magnitude floor of the normalized read-out (``use_norm``), as based's: (δn + |o|·δd) / |d| with
    δn, δd the read-outs of the absolute values (use_norm=False) and d the normalizer."""
    if not options.get("use_norm"):
        return None
    from ..api import evaluate

    plain = dict(options, use_norm=False, cu_seqlens=cu_seqlens)

    def read(x, S):
        return evaluate("rebased", x, engine="fp64", initial_state=S, **plain).output

    ones = np.ones(arrays["v"].shape[:-1] + (1,))
    num_abs = np.abs(read(abs_arrays, None if abs_state is None else {"S2": abs_state["S2"]}))
    den_abs = np.abs(read({**abs_arrays, "v": ones}, None if abs_state is None else {"S2": abs_state["z2"][..., None]}))
    den = np.abs(read({**arrays, "v": ones}, None if state is None else {"S2": state["z2"][..., None]})
                 + options.get("eps", 1e-6))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((num_abs + np.abs(output) * den_abs) / den, nan=0.0, posinf=np.finfo(float).max)


FAMILY = register(Family(
    name="rebased",
    recurrence="o_t = Σ_{s≤t} (scale·q_t·k_s)² v_s [/ (Σ_{s≤t} (scale·q_t·k_s)² + eps)]",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries (after the layer's feature affine map)", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys (after the layer's feature affine map)", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values", role="value")),
    state=(StateComponent("S2", ("N", "H", "K", "K", "V"), "Σ (k ⊗ k) vᵀ"),
           StateComponent("z2", ("N", "H", "K", "K"), "Σ k ⊗ k (use_norm)")),
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout,
    options=(SCALE,
             Option("use_norm", True, "divide by the normalizer Σ (q̃·k)² + eps (FLA's default)",
                    choices=(True, False)),
             Option("eps", 1e-6, "added to the normalizer", check=positive_finite)),
    state_when={"z2": lambda o: o["use_norm"]},
    shadow=shadow,
    eigenvalues="{1}: no decay",
    flops=lambda d: 2.0 * d["B"] * d["T"] * d["H"] * d["K"] ** 2 * (2 * d["V"] + 2),
    source="Aksenov et al. 2024 (ReBased); FLA parallel_rebased / naive_parallel_rebased",
    rounding="S2 ← S2 + (k⊗k)⊗v [z2 ← z2 + k⊗k] (states); q̃ = q·scale; n = Σ_i (Σ_j S2·q̃_j)·q̃_i "
             "[; d likewise from z2; o = n / (d + eps)]",
))
