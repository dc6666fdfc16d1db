"""Correct kernels that each lack ONE optional feature and refuse it cleanly.

``LIMITED``: kernels with FLA's public signatures and the chunk hard-coded to 64, built on the
correct :mod:`lrnnspec.impls` chunk forms. Each one computes the spec wherever it works and lacks
exactly one feature (``missing``, a key of :data:`MISSING`), which it refuses in the way real kernels
do:

* an exception at the call, with a message naming the feature — ``NotImplementedError`` for a
  feature the kernel does not implement (grouped value heads, ``cu_seqlens``), ``ValueError`` for an
  input it cannot take (T not a multiple of 64, like mlstm_kernels' chunkwise forms; T = 0);
* a signature without the parameter (no ``output_final_state``: it returns the output alone; no
  ``initial_state``), so using it is Python's ``TypeError``;
* a forward-only kernel: computed under ``torch.no_grad()``, its results never require grad and a
  backward through them raises autograd's ``RuntimeError``.

A certifier must certify each of them *within its scope* — the feature recorded as unsupported, never a
failure of the properties that do not need it, never a pass of a property that does.
``tests/certifier/test_chunk64_bugs_are_real.py`` checks that each agrees with the spec where it works
and refuses exactly when its missing feature is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from lrnnspec.impls import delta_rule as _dr
from lrnnspec.impls import gated_delta_rule as _gdn
from lrnnspec.impls import gla as _gla
from lrnnspec.impls import simple_gla as _sgla

FILE = os.path.abspath(__file__)
CHUNK = 64

MISSING = {
    "grouped_value_heads": "v with more heads than q and k (HV > H)",
    "varlen": "cu_seqlens",
    "t_multiple_of_64": "a sequence length that is not a multiple of 64",
    "empty_sequence": "T = 0",
    "backward": "autograd through the kernel",
    "final_state": "output_final_state (not in the signature)",
    "initial_state": "initial_state (not in the signature)",
}


@dataclass(frozen=True)
class LimitedKernel:
    """A correct kernel lacking the feature ``missing`` (a key of :data:`MISSING`)."""

    name: str
    family: str
    convention: str
    fn: Callable
    missing: str
    description: str

    def __post_init__(self):
        if self.missing not in MISSING:
            raise ValueError(f"{self.name}: unknown feature {self.missing!r}")

    @property
    def target(self) -> str:
        """What the harness imports in the kernel's process: this file's function."""
        return f"{FILE}:{self.fn.__name__}"


def _lengths(T: int, cu_seqlens) -> list[int]:
    if cu_seqlens is None:
        return [T]
    bounds = [int(b) for b in cu_seqlens.tolist()]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


# =====================================================================================================
# the kernels
# =====================================================================================================
def chunk_gated_delta_rule_no_gva(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                                  cu_seqlens=None):
    """Gated DeltaNet without grouped value heads: q, k and v must have the same number of heads (the
    kernel indexes q and k with the value head). v with more heads raises NotImplementedError."""
    if getattr(v, "dim", lambda: 0)() == 4 and getattr(k, "dim", lambda: 0)() == 4 and v.shape[2] > k.shape[2]:
        raise NotImplementedError(f"chunk_gated_delta_rule_no_gva: grouped value heads are not supported (v has "
                                  f"{v.shape[2]} heads, q and k have {k.shape[2]}); repeat q and k to "
                                  f"{v.shape[2]} heads")
    return _gdn.chunk_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, False,
                                       cu_seqlens, CHUNK)


def chunk_simple_gla_no_varlen(q, k, v, g=None, scale=None, initial_state=None, output_final_state=False,
                               cu_seqlens=None):
    """Simple GLA without variable-length batches: ``cu_seqlens`` is in the signature (the public API
    keeps it) but anything other than None raises NotImplementedError."""
    if cu_seqlens is not None:
        raise NotImplementedError("chunk_simple_gla_no_varlen: cu_seqlens (variable-length sequences) is not "
                                  "supported; pad the batch to one length instead")
    return _sgla.chunk_simple_gla(q, k, v, g, None, scale, initial_state, output_final_state, None, CHUNK)


def chunk_gla_t_multiple_of_64(q, k, v, g, scale=None, initial_state=None, output_final_state=False,
                               cu_seqlens=None):
    """GLA without partial chunks (no masks, like mlstm_kernels' chunkwise kernels): every sequence —
    the batch's T, or each cu_seqlens segment — must have a length that is a multiple of 64 (0
    included). Any other length raises ValueError."""
    bad = [n for n in _lengths(q.shape[1], cu_seqlens) if n % CHUNK]
    if bad:
        raise ValueError(f"chunk_gla_t_multiple_of_64: every sequence length must be a multiple of the chunk "
                         f"size {CHUNK}, got {bad[0]}")
    return _gla.chunk_gla(q, k, v, g, scale, initial_state, output_final_state, cu_seqlens, CHUNK)


def chunk_delta_rule_no_empty(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                              cu_seqlens=None):
    """DeltaNet that refuses T = 0 (its launch grid would be empty): ValueError. Empty cu_seqlens
    segments inside a nonempty batch are fine."""
    if q.shape[1] == 0:
        raise ValueError("chunk_delta_rule_no_empty: T must be at least 1, got T = 0")
    return _dr.chunk_delta_rule(q, k, v, beta, scale, initial_state, output_final_state, False, cu_seqlens, CHUNK)


def chunk_gated_delta_rule_no_backward(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                                       cu_seqlens=None):
    """Forward-only Gated DeltaNet (an inference kernel with no backward): the results are computed
    under torch.no_grad() and never require grad, whatever the inputs; a backward through them raises
    autograd's RuntimeError."""
    with torch.no_grad():
        o, state = _gdn.chunk_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state, False,
                                               cu_seqlens, CHUNK)
    return o.detach(), (None if state is None else state.detach())


def chunk_simple_gla_no_final_state(q, k, v, g=None, scale=None, initial_state=None, cu_seqlens=None):
    """Simple GLA that never returns a final state: no ``output_final_state`` parameter, the output alone
    is returned."""
    o, _ = _sgla.chunk_simple_gla(q, k, v, g, None, scale, initial_state, False, cu_seqlens, CHUNK)
    return o


def chunk_gla_no_initial_state(q, k, v, g, scale=None, output_final_state=False, cu_seqlens=None):
    """GLA that always starts from the zero state: no ``initial_state`` parameter."""
    return _gla.chunk_gla(q, k, v, g, scale, None, output_final_state, cu_seqlens, CHUNK)


LIMITED: list[LimitedKernel] = [
    LimitedKernel("gated_delta_rule.no_gva", "gated_delta_rule", "fla", chunk_gated_delta_rule_no_gva,
                  "grouped_value_heads", chunk_gated_delta_rule_no_gva.__doc__),
    LimitedKernel("simple_gla.no_varlen", "simple_gla", "fla", chunk_simple_gla_no_varlen, "varlen",
                  chunk_simple_gla_no_varlen.__doc__),
    LimitedKernel("gla.t_multiple_of_64", "gla", "fla", chunk_gla_t_multiple_of_64, "t_multiple_of_64",
                  chunk_gla_t_multiple_of_64.__doc__),
    LimitedKernel("delta_rule.no_empty", "delta_rule", "fla", chunk_delta_rule_no_empty, "empty_sequence",
                  chunk_delta_rule_no_empty.__doc__),
    LimitedKernel("gated_delta_rule.no_backward", "gated_delta_rule", "fla", chunk_gated_delta_rule_no_backward,
                  "backward", chunk_gated_delta_rule_no_backward.__doc__),
    LimitedKernel("simple_gla.no_final_state", "simple_gla", "fla", chunk_simple_gla_no_final_state, "final_state",
                  chunk_simple_gla_no_final_state.__doc__),
    LimitedKernel("gla.no_initial_state", "gla", "fla", chunk_gla_no_initial_state, "initial_state",
                  chunk_gla_no_initial_state.__doc__),
]
