"""Declarations a family is made of, and the registry.

A family is data plus two functions written once against :mod:`lrnnspec.spec.arithmetic`:

* ``inputs``  — name, dimensions, domain, whether optional; dimensions are symbols
  (``B`` batch, ``T`` time, ``H`` query/key heads, ``HV`` value heads, ``K`` key dim, ``V`` value
  dim, plus family symbols such as ``n_h``); ``T*n_h`` marks an interleaved time axis;
* ``state``   — the components of the recurrent state with their dimensions (``N`` = sequences);
* ``options`` — scalar parameters (scale, eigenvalue range, ...), each with a default and a rule;
* ``step(ar, state, x, p) -> state`` — one time step; ``x`` holds the per-step inputs with the
  time axis removed (leading axes: sequence, head), ``p`` the static inputs and options;
* ``readout(ar, state, x, p) -> o`` — the output of that step, read **after** the update.

``kind`` says how the engines drive those two functions: ``"sequence"`` (the default: a loop over
the time axis, the signatures above) or ``"dag"`` (a directed acyclic graph, node by node in
topological order, see :mod:`lrnnspec.spec.dag`: ``step(ar, incoming, out_ports, x, p)`` returns
the states of the node's outgoing edges, ``readout(ar, incoming, x, p)`` its output, read from the
incoming edges). Generic code that draws time-axis inputs filters on it:
``all_families(kind="sequence")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import DomainError, UnknownFamilyError


# --- domains ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    """A closed interval [lo, hi] (either end may be infinite) that every element must lie in."""

    lo: float = -math.inf
    hi: float = math.inf
    description: str = "real"

    def check(self, name: str, values: np.ndarray) -> None:
        bad = (values < self.lo) | (values > self.hi)
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DomainError(
                name,
                f"every element must be {self.description} (in [{self.lo}, {self.hi}]); "
                f"{int(bad.sum())} are not, e.g. {name}[{', '.join(map(str, idx))}] = {values[idx]!r}",
            )

    def __str__(self) -> str:
        return self.description


REAL = Domain()
LOG_GATE = Domain(-math.inf, 0.0, "a log-space gate ≤ 0 (decay exp(g) ∈ [0, 1])")
NONNEGATIVE = Domain(0.0, math.inf, "≥ 0")
NONPOSITIVE = Domain(-math.inf, 0.0, "≤ 0")
UNIT_INTERVAL = Domain(0.0, 1.0, "in [0, 1]")
BETA_0_1 = Domain(0.0, 1.0, "β ∈ [0, 1] (eigenvalue 1 − β ∈ [0, 1])")
BETA_0_2 = Domain(0.0, 2.0, "β ∈ [0, 2] (eigenvalue 1 − β ∈ [−1, 1])")


@dataclass(frozen=True)
class Input:
    name: str
    dims: tuple[str, ...]
    domain: Domain | Callable[[dict[str, Any]], Domain] = REAL
    optional: bool = False
    doc: str = ""
    alt_dims: tuple[tuple[str, ...], ...] = ()  # other accepted layouts (e.g. D: [HV] or [HV, V])

    @property
    def per_step(self) -> bool:
        return bool(self.dims) and self.dims[1:2] in (("T",), ("T*n_h",))

    def domain_for(self, options: dict[str, Any]) -> Domain:
        return self.domain(options) if callable(self.domain) else self.domain


@dataclass(frozen=True)
class StateComponent:
    name: str
    dims: tuple[str, ...]  # leading "N"
    doc: str = ""


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    doc: str
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # returns the rule broken, or None
    # True when the option only declares the inputs' domain (which β are valid, whether keys must
    # be unit): the computation does not read it, so a kernel is never passed it
    domain_only: bool = False


def positive_finite(x) -> str | None:
    try:
        ok = math.isfinite(float(x)) and float(x) > 0
    except (TypeError, ValueError):
        ok = False
    return None if ok else "must be a finite number > 0"


def nonnegative_finite(x) -> str | None:
    try:
        ok = math.isfinite(float(x)) and float(x) >= 0
    except (TypeError, ValueError):
        ok = False
    return None if ok else "must be a finite number ≥ 0"


SCALE = Option("scale", None, "read-out scale; None → K^-1/2", check=lambda s: None if s is None else positive_finite(s))
UNIT_KEYS = Option(
    "require_unit_keys", True,
    "reject keys whose L2 norm differs from 1 by more than 4·eps(dtype of k) + 1e-12", choices=(True, False),
    domain_only=True,
)


@dataclass(frozen=True)
class Family:
    name: str
    recurrence: str  # the one-line recurrence shown by `lrnnspec spec list`
    inputs: tuple[Input, ...]
    state: tuple[StateComponent, ...]
    output_dims: tuple[str, ...]
    step: Callable
    readout: Callable
    options: tuple[Option, ...] = ()
    eigenvalues: str = ""  # the transition's eigenvalue range and how the parameterization reaches it
    unit_keys: tuple[str, ...] = ()  # inputs whose last axis must have unit L2 norm
    check: Callable[[dict[str, np.ndarray], dict[str, Any]], None] | None = None  # cross-input rules
    source: str = ""
    notes: str = ""
    rounding: str = ""  # where the definition rounds under emulation, in order
    # state component name → predicate on the options (a component kept only under some options)
    state_when: dict[str, Callable[[dict[str, Any]], bool]] = field(default_factory=dict)
    # values of optional inputs left out, from the bound dimensions (retention's γ_h)
    defaults: Callable[[dict[str, int]], dict[str, np.ndarray]] | None = None
    # refinement of random valid inputs: (rng, arrays, dims) → replacements (see spec.sampling)
    sample: Callable | None = None
    kind: str = "sequence"  # "sequence" (loop over time) or "dag" (node by node over a graph)

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def domains(self, options: dict[str, Any] | None = None) -> dict[str, str]:
        opts = {o.name: o.default for o in self.options} | (options or {})
        return {i.name: str(i.domain_for(opts)) for i in self.inputs}


REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in REGISTRY:
        raise ValueError(f"family {family.name!r} registered twice")
    REGISTRY[family.name] = family
    return family


def get_family(name: "str | Family") -> Family:
    if isinstance(name, Family):
        return name
    from . import families  # noqa: F401  (populates the registry)

    if name not in REGISTRY:
        raise UnknownFamilyError("family", f"unknown family {name!r}; known families: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def all_families(kind: str | None = None) -> list[Family]:
    """Every registered family, or only those of one ``kind`` (``"sequence"`` or ``"dag"``)."""
    from . import families  # noqa: F401

    return [f for f in REGISTRY.values() if kind is None or f.kind == kind]
