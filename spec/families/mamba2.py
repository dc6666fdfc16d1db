"""mamba2 (SSD) — per head h: S_t = e^{Δ_t A_h} S_{t−1} + B_t (Δ_t x_t)ᵀ,  y_t = S_tᵀ C_t + D_h x_t,
then y_t ⊙ silu(z_t) when z is given.  Δ_t = dt_t + dt_bias_h, passed through softplus when
``dt_softplus``.  (mamba_ssm's ``mamba_chunk_scan_combined``; no ``dt_limit`` clamp.)

Spec names and shapes, with mamba_ssm's names in brackets:
x [B,T,HV,V] (x, H heads of dim P); dt [B,T,HV]; A [HV] ≤ 0; B, C [B,T,H,K] (G groups, d_state N;
HV % H == 0 — groups are GVA); D [HV] or [HV,V]; z [B,T,HV,V]; dt_bias [HV].
State S [N,HV,K,V] = mamba_ssm's [N,H,P,N] transposed. Output [B,T,HV,V].
Equals simple_gla with q = C, k = B, v = Δ·x, g = Δ·A, scale = 1 (plus D·x and the z gate).
Eigenvalues: e^{ΔA} ∈ [0, 1]; log-space, cannot be negative.
"""

import numpy as np

from ..family import NONNEGATIVE, NONPOSITIVE, REAL, Family, Input, Option, StateComponent, register
from ._common import check_step_size, skip_and_gate, step_size


def step(ar, s, x, p):
    dt = step_size(ar, x["dt"], p.dt_bias, p.dt_softplus)
    decay = ar.exp(ar.mul(dt, p.A))
    decayed = ar.mul(decay[..., None, None], s["S"])
    return {"S": ar.state(ar.add(decayed, ar.outer(x["B"], ar.mul(dt[..., None], x["x"]))))}


def readout(ar, s, x, p):
    y = ar.dot(s["S"], x["C"][..., :, None], axis=-2)
    D = None if p.D is None else (p.D[:, None] if p.D.ndim == 1 else p.D)
    return skip_and_gate(ar, y, D, x["x"], x.get("z"))


def check(inputs, options):
    check_step_size(inputs, options, "dt", "dt_bias", "dt_softplus")


def log_decay(x, options):
    """|Δ·A| per step and head [B,T,HV]."""
    dt = x["dt"] + (x["dt_bias"] if x.get("dt_bias") is not None else 0.0)
    dt = np.logaddexp(0.0, dt) if options["dt_softplus"] else np.abs(dt)
    return dt * np.abs(x["A"])


FAMILY = register(Family(
    name="mamba2",
    recurrence="S_t = exp(Δ_t·A)·S_{t-1} + B_t(Δ_t x_t)ᵀ;  y_t = S_tᵀC_t + D·x_t  [⊙ silu(z_t)]",
    inputs=(
        Input("x", ("B", "T", "HV", "V"), doc="inputs (mamba_ssm x [B,L,H,P])", role="value"),
        Input("dt", ("B", "T", "HV"), lambda o: REAL if o["dt_softplus"] else NONNEGATIVE, doc="step sizes",
              role="step_size"),
        Input("A", ("HV",), NONPOSITIVE, doc="per-head log decay rate", role="rate"),
        Input("B", ("B", "T", "H", "K"), doc="input projection (mamba_ssm B [B,L,G,N])", role="key"),
        Input("C", ("B", "T", "H", "K"), doc="output projection (mamba_ssm C [B,L,G,N])", role="query"),
        Input("D", ("HV",), optional=True, alt_dims=(("HV", "V"),), doc="skip connection", role="skip"),
        Input("z", ("B", "T", "HV", "V"), optional=True, doc="output gate", role="output_gate"),
        Input("dt_bias", ("HV",), optional=True, doc="added to dt", role="bias"),
    ),
    state=(StateComponent("S", ("N", "HV", "K", "V"), "mamba_ssm layout [N,H,P,N] transposed"),),
    output_dims=("B", "T", "HV", "V"),
    step=step, readout=readout,
    options=(Option("dt_softplus", False, "Δ = softplus(dt + dt_bias)", choices=(False, True)),),
    eigenvalues="exp(Δ·A) ∈ [0, 1]; log-space, cannot be negative",
    check=check, log_decay=log_decay,
    source="Dao & Gu 2024 (Mamba-2 / SSD); mamba_ssm mamba_chunk_scan_combined",
    rounding="Δ (+bias, softplus); d = exp(Δ·A); S ← d·S (acc) + B⊗(Δ·x) (state); y = Σ_K S·C; + D·x; · silu(z)",
))
