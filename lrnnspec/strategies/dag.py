"""Hypothesis strategies for DAG families (pLSTM) — public API, reusable in your own tests.

    from hypothesis import given
    from lrnnspec.strategies import dag_cases

    @given(dag_cases("plstm", layouts=("grid",), chunks=(1, 2, 4)))
    def test_my_2d_kernel(case):
        x = case.torch(torch.float32)            # spec names, node axes in the graph's layout
        out = my_kernel(**x, direction=case.direction, chunk=case.chunk_size)
        ref = case.reference()                   # the spec's fp64 evaluation of the same inputs
        ...

A :class:`DagCase` is drawn like :class:`lrnnspec.strategies.Case`: Hypothesis draws the
*structure* — the graph (``chain(n)``, n ∈ {1, 2, 3, 5, 7, 11, 13, 17}; ``grid(h, w, direction)``,
h, w ∈ 1..6, 1×n and n×1 included, all four directional covers; small random DAGs), B, H, K, V
(head dims that are not powers of two), the stability mode, the value regime of every input, the
optional direct gate, the scale, the chunk — and the *values* come from a NumPy generator seeded by
a drawn integer, so a failing case shrinks to a small graph and the plainest regimes, and is
reproducible from its JSON (:meth:`DagCase.to_json` / :func:`dag_case_from_json`).

Regimes:

* q, k, v: ``normal`` N(0,1), ``same_sign`` |N(0,1)| (no cancellation), ``large`` 30·N(0,1),
  ``dyadic`` multiples of 1/4 in [−2, 2];
* S, M, D (per-port / per-node multipliers): ``sigmoid`` σ(N(0,1)) (the paper's gates), ``signed``
  U(−1, 1), ``one`` and ``zero`` exactly, ``dyadic`` multiples of 1/8 in [0, 1];
* T, by declared mode (``options["mode"]``; the spec checks it on every live port):

  - ``None``: ``tanh`` tanh(N(1,1)) (the spec's sampler), ``signed`` U(−1, 1), ``ones`` (all
    transitions 1: the gating matrix counts lattice paths, C(10, 5) = 252 on a 6×6 grid),
    ``zero`` (no memory), ``dyadic`` multiples of 1/4 in [−1, 1];
  - ``"P"``: ``P`` — every column T[:, i] = ±γ_i·w/Σw (random signs, w > 0, γ_i ∈ U(0.5, 0.98)):
    Σ_o |T[o, i]| ≤ 0.98, a margin that survives rounding to bf16 (2^-9 relative per entry);
    ``P_edge`` — γ = 1 with dyadic weights j/16 (T = [[α, α'], [1−α, 1−α']] on a grid, exact in
    every format): mass-conserving columns, Σ_o T[o, i] = 1 exactly; ``zero``;
  - ``"D"``: ``D`` — tanh(N(1,1)) (|T| < 1), ``D_edge`` — ±1 exactly, both with the turn
    transition T[1, 0] = 0 on grids (horizontal in → vertical out; the line graph is then a
    multitree) and, on general DAGs, only in-port 0 passing through (T[:, i ≥ 1] = 0); ``zero``.

Gate entries of ports a node does not have (chain ends, grid borders) are drawn like the live ones:
the spec never reads them, and a kernel that does reads random values, not zeros.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lrnnspec.spec.errors import SpecError
from lrnnspec.spec.family import Family, all_families, get_family
from lrnnspec.spec.graph import DIRECTIONS, Graph, chain, grid

LAYOUTS = ("chain", "grid", "dag")
CHAIN_DIRECTIONS = ("forward", "reverse")
CHAIN_LENGTHS = (1, 2, 3, 5, 7, 11, 13, 17)
REAL_REGIMES = ("normal", "same_sign", "large", "dyadic")
GATE_REGIMES = ("sigmoid", "signed", "one", "zero", "dyadic")
TRANSITION_REGIMES = {None: ("tanh", "signed", "ones", "zero", "dyadic"), "P": ("P", "P_edge", "zero"),
                      "D": ("D", "D_edge", "zero")}
DYADIC_TRANSITION = {None: "dyadic", "P": "P_edge", "D": "D_edge"}
MODES = (None, "P", "D")
SCALES = (None, None, 0.5, 1.0, 1.7)
P_MARGIN = 0.98   # P-mode column sums stay ≤ this before rounding: ≤ 1 after rounding to any format
TORCH_DTYPE_NAMES = ("fp32", "fp16", "bf16", "fp64")
VECTOR_ROLES = ("query", "key", "value")


def _torch_dtype(dtype):
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
    if isinstance(dtype, str):
        if dtype not in table:
            raise SpecError("dtype", f"must be one of {', '.join(table)} or a torch floating dtype, got {dtype!r}")
        return table[dtype]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise SpecError("dtype", f"must be one of {', '.join(table)} or a torch floating dtype, got {dtype!r}")
    return dtype


@dataclass
class DagCase:
    """One drawn input on a graph: structure (JSON-serializable) plus the values it seeds.

    ``layout``: ``"chain"`` (``shape = (n,)``, ``direction`` ``"forward"``/``"reverse"``),
    ``"grid"`` (``shape = (h, w)``, ``direction`` one of :data:`~lrnnspec.spec.graph.DIRECTIONS`)
    or ``"dag"`` (``shape = (n,)``, edges drawn from ``seed``: :meth:`graph`). ``arrays`` hold the
    inputs with node axes in the layout: q [B, *shape, H, K] ..., D absent when not drawn."""

    family: str
    layout: str
    shape: tuple[int, ...]
    direction: str | None
    dims: dict[str, int]
    regimes: dict[str, str]
    options: dict[str, Any]
    seed: int
    chunk_size: int | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        if self.layout not in LAYOUTS:
            raise SpecError("layout", f"must be one of {LAYOUTS}, got {self.layout!r}")
        if not self.arrays:
            self.arrays = _values(self)

    # --- structure ----------------------------------------------------------------------------
    @cached_property
    def graph(self) -> Graph:
        if self.layout == "chain":
            return chain(self.shape[0], reverse=self.direction == "reverse")
        if self.layout == "grid":
            return grid(self.shape[0], self.shape[1], self.direction)
        return random_dag(self.shape[0], self.seed)

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    def all_dims(self) -> dict[str, int]:
        """B, H, K, V plus the graph's P (nodes), E (edges), O / I (out-/in-ports)."""
        g = self.graph
        return {**self.dims, "P": g.num_nodes, "E": g.num_edges, "O": g.out_ports, "I": g.in_ports}

    def flat(self, name: str) -> np.ndarray:
        """One input with the node axes flattened to P (graph node ids)."""
        a = self.arrays[name]
        return a.reshape(a.shape[0], self.graph.num_nodes, *a.shape[1 + len(self.shape):])

    def with_arrays(self, arrays: dict[str, np.ndarray]) -> "DagCase":
        """The same structure with other values (layout-shaped, flat node axes accepted)."""
        shaped = {n: np.asarray(a, dtype=np.float64).reshape(self.arrays[n].shape) for n, a in arrays.items()}
        return DagCase(self.family, self.layout, self.shape, self.direction, dict(self.dims), dict(self.regimes),
                       dict(self.options), self.seed, self.chunk_size, arrays=shaped)

    # --- views --------------------------------------------------------------------------------
    def rounded(self, dtype) -> "DagCase":
        """A copy whose inputs are exactly representable in ``dtype`` (a torch dtype or fp32/fp16/bf16/
        fp64), round to nearest. Mode constraints survive: P-mode columns keep a 2 % margin or are
        dyadic, D-mode |T| ≤ 1 and zero turns are preserved by rounding."""
        import torch

        tdt = _torch_dtype(dtype)
        return self.with_arrays({k: torch.from_numpy(v).to(tdt).double().numpy() for k, v in self.arrays.items()})

    def torch(self, dtype, device="cpu", requires_grad: bool = False, flat: bool = False) -> dict:
        """Inputs as torch tensors of ``dtype`` (round to nearest), spec names, node axes in the
        graph's layout (``flat``: one node axis P)."""
        import torch

        tdt = _torch_dtype(dtype)
        return {k: torch.tensor(self.flat(k) if flat else v, dtype=tdt, device=device, requires_grad=requires_grad)
                for k, v in self.arrays.items()}

    def reference(self, engine: str = "fp64"):
        """The spec's evaluation on :attr:`graph` (output in the layout, final_state [B,E,H,K,V])."""
        from lrnnspec.spec.dag import evaluate_dag

        return evaluate_dag(self.family, self.arrays, graph=self.graph, engine=engine, **self.options)

    def describe(self) -> str:
        if self.layout == "grid":
            where = f"grid {self.shape[0]}×{self.shape[1]} {self.direction}"
        elif self.layout == "chain":
            where = f"chain({self.shape[0]}{', reverse' if self.direction == 'reverse' else ''})"
        else:
            where = f"dag({self.shape[0]} nodes, edges {[e[0::2] for e in self.graph.edges]})"
        d = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        r = ", ".join(f"{k}:{v}" for k, v in self.regimes.items())
        opts = {k: v for k, v in self.options.items() if v is not None}
        extra = f"; options={opts}" if opts else ""
        extra += f"; chunk_size={self.chunk_size}" if self.chunk_size is not None else ""
        return f"{self.family}({where}; {d}; {r}{extra}; seed={self.seed})"

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("arrays")
        d["shape"] = list(self.shape)
        return d


def dag_case_from_json(d: dict) -> DagCase:
    """Rebuild a case (values included: they are a function of the structure)."""
    if not isinstance(d, dict):
        raise SpecError("case", f"must be a dict from DagCase.to_json(), got {type(d).__name__}")
    keys = ("family", "layout", "shape", "direction", "dims", "regimes", "options", "seed", "chunk_size")
    missing = [k for k in keys if k not in d]
    if missing:
        raise SpecError("case", f"is missing {', '.join(missing)} (not a DagCase.to_json() record)")
    return DagCase(**{k: d[k] for k in keys})


def to_json(case: DagCase) -> str:
    return json.dumps(case.to_json())


# --- graphs -----------------------------------------------------------------------------------------
def random_dag(n: int, seed: int) -> Graph:
    """A random DAG on n nodes: a random topological order, each forward pair an edge with probability
    1/2 (ports assigned in order of appearance). Deterministic in (n, seed)."""
    rng = np.random.default_rng([int(seed) % 2**32, 7919])
    perm = rng.permutation(n)
    pairs = [(int(perm[a]), int(perm[b])) for a in range(n) for b in range(a + 1, n) if rng.uniform() < 0.5]
    return Graph.from_edges(n, pairs)


# --- values -----------------------------------------------------------------------------------------
def _real(rng, regime, shape):
    if regime == "same_sign":
        return np.abs(rng.standard_normal(shape))
    if regime == "large":
        return 30.0 * rng.standard_normal(shape)
    if regime == "dyadic":
        return rng.integers(-8, 9, shape) / 4.0
    return rng.standard_normal(shape)


def _gate(rng, regime, shape):
    if regime == "signed":
        return rng.uniform(-1.0, 1.0, shape)
    if regime == "one":
        return np.ones(shape)
    if regime == "zero":
        return np.zeros(shape)
    if regime == "dyadic":
        return rng.integers(0, 9, shape) / 8.0
    return 1.0 / (1.0 + np.exp(-rng.standard_normal(shape)))


def _transition(rng, regime, shape, layout):
    """T [B,P,H,O,I] in ``regime`` (see the module docstring)."""
    O = shape[-2]
    if regime == "tanh" or regime == "D":
        T = np.tanh(rng.normal(1.0, 1.0, shape))
    elif regime == "signed":
        T = rng.uniform(-1.0, 1.0, shape)
    elif regime == "ones":
        T = np.ones(shape)
    elif regime == "zero":
        T = np.zeros(shape)
    elif regime == "dyadic":
        T = rng.integers(-4, 5, shape) / 4.0
    elif regime == "P":
        w = rng.uniform(0.05, 1.0, shape)
        gamma = rng.uniform(0.5, P_MARGIN, (*shape[:-2], 1, shape[-1]))
        T = w / w.sum(axis=-2, keepdims=True) * gamma * rng.choice([-1.0, 1.0], shape)
    elif regime == "P_edge":
        cols = shape[:-2] + shape[-1:]                                   # one composition of 16 per column
        parts = rng.multinomial(16, np.full(O, 1.0 / O), size=cols)      # [..., I, O]
        T = np.moveaxis(parts, -1, -2) / 16.0
    elif regime == "D_edge":
        T = rng.choice([-1.0, 1.0], shape)
    else:
        raise SpecError("regimes", f"unknown transition regime {regime!r}")
    if regime in ("D", "D_edge"):
        if layout == "grid":
            T[..., 1, 0] = 0.0           # no horizontal → vertical turn: the line graph is a multitree
        elif layout == "dag" and shape[-1] > 1:
            T[..., :, 1:] = 0.0          # only in-port 0 passes through: a forest of edges
    return T


def _values(case: DagCase) -> dict[str, np.ndarray]:
    """Every input with a regime, in declaration order, drawn by its role: vectors (query, key,
    value) from the real regimes, the transition gate by :func:`_transition`, the other gates by
    :func:`_gate`; the node axis P is laid out as the case's shape."""
    rng = np.random.default_rng(int(case.seed) % 2**64)
    sizes = case.all_dims()
    x = {}
    for inp in get_family(case.family).inputs:
        regime = case.regimes.get(inp.name)
        if regime is None:
            continue
        shape = tuple(s for d in inp.dims for s in (case.shape if d == "P" else (sizes[d],)))
        if inp.role in VECTOR_ROLES:
            x[inp.name] = _real(rng, regime, shape)
        elif inp.role == "transition_gate":
            x[inp.name] = _transition(rng, regime, shape, case.layout)
        else:
            x[inp.name] = _gate(rng, regime, shape)
    return x


# --- strategies -------------------------------------------------------------------------------------
def _subset(name: str, given, allowed) -> tuple:
    if isinstance(given, str) or given is None:
        given = (given,)
    try:
        given = tuple(given)
    except TypeError:
        raise SpecError(name, f"must be a sequence drawn from {tuple(allowed)}, got {given!r}") from None
    bad = [g for g in given if g not in allowed]
    if not given or bad:
        raise SpecError(name, f"must be a non-empty sequence drawn from {tuple(allowed)}, got {given!r}")
    return given


def _positive_int(name: str, value, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise SpecError(name, f"must be an integer ≥ {lo}, got {value!r}")
    return int(value)


def dag_cases(family: "str | Family | None" = None, *, layouts=("chain", "grid"), max_nodes: int = 36,
              max_side: int = 6, max_dag_nodes: int = 7, chain_lengths=CHAIN_LENGTHS, directions=DIRECTIONS,
              chain_directions=("forward",), max_batch: int = 2, max_heads: int = 2, head_dims=(1, 3, 5, 6),
              modes=MODES, direct: bool | None = None, vary_scale: bool = True, chunks=None,
              options: dict[str, Any] | None = None, dyadic: bool = False) -> st.SearchStrategy[DagCase]:
    """Cases for a DAG family (default: the one registered). Arguments are checked now (a bad one
    raises a ``SpecError`` naming it).

    * ``layouts``: any of ``"chain"``, ``"grid"``, ``"dag"`` (small random DAGs of ≤ ``max_dag_nodes``
      nodes, for kernels that take a graph); ``max_nodes`` caps h·w and the chain length;
      ``max_side`` caps h and w; ``chain_lengths`` the drawn n.
    * ``directions`` (grids) / ``chain_directions`` (``"forward"``, ``"reverse"``): the covers drawn.
    * ``modes``: the stability modes drawn (None, "P", "D"); ``options`` fixes options instead
      (``{"mode": "P", "scale": 1.0}``); ``vary_scale``: draw scale ∈ {default, 0.5, 1, 1.7}.
    * ``direct``: give D always (True), never (False), or draw it (None).
    * ``chunks``: a sequence of chunk sizes to draw ``case.chunk_size`` from (None: no chunk).
    * ``dyadic``: only the dyadic regimes (inputs exact in every format)."""
    if family is None:
        dags = all_families(kind="dag")
        if len(dags) != 1:
            raise SpecError("family", f"name one of the DAG families {[f.name for f in dags]}")
        family = dags[0]
    fam = get_family(family)
    if fam.kind != "dag":
        raise SpecError("family", f"{fam.name!r} is a {fam.kind} family; dag_cases draws DAG families "
                                  f"(use lrnnspec.strategies.cases for sequence families)")
    layouts = _subset("layouts", layouts, LAYOUTS)
    directions = _subset("directions", directions, DIRECTIONS)
    chain_directions = _subset("chain_directions", chain_directions, CHAIN_DIRECTIONS)
    modes = _subset("modes", modes, MODES)
    max_nodes = _positive_int("max_nodes", max_nodes)
    max_side = _positive_int("max_side", max_side)
    max_dag_nodes = _positive_int("max_dag_nodes", max_dag_nodes)
    max_batch = _positive_int("max_batch", max_batch)
    max_heads = _positive_int("max_heads", max_heads)
    lengths = tuple(_positive_int("chain_lengths", n) for n in _seq("chain_lengths", chain_lengths))
    lengths = tuple(sorted({n for n in lengths if n <= max_nodes}))
    if "chain" in layouts and not lengths:
        raise SpecError("chain_lengths", f"no length ≤ max_nodes = {max_nodes} among {tuple(chain_lengths)}")
    head_dims = tuple(_positive_int("head_dims", d) for d in _seq("head_dims", head_dims))
    if not head_dims:
        raise SpecError("head_dims", "must not be empty")
    if chunks is not None:
        chunks = tuple(_positive_int("chunks", c) for c in _seq("chunks", chunks))
        if not chunks:
            raise SpecError("chunks", "must be None or a non-empty sequence of chunk sizes")
    if direct not in (None, True, False):
        raise SpecError("direct", f"must be True, False or None (drawn), got {direct!r}")
    fixed = dict(options or {})
    names = {o.name for o in fam.options}
    unknown = sorted(set(fixed) - names)
    if unknown:
        raise SpecError("options", f"unknown option(s) {unknown} for {fam.name!r}; known: {sorted(names)}")
    if "mode" in fixed and fixed["mode"] not in MODES:
        raise SpecError("options", f"mode must be one of {MODES}, got {fixed['mode']!r}")
    return _draw_case(fam.name, layouts, max_nodes, max_side, max_dag_nodes, lengths, directions, chain_directions,
                      max_batch, max_heads, head_dims, modes, direct, vary_scale, chunks, fixed, dyadic)


def _seq(name, value):
    try:
        return tuple(value)
    except TypeError:
        raise SpecError(name, f"must be a sequence of integers, got {value!r}") from None


@st.composite
def _draw_case(draw, family, layouts, max_nodes, max_side, max_dag_nodes, lengths, directions, chain_directions,
               max_batch, max_heads, head_dims, modes, direct, vary_scale, chunks, fixed, dyadic) -> DagCase:
    layout = draw(st.sampled_from(layouts))
    if layout == "chain":
        shape = (draw(st.sampled_from(lengths)),)
        direction = draw(st.sampled_from(chain_directions))
    elif layout == "grid":
        h = draw(st.integers(1, min(max_side, max_nodes)))
        w = draw(st.integers(1, max(1, min(max_side, max_nodes // h))))
        shape, direction = (h, w), draw(st.sampled_from(directions))
    else:
        shape, direction = (draw(st.integers(1, min(max_dag_nodes, max_nodes))),), None
    dims = {"B": draw(st.integers(1, max_batch)), "H": draw(st.integers(1, max_heads)),
            "K": draw(st.sampled_from(head_dims)), "V": draw(st.sampled_from(head_dims))}
    opts: dict[str, Any] = {}
    opts["mode"] = fixed["mode"] if "mode" in fixed else draw(st.sampled_from(modes))
    if "scale" in fixed:
        opts["scale"] = fixed["scale"]
    elif vary_scale:
        s = draw(st.sampled_from(SCALES))
        if s is not None:
            opts["scale"] = s
    mode = opts["mode"]
    regimes = {}
    for inp in get_family(family).inputs:
        if inp.optional and not (direct if direct is not None else draw(st.booleans())):
            continue
        if inp.role == "transition_gate":
            choices = (DYADIC_TRANSITION[mode],) if dyadic else TRANSITION_REGIMES[mode]
        else:
            choices = ("dyadic",) if dyadic else REAL_REGIMES if inp.role in VECTOR_ROLES else GATE_REGIMES
        regimes[inp.name] = draw(st.sampled_from(choices))
    chunk_size = draw(st.sampled_from(chunks)) if chunks else None
    seed = draw(st.integers(0, 2**32 - 1))
    return DagCase(family, layout, shape, direction, dims, regimes, opts, seed, chunk_size)
