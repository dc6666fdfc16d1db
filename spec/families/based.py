"""based (Based, Arora et al. 2024) — linear attention after the second-order Taylor feature map of exp:

    o_t = Σ_{s≤t} f(q̃_t·k_s) v_s  [ / (Σ_{s≤t} f(q̃_t·k_s) + eps) with ``use_norm`` ],
    f(a) = 1 + a + a²/2,   q̃ = scale · q.

As a recurrence on the key moments (f(q̃·k) = φ_q(q̃)·φ(k) with φ(x) = [1, x, x ⊗ x], the ½ on the query
side), per (sequence, head):

    s0 += v,  S1 += k vᵀ,  S2 += (k ⊗ k) vᵀ                   [V], [K, V], [K, K, V]
    z0 += 1,  z1 += k,     z2 += k ⊗ k          (use_norm)     [], [K], [K, K]
    o = s0 + S1ᵀq̃ + ½ Σ_ij q̃_i q̃_j S2[i, j]   [ / (z0 + z1·q̃ + ½ q̃ᵀ z2 q̃ + eps) ]

Shapes: q, k [B,T,H,K]; v [B,T,H,V]; states as above with leading [N,H]; output [B,T,H,V] (no grouped value
heads). f(a) ≥ ½ for every a, so the normalizer of a state reached from zero is ≥ (t + 1)/2. FLA's ops
(``parallel_based``, ``fused_chunk_based``, ``naive_parallel_based``) keep no state: they start from zero.
It is linear_attention on the features (:func:`lrnnspec.spec.mappings.based_to_linear_attention`).
Eigenvalues: all 1 (no decay).
"""

import numpy as np

from ..family import SCALE, Family, Input, Option, StateComponent, positive_finite, register

NORMALIZER = ("z0", "z1", "z2")


def step(ar, s, x, p):
    k, v = x["k"], x["v"]
    kk = ar.outer(k, k)
    new = {"s0": ar.state(ar.add(s["s0"], v)),
           "S1": ar.state(ar.add(s["S1"], ar.outer(k, v))),
           "S2": ar.state(ar.add(s["S2"], ar.mul(kk[..., None], v[..., None, None, :])))}
    if p.use_norm:
        new["z0"] = ar.state(ar.add(s["z0"], ar.const(1.0)))
        new["z1"] = ar.state(ar.add(s["z1"], k))
        new["z2"] = ar.state(ar.add(s["z2"], kk))
    return new


def _taylor_read(ar, m0, m1, m2, qs):
    """m0 + m1ᵀq̃ + ½ q̃ᵀ m2 q̃ for moments m0 [..., V], m1 [..., K, V], m2 [..., K, K, V]."""
    second = ar.dot(ar.dot(m2, qs[..., None, :, None], axis=-2), qs[..., :, None], axis=-2)
    return ar.add(ar.add(m0, ar.dot(m1, qs[..., :, None], axis=-2)), ar.mul(ar.const(0.5), second))


def readout(ar, s, x, p):
    qs = ar.mul(x["q"], p.scale)
    o = _taylor_read(ar, s["s0"], s["S1"], s["S2"], qs)
    if p.use_norm:
        den = _taylor_read(ar, s["z0"][..., None], s["z1"][..., None], s["z2"][..., None], qs)
        o = ar.div(o, ar.add(den, ar.const(p.eps)))
    return o


def shadow(arrays, abs_arrays, state, abs_state, options, cu_seqlens, output):
    """The magnitude floor of the normalized read-out (``use_norm``), o = n / d: (δn + |o|·δd) / |d|, δn, δd of
    the size of Σ|terms| of n and d, from the spec itself (use_norm=False; d is the read-out of a value column
    of ones, the normalizer moments as its state)."""
    if not options.get("use_norm"):
        return None
    from ..api import evaluate

    plain = dict(options, use_norm=False, cu_seqlens=cu_seqlens)

    def read(x, S):
        return evaluate("based", x, engine="fp64", initial_state=S, **plain).output

    def numerator(st):
        return None if st is None else {n: st[n] for n in ("s0", "S1", "S2")}

    def denominator(st):
        return None if st is None else {"s0": st["z0"][..., None], "S1": st["z1"][..., None],
                                        "S2": st["z2"][..., None]}

    ones = np.ones(arrays["v"].shape[:-1] + (1,))
    num_abs = np.abs(read(abs_arrays, numerator(abs_state)))
    den_abs = np.abs(read({**abs_arrays, "v": ones}, denominator(abs_state)))
    den = np.abs(read({**arrays, "v": ones}, denominator(state)) + options.get("eps", 1e-6))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((num_abs + np.abs(output) * den_abs) / den, nan=0.0, posinf=np.finfo(float).max)


FAMILY = register(Family(
    name="based",
    recurrence="o_t = Σ_{s≤t} f(scale·q_t·k_s) v_s [/ (Σ_{s≤t} f(scale·q_t·k_s) + eps)];  f(a) = 1 + a + a²/2",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values", role="value")),
    state=(StateComponent("s0", ("N", "H", "V"), "Σ v"), StateComponent("S1", ("N", "H", "K", "V"), "Σ k vᵀ"),
           StateComponent("S2", ("N", "H", "K", "K", "V"), "Σ (k ⊗ k) vᵀ"),
           StateComponent("z0", ("N", "H"), "Σ 1 (use_norm)"), StateComponent("z1", ("N", "H", "K"), "Σ k (use_norm)"),
           StateComponent("z2", ("N", "H", "K", "K"), "Σ k ⊗ k (use_norm)")),
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout,
    options=(SCALE,
             Option("use_norm", True, "divide by the normalizer Σ f + eps (FLA's default)", choices=(True, False)),
             Option("eps", 1e-6, "added to the normalizer", check=positive_finite)),
    state_when={n: (lambda o: o["use_norm"]) for n in NORMALIZER},
    shadow=shadow,
    eigenvalues="{1}: no decay",
    flops=lambda d: 2.0 * d["B"] * d["T"] * d["H"] * (1 + d["K"] + d["K"] ** 2) * (2 * d["V"] + 2),
    source="Arora et al. 2024 (Based); FLA parallel_based / fused_chunk_based / naive_parallel_based",
    rounding="s0 ← s0 + v, S1 ← S1 + k⊗v, S2 ← S2 + (k⊗k)⊗v [z0 ← z0 + 1, z1 ← z1 + k, z2 ← z2 + k⊗k] (states); "
             "q̃ = q·scale; n = s0 + Σ_k S1·q̃ + 0.5·Σ_i q̃_i Σ_j S2·q̃_j [; d likewise from z; o = n / (d + eps)]",
))
