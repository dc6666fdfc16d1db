"""What every PyTorch form shares: argument checks, dtype policy, GVA, varlen packing, padding.

A public function (``chunk_gated_delta_rule``, ...) binds its arguments to the spec's names and
calls :func:`run` with one of three *forms*:

* ``"recurrent"`` — the family's spec definition (``step`` then ``readout``, the one definition
  in :mod:`lrnnspec.spec.families`) evaluated token by token with :class:`TorchArithmetic`;
* ``"chunk"``     — the family's :class:`Chunked` core on chunks of ``chunk_size`` steps;
* ``"parallel"``  — the same core with one chunk spanning the whole sequence (quadratic).

Policy, identical for every family and form:

* inputs are ``torch.Tensor`` on one device, float16/bfloat16/float32/float64; the computation
  and the returned state are float32 (float64 when q/k/v or their counterpart are float64); the
  output has the dtype of the value input;
* shapes are checked against the family's declared dimensions (:mod:`lrnnspec.spec.family`),
  ``cu_seqlens`` and ``initial_state`` with the spec's own rules; every violation raises a
  :class:`~lrnnspec.spec.errors.SpecError` subclass naming the argument;
* varlen input [1, T, ...] is packed into [N, T_max, ...]: the recurrent form keeps the state
  unchanged on padded steps, chunk cores receive *neutral* padding (inputs whose step leaves the
  state unchanged, declared per family in :class:`Chunked`), so one batched core serves both;
* value domains (g ≤ 0, β ∈ [0, 2], unit keys) are the caller's contract and are not checked
  here (a check would synchronize the device); the certifier checks them against the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lrnnspec.spec.errors import SpecError
from lrnnspec.spec.family import Family, get_family
from lrnnspec.spec.prepare import (
    _bind, _check_cu_seqlens, _check_options, active_state, collect_inputs, collect_state,
)

from .torch_arithmetic import TorchArithmetic

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
FORMS = ("recurrent", "chunk", "parallel")


@dataclass(frozen=True)
class Chunked:
    """How a family runs chunkwise.

    ``prepare(x, p) -> dict``: per-step core inputs [B, T, HV, ...] from the validated, GVA-expanded
    inputs ``x`` and the namespace ``p`` (options, static inputs, ``scale``);
    ``core(xs, state, p, chunk_size) -> (o, state)``: xs [N, T, ...] with T a multiple of
    ``chunk_size``; state a dict of [N, ...] tensors;
    ``pads``: the neutral value of each core input (missing → 0);
    ``finish(o, x, p) -> o``: per-token work after the core (Mamba's D skip and z gate).
    """

    prepare: Callable[[dict, Options], dict]
    core: Callable
    pads: Mapping[str, float] = field(default_factory=dict)
    finish: Callable | None = None


class Options:
    """A call's options, static inputs and scale as attributes (a plain class, so Dynamo traces it)."""

    def __init__(self, **values):
        self.__dict__.update(values)


@dataclass
class Bound:
    """Validated arguments of one call."""

    family: Family
    x: dict[str, torch.Tensor]          # per-step inputs [B, T, HV, ...] (GVA expanded, n_h split)
    p: Options                          # options, static inputs, scale
    state: dict[str, torch.Tensor]      # [N, ...] in the compute dtype
    segments: list[tuple[int, int]] | None
    dims: dict[str, int]
    out_dtype: torch.dtype
    dtype: torch.dtype
    device: torch.device


def _check_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise SpecError(name, f"must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise SpecError(name, f"must be float16, bfloat16, float32 or float64, got {value.dtype}")
    return value


def bind(family: str, inputs: Mapping[str, Any], *, value_input: str, initial_state=None, cu_seqlens=None,
         options: Mapping[str, Any] | None = None) -> Bound:
    """Check ``inputs`` (spec names → tensors or None) against ``family``'s declarations."""
    fam = get_family(family)
    opts = _check_options(fam, options or {})
    tensors = collect_inputs(fam, inputs, _check_tensor)
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        where = ", ".join(f"{n} on {t.device}" for n, t in tensors.items())
        raise SpecError(next(iter(tensors)), f"all inputs must be on one device; got {where}")
    device = next(iter(devices))
    dims = _bind(fam, tensors)
    dtype = torch.float64 if tensors[value_input].dtype == torch.float64 else torch.float32
    segments = _check_cu_seqlens(cu_seqlens, dims) if cu_seqlens is not None else None
    n = len(segments) if segments is not None else dims["B"]
    state = _initial_state(fam, initial_state, opts, dims, n, dtype, device)

    p = Options(**opts)
    if fam.defaults is not None:
        for name, value in fam.defaults(dims, opts).items():
            tensors.setdefault(name, torch.as_tensor(value))
    group = dims["HV"] // dims["H"] if "H" in dims and "HV" in dims else 1
    x = {}
    for inp in fam.inputs:
        t = tensors.get(inp.name)
        if t is not None:
            t = t.to(device=device, dtype=dtype)
        if not inp.per_step:
            setattr(p, inp.name, t)
            continue
        if t is None:
            continue
        if "H" in inp.dims and group > 1:
            t = t.repeat_interleave(group, dim=inp.dims.index("H"))
        if inp.dims[1] == "T*n_h":
            t = t.reshape(t.shape[0], dims["T"], dims["n_h"], *t.shape[2:])
        x[inp.name] = t
    if "scale" in opts:
        p.scale = float(opts["scale"]) if opts["scale"] is not None else dims["K"] ** -0.5
    return Bound(fam, x, p, state, segments, dims, tensors[value_input].dtype, dtype, device)


def _initial_state(fam, initial_state, opts, dims, n, dtype, device) -> dict[str, torch.Tensor]:
    def convert(label, value):
        _check_tensor(label, value)
        if value.device != device:
            raise SpecError("initial_state", f"must be on the inputs' device {device}, got {value.device}")
        return value.to(dtype)

    state = collect_state(fam, initial_state, opts, dims, n, convert)
    if state is None:
        sizes = {**dims, "N": n}
        return {c.name: torch.zeros(tuple(sizes[d] for d in c.dims), dtype=dtype, device=device)
                for c in active_state(fam, opts)}
    return state


# --- varlen packing and padding -------------------------------------------------------------------
def pack(t: torch.Tensor, segments, length: int, pad: float) -> torch.Tensor:
    """[1, T, ...] → [N, length, ...]: sequence i in row i, positions past its end set to ``pad``."""
    if length == 0:
        return t.new_empty((len(segments), 0, *t.shape[2:]))
    idx, valid = _positions(segments, length, t.device)
    rows = t[0].index_select(0, idx.reshape(-1).clamp(max=t.shape[1] - 1))
    packed = rows.reshape(len(segments), length, *t.shape[2:])
    mask = valid.reshape(len(segments), length, *([1] * (t.dim() - 2)))
    return torch.where(mask, packed, torch.full_like(packed, pad))


def unpack(t: torch.Tensor, segments) -> torch.Tensor:
    """[N, length, ...] → [1, T, ...], the inverse of :func:`pack` on the valid positions."""
    length = t.shape[1]
    flat = [i * length + j for i, (a, b) in enumerate(segments) for j in range(b - a)]
    rows = t.reshape(-1, *t.shape[2:]).index_select(0, torch.tensor(flat, dtype=torch.long, device=t.device))
    return rows.unsqueeze(0)


def _positions(segments, length, device):
    idx = torch.tensor([[a + j for j in range(length)] for a, _ in segments], dtype=torch.long, device=device)
    valid = torch.tensor([[j < b - a for j in range(length)] for a, b in segments], dtype=torch.bool, device=device)
    return idx, valid


def pad_time(t: torch.Tensor, length: int, pad: float) -> torch.Tensor:
    """Extend axis 1 to ``length`` with ``pad``."""
    extra = length - t.shape[1]
    if extra == 0:
        return t
    return torch.cat([t, t.new_full((t.shape[0], extra, *t.shape[2:]), pad)], dim=1)


# --- the three forms ----------------------------------------------------------------------------
def run(form: str, b: Bound, chunked: Chunked | None = None, chunk_size: int | None = None):
    """Evaluate a bound call; returns (output [B, T, ...] in ``b.out_dtype``, state dict [N, ...])."""
    if form == "recurrent":
        o, state = _recurrent(b)
    else:
        if form == "chunk":
            check_chunk_size(chunk_size)
        o, state = _chunked(b, chunked, chunk_size if form == "chunk" else None)
    return o.to(b.out_dtype), state


DEFAULT_MICRO_STEPS = 64   # steps per chunk by default (FLA's): chunk 64, or 64 micro-steps of n_h per token


def check_chunk_size(chunk_size, allowed: tuple[int, ...] | None = None) -> int:
    """``chunk_size`` must be a positive int (not a bool), and one of ``allowed`` when a kernel
    supports only some (the Triton kernels' tile sizes). Returns it."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise SpecError("chunk_size", f"must be a positive integer, got {chunk_size!r}")
    if allowed is not None and chunk_size not in allowed:
        raise SpecError("chunk_size", f"this kernel takes chunk_size in {set(allowed)}, got {chunk_size!r}")
    return chunk_size


def default_chunk_size(micro_steps: int = 1, allowed: tuple[int, ...] | None = None) -> int:
    """The default chunk: tokens per chunk holding at most :data:`DEFAULT_MICRO_STEPS` steps when each
    token takes ``micro_steps`` (DeltaProduct's n_h); among ``allowed``, the largest such one (else
    the smallest allowed)."""
    if allowed is None:
        return max(1, DEFAULT_MICRO_STEPS // micro_steps)
    fits = [c for c in allowed if c * micro_steps <= DEFAULT_MICRO_STEPS]
    return max(fits) if fits else min(allowed)


def _lengths(b: Bound) -> tuple[int, list | None]:
    if b.segments is None:
        return b.dims["T"], None
    return max((e - s for s, e in b.segments), default=0), b.segments


def _recurrent(b: Bound):
    fam, ar = b.family, TorchArithmetic(b.dtype, b.device)
    length, segments = _lengths(b)
    xs = b.x if segments is None else {k: pack(v, segments, length, 0.0) for k, v in b.x.items()}
    valid = None if segments is None else _positions(segments, length, b.device)[1]
    state, outs = dict(b.state), []
    for t in range(length):
        step_x = {k: v[:, t] for k, v in xs.items()}
        if fam.read_before_update:
            outs.append(fam.readout(ar, state, step_x, b.p))
        new = fam.step(ar, state, step_x, b.p)
        if valid is not None:
            keep = valid[:, t]
            new = {k: torch.where(keep.reshape(-1, *[1] * (v.dim() - 1)), v, state[k]) for k, v in new.items()}
        state = new
        if not fam.read_before_update:
            outs.append(fam.readout(ar, state, step_x, b.p))
    n = b.state[next(iter(b.state))].shape[0]
    o = torch.stack(outs, dim=1) if outs else _empty_output(b, n)
    return (o if segments is None else unpack(o, segments)), state


def _empty_output(b: Bound, n: int) -> torch.Tensor:
    sizes = {**b.dims, "B": n, "T": 0}
    return torch.zeros(tuple(sizes[d] for d in b.family.output_dims), dtype=b.dtype, device=b.device)


def _chunked(b: Bound, chunked: Chunked, chunk_size: int | None):
    core_x = chunked.prepare(b.x, b.p)
    length, segments = _lengths(b)
    if segments is not None:
        core_x = {k: pack(v, segments, length, chunked.pads.get(k, 0.0)) for k, v in core_x.items()}
    size = chunk_size if chunk_size is not None else max(length, 1)
    padded = -(-length // size) * size
    core_x = {k: pad_time(v, padded, chunked.pads.get(k, 0.0)) for k, v in core_x.items()}
    o, state = chunked.core(core_x, dict(b.state), b.p, size)
    o = o[:, :length]
    if segments is not None:
        o = unpack(o, segments)
    if chunked.finish is not None:
        o = chunked.finish(o, b.x, b.p)
    return o, state


def result(o: torch.Tensor, state: dict[str, torch.Tensor], output_final_state: bool):
    """FLA's return convention: (o, final_state or None); multi-part states as a tuple."""
    if not output_final_state:
        return o, None
    parts = tuple(state.values())
    return o, parts[0] if len(parts) == 1 else parts


def call(form: str, family: str, chunked: Chunked | None, inputs: Mapping[str, Any], *, initial_state=None,
         output_final_state: bool = False, cu_seqlens=None, chunk_size: int | None = None, value_input: str = "v",
         **options):
    """Bind, run one form, return FLA's ``(o, final_state or None)``."""
    if not isinstance(output_final_state, bool):
        raise SpecError("output_final_state", f"must be True or False, got {output_final_state!r}")
    b = bind(family, inputs, value_input=value_input, initial_state=initial_state, cu_seqlens=cu_seqlens,
             options=options)
    o, state = run(form, b, chunked, chunk_size)
    return result(o, state, output_final_state)
