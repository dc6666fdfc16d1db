"""Declarations a family is made of, and the registry.

A family is data plus two functions written once against :mod:`lrnnspec.spec.arithmetic`:

* ``inputs``  — name, dimensions, domain, whether optional; dimensions are symbols
  (``B`` batch, ``T`` time, ``H`` query/key heads, ``HV`` value heads, ``K`` key dim, ``V`` value
  dim, plus family symbols such as ``n_h``); ``T*n_h`` marks an interleaved time axis;
* ``state``   — the components of the recurrent state with their dimensions (``N`` = sequences);
* ``options`` — scalar parameters (scale, eigenvalue range, ...), each with a default and a rule;
* ``step(ar, state, x, p) -> state`` — one time step; ``x`` holds the per-step inputs with the
  time axis removed (leading axes: sequence, head), ``p`` the static inputs and options;
* ``readout(ar, state, x, p) -> o`` — the output of that step, read **after** the update (or, for a
  family declaring ``read_before_update``, from the state the step starts from: RWKV's bonus read
  o_t = S_{t−1}ᵀ q_t + …, whose x still holds step t's inputs).

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
from .roles import STATE_ROLES, get_role


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
    """One input: its dimension symbols, domain, whether it may be left out, and its role
    (:mod:`lrnnspec.spec.roles`: what generic code may assume about it)."""

    name: str
    dims: tuple[str, ...]
    domain: Domain | Callable[[dict[str, Any]], Domain] = REAL
    optional: bool = False
    doc: str = ""
    alt_dims: tuple[tuple[str, ...], ...] = ()  # other accepted layouts (e.g. D: [HV] or [HV, V])
    role: str = "value"

    def __post_init__(self):
        get_role(self.role)
        if not self.name.isidentifier():
            raise ValueError(f"input name {self.name!r} is not an identifier")

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
    role: str = "value"    # "value", "stabilizer" (a log-scale quantity: mLSTM's m) or "gram" (an SPD K×K matrix)

    def __post_init__(self):
        if self.role not in STATE_ROLES:
            raise ValueError(f"state component {self.name!r}: role must be one of {STATE_ROLES}, got {self.role!r}")
        if not self.dims or self.dims[0] != "N":
            raise ValueError(f"state component {self.name!r}: dims must start with 'N' (sequences), got {self.dims}")


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
    # the value a default of None stands for, from the dimensions (scale: K^-1/2), for kernels that
    # require the argument
    default_for: Callable[[dict[str, int]], Any] | None = None


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


SCALE = Option("scale", None, "read-out scale; None → K^-1/2", check=lambda s: None if s is None else positive_finite(s),
               default_for=lambda dims: dims["K"] ** -0.5)
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
    # values of optional inputs left out, from the bound dimensions and the options (retention's γ_h,
    # lightning attention's per-layer schedule): defaults(dims, options=None), options None meaning
    # every option at its default
    defaults: Callable[..., dict[str, np.ndarray]] | None = None
    # refinement of random valid inputs: (rng, arrays, dims) → replacements (see spec.sampling)
    sample: Callable | None = None
    kind: str = "sequence"  # "sequence" (loop over time) or "dag" (node by node over a graph)
    # the read-out of step t sees S_{t−1} (the state before the step) instead of S_t (sequence kind)
    read_before_update: bool = False
    extra_dims: tuple[str, ...] = ()  # family dimension symbols beyond the shared ones (e.g. n_h)
    # --- numerics the tolerance needs, per family (None: what the roles give, or nothing) ---------
    # per-step |log decay| [B, T, heads(, channels)] for the exponent mass Λ (default: the sum of
    # |x| over inputs whose role has ``exponent``, per token)
    log_decay: Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray | None] | None = None
    # κ ≥ 1 [B, T, heads, 1] of the triangular system a chunked kernel solves (delta families)
    conditioning: Callable[..., np.ndarray | None] | None = None
    # an extra magnitude floor for the output, (arrays, |arrays|, state, |state|, options) → [output]
    shadow: Callable[..., np.ndarray | None] | None = None
    # nominal FLOPs of one call at dimensions dims (the work any algorithm does): the benchmark's rate
    flops: Callable[[dict[str, int]], float] | None = None
    # matmul FLOPs of one chunkwise forward at dims and chunk size C (the GPU benchmark's throughput)
    chunk_flops: Callable[[dict[str, int], int], float] | None = None

    def __post_init__(self):
        """Validate the record as OpInfo does: names, dimensions, roles, options, hooks."""
        where = f"family {self.name!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.read_before_update, bool) or (self.read_before_update and self.kind != "sequence"):
            raise ValueError(f"{where}: read_before_update must be True or False, and True only for kind 'sequence'")
        names = [i.name for i in self.inputs]
        for group, items in (("inputs", names), ("state components", [c.name for c in self.state]),
                             ("options", [o.name for o in self.options])):
            repeated = sorted({n for n in items if items.count(n) > 1})
            if repeated:
                raise ValueError(f"{where}: {group} {repeated} declared twice")
        known = set(SEQUENCE_DIMS if self.kind == "sequence" else DAG_DIMS) | set(self.extra_dims)
        for inp in self.inputs:
            for dims in (inp.dims, *inp.alt_dims):
                bad = [d for d in dims if d not in known]
                if bad:
                    raise ValueError(f"{where}: input {inp.name!r} has unknown dimension(s) {bad}; known: "
                                     f"{sorted(known)} (declare family symbols in extra_dims)")
        for c in self.state:
            bad = [d for d in c.dims if d not in known | {"N"}]
            if bad:
                raise ValueError(f"{where}: state {c.name!r} has unknown dimension(s) {bad}")
        bad = [d for d in self.output_dims if d not in known]
        if bad:
            raise ValueError(f"{where}: output_dims has unknown dimension(s) {bad}")
        for name in self.unit_keys:
            if name not in names:
                raise ValueError(f"{where}: unit_keys names {name!r}, which is not an input")
            if self.input(name).role != "key":
                raise ValueError(f"{where}: unit key {name!r} must have role 'key'")
        for name in self.state_when:
            if name not in [c.name for c in self.state]:
                raise ValueError(f"{where}: state_when names {name!r}, which is not a state component")
        for o in self.options:
            if o.choices is not None and o.default not in o.choices and o.default is not None:
                raise ValueError(f"{where}: option {o.name!r} defaults to {o.default!r}, not one of {o.choices}")
        for hook in ("step", "readout", "log_decay", "conditioning", "shadow", "flops", "chunk_flops", "check",
                     "defaults", "sample"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise ValueError(f"{where}: {hook} must be callable, got {type(value).__name__}")

    def input(self, name: str) -> Input:
        return next(i for i in self.inputs if i.name == name)

    def with_role(self, role: str) -> tuple[Input, ...]:
        """The inputs that play ``role``."""
        return tuple(i for i in self.inputs if i.role == role)

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def domains(self, options: dict[str, Any] | None = None) -> dict[str, str]:
        opts = {o.name: o.default for o in self.options} | (options or {})
        return {i.name: str(i.domain_for(opts)) for i in self.inputs}


KINDS = ("sequence", "dag")
SEQUENCE_DIMS = ("B", "T", "T*n_h", "H", "HV", "K", "V", "D", "NS")
DAG_DIMS = ("B", "P", "H", "K", "V", "O", "I", "E")

REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family`` to the registry. The same module registering it again (a module imported
    anew) replaces it; another module taking the name is an error."""
    old = REGISTRY.get(family.name)
    if old is not None and old.step.__module__ != family.step.__module__:
        raise ValueError(f"family {family.name!r} registered twice ({old.step.__module__}, {family.step.__module__})")
    REGISTRY[family.name] = family
    return family


_DISCOVERED = [False]


def _discover() -> None:
    """Import every module of :mod:`lrnnspec.spec.families` once: each registers its family."""
    if _DISCOVERED[0]:     # also keeps torch.compile's tracing of get_family free of file-system calls
        return
    import importlib
    import pkgutil

    from . import families

    for info in pkgutil.iter_modules(families.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{families.__name__}.{info.name}")
    _DISCOVERED[0] = True


def get_family(name: "str | Family") -> Family:
    if isinstance(name, Family):
        return name
    _discover()

    if name not in REGISTRY:
        raise UnknownFamilyError("family", f"unknown family {name!r}; known families: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def all_families(kind: str | None = None) -> list[Family]:
    """Every registered family, or only those of one ``kind`` (``"sequence"`` or ``"dag"``)."""
    _discover()

    return [f for f in REGISTRY.values() if kind is None or f.kind == kind]
