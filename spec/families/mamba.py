"""mamba (S6 selective scan) — per channel d and state index n:
h_t[d,n] = a_t[d,n] h_{t−1}[d,n] + Δ_t[d] B_t[n] u_t[d],   y_t[d] = Σ_n C_t[n] h_t[d,n] + D[d] u_t[d],
then y ⊙ silu(z) when z is given.  a = e^{Δ A} (eigenvalue_range '[0,1]') or 2e^{Δ A} − 1
('[-1,1]', Grazzi et al. 2025's extension).  Δ = delta + delta_bias, through softplus when
``delta_softplus``.  (mamba_ssm ``selective_scan_fn``; its layout is channel-first [B,D,L].)

Shapes (time-first): u, delta, z [B,T,D]; A [D,NS] ≤ 0; B, C [B,T,NS]; D, delta_bias [D];
state h [N,D,NS]; output [B,T,D].
"""

import numpy as np

from ..errors import DomainError
from ..family import NONNEGATIVE, NONPOSITIVE, REAL, Family, Input, Option, StateComponent, register


def effective_delta(ar, x, p):
    d = x["delta"]
    if p.delta_bias is not None:
        d = ar.add(d, p.delta_bias)
    return ar.softplus(d) if p.delta_softplus else d


def step(ar, s, x, p):
    delta = effective_delta(ar, x, p)
    a = ar.exp(ar.mul(delta[..., :, None], p.A))
    if p.eigenvalue_range == "[-1,1]":
        a = ar.sub(ar.mul(ar.const(2.0), a), ar.const(1.0))
    drive = ar.mul(ar.mul(delta, x["u"])[..., :, None], x["B"][..., None, :])
    return {"h": ar.state(ar.add(ar.mul(a, s["h"]), drive))}


def readout(ar, s, x, p):
    y = ar.dot(s["h"], x["C"][..., None, :], axis=-1)
    if p.D is not None:
        y = ar.add(y, ar.mul(p.D, x["u"]))
    if x.get("z") is not None:
        y = ar.mul(y, ar.silu(x["z"]))
    return y


def check(inputs, options):
    if not options["delta_softplus"]:
        d = inputs["delta"] + (inputs["delta_bias"] if inputs.get("delta_bias") is not None else 0.0)
        if np.any(d < 0):
            raise DomainError("delta", "delta + delta_bias must be ≥ 0 when delta_softplus=False (Δ is a step size)")


FAMILY = register(Family(
    name="mamba",
    recurrence="h_t[d,n] = a_t[d,n]·h_{t-1}[d,n] + Δ_t[d]B_t[n]u_t[d];  a = exp(Δ·A) or 2exp(Δ·A)−1;  "
               "y_t[d] = Σ_n C_t[n]h_t[d,n] + D[d]u_t[d]  [⊙ silu(z)]",
    inputs=(
        Input("u", ("B", "T", "D"), doc="inputs"),
        Input("delta", ("B", "T", "D"), lambda o: REAL if o["delta_softplus"] else NONNEGATIVE, doc="step sizes"),
        Input("A", ("D", "NS"), NONPOSITIVE, doc="log decay rates"),
        Input("B", ("B", "T", "NS"), doc="input-dependent input projection"),
        Input("C", ("B", "T", "NS"), doc="input-dependent output projection"),
        Input("D", ("D",), optional=True, doc="skip connection"),
        Input("z", ("B", "T", "D"), optional=True, doc="output gate"),
        Input("delta_bias", ("D",), optional=True, doc="added to delta"),
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
    check=check,
    source="Gu & Dao 2023 (Mamba, S6); mamba_ssm selective_scan_fn",
    rounding="Δ (+bias, softplus); a = exp(Δ·A) [2a − 1]; h ← a·h + (Δ·u)·B (state); y = Σ_n h·C; + D·u; · silu(z)",
))
