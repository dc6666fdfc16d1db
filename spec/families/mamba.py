"""mamba (S6 selective scan) — per channel d and state index n:
h_t[d,n] = a_t[d,n] h_{t−1}[d,n] + Δ_t[d] B_t[n] u_t[d],   y_t[d] = Σ_n C_t[n] h_t[d,n] + D[d] u_t[d],
then y ⊙ silu(z) when z is given.  a = e^{Δ A} (eigenvalue_range '[0,1]') or 2e^{Δ A} − 1
('[-1,1]', Grazzi et al. 2025's extension).  Δ = delta + delta_bias, through softplus when
``delta_softplus``.  (mamba_ssm ``selective_scan_fn``; its layout is channel-first [B,D,L].)

Shapes (time-first): u, delta, z [B,T,D]; A [D,NS] ≤ 0; B, C [B,T,NS]; D, delta_bias [D];
state h [N,D,NS]; output [B,T,D].
"""

import numpy as np

from ..family import NONNEGATIVE, NONPOSITIVE, REAL, Family, Input, Option, StateComponent, register
from ._common import check_step_size, skip_and_gate, step_size


def step(ar, s, x, p):
    delta = step_size(ar, x["delta"], p.delta_bias, p.delta_softplus)
    a = ar.exp(ar.mul(delta[..., :, None], p.A))
    if p.eigenvalue_range == "[-1,1]":
        a = ar.sub(ar.mul(ar.const(2.0), a), ar.const(1.0))
    drive = ar.mul(ar.mul(delta, x["u"])[..., :, None], x["B"][..., None, :])
    return {"h": ar.state(ar.add(ar.mul(a, s["h"]), drive))}


def readout(ar, s, x, p):
    y = ar.dot(s["h"], x["C"][..., None, :], axis=-1)
    return skip_and_gate(ar, y, p.D, x["u"], x.get("z"))


def check(inputs, options):
    check_step_size(inputs, options, "delta", "delta_bias", "delta_softplus")


def log_decay(x, options):
    """|Δ·A| per step and channel [B,T,D] (the largest rate of each channel)."""
    delta = x["delta"] + (x["delta_bias"] if x.get("delta_bias") is not None else 0.0)
    delta = np.logaddexp(0.0, delta) if options["delta_softplus"] else np.abs(delta)
    return delta * np.abs(x["A"]).max(axis=-1)


FAMILY = register(Family(
    name="mamba",
    recurrence="h_t[d,n] = a_t[d,n]·h_{t-1}[d,n] + Δ_t[d]B_t[n]u_t[d];  a = exp(Δ·A) or 2exp(Δ·A)−1;  "
               "y_t[d] = Σ_n C_t[n]h_t[d,n] + D[d]u_t[d]  [⊙ silu(z)]",
    inputs=(
        Input("u", ("B", "T", "D"), doc="inputs", role="value"),
        Input("delta", ("B", "T", "D"), lambda o: REAL if o["delta_softplus"] else NONNEGATIVE, doc="step sizes",
              role="step_size"),
        Input("A", ("D", "NS"), NONPOSITIVE, doc="log decay rates", role="rate"),
        Input("B", ("B", "T", "NS"), doc="input-dependent input projection", role="key"),
        Input("C", ("B", "T", "NS"), doc="input-dependent output projection", role="query"),
        Input("D", ("D",), optional=True, doc="skip connection", role="skip"),
        Input("z", ("B", "T", "D"), optional=True, doc="output gate", role="output_gate"),
        Input("delta_bias", ("D",), optional=True, doc="added to delta", role="bias"),
    ),
    state=(StateComponent("h", ("N", "D", "NS")),),
    output_dims=("B", "T", "D"),
    step=step, readout=readout,
    options=(
        Option("delta_softplus", False, "Δ = softplus(delta + delta_bias)", choices=(False, True)),
        Option("eigenvalue_range", "[0,1]", "'[0,1]': a = exp(ΔA); '[-1,1]': a = 2·exp(ΔA) − 1",
               choices=("[0,1]", "[-1,1]")),
    ),
    eigenvalues="[0,1] (a = exp(ΔA)) or [−1,1] (a = 2·exp(ΔA) − 1, Grazzi et al. 2025)",
    check=check, log_decay=log_decay,
    flops=lambda d: 6.0 * d["B"] * d["T"] * d["D"] * d["NS"],   # exp(Δ·A), Δ·u·B and the read, per (d, n)
    source="Gu & Dao 2023 (Mamba, S6); mamba_ssm selective_scan_fn",
    rounding="Δ (+bias, softplus); a = exp(Δ·A) [2a − 1]; h ← a·h + (Δ·u)·B (state); y = Σ_n h·C; + D·u; · silu(z)",
))
