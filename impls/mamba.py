"""mamba (S6 selective scan) with mamba_ssm's ``selective_scan_fn`` signature.

Per channel d and state index n (spec: :mod:`lrnnspec.spec.families.mamba`):

    Δ_t = delta_t + delta_bias            (softplus of it when ``delta_softplus``)
    a_t[d,n] = e^{Δ_t[d] A[d,n]}          (eigenvalue_range "[0,1]")  or  2e^{Δ_t[d] A[d,n]} − 1  ("[-1,1]")
    h_t[d,n] = a_t[d,n] h_{t−1}[d,n] + Δ_t[d] B_t[n] u_t[d]
    y_t[d]   = Σ_n C_t[n] h_t[d,n] + D[d] u_t[d],   then y ⊙ silu(z) when z is given.

Both forms take ``selective_scan_fn``'s arguments, in its order and with its defaults::

    (u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False,
     *, initial_state=None, cu_seqlens=None, eigenvalue_range="[0,1]"[, chunk_size=64])

channel-first: u, delta, z [B,D,L]; A [D,N] (≤ 0); B, C [B,N,L] (time-varying, one group — the
grouped [B,G,N,L] and time-invariant [D,N] variants of mamba_ssm are not supported); D,
delta_bias [D]. Returns out [B,D,L] in u's dtype, or (out, last_state [B,D,N]) when
``return_last_state`` (float32; float64 for float64 u). Extras mamba_ssm lacks: ``initial_state``
[NSEQ,D,N] (zeros when None), ``cu_seqlens`` (int64 [NSEQ+1]; B = 1, sequences packed along L;
last_state is then [NSEQ,D,N]), ``eigenvalue_range``.

* ``recurrent_selective_scan`` — the spec's own step, token by token (mamba_ssm's
  ``selective_scan_ref``);
* ``chunk_selective_scan``     — the chunked scan of :mod:`.scan` (no parallel form: S6 has no
  quadratic attention form).

Measured (T = 4096, B = 1, D = 256, NS = 16, fp32, delta_softplus, D/z/delta_bias given; this
repo's 2-core CPU, 2 threads, medians): forward recurrent ≈ 630–750 ms vs chunk ≈ 40–50 ms
(12–17×). The chunk form is :mod:`.scan`'s fused two-level scan for forward and backward alike:
S6's decay is per (d, n), so it must evaluate T·D·NS exponentials (≈ 13 ms alone here) and its cost
is memory traffic; the fused form never allocates a [T, D, NS] tensor in one piece (a fresh 64 MB
tensor costs as much in page faults as the arithmetic filling it). Under load from other processes
the many small per-step ops of both forms slow down by several times.
"""

from __future__ import annotations

import torch

from lrnnspec.spec.errors import OptionError, ShapeError, SpecError

from .driver import Chunked, call
from .mlstm import check_layout, num_sequences
from .scan import selective_scan_core
from .registry import register_forms

CONVENTION = "mamba_ssm"


def softplus(x: torch.Tensor) -> torch.Tensor:
    """max(x, 0) + log1p(e^{−|x|}): the spec's softplus (torch's has a threshold at x = 20)."""
    return torch.clamp_min(x, 0.0) + torch.log1p(torch.exp(-x.abs()))


def _prepare(x, p):
    dt = x["delta"]
    if p.delta_bias is not None:
        dt = dt + p.delta_bias
    if p.delta_softplus:
        dt = softplus(dt)
    return {"dt": dt, "u": x["u"], "B": x["B"], "C": x["C"]}


def _finish(y, x, p):
    if p.D is not None:
        y = y + p.D * x["u"]
    z = x.get("z")
    return y if z is None else y * (z * torch.sigmoid(z))


# padded steps: Δ = 0 → a = 1 (both ranges), drive Δ·u·B = 0 — the state passes unchanged
CHUNKED = Chunked(prepare=_prepare, core=selective_scan_core, pads={"dt": 0.0}, finish=_finish)

LAYOUTS = {"u": ("B", "D", "L"), "delta": ("B", "D", "L"), "A": ("D", "N"), "B": ("B", "N", "L"),
           "C": ("B", "N", "L"), "D": ("D",), "z": ("B", "D", "L"), "delta_bias": ("D",)}


def _bind(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens):
    args = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    for name in ("u", "delta", "A", "B", "C"):
        if args[name] is None:
            raise SpecError(name, "is required")
    for name in ("B", "C"):
        value = args[name]
        if isinstance(value, torch.Tensor) and value.dim() == 4:
            raise ShapeError(name, f"grouped {name} [B,G,N,L] (shape {tuple(value.shape)}) is not supported: "
                                   "pass one group [B,N,L]")
        if isinstance(value, torch.Tensor) and value.dim() == 2:
            raise ShapeError(name, f"time-invariant {name} [D,N] (shape {tuple(value.shape)}) is not supported: "
                                   f"pass a time-varying [B,N,L] (expand it)")
    dims = check_layout(LAYOUTS, args)
    if initial_state is not None:
        n = num_sequences(cu_seqlens, dims["B"], dims["L"])
        check_layout({"initial_state": ("NSEQ", "D", "N")}, {"initial_state": initial_state}, {**dims, "NSEQ": n})
    spec = {name: (t.transpose(1, 2) if t is not None and LAYOUTS[name][1:] in (("D", "L"), ("N", "L")) else t)
            for name, t in args.items()}
    return spec


def _run(form, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state, cu_seqlens,
         eigenvalue_range, chunk_size=None):
    if not isinstance(return_last_state, bool):
        raise SpecError("return_last_state", f"must be True or False, got {return_last_state!r}")
    if not isinstance(delta_softplus, bool):
        raise OptionError("delta_softplus", f"must be True or False, got {delta_softplus!r}")
    inputs = _bind(u, delta, A, B, C, D, z, delta_bias, initial_state, cu_seqlens)
    out, last = call(form, "mamba", CHUNKED, inputs, initial_state=initial_state, output_final_state=True,
                     cu_seqlens=cu_seqlens, chunk_size=chunk_size, value_input="u",
                     delta_softplus=delta_softplus, eigenvalue_range=eigenvalue_range)
    out = out.transpose(1, 2)
    return (out, last) if return_last_state else out


def recurrent_selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                             return_last_state=False, *, initial_state=None, cu_seqlens=None,
                             eigenvalue_range="[0,1]"):
    return _run("recurrent", u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                initial_state, cu_seqlens, eigenvalue_range)


def chunk_selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         return_last_state=False, *, initial_state=None, cu_seqlens=None, eigenvalue_range="[0,1]",
                         chunk_size=64):
    return _run("chunk", u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, initial_state,
                cu_seqlens, eigenvalue_range, chunk_size)


FORMS = register_forms("mamba", {"recurrent": recurrent_selective_scan, "chunk": chunk_selective_scan}, convention=CONVENTION)
