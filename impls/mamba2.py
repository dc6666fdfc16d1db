"""mamba2 (SSD) — mamba_ssm's ``mamba_chunk_scan_combined`` signature, and its recurrent form.

x [B,T,H,P]; dt [B,T,H]; A [H] ≤ 0; B, C [B,T,G,N] (H % G == 0); D [H] or [H,P]; z [B,T,H,P];
dt_bias [H]; initial_states / final states [N_seq,H,P,N] (mamba_ssm's layout; the spec's state
[N_seq,H,N,P] is its transpose). Per head: Δ = dt (+ dt_bias) (softplus when ``dt_softplus``),
S_t = e^{Δ_t A} S_{t−1} + B_t (Δ_t x_t)ᵀ, y_t = S_tᵀ C_t + D x_t, then y ⊙ silu(z).
The chunk form is SSD: the scalar-gate core with q = C, k = B, v = Δ·x, g = Δ·A, scale 1.
Not supported (raise): ``seq_idx`` (use ``cu_seqlens``), a ``dt_limit`` other than (0, inf).
Returns out [B,T,H,P], or (out, final_states) with ``return_final_states=True``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from lrnnspec.spec.errors import SpecError

from .driver import Chunked, call
from .gated_linear import scalar_gate_core
from .torch_arithmetic import TorchArithmetic
from .registry import register_forms

CONVENTION = "mamba_ssm"
_UNIT_SCALE = SimpleNamespace(scale=1.0)


def _step_size(x, p):
    dt = x["dt"] if p.dt_bias is None else x["dt"] + p.dt_bias
    return TorchArithmetic().softplus(dt) if p.dt_softplus else dt


def _prepare(x, p):
    dt = _step_size(x, p)
    return {"q": x["C"], "k": x["B"], "v": dt[..., None] * x["x"], "g": dt * p.A}


def _finish(o, x, p):
    if p.D is not None:
        o = o + (p.D[:, None] if p.D.dim() == 1 else p.D) * x["x"]
    if "z" in x:
        o = o * TorchArithmetic().silu(x["z"])
    return o


CHUNKED = Chunked(prepare=_prepare, core=lambda xs, s, p, size: scalar_gate_core(xs, s, _UNIT_SCALE, size),
                  finish=_finish)


def _run(form, x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, seq_idx, cu_seqlens, dt_softplus,
         dt_limit, return_final_states):
    if seq_idx is not None:
        raise SpecError("seq_idx", "is not supported; pass cu_seqlens (packed sequences, B = 1) instead")
    if tuple(dt_limit) != (0.0, math.inf):
        raise SpecError("dt_limit", f"only (0.0, inf) (no clamp) is supported, got {tuple(dt_limit)}")
    if initial_states is not None and getattr(initial_states, "dim", lambda: 0)() == 4:
        initial_states = initial_states.transpose(-1, -2)
    o, state = call(form, "mamba2", CHUNKED, dict(x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias),
                    value_input="x", initial_state=initial_states, output_final_state=return_final_states,
                    cu_seqlens=cu_seqlens, chunk_size=chunk_size, dt_softplus=dt_softplus)
    return (o, state.transpose(-1, -2)) if return_final_states else o


def mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size=64, D=None, z=None, dt_bias=None, initial_states=None,
                              seq_idx=None, cu_seqlens=None, dt_softplus=False, dt_limit=(0.0, math.inf),
                              return_final_states=False):
    return _run("chunk", x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, seq_idx, cu_seqlens,
                dt_softplus, dt_limit, return_final_states)


def recurrent_mamba2(x, dt, A, B, C, *, D=None, z=None, dt_bias=None, initial_states=None, seq_idx=None,
                     cu_seqlens=None, dt_softplus=False, dt_limit=(0.0, math.inf), return_final_states=False):
    return _run("recurrent", x, dt, A, B, C, None, D, z, dt_bias, initial_states, seq_idx, cu_seqlens,
                dt_softplus, dt_limit, return_final_states)


FORMS = register_forms("mamba2", {"recurrent": recurrent_mamba2, "chunk": mamba_chunk_scan_combined}, convention=CONVENTION)
