"""linear_attention — S_t = S_{t−1} + k_t v_tᵀ, o_t = scale · S_tᵀ q_t.

Shapes: q, k [B,T,H,K]; v [B,T,HV,V]; state S [N,HV,K,V]; output [B,T,HV,V].
With ``normalize=True`` (FLA's ``chunk_linear_attn`` default) a second state z_t = z_{t−1} + k_t is
kept and o_t = scale · S_tᵀ q_t / (scale · q_tᵀ z_t + normalize_eps).
Eigenvalues of the transition: all exactly 1.
"""

import numpy as np

from ..family import SCALE, Family, Option, StateComponent, positive_finite, register
from ._common import K_, Q, S_KV, V_, read_scaled


def step(ar, s, x, p):
    new = {"S": ar.state(ar.add(s["S"], ar.outer(x["k"], x["v"])))}
    if p.normalize:
        new["z"] = ar.state(ar.add(s["z"], x["k"]))
    return new


def readout(ar, s, x, p):
    o = read_scaled(ar, s["S"], x["q"], p)
    if p.normalize:
        den = ar.add(ar.dot(ar.mul(x["q"], p.scale), s["z"], axis=-1), ar.const(p.normalize_eps))
        o = ar.div(o, den[..., None])
    return o


def shadow(arrays, abs_arrays, state, abs_state, options, cu_seqlens, output):
    """The magnitude floor of the normalized read-out (``normalize=True``), o = n / d: the quotient's
    error is (δn + |o|·δd) / |d|, δn, δd of the size of Σ|terms| of n and d. Both sums come from the
    spec itself (normalize=False; d is the read-out of a value column of ones)."""
    if not options.get("normalize"):
        return None
    from ..api import evaluate

    plain = dict(options, normalize=False, cu_seqlens=cu_seqlens)

    def read(x, S):
        return evaluate("linear_attention", x, engine="fp64", initial_state=S, **plain).output

    ones = np.ones(arrays["v"].shape[:-1] + (1,))
    num_abs = np.abs(read(abs_arrays, None if abs_state is None else {"S": abs_state["S"]}))
    den_abs = np.abs(read({**abs_arrays, "v": ones}, None if abs_state is None else {"S": abs_state["z"][..., None]}))
    den = np.abs(read({**arrays, "v": ones}, None if state is None else {"S": state["z"][..., None]})
                 + options.get("normalize_eps", 1e-10))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num((num_abs + np.abs(output) * den_abs) / den, nan=0.0, posinf=np.finfo(float).max)


FAMILY = register(Family(
    name="linear_attention",
    recurrence="S_t = S_{t-1} + k_t v_tᵀ;  o_t = scale·S_tᵀq_t  [/ (scale·q_tᵀz_t + eps), z_t = z_{t-1} + k_t]",
    inputs=(Q, K_, V_),
    state=(StateComponent("S", S_KV), StateComponent("z", ("N", "HV", "K"), "running Σk (normalize=True only)")),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout,
    options=(
        SCALE,
        Option("normalize", False, "divide by the normalizer scale·q_tᵀz_t + normalize_eps", choices=(False, True)),
        Option("normalize_eps", 1e-10, "added to the normalizer", check=positive_finite),
    ),
    eigenvalues="{1}: no decay, no eigenvalue parameterization",
    source="Katharopoulos et al. 2020; FLA chunk_linear_attn / fused_recurrent_linear_attn",
    rounding="S ← S + k⊗v (state); o = Σ_k S·(q·scale) left to right [÷ (Σ_k (q·scale)·z + eps)]",
    state_when={"z": lambda o: o["normalize"]},
    shadow=shadow,
))
