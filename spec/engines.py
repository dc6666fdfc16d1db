"""The three engines that evaluate a family's one definition.

``fp64``            vectorized NumPy float64 over (sequence, head, ...), a loop over time. Fast oracle.
``emulate(contract)`` the same loop with every operation rounded under a precision contract
                    (:mod:`lrnnspec.spec.contract`): bit-exact model of a sequential evaluation in
                    fp32/tf32/fp16/bf16/fp8. With an all-fp64 contract it is bitwise equal to
                    ``fp64`` evaluated in the same (sequential) order.
``exact``           arbitrary precision, with an error bound on every returned element:
                    * backend ``"mpmath"``: runs at ``prec`` and ``2·prec`` bits and reports
                      |y_2p − y_p| + the float64 rounding of the returned value. If the error of a
                      p-bit evaluation is at least twice that of a 2p-bit one (true whenever the
                      error scales like 2^−prec with any sane constant, the premise of Ziv's and
                      Richardson's methods), then |y_2p − y| ≤ |y_2p − y_p|: the bound holds.
                    * backend ``"arb"`` (python-flint): ball arithmetic, a rigorous enclosure; the
                      precision doubles (up to 8·prec) until every radius is below one float64 ulp
                      of its midpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from .arithmetic import ArbArithmetic, Arithmetic, EmulatedArithmetic, Float64Arithmetic, MpmathArithmetic
from .contract import PrecisionContract
from .errors import EngineError
from .prepare import Prepared


@dataclass
class Evaluation:
    """Outputs [B,T,...] and final state [N,...] (an array, or a dict for multi-part states)."""

    family: str
    engine: str
    output: np.ndarray
    final_state: Any
    output_bound: np.ndarray | None = None
    final_state_bound: Any = None
    precision: int | None = None
    contract: PrecisionContract | None = None
    raw: dict = field(default_factory=dict, repr=False)  # engine-native values (mpf / arb object arrays)

    @property
    def max_bound(self) -> float | None:
        if self.output_bound is None:
            return None
        parts = [self.output_bound, *_components(self.final_state_bound)]
        return float(max((np.max(p) for p in parts if p.size), default=0.0))


def _components(state) -> list:
    if state is None:
        return []
    return list(state.values()) if isinstance(state, dict) else [state]


def _pack_state(state: dict[str, np.ndarray]):
    return next(iter(state.values())) if len(state) == 1 else dict(state)


def run_definition(prep: Prepared, ar: Arithmetic, seq: dict, static: dict, init: dict):
    """Evaluate ``prep.family`` with arithmetic ``ar`` on already converted inputs.
    Returns (output [B,T,...], final state dict of [N,...]) as engine-native arrays."""
    fam = prep.family
    if fam.kind == "dag":  # node by node in topological order over prep.graph
        from .dag import run_dag

        return run_dag(prep, ar, seq, static, init)
    p = SimpleNamespace(**prep.options, **static)
    if prep.scale is not None:
        p.scale = ar.const(prep.scale)

    def scan(xs: dict, state: dict, n: int, t_len: int):
        outs = []
        for t in range(t_len):
            x = {name: v[:, t] for name, v in xs.items()}
            if fam.read_before_update:
                outs.append(fam.readout(ar, state, x, p))
            state = fam.step(ar, state, x, p)
            if not fam.read_before_update:
                outs.append(fam.readout(ar, state, x, p))
        if not outs:
            return ar.empty(prep.output_shape(n, 0)), state
        return np.stack(outs, axis=1), state

    if prep.segments is None:
        return scan(seq, dict(init), prep.dims["B"], prep.dims["T"])
    outs, finals = [], []
    for i, (start, end) in enumerate(prep.segments):
        xs = {name: v[:, start:end] for name, v in seq.items()}
        o, s = scan(xs, {name: v[i:i + 1] for name, v in init.items()}, 1, end - start)
        outs.append(o)
        finals.append(s)
    state = {name: np.concatenate([s[name] for s in finals], axis=0) for name in init}
    return np.concatenate(outs, axis=1), state


class Engine:
    name = "engine"

    def evaluate(self, prep: Prepared) -> Evaluation:
        raise NotImplementedError


def _float_state(prep: Prepared) -> dict[str, np.ndarray]:
    """The initial state as float64 (an exact mpmath state is rounded to nearest)."""
    return {k: _to64(v) for k, v in prep.initial_state.items()}


class Fp64Engine(Engine):
    def __init__(self, order: str = "fast"):
        self.ar = Float64Arithmetic(order)
        self.name = "fp64" if order == "fast" else "fp64:sequential"

    def evaluate(self, prep):
        with np.errstate(over="ignore", under="ignore"):
            out, state = run_definition(prep, self.ar, prep.seq, prep.static, _float_state(prep))
        return Evaluation(prep.family.name, self.name, out, _pack_state(state))


class EmulateEngine(Engine):
    def __init__(self, contract: "str | PrecisionContract"):
        self.contract = PrecisionContract.parse(contract)
        self.ar = EmulatedArithmetic(self.contract)
        self.name = f"emulate:{self.contract.name}"

    def evaluate(self, prep):
        c = self.contract
        seq = {k: c.input.round(v) for k, v in prep.seq.items()}
        static = {k: (None if v is None else c.input.round(v)) for k, v in prep.static.items()}
        init = {k: c.state.round(v) for k, v in _float_state(prep).items()}
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            out, state = run_definition(prep, self.ar, seq, static, init)
        return Evaluation(prep.family.name, self.name, c.output.round(out), _pack_state(state), contract=c)


def _ulp64(x: np.ndarray) -> np.ndarray:
    return np.spacing(np.abs(x))


class ExactEngine(Engine):
    def __init__(self, prec: int = 128, backend: str = "auto"):
        if not isinstance(prec, int) or isinstance(prec, bool) or prec < 64:
            raise EngineError("prec", f"must be an integer number of bits ≥ 64, got {prec!r}")
        if backend not in ("auto", "mpmath", "arb"):
            raise EngineError("backend", f"must be 'auto', 'mpmath' or 'arb', got {backend!r}")
        if backend == "arb" and not _have_flint():
            raise EngineError("backend", "'arb' needs python-flint (pip install python-flint)")
        self.prec = prec
        self.backend = "mpmath" if backend == "auto" else backend
        self.name = f"exact:{self.backend}"

    def _convert(self, ar, prep):
        seq = {k: ar.asarray(v) for k, v in prep.seq.items()}
        static = {k: (None if v is None else ar.asarray(v)) for k, v in prep.static.items()}
        init = {k: (v if v.dtype == object and isinstance(ar, MpmathArithmetic) else ar.asarray(_to64(v)))
                for k, v in prep.initial_state.items()}
        return seq, static, init

    def _run_mpmath(self, prep, prec):
        import mpmath

        ar = MpmathArithmetic()
        with mpmath.workprec(prec):
            out, state = run_definition(prep, ar, *self._convert(ar, prep))
        return ar, out, state

    def evaluate(self, prep):
        return self._evaluate_arb(prep) if self.backend == "arb" else self._evaluate_mpmath(prep)

    def _evaluate_mpmath(self, prep):
        import mpmath

        _, lo_out, lo_state = self._run_mpmath(prep, self.prec)
        ar, hi_out, hi_state = self._run_mpmath(prep, 2 * self.prec)
        to_up = np.frompyfunc(lambda v: mpmath.libmp.to_float(v._mpf_, rnd="u"), 1, 1)

        def bound(hi, lo):
            value = ar.to_float(hi)
            with mpmath.workprec(2 * self.prec):
                diff = np.asarray(to_up(np.abs(hi - lo)), dtype=np.float64) if hi.size else np.zeros(hi.shape)
            return value, diff + _ulp64(value)

        out, out_bound = bound(hi_out, lo_out)
        state, state_bound = {}, {}
        for name in hi_state:
            state[name], state_bound[name] = bound(hi_state[name], lo_state[name])
        return Evaluation(prep.family.name, self.name, out, _pack_state(state), out_bound, _pack_state(state_bound),
                          precision=2 * self.prec,
                          raw={"output": hi_out, "state": hi_state, "output_lo": lo_out, "state_lo": lo_state})

    def _evaluate_arb(self, prep):
        import flint

        ar = ArbArithmetic()
        prec, saved = self.prec, flint.ctx.prec
        try:
            while True:
                flint.ctx.prec = prec
                out, state = run_definition(prep, ar, *self._convert(ar, prep))
                parts = [out, *state.values()]
                mids = [ar.to_float(x) for x in parts]
                rads = [ar.radius(x) for x in parts]
                accurate = all(np.all(r <= _ulp64(m)) for r, m in zip(rads, mids))
                if accurate or prec >= 8 * self.prec:
                    break
                prec *= 2
        finally:
            flint.ctx.prec = saved
        bounds = [r + _ulp64(m) for r, m in zip(rads, mids)]
        names = list(state)
        return Evaluation(prep.family.name, self.name, mids[0], _pack_state(dict(zip(names, mids[1:]))),
                          bounds[0], _pack_state(dict(zip(names, bounds[1:]))), precision=prec,
                          raw={"output": out, "state": state})


def _to64(v: np.ndarray) -> np.ndarray:
    return MpmathArithmetic().to_float(v) if v.dtype == object else v


def _have_flint() -> bool:
    try:
        import flint  # noqa: F401
    except ImportError:
        return False
    return True


def get_engine(engine: "str | Engine", *, prec: int | None = None) -> Engine:
    """``"fp64"``, ``"fp64:sequential"``, ``"exact"``, ``"exact:mpmath"``, ``"exact:arb"``,
    ``"emulate:<contract>"`` (see :class:`PrecisionContract.parse`), or an Engine instance."""
    if isinstance(engine, Engine):
        if prec is not None:
            raise EngineError("prec", "give the precision to the ExactEngine instance, not to evaluate()")
        return engine
    if not isinstance(engine, str):
        raise EngineError("engine", f"must be an engine name or an Engine, got {type(engine).__name__}")
    kind, _, arg = engine.partition(":")
    if prec is not None and kind != "exact":
        raise EngineError("prec", f"only applies to the exact engine, not {engine!r}")
    if kind == "fp64" and arg in ("", "fast", "sequential"):
        return Fp64Engine(arg or "fast")
    if kind == "exact":
        return ExactEngine(prec if prec is not None else 128, arg or "auto")
    if kind == "emulate" and arg:
        return EmulateEngine(arg)
    raise EngineError("engine", f"unknown engine {engine!r}; use fp64, fp64:sequential, exact[:mpmath|:arb] "
                                f"or emulate:<contract> (e.g. emulate:bf16, emulate:mixed-bf16)")
