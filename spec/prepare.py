"""Validation and canonicalization of a family's inputs, generic over the declarations.

``prepare`` turns user arrays into float64 arrays laid out for the engines:
per-step inputs [B, T, ...] (interleaved ``T*n_h`` axes become [B, T, n_h, ...]), query/key-head
inputs repeated to the value heads (GVA), static inputs as given, the initial state as a dict of
[N, ...] arrays, options with defaults filled. Every rule it enforces raises a
:class:`~lrnnspec.spec.errors.SpecError` subclass naming the argument; nothing is clamped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DomainError, NonFiniteError, OptionError, ShapeError, SpecError, VarlenError
from .family import Family, get_family

POSITIVE_DIMS = ("B", "H", "HV", "K", "V", "D", "NS")


@dataclass
class Prepared:
    family: Family
    seq: dict[str, np.ndarray]
    static: dict[str, np.ndarray | None]
    options: dict[str, Any]
    dims: dict[str, int]
    initial_state: dict[str, np.ndarray]
    segments: list[tuple[int, int]] | None  # varlen: [start, end) per sequence
    scale: float | None

    @property
    def num_sequences(self) -> int:
        return len(self.segments) if self.segments is not None else self.dims["B"]

    def output_shape(self, n: int, t: int) -> tuple[int, ...]:
        sizes = {**self.dims, "B": n, "T": t}
        return tuple(sizes[d] for d in self.family.output_dims)


def as_float_array(name: str, value) -> tuple[np.ndarray, float]:
    """A float64 copy of ``value`` and the machine epsilon of its original dtype."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        if value.is_complex():
            raise SpecError(name, f"must be real, got complex dtype {value.dtype}")
        eps = float(__import__("torch").finfo(value.dtype).eps) if value.is_floating_point() else 0.0
        return value.detach().cpu().double().numpy().copy(), eps
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot read
        raise SpecError(name, f"must be an array of real numbers, got {type(value).__name__}") from exc
    if arr.dtype.kind == "c":
        raise SpecError(name, f"must be real, got complex dtype {arr.dtype}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "fiuV":
        raise SpecError(name, f"must be an array of real numbers, got dtype {arr.dtype}")
    eps = 0.0
    if arr.dtype.kind in "fV":
        import ml_dtypes

        eps = float(ml_dtypes.finfo(arr.dtype).eps)
    return arr.astype(np.float64), eps


def collect_inputs(fam: Family, inputs: Mapping[str, Any], convert) -> dict[str, Any]:
    """Check ``inputs``' names against ``fam``'s declarations (no unknown name, every required input
    given) and return ``convert(name, value)`` for each input given (None counts as not given)."""
    if not isinstance(inputs, Mapping):
        raise SpecError("inputs", f"must be a mapping from input name to array, got {type(inputs).__name__}")
    declared = [i.name for i in fam.inputs]
    for name in inputs:
        if name not in declared:
            raise SpecError(name, f"is not an input of family {fam.name!r}; its inputs are: {', '.join(declared)}")
    out = {}
    for inp in fam.inputs:
        value = inputs.get(inp.name)
        if value is None:
            if not inp.optional:
                raise SpecError(inp.name, f"is required by family {fam.name!r} (dims [{','.join(inp.dims)}])")
            continue
        out[inp.name] = convert(inp.name, value)
    return out


def _check_options(fam: Family, options: Mapping[str, Any]) -> dict[str, Any]:
    known = {o.name: o for o in fam.options}
    for name in options:
        if name not in known:
            raise OptionError(name, f"is not an option of family {fam.name!r}; its options are: "
                                    f"{', '.join(known) or '(none)'}")
    out = {}
    for name, opt in known.items():
        value = options.get(name, opt.default)
        if opt.choices is not None and value not in opt.choices:
            raise OptionError(name, f"must be one of {opt.choices}, got {value!r}")
        if opt.check is not None and value is not None and (rule := opt.check(value)):
            raise OptionError(name, f"{rule}, got {value!r}")
        out[name] = value
    return out


def _bind(fam: Family, arrays: dict[str, np.ndarray]) -> dict[str, int]:
    dims: dict[str, int] = {}
    where: dict[str, str] = {}
    layouts = {}
    for inp in fam.inputs:
        if inp.name not in arrays:
            continue
        arr = arrays[inp.name]
        layout = next((d for d in (inp.dims, *inp.alt_dims) if len(d) == arr.ndim), None)
        if layout is None:
            expected = " or ".join(f"[{','.join(d)}]" for d in (inp.dims, *inp.alt_dims))
            raise ShapeError(inp.name, f"expected {expected}, got shape {tuple(arr.shape)}")
        layouts[inp.name] = layout
        for sym, size in zip(layout, arr.shape):
            if sym == "T*n_h":
                continue
            if sym in dims and dims[sym] != size:
                raise ShapeError(inp.name, f"dimension {sym} is {size} here but {dims[sym]} in {where[sym]} "
                                           f"(shape {tuple(arr.shape)} vs [{','.join(layout)}])")
            dims.setdefault(sym, size)
            where.setdefault(sym, inp.name)
    for inp in fam.inputs:
        if inp.name in arrays and "T*n_h" in layouts[inp.name]:
            size = arrays[inp.name].shape[1]
            T = dims["T"]
            n_h = size // T if T else dims.get("n_h", 1)
            if (T and (size % T or n_h < 1)) or (not T and size):
                raise ShapeError(inp.name, f"time axis must be T·n_h = {T}·n_h (n_h ≥ 1 micro-steps per token), "
                                           f"got {size}")
            if "n_h" in dims and dims["n_h"] != n_h:
                raise ShapeError(inp.name, f"has n_h = {n_h} micro-steps per token but {where['n_h']} has {dims['n_h']}")
            dims.setdefault("n_h", n_h)
            where.setdefault("n_h", inp.name)
    for sym in POSITIVE_DIMS:
        if dims.get(sym, 1) < 1:
            raise ShapeError(where[sym], f"dimension {sym} must be ≥ 1, got 0")
    if "H" in dims and "HV" in dims and dims["HV"] % dims["H"]:
        raise ShapeError(where["HV"], f"value heads HV = {dims['HV']} must be a multiple of the query/key heads "
                                      f"H = {dims['H']} (grouped value attention); mismatched heads")
    return dims


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(name, f"must be finite; {int(bad.sum())} elements are NaN or infinite, "
                                   f"e.g. {name}[{', '.join(map(str, idx))}] = {arr[idx]!r}")


def _check_unit_norm(name: str, arr: np.ndarray, eps: float) -> None:
    tol = 4 * eps + 1e-12
    norms = np.sqrt(np.sum(arr * arr, axis=-1))
    bad = np.abs(norms - 1.0) > tol
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DomainError(name, f"must have unit L2 norm over its last axis (|‖{name}‖ − 1| ≤ {tol:.3g}); "
                                f"‖{name}[{', '.join(map(str, idx))}]‖ = {norms[idx]!r}. Normalize the keys, "
                                f"or pass require_unit_keys=False")


def _check_cu_seqlens(cu_seqlens, dims: dict[str, int]) -> list[tuple[int, int]]:
    if hasattr(cu_seqlens, "detach"):
        if str(cu_seqlens.dtype) != "torch.int64":
            raise VarlenError("cu_seqlens", f"must be int64 (torch.long), got {cu_seqlens.dtype}")
        cu = cu_seqlens.detach().cpu().numpy()
    else:
        cu = np.asarray(cu_seqlens)
        if cu.dtype != np.int64:
            raise VarlenError("cu_seqlens", f"must be int64, got {cu.dtype}")
    if cu.ndim != 1 or cu.shape[0] < 2:
        raise VarlenError("cu_seqlens", f"must be 1-D of length N+1 ≥ 2, got shape {tuple(cu.shape)}")
    if cu[0] != 0:
        raise VarlenError("cu_seqlens", f"must start at 0, got {int(cu[0])}")
    if np.any(np.diff(cu) < 0):
        i = int(np.argmax(np.diff(cu) < 0))
        raise VarlenError("cu_seqlens", f"must be non-decreasing, but cu_seqlens[{i + 1}] = {int(cu[i + 1])} "
                                        f"< cu_seqlens[{i}] = {int(cu[i])}")
    if dims["B"] != 1:
        raise VarlenError("cu_seqlens", f"requires batch size B = 1 (sequences are packed along T), got B = {dims['B']}")
    if cu[-1] != dims["T"]:
        raise VarlenError("cu_seqlens", f"must end at T = {dims['T']} (the packed length), got {int(cu[-1])}")
    return [(int(a), int(b)) for a, b in zip(cu[:-1], cu[1:])]


def active_state(fam: Family, options: dict[str, Any]):
    return [c for c in fam.state if c.name not in fam.state_when or fam.state_when[c.name](options)]


def _exact_state(value) -> np.ndarray | None:
    """An object array of mpmath numbers (``Evaluation.raw["state"]`` of an exact evaluation) is kept
    as it is, so an exact evaluation can continue from an exact state without rounding it."""
    if not (isinstance(value, np.ndarray) and value.dtype == object):
        return None
    import mpmath

    if not all(isinstance(v, mpmath.mpf) and mpmath.isfinite(v) for v in value.reshape(-1)):
        raise NonFiniteError("initial_state", "an object array must hold finite mpmath.mpf values")
    return value


def collect_state(fam: Family, initial_state, options, dims, n: int, convert) -> dict[str, Any] | None:
    """Check ``initial_state`` (an array for a one-part state, a dict or a tuple of parts, or None)
    against ``fam``'s active state components for ``n`` sequences: no unknown or missing component,
    each of its declared shape. Returns ``convert(label, value)`` per component, or None when no
    initial state was given."""
    comps = active_state(fam, options)
    sizes = {**dims, "N": n}
    shapes = {c.name: tuple(sizes[d] for d in c.dims) for c in comps}
    if initial_state is None:
        return None
    if isinstance(initial_state, Mapping):
        given = dict(initial_state)
        extra = set(given) - set(shapes)
        if extra:
            raise ShapeError("initial_state", f"unknown components {sorted(extra)}; family {fam.name!r} has "
                                              f"{list(shapes)}")
    elif isinstance(initial_state, (tuple, list)):
        if len(initial_state) != len(comps):
            raise ShapeError("initial_state", f"expected {len(comps)} components {list(shapes)}, got {len(initial_state)}")
        given = dict(zip(shapes, initial_state))
    else:
        if len(comps) != 1:
            raise ShapeError("initial_state", f"family {fam.name!r} has a state of {len(comps)} components "
                                              f"{list(shapes)}: pass a dict or a tuple")
        given = {comps[0].name: initial_state}
    out = {}
    for name, shape in shapes.items():
        if name not in given or given[name] is None:
            raise ShapeError("initial_state", f"component {name!r} missing (expected shape {shape})")
        value = convert(f"initial_state[{name!r}]", given[name])
        if tuple(value.shape) != shape:
            dims_txt = ",".join(next(c.dims for c in comps if c.name == name))
            raise ShapeError("initial_state", f"component {name!r} must have shape [{dims_txt}] = {shape} "
                                              f"(N = {n} sequences), got {tuple(value.shape)}")
        out[name] = value
    return out


def _initial_state(fam: Family, initial_state, options, dims, n: int) -> dict[str, np.ndarray]:
    def convert(label, value):
        arr = _exact_state(value)
        return as_float_array(label, value)[0] if arr is None else arr

    state = collect_state(fam, initial_state, options, dims, n, convert)
    if state is None:
        return {c.name: np.zeros(tuple({**dims, "N": n}[d] for d in c.dims)) for c in active_state(fam, options)}
    for arr in state.values():
        if arr.dtype != object:
            _check_finite("initial_state", arr)
    return state


def prepare(family: "str | Family", inputs: Mapping[str, Any], *, initial_state=None, cu_seqlens=None,
            options: Mapping[str, Any] | None = None) -> Prepared:
    fam = get_family(family)
    declared = {i.name: i for i in fam.inputs}
    converted = collect_inputs(fam, inputs, as_float_array)
    opts = _check_options(fam, options or {})
    arrays = {k: v[0] for k, v in converted.items()}
    eps = {k: v[1] for k, v in converted.items()}
    dims = _bind(fam, arrays)
    for name, arr in arrays.items():
        _check_finite(name, arr)
        declared[name].domain_for(opts).check(name, arr)
    if opts.get("require_unit_keys", True):
        for name in fam.unit_keys:
            _check_unit_norm(name, arrays[name], eps[name])
    if fam.check is not None:
        fam.check(arrays, opts)
    if fam.defaults is not None:
        for name, value in fam.defaults(dims, opts).items():
            arrays.setdefault(name, value)

    segments = _check_cu_seqlens(cu_seqlens, dims) if cu_seqlens is not None else None
    n = len(segments) if segments is not None else dims["B"]
    state = _initial_state(fam, initial_state, opts, dims, n)

    seq, static = {}, {}
    group = dims["HV"] // dims["H"] if "H" in dims and "HV" in dims else 1
    for inp in fam.inputs:
        arr = arrays.get(inp.name)
        if not inp.per_step:
            static[inp.name] = arr
            continue
        if arr is None:
            continue
        if "H" in inp.dims and group > 1:
            arr = np.repeat(arr, group, axis=inp.dims.index("H"))
        if inp.dims[1] == "T*n_h":
            arr = arr.reshape(arr.shape[0], dims["T"], dims["n_h"], *arr.shape[2:])
        seq[inp.name] = arr
    scale = None
    if "scale" in opts:
        scale = float(opts["scale"]) if opts["scale"] is not None else dims["K"] ** -0.5
    return Prepared(fam, seq, static, opts, dims, state, segments, scale)
