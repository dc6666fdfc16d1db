"""The abstract arithmetic every family definition is written against.

A family's ``step`` and ``readout`` call only the methods below, on arrays whose leading axes are
(sequence, head, ...). Each engine supplies one implementation:

=====================  ===================================================================
``Float64Arithmetic``  NumPy float64. ``order="fast"`` lets NumPy choose the summation order of
                       reductions; ``order="sequential"`` sums left to right (the emulation order).
``EmulatedArithmetic`` Float64 values that always lie in a declared format: every elementary
                       operation is computed in float64 and rounded to the contract's
                       ``accumulate`` format (exact for +, −, ×, ÷, √ when that format has
                       ≤ 26 bits: 53 ≥ 2p + 2 makes double rounding innocuous), dot operands are
                       rounded to ``operand``, state writes to ``state``.
``MpmathArithmetic``   Object arrays of ``mpmath.mpf`` at the working precision of the context.
``ArbArithmetic``      Object arrays of python-flint ``arb`` balls: rigorous enclosures.
=====================  ===================================================================

Elementary operations (rounded by emulation): ``add sub mul div exp log log1p sqrt``.
Exact operations (never rounded, their results are representable): ``neg abs maximum``.
Composites are spelled out from the above so their rounding points are explicit:
``softplus(x) = max(x, 0) + log1p(exp(−|x|))``, ``logsigmoid(x) = −softplus(−x)``,
``sigmoid(x) = 1 / (1 + exp(−x))``, ``silu(x) = x · sigmoid(x)``.
Reductions: ``sum(x, axis)`` and ``dot(a, b, axis) = sum(a ⊙ b, axis)``.
Rounding points: ``state(x)`` marks a write of the recurrent state.
"""

from __future__ import annotations

import numpy as np

from .contract import PrecisionContract


class Arithmetic:
    name = "abstract"

    # --- representation -------------------------------------------------------------------
    def asarray(self, x: np.ndarray):
        """Engine values equal to the given float64 values (exact conversion)."""
        raise NotImplementedError

    def const(self, c: float):
        """A scalar constant of the definition (a scale, the number 1, ...)."""
        return self.asarray(np.float64(c))

    def to_float(self, a) -> np.ndarray:
        raise NotImplementedError

    def zeros(self, shape) -> np.ndarray:
        return self.asarray(np.zeros(shape))

    def empty(self, shape) -> np.ndarray:
        return np.empty(shape, dtype=np.float64)

    # --- elementary operations ------------------------------------------------------------
    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def div(self, a, b):
        return a / b

    def exp(self, a):
        raise NotImplementedError

    def log1p(self, a):
        raise NotImplementedError

    def log(self, a):
        raise NotImplementedError

    def sqrt(self, a):
        raise NotImplementedError

    # --- exact operations -----------------------------------------------------------------
    def neg(self, a):
        return -a

    def abs(self, a):
        return np.abs(a)

    def maximum(self, a, b):
        return np.maximum(a, b)

    # --- rounding points ------------------------------------------------------------------
    def state(self, a):
        return a

    def operand(self, a):
        return a

    # --- reductions -----------------------------------------------------------------------
    def sum(self, a, axis: int):
        return np.sum(a, axis=axis)

    def dot(self, a, b, axis: int):
        """Σ_axis a ⊙ b (a and b broadcast against each other)."""
        return self.sum(self.mul(self.operand(a), self.operand(b)), axis)

    def outer(self, a, b):
        """a[..., :, None] ⊙ b[..., None, :]."""
        return self.mul(a[..., :, None], b[..., None, :])

    # --- composites -----------------------------------------------------------------------
    def softplus(self, x):
        return self.add(self.maximum(x, self.zeros(())), self.log1p(self.exp(self.neg(self.abs(x)))))

    def logsigmoid(self, x):
        return self.neg(self.softplus(self.neg(x)))

    def sigmoid(self, x):
        return self.div(self.const(1.0), self.add(self.const(1.0), self.exp(self.neg(x))))

    def silu(self, x):
        return self.mul(x, self.sigmoid(x))


class Float64Arithmetic(Arithmetic):
    """Vectorized NumPy float64 (the ``fp64`` engine)."""

    name = "fp64"

    def __init__(self, order: str = "fast"):
        if order not in ("fast", "sequential"):
            raise ValueError(f"order: expected 'fast' or 'sequential', got {order!r}")
        self.order = order

    def asarray(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_float(self, a):
        return np.asarray(a, dtype=np.float64)

    def exp(self, a):
        return np.exp(a)

    def log1p(self, a):
        return np.log1p(a)

    def log(self, a):
        return np.log(a)

    def sqrt(self, a):
        return np.sqrt(a)

    def dot(self, a, b, axis):
        if self.order == "fast":
            return np.vecdot(a, b, axis=axis)
        return super().dot(a, b, axis)

    def sum(self, a, axis):
        if self.order == "fast":
            return np.sum(a, axis=axis)
        a = np.moveaxis(np.asarray(a), axis, 0)
        acc = a[0]
        for term in a[1:]:
            acc = self.add(acc, term)
        return acc


class EmulatedArithmetic(Float64Arithmetic):
    """Sequential evaluation rounded after every operation under a precision contract."""

    def __init__(self, contract: PrecisionContract):
        super().__init__(order="sequential")
        self.contract = contract
        self._acc = contract.accumulate.round
        self.name = f"emulate:{contract.name}"

    def const(self, c):
        return self._acc(np.float64(c))

    def add(self, a, b):
        return self._acc(np.add(a, b))

    def sub(self, a, b):
        return self._acc(np.subtract(a, b))

    def mul(self, a, b):
        return self._acc(np.multiply(a, b))

    def div(self, a, b):
        return self._acc(np.divide(a, b))

    def exp(self, a):
        return self._acc(np.exp(a))

    def log1p(self, a):
        return self._acc(np.log1p(a))

    def log(self, a):
        return self._acc(np.log(a))

    def sqrt(self, a):
        return self._acc(np.sqrt(a))

    def state(self, a):
        return self.contract.state.round(a)

    def operand(self, a):
        return self.contract.operand.round(a)


class _ObjectArithmetic(Arithmetic):
    """Shared machinery for object arrays of arbitrary-precision scalars."""

    def empty(self, shape):
        return np.empty(shape, dtype=object)

    def _scalar(self, v: float):
        raise NotImplementedError

    def asarray(self, x):
        x = np.asarray(x, dtype=np.float64)
        out = np.empty(x.shape, dtype=object)
        flat = out.reshape(-1)
        for i, v in enumerate(x.reshape(-1)):
            flat[i] = self._scalar(float(v))
        return out

    def zeros(self, shape):
        out = np.empty(shape, dtype=object)
        out.fill(self._scalar(0.0))
        return out


class MpmathArithmetic(_ObjectArithmetic):
    """mpmath ``mpf`` at the precision of the enclosing ``mpmath.workprec`` context."""

    name = "mpmath"

    def __init__(self):
        import mpmath

        self._mp = mpmath
        self._exp = np.frompyfunc(mpmath.exp, 1, 1)
        self._log1p = np.frompyfunc(mpmath.log1p, 1, 1)
        self._log = np.frompyfunc(mpmath.log, 1, 1)
        self._sqrt = np.frompyfunc(mpmath.sqrt, 1, 1)
        to_float = mpmath.libmp.to_float
        self._float = np.frompyfunc(lambda v: to_float(v._mpf_, rnd="n"), 1, 1)

    def _scalar(self, v):
        return self._mp.mpf(v)

    def to_float(self, a):
        return np.asarray(self._float(a), dtype=np.float64)

    def exp(self, a):
        return self._exp(a)

    def log1p(self, a):
        return self._log1p(a)

    def log(self, a):
        return self._log(a)

    def sqrt(self, a):
        return self._sqrt(a)


class ArbArithmetic(_ObjectArithmetic):
    """python-flint ``arb`` balls at the precision of ``flint.ctx.prec``: every value is a rigorous
    enclosure of the exact result."""

    name = "arb"

    def __init__(self):
        import flint

        self._arb = flint.arb
        self._exp = np.frompyfunc(lambda v: v.exp(), 1, 1)
        self._log1p = np.frompyfunc(lambda v: v.log1p(), 1, 1)
        self._log = np.frompyfunc(lambda v: v.log(), 1, 1)
        self._sqrt = np.frompyfunc(lambda v: v.sqrt(), 1, 1)
        self._max = np.frompyfunc(lambda a, b: a.max(b), 2, 1)
        self._mid = np.frompyfunc(lambda v: float(v.mid()), 1, 1)
        self._rad = np.frompyfunc(lambda v: float(v.rad()), 1, 1)

    def _scalar(self, v):
        return self._arb(v)

    def to_float(self, a):
        return np.asarray(self._mid(a), dtype=np.float64)

    def radius(self, a) -> np.ndarray:
        r = np.asarray(self._rad(a), dtype=np.float64)
        return np.nextafter(r, np.inf)

    def exp(self, a):
        return self._exp(a)

    def log1p(self, a):
        return self._log1p(a)

    def log(self, a):
        return self._log(a)

    def sqrt(self, a):
        return self._sqrt(a)

    def maximum(self, a, b):
        return self._max(*np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
