"""A fast step-wise emulator for long runs (10^5 steps) of construction layers in fp32 / bf16 / fp16.

The spec's ``emulate:<fmt>`` engine rounds every operation in float64 and is the reference, but a
Python step costs ~2 ms. This emulator keeps values in the format's own NumPy dtype (``float32``,
``float16``, ``ml_dtypes.bfloat16``) and performs the *same operations in the same order* as the
family definitions (``spec/families/_common.py::delta_update``, ``mamba.step``) under a uniform
contract (input = operand = accumulate = state = output = fmt):

* delta rule micro-step: ``r = Σ_k S[k,:]·k[k]`` (products rounded, summed left to right, each
  partial sum rounded), ``u = β·(v − r)``, ``S ← S + k ⊗ u``;
* mamba: ``a = exp(Δ·A)`` (the exp evaluated in float64 and rounded), ``a ← 2·a − 1`` for the
  [−1, 1] range, ``h ← a·h + (Δ·u)·B``.

NumPy's float32/float16 arithmetic and ml_dtypes' bfloat16 arithmetic round the exact result of each
+, −, × of two format numbers correctly (they compute in float32 and round again, which is innocuous
because 24 ≥ 2p + 2 for p = 11 and p = 8). Inputs are rounded once with
:meth:`lrnnspec.spec.formats.Format.round` (ml_dtypes' own float64 → bfloat16 cast double-rounds).
``tests/proofs/test_emulate.py`` checks bitwise equality with ``evaluate(..., engine="emulate:fmt")``.
"""

from __future__ import annotations

import numpy as np

from lrnnspec.spec import get_format
from lrnnspec.spec.errors import EngineError

from .construction import DELTA_FAMILIES, Construction, Layer

FAST_FORMATS = ("fp32", "bf16", "fp16")


def dtype_of(fmt: str):
    if fmt == "fp32":
        return np.float32
    if fmt == "fp16":
        return np.float16
    if fmt == "bf16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    raise EngineError("fmt", f"the fast emulator supports {FAST_FORMATS}, got {fmt!r}")


def to_format(x, fmt: str) -> np.ndarray:
    """Round float64 values to ``fmt`` (nearest, ties to even) and store them in its dtype."""
    return get_format(fmt).round(np.asarray(x, dtype=np.float64)).astype(dtype_of(fmt))


class FastLayer:
    """One construction layer on flat states: delta families [N, K, V], mamba [N, D, NS]."""

    def __init__(self, layer: Layer, fmt: str):
        self.layer, self.fmt, self.dt = layer, fmt, dtype_of(fmt)
        self.tables = {k: to_format(v, fmt) for k, v in layer.tokens.items()}
        self.static = {k: to_format(v, fmt) for k, v in layer.static.items()}
        self.delta = layer.family in DELTA_FAMILIES
        h0 = layer.h0[0] if self.delta else layer.h0  # drop the head axis of delta states
        self.h0 = to_format(h0, fmt)

    def initial(self, n: int) -> np.ndarray:
        return np.repeat(self.h0[None], n, axis=0)

    def to_spec_state(self, s: np.ndarray) -> np.ndarray:
        s = s.astype(np.float64)
        return s[:, None] if self.delta else s

    def step(self, s: np.ndarray, tok: np.ndarray) -> np.ndarray:
        return self._delta(s, tok) if self.delta else self._mamba(s, tok)

    def _delta(self, S, tok):
        K, B, V = self.tables["k"][tok], self.tables["beta"][tok], self.tables["v"][tok]
        for j in range(K.shape[1]):
            k, beta, v = K[:, j], B[:, j], V[:, j]  # [N,K], [N], [N,V]
            prod = S * k[:, :, None]
            r = prod[:, 0]
            for i in range(1, prod.shape[1]):
                r = r + prod[:, i]
            u = beta[:, None] * (v - r)
            S = S + k[:, :, None] * u[:, None, :]
        return S

    def _mamba(self, h, tok):
        delta, u, Bm = self.tables["delta"][tok], self.tables["u"][tok], self.tables["B"][tok]
        t = delta[:, :, None] * self.static["A"][None]
        a = to_format(np.exp(t.astype(np.float64)), self.fmt)
        if self.layer.options.get("eigenvalue_range") == "[-1,1]":
            a = self.dt(2.0) * a - self.dt(1.0)
        drive = (delta * u)[:, :, None] * Bm[:, None, :]
        return a * h + drive

    def decode(self, s: np.ndarray) -> np.ndarray:
        return np.asarray(self.layer.decode(self.to_spec_state(s)))


class FastConstruction:
    """All layers of a construction in one format; ``step`` returns new states and decoded state."""

    def __init__(self, con: Construction, fmt: str):
        self.con, self.fmt = con, fmt
        self.layers = [FastLayer(layer, fmt) for layer in con.layers]

    def initial(self, n: int) -> list[np.ndarray]:
        return [fl.initial(n) for fl in self.layers]

    def step(self, states: list[np.ndarray], letters: np.ndarray):
        labels, new = [], []
        for i, fl in enumerate(self.layers):
            tok = self.con.tokens_for(i, letters, labels)
            s = fl.step(states[i], tok)
            new.append(s)
            labels.append(fl.decode(s))
        return new, self.con.read(labels)
