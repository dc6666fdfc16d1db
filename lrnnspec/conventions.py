"""Calling conventions: how a function under test is called with spec-layout inputs, and read back.

The certifier and the tests hold inputs in the spec's layout and names (time-first; see
``lrnnspec spec list``) as torch tensors. A convention maps them to a peer library's call and
maps the results back to ``(output [spec layout], final state dict [spec layout] or None)``:

``fla``            flash-linear-attention: spec names as keywords (``scale``, ``initial_state``,
                   ``output_final_state``, ``cu_seqlens``, ``chunk_size``); returns (o, state);
                   multi-part states as tuples; DeltaProduct also gets ``num_householder``.
``mamba_ssm``      ``selective_scan_fn`` (family mamba: channel-first [B,D,L], ``return_last_state``)
                   and ``mamba_chunk_scan_combined`` (family mamba2: ``initial_states`` /
                   ``return_final_states`` in [N,H,P,N], the transpose of the spec's state).
``mlstm_kernels``  head-first [B,NH,S,DH]; ``c_initial, n_initial, m_initial`` (m as [B,NH,1]),
                   ``return_last_states``, ``eps``.
``native``         the spec's own names and layouts: ``fn(**inputs, initial_state=dict | None,
                   cu_seqlens=..., **options) -> (o, state dict)``.

:func:`capabilities` reads what a function supports from its signature.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from lrnnspec.spec.errors import SpecError

CONVENTIONS = ("fla", "mamba_ssm", "mlstm_kernels", "native")

# keyword that carries each capability, per convention
_INITIAL = {"fla": "initial_state", "native": "initial_state", "mlstm_kernels": "c_initial"}
_FINAL = {"fla": "output_final_state", "native": None, "mlstm_kernels": "return_last_states"}


@dataclass(frozen=True)
class Capabilities:
    """What a function under test accepts, read from its signature (or declared)."""

    parameters: frozenset[str] = field(default_factory=frozenset)
    initial_state: bool = False
    final_state: bool = False
    varlen: bool = False
    chunk_size: bool = False
    var_keyword: bool = False

    def accepts(self, name: str) -> bool:
        return name in self.parameters or self.var_keyword


def capabilities(fn: Callable, convention: str, family: str) -> Capabilities:
    check_convention(convention)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins / C extensions without a signature: assume everything
        return Capabilities(frozenset(), True, True, True, True, True)
    params = frozenset(sig.parameters)
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    has = lambda name: name in params  # noqa: E731
    if convention == "mamba_ssm":
        mamba2 = family == "mamba2"
        initial = has("initial_states") if mamba2 else has("initial_state")
        final = has("return_final_states") if mamba2 else has("return_last_state")
    else:
        initial = has(_INITIAL[convention])
        final = True if convention == "native" else has(_FINAL[convention])
    return Capabilities(params, initial, final, has("cu_seqlens"), has("chunk_size"), var_kw)


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise SpecError("convention", f"must be one of {', '.join(CONVENTIONS)}, got {convention!r}")


def _first(result):
    return result[0] if isinstance(result, (tuple, list)) else result


def _split(result, want_state: bool, convention: str):
    if not want_state:
        return _first(result), None
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"a {convention} function asked for its final state must return (output, state), "
                        f"got {type(result).__name__}")
    return result[0], result[1]


def _as_tuple(state):
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def call(fn: Callable, convention: str, family: str, inputs: dict[str, torch.Tensor], *, state_names: list[str],
         initial_state: dict[str, torch.Tensor] | None = None, want_state: bool = False, cu_seqlens=None,
         chunk_size: int | None = None, options: dict[str, Any] | None = None):
    """Call ``fn`` under ``convention``; returns (output in spec layout, state dict or None).

    ``state_names``: the family's active state components, in declaration order."""
    check_convention(convention)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    extra = {}
    if cu_seqlens is not None:
        extra["cu_seqlens"] = cu_seqlens
    if chunk_size is not None:
        extra["chunk_size"] = chunk_size
    if convention == "native":
        o, state = fn(**inputs, initial_state=initial_state, **extra, **options)
        return o, (dict(state) if want_state else None)
    if convention == "fla":
        kw = dict(inputs, **options, **extra)
        if family == "delta_product":
            kw["num_householder"] = max(inputs["k"].shape[1] // max(inputs["q"].shape[1], 1), 1)
        if initial_state is not None:
            parts = tuple(_to_fla(n, initial_state[n]) for n in state_names)
            kw["initial_state"] = parts[0] if len(parts) == 1 else parts
        o, state = _split(fn(**kw, output_final_state=want_state), want_state, convention)
        if not want_state:
            return o, None
        return o, {n: _from_fla(n, s) for n, s in zip(state_names, _as_tuple(state))}
    if convention == "mlstm_kernels":
        return _call_mlstm(fn, inputs, initial_state, want_state, extra, options)
    return _call_mamba(fn, family, inputs, initial_state, want_state, extra, options)


def _to_fla(name, t):
    """FLA keeps linear attention's normalizer z as [N,1,H,K]; the spec as [N,H,K]."""
    return t[:, None] if name == "z" else t


def _from_fla(name, t):
    return t[:, 0] if name == "z" and t.dim() == 4 else t


def _heads_first(t):
    return t.transpose(1, 2)


def _call_mlstm(fn, inputs, initial_state, want_state, extra, options):
    kw = {n: _heads_first(inputs[n]) for n in ("q", "k", "v", "i", "f")}
    if initial_state is not None:
        kw.update(c_initial=initial_state["C"], n_initial=initial_state["n"], m_initial=initial_state["m"][..., None])
    result = fn(**kw, return_last_states=want_state, **extra, **options)
    h, state = _split(result, want_state, "mlstm_kernels")
    h = _heads_first(h)
    if not want_state:
        return h, None
    c, n, m = state
    return h, {"C": c, "n": n, "m": m.reshape(m.shape[0], m.shape[1])}


def _call_mamba(fn, family, inputs, initial_state, want_state, extra, options):
    if family == "mamba2":
        kw = dict(inputs, **options, **extra)
        if initial_state is not None:
            kw["initial_states"] = initial_state["S"].transpose(-1, -2)
        out, state = _split(fn(**kw, return_final_states=want_state), want_state, "mamba_ssm")
        return out, ({"S": state.transpose(-1, -2)} if want_state else None)
    if family != "mamba":
        raise SpecError("convention", f"mamba_ssm applies to families mamba and mamba2, not {family!r}")
    kw = {n: (t.transpose(1, 2) if n in ("u", "delta", "z", "B", "C") else t) for n, t in inputs.items()}
    if initial_state is not None:
        kw["initial_state"] = initial_state["h"]
    out, state = _split(fn(**kw, return_last_state=want_state, **extra, **options), want_state, "mamba_ssm")
    return out.transpose(1, 2), ({"h": state} if want_state else None)
