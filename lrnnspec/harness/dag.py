"""What certifying a DAG family (pLSTM, arXiv 2506.11997) means: cases on graphs, the spec evaluated
node by node, and how a kernel's results are called for and judged.

:class:`DagDomain` is the counterpart of :class:`~.sequence.SequenceDomain` for the shared properties
(:mod:`.properties`), with inputs on nodes and states on edges of a
:class:`~lrnnspec.spec.graph.Graph`, plus one property of its own, ``boundary``.

Calling conventions (:data:`~.conventions.DAG_CONVENTIONS`; inputs keep the spec's names, ``D`` and
``scale`` optional, ``D`` omitted when a case has no direct gate):

``native``  ``fn(graph, q, k, v, S, T, M, D=None, scale=None)`` with ONE flat node axis
            (q [B,P,H,K] ..., P = graph.num_nodes in node-id order), output [B,P,H,V] — like
            :func:`lrnnspec.impls.plstm.recurrent` and ``parallel_dag``. Certified on chains
            (both directions), grids (all four covers) and small random DAGs.
``chain``   ``fn(q, k, v, S, T, M, D=None, scale=None[, chunk_size])`` on ``chain(n)``: node axis (n,).
``grid``    ``fn(q, k, v, S, T, M, D=None, scale=None[, direction][, chunk_size])`` on
            ``grid(h, w, direction)``: node axes (h, w), output [B,h,w,H,V]. Without a
            ``direction`` parameter only the ``right_down`` cover is drawn.

Capabilities come from the signature: ``D``, ``scale``, ``direction``; ``chunk_size`` (or ``chunk``;
cases then carry a chunk size drawn from {1, 2, 4, 8}, so block boundaries fall inside small graphs,
and the ``chunk_size`` property applies); ``return_states`` or ``output_final_state`` (the kernel
then returns ``(output, C)`` with C the state of every edge [B,E,H,K,V] in ``graph.edges`` order —
the spec's ``final_state`` —, and ``final_state`` applies).

Error budget on a DAG. :func:`~.tolerance.compare` bounds an element at time t by
C_BASE·E(t) + C_MAG·u·√(t+1)·M(t) + ulp, E and M envelopes over s ≤ t: the rounding errors committed
at s persist in the state read at t, and a chunked kernel reassociates sums of t + 1 terms. On a
DAG the node's *ancestor cone* plays the role of {s ≤ t}: h^n is a sum over the writes of its
ancestors and itself only (eq. 7), errors committed upstream reach n through the edge states, and
nothing else does. So for node n we call ``compare`` on the outputs of cone(n) = ancestors of n in
topological order followed by n, ``time_axis`` along the cone, and keep the last entry: E(n) =
max over the cone, M(n) likewise and √(|cone(n)|) terms — on a chain this is exactly the sequence
rule. Edge states get the same treatment over the edges leaving the cone of their source (the edge
itself last). The oracle is the spec in fp64 (:func:`lrnnspec.spec.dag.evaluate_dag`), the baseline
its ``emulate:<contract>`` engine, the magnitude shadow the spec on the absolute values of every
input (pLSTM's gates are linear multipliers, so |gates| keep the mode valid and give Σ|terms|).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lrnnspec.spec.dag import evaluate_dag
from lrnnspec.spec.errors import SpecError
from lrnnspec.spec.graph import DIRECTIONS, Graph
from lrnnspec.strategies import DagCase, dag_case_from_json, dag_cases

from .conventions import DAG_CONVENTIONS
from .kernel import TORCH_DTYPES, Kernel, Result
from .scope import ENVIRONMENT, Scope, refusal
from .sequence import bitwise_difference
from .tolerance import compare
from .verdicts import PropertyFailure

PROPERTIES = ("scope", "forward", "final_state", "gradients", "causality", "boundary", "chunk_size", "determinism",
              "no_mutation", "nan_poison", "contract", "finite", "permutation")
CONVENTION_LAYOUTS = {"native": ("chain", "grid", "dag"), "chain": ("chain",), "grid": ("grid",)}
CHUNK_KEYWORDS = ("chunk_size", "chunk")
STATE_KEYWORDS = ("return_states", "output_final_state")
CHUNKS = (1, 2, 4, 8)
GARBAGE = (2.0, 4.0)   # |garbage| written into the gate entries of missing ports (boundary)
EDGES = "edges"        # the key of the edge states [B,E,H,K,V] among a call's results and cotangents


@dataclass(frozen=True)
class DagCapabilities:
    """What a DAG kernel takes, read from its signature."""

    direct: bool                 # an optional input (pLSTM's D)
    scale: bool
    direction: bool              # grid covers other than right_down
    chunk: str | None            # the keyword carrying the chunk size
    states: str | None           # the keyword asking for the edge states

    @property
    def final_state(self) -> bool:
        return self.states is not None


def infer_convention(kernel: Kernel) -> str:
    """``native`` when the first parameter is not an input (the graph), ``grid`` when the signature
    has ``direction``; anything else is ambiguous (a 1-D and a 2-D form look alike) and raises."""
    params = [p for p in kernel.process.info["parameters"] or []]
    inputs = {i.name for i in kernel.fam.inputs}
    if params and params[0]["name"] not in inputs and params[0]["kind"] != "VAR_KEYWORD":
        return "native"
    if any(p["name"] == "direction" for p in params):
        return "grid"
    raise SpecError("convention", f"cannot tell whether {kernel.target!r} is a 1-D or a 2-D form from its signature; "
                                  f"pass convention 'chain' or 'grid' (or 'native' for fn(graph, q, k, v, S, T, M, ...))")


@dataclass
class DagReference:
    """Flat-node references for one (rounded) case: oracle, baseline, magnitude shadow of the output
    [B,P,H,V] and of the edge states {EDGES: [B,E,H,K,V]}, and the cones (see the module docstring)."""

    output: np.ndarray
    state: dict[str, np.ndarray]
    emul_output: np.ndarray
    emul_state: dict[str, np.ndarray]
    mag_output: np.ndarray
    mag_state: dict[str, np.ndarray]
    node_cones: list[np.ndarray]
    edge_cones: list[np.ndarray]


def node_cones(graph: Graph) -> list[np.ndarray]:
    """Per node n: its ancestors in topological order, then n."""
    rank = {n: r for r, n in enumerate(graph.order)}
    anc: list[set[int]] = [set() for _ in range(graph.num_nodes)]
    for n in graph.order:
        for e in graph.in_edges[n].tolist():
            if e >= 0:
                src = graph.edges[e][0]
                anc[n] |= anc[src] | {src}
    return [np.array(sorted(anc[n], key=rank.__getitem__) + [n], dtype=np.int64) for n in range(graph.num_nodes)]


def edge_cones(graph: Graph, cones: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Per edge e: the edges leaving the cone of its source (topological order), then e."""
    cones = node_cones(graph) if cones is None else cones
    rank = {n: r for r, n in enumerate(graph.order)}
    ordered = sorted(range(graph.num_edges), key=lambda e: (rank[graph.edges[e][0]], graph.edges[e][1]))
    out = []
    for e in range(graph.num_edges):
        inside = set(cones[graph.edges[e][0]].tolist())
        out.append(np.array([f for f in ordered if graph.edges[f][0] in inside and f != e] + [e], dtype=np.int64))
    return out


def _flat_inputs(case: DagCase) -> dict[str, np.ndarray]:
    return {n: case.flat(n) for n in case.arrays}


def dag_reference(case: DagCase, dtype: str, contract: str) -> DagReference:
    """For a case already rounded to ``dtype``: the spec in fp64 (oracle), under ``emulate:<contract>``
    (baseline), and in fp64 on the absolute values of every input (magnitude shadow)."""
    g, x = case.graph, _flat_inputs(case)
    ref = evaluate_dag(case.family, x, graph=g, engine="fp64", **case.options)
    emu = evaluate_dag(case.family, x, graph=g, engine=f"emulate:{contract}", **case.options)
    mag = evaluate_dag(case.family, {n: np.abs(v) for n, v in x.items()}, graph=g, engine="fp64", **case.options)
    cones = node_cones(g)
    return DagReference(ref.output, {EDGES: ref.final_state}, emu.output, {EDGES: emu.final_state}, np.abs(mag.output),
                        {EDGES: np.abs(mag.final_state)}, cones, edge_cones(g, cones))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _cone_ratios(got, ref, emu, mag, dtype, cones, row_axes) -> np.ndarray:
    """r = |got − ref| / budget per element, the budget of item j (axis 1) from compare() over its cone."""
    r = np.zeros(ref.shape)
    for j, cone in enumerate(cones):
        cmp = compare(got[:, cone], ref[:, cone], emu[:, cone], dtype, time_axis=1, row_axes=row_axes,
                      magnitude=mag[:, cone])
        r[:, j] = cmp.r[:, -1]
    return r


def node_name(case: DagCase, n: int) -> str:
    if case.layout == "grid":
        y, x = divmod(int(n), case.shape[1])
        return f"node (y={y}, x={x})"
    return f"node {int(n)}"


def edge_name(case: DagCase, e: int) -> str:
    src, _, dst, _ = case.graph.edges[e]
    return f"edge {int(e)} ({node_name(case, src)} → {node_name(case, dst)})"


def _judge(r: np.ndarray, got: np.ndarray, ref: np.ndarray, what: str, where, calls: int) -> dict:
    if r.size == 0:
        return {"worst_normalized": 0.0}
    idx = np.unravel_index(int(np.argmax(r)), r.shape)
    worst = float(r[idx])
    with np.errstate(invalid="ignore"):
        pct = {f"p{q}": float(np.percentile(r, q)) for q in (50, 90, 99)} | {"max": worst}
    summary = {"worst_normalized": worst, "worst_index": [int(i) for i in idx],
               "worst_abs_error": float(abs(got[idx] - ref[idx])), "percentiles": pct}
    if worst > calls:
        raise PropertyFailure(f"{what} error {summary['worst_abs_error']:.3e} at {where(idx)} is "
                              f"{worst / calls:.3g}× the allowed (got {got[idx]:.6g}, spec {ref[idx]:.6g})", summary)
    return summary


def missing_ports(graph: Graph) -> dict[str, np.ndarray]:
    """Boolean masks of the gate entries the spec never reads, by the gate's port dimensions:
    [P,O] (no out-edge at o), [P,I] (no in-edge at i), [P,O,I] (either)."""
    dead_out, dead_in = graph.out_edges < 0, graph.in_edges < 0
    return {("O",): dead_out, ("I",): dead_in, ("O", "I"): dead_out[:, :, None] | dead_in[:, None, :]}


class DagDomain:
    """The DAG-family side of one :class:`~.kernel.Kernel` (see the module docstring). ``layouts``
    restricts the graphs drawn (default: all the convention supports); ``max_nodes`` caps chain
    lengths and grid areas (grids are at most 6×6, random DAGs 7 nodes)."""

    kind = "dag"
    properties = PROPERTIES

    def __init__(self, kernel: Kernel, convention: str | None, layouts=None, max_nodes: int = 36):
        self.k, self.fam = kernel, kernel.fam
        convention = infer_convention(kernel) if convention in (None, "fla") else convention
        if convention not in DAG_CONVENTIONS:
            raise SpecError("convention", f"DAG kernels use one of {', '.join(DAG_CONVENTIONS)}, got {convention!r}")
        self.convention_name = convention
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise SpecError("max_nodes", f"must be an integer ≥ 1, got {max_nodes!r}")
        supported = CONVENTION_LAYOUTS[convention]
        layouts = supported if layouts is None else ((layouts,) if isinstance(layouts, str) else tuple(layouts))
        bad = [lay for lay in layouts if lay not in supported]
        if not layouts or bad:
            raise SpecError("layouts", f"convention {convention!r} runs on {supported}, got {layouts!r}")
        sig = kernel.signature
        required = [i.name for i in self.fam.inputs if not i.optional]
        missing = [n for n in required if not sig.accepts(n)]
        if missing:
            raise SpecError("fn", f"{kernel.target!r} does not take the input(s) {missing}; a DAG kernel takes "
                                  f"{', '.join(required)} (and optionally {', '.join(self._optional())}, scale) "
                                  f"by the spec's names")
        self.caps = DagCapabilities(
            direct=all(sig.names(n) for n in self._optional()), scale=sig.names("scale"),
            direction=convention == "native" or sig.names("direction"),
            chunk=next((n for n in CHUNK_KEYWORDS if n in sig.parameters), None),
            states=next((n for n in STATE_KEYWORDS if n in sig.parameters), None))
        self.layouts, self.max_nodes = layouts, max_nodes
        self.directions = DIRECTIONS if self.caps.direction else ("right_down",)
        self.chain_directions = ("forward", "reverse") if convention == "native" else ("forward",)
        self.extra_properties = {"boundary": prop_boundary}
        self.scope, self.negotiated, self.dtypes_probed = Scope(), False, set()
        self.long_len = None

    def _optional(self) -> list[str]:
        return [i.name for i in self.fam.inputs if i.optional]

    def coverage(self) -> dict:
        """What a certificate of this kernel covers."""
        return {"convention": self.convention_name, "layouts": list(self.layouts),
                "grid_directions": list(self.directions) if "grid" in self.layouts else [],
                "chain_directions": list(self.chain_directions) if "chain" in self.layouts else [],
                "max_nodes": self.max_nodes, "chunks": list(CHUNKS) if self.caps.chunk else [],
                "direct_gate": self.caps.direct, "scale": self.caps.scale,
                "edge_states": self.caps.states is not None}

    # --- what is drawn ---------------------------------------------------------------------------
    def phases(self, prop: str, examples: int) -> list:
        return [(self.strategy(prop), examples)]

    def strategy(self, prop: str = "forward", **overrides):
        kw = dict(layouts=self.layouts, max_nodes=self.max_nodes, directions=self.directions,
                  chain_directions=self.chain_directions, direct=None if self.caps.direct else False,
                  vary_scale=self.caps.scale, chunks=CHUNKS if self.caps.chunk else None,
                  max_batch=3 if prop == "permutation" else 2, max_heads=3 if prop == "permutation" else 2)
        kw.update(overrides)
        base = dag_cases(self.fam.name, **kw)
        if prop == "causality":
            base = base.filter(lambda c: c.num_nodes >= 2)
        if prop == "permutation":
            base = base.filter(lambda c: c.dims["B"] > 1 or c.dims["H"] > 1)
        return base

    def applicability(self, prop: str) -> str | None:
        return None

    def negotiate(self, required=()) -> Scope:
        """The scope from the signature (edge states, chunk size, the optional inputs, scale) and one
        probe: whether the machine can run the kernel and whether its output requires grad."""
        scope = Scope(required=list(required))
        caps = self.caps
        absent = {"final_state": (caps.states is None, f"no {' / '.join(STATE_KEYWORDS)} parameter"),
                  "chunk_size": (caps.chunk is None, f"no {' / '.join(CHUNK_KEYWORDS)} parameter"),
                  "scale": (not caps.scale, "not in the kernel's signature"),
                  **{n: (not caps.direct, "not in the kernel's signature") for n in self._optional()}}
        scope.unsupported = {f: why for f, (missing, why) in absent.items() if missing}
        try:
            result = self.call(self.probe_case(), "fp32", probe_grad=True, want_state=False)
        except PropertyFailure as failure:
            message = refusal(failure, self.k.device)
            if message is not None and ENVIRONMENT.search(message):
                scope.could_not_run = message
        else:
            if not result.requires_grad:
                scope.unsupported["backward"] = "the output does not require grad for inputs that do"
        scope.supported = [f for f in ("final_state", "chunk_size", "scale", *self._optional(), "backward")
                           if f not in scope.unsupported]
        self.scope, self.negotiated = scope, True
        self.k.process.close()           # the properties start in a fresh process (see SequenceDomain)
        return scope

    def probe_cases(self) -> tuple[DagCase]:
        return (self.probe_case(),)

    def probe_case(self) -> DagCase:
        layout = self.layouts[0]
        regimes = {i.name: ("normal" if i.role in ("query", "key", "value") else "tanh"
                            if i.role == "transition_gate" else "sigmoid") for i in self.fam.inputs if not i.optional}
        return DagCase(self.fam.name, layout, (2, 2) if layout == "grid" else (2,),
                       {"grid": self.directions[0], "chain": "forward"}.get(layout),
                       {"B": 1, "H": 1, "K": 1, "V": 1}, regimes, {"mode": None}, 0)

    # --- calling the kernel ------------------------------------------------------------------------
    def case_from_json(self, d: dict) -> DagCase:
        return dag_case_from_json(d)

    def other_values(self, case: DagCase) -> DagCase | None:
        """The same graph and shapes with values from another seed (None where another seed would
        draw another random DAG)."""
        if case.layout == "dag":
            return None
        other = DagCase(case.family, case.layout, case.shape, case.direction, dict(case.dims), dict(case.regimes),
                        dict(case.options), (case.seed + 1) % 2**32, case.chunk_size)
        return case.with_arrays(other.arrays)

    def inputs(self, case: DagCase, dtype: str) -> dict:
        return case.torch(TORCH_DTYPES[dtype], flat=True)

    def call(self, case: DagCase, dtype: str, *, inputs: dict | None = None, want_state=None, chunk_size="case",
             poison=False, share_inputs=False, grad=None, probe_grad=False, initial_state=None) -> Result:
        """Run the kernel on ``inputs`` (flat node axis [B,P,...], default: the case's in ``dtype``);
        returns output [B,P,H,V] and, asked for (default: when the kernel returns them), {EDGES: edge
        states [B,E,H,K,V]}."""
        g = case.graph
        x = inputs if inputs is not None else self.inputs(case, dtype)
        layout = list(case.shape) if self.convention_name == "grid" else [g.num_nodes]
        kwargs = {}
        if case.options.get("scale") is not None:
            kwargs["scale"] = case.options["scale"]
        if self.convention_name == "grid" and self.caps.direction:
            kwargs["direction"] = case.direction
        chunk = case.chunk_size if chunk_size == "case" else chunk_size
        if chunk is not None and self.caps.chunk:
            kwargs[self.caps.chunk] = chunk
        want = (self.caps.states is not None) if want_state is None else bool(want_state and self.caps.states)
        graph = None
        if self.convention_name == "native":
            graph = {"num_nodes": g.num_nodes, "edges": [list(e) for e in g.edges], "in_ports": g.in_ports,
                     "out_ports": g.out_ports, "layout": list(g.layout), "kind": g.kind, "direction": g.direction}
        request = {"op": "call", "device": self.k.device, "adapter": "dag", "inputs": x, "initial_state": None,
                   "call": {"convention": self.convention_name, "graph": graph, "layout": layout,
                            "heads_values": [case.dims["H"], case.dims["V"]], "want_state": want,
                            "states_keyword": self.caps.states, "kwargs": kwargs},
                   "poison": poison, "grad": grad, "probe_grad": probe_grad,
                   "max_result_bytes": self.k.max_result_bytes(x.values())}
        result = self.k.request(request, share_inputs=share_inputs)
        B, P, H, K, V = case.dims["B"], g.num_nodes, case.dims["H"], case.dims["K"], case.dims["V"]
        if tuple(result.output.shape) != (B, P, H, V):
            raise PropertyFailure(f"output has shape {tuple(result.output.shape)}, the spec's is {(B, P, H, V)}")
        if want:
            C = (result.state or {}).get(EDGES)
            want_c = (B, g.num_edges, H, K, V)
            if C is None or tuple(C.shape) != want_c:
                raise PropertyFailure(f"edge states have shape {None if C is None else tuple(C.shape)}, the spec's is "
                                      f"{want_c} [B,E,H,K,V]")
        return result

    # --- judging results -----------------------------------------------------------------------------
    def reference(self, case: DagCase, dtype: str, contract: str) -> DagReference:
        return dag_reference(case, dtype, contract)

    def check_output(self, o: torch.Tensor, ref: DagReference, case: DagCase, dtype: str, what: str = "output",
                     calls: int = 1) -> dict:
        """The output [B,P,H,V] against the spec within the cone budget."""
        got = _np(o)
        if got.shape != ref.output.shape:
            raise PropertyFailure(f"{what} has shape {got.shape}, the spec's is {ref.output.shape}")
        r = _cone_ratios(got, ref.output, ref.emul_output, ref.mag_output, dtype, ref.node_cones, (-1,))
        return _judge(r, got, ref.output, what,
                      lambda i: f"batch {i[0]}, {node_name(case, i[1])}, head {i[2]}, value {i[3]}", calls)

    def check_state(self, state: dict | None, ref: DagReference, case: DagCase, dtype: str, calls: int = 1) -> dict:
        got = _np((state or {})[EDGES])
        if got.shape != ref.state[EDGES].shape:
            raise PropertyFailure(f"edge states have shape {got.shape}, the spec's is {ref.state[EDGES].shape} "
                                  f"[B,E,H,K,V]")
        r = _cone_ratios(got, ref.state[EDGES], ref.emul_state[EDGES], ref.mag_state[EDGES], dtype, ref.edge_cones,
                         (-2, -1))
        return _judge(r, got, ref.state[EDGES], "edge state",
                      lambda i: f"batch {i[0]}, {edge_name(case, i[1])}, head {i[2]}, [k={i[3]}, v={i[4]}]", calls)

    def state_dtypes(self, dtype: str) -> set:
        want = TORCH_DTYPES[dtype]
        return {want, torch.float32} if dtype in ("fp16", "bf16") else {want}

    def chunk_sizes(self) -> tuple[int, ...]:
        return CHUNKS

    def finite_reference(self, case: DagCase) -> np.ndarray:
        return evaluate_dag(case.family, _flat_inputs(case), graph=case.graph, **case.options).output

    def locate(self, case: DagCase):
        def where(i):
            tail = f", {[int(j) for j in i[3:]]}" if len(i) > 3 else ""
            return f"batch {i[0]}, {node_name(case, i[1])}, head {i[2]}{tail}"
        return where

    # --- perturbations ------------------------------------------------------------------------------
    def future_changed(self, case: DagCase, x: dict) -> tuple[dict, np.ndarray]:
        """The inputs of every node that is neither n nor an ancestor of n changed, keeping every mode
        valid: vectors ← −2x + 1, gates × 1/2 (n drawn from the case's seed). Returns (inputs, the
        cone of n: the nodes whose results must not change)."""
        g = case.graph
        cones = node_cones(g)
        candidates = [n for n in range(g.num_nodes) if len(cones[n]) < g.num_nodes]
        n = candidates[int(np.random.default_rng([case.seed % 2**32, 11]).integers(len(candidates)))]
        keep = cones[n]
        others = torch.tensor(sorted(set(range(g.num_nodes)) - set(keep.tolist())))
        moved = {}
        for name, v in x.items():
            v = v.clone()
            vector = self.fam.input(name).role in ("query", "key", "value")
            v[:, others] = -2.0 * v[:, others] + 1.0 if vector else 0.5 * v[:, others]
            moved[name] = v
        return moved, keep

    def check_past(self, case: DagCase, before: Result, after: Result, keep: np.ndarray, moved: dict,
                   dtype: str) -> None:
        g = case.graph
        n = int(keep[-1])
        others = sorted(set(range(g.num_nodes)) - set(keep.tolist()))
        diff = _first_difference(before.output, after.output, keep.tolist())
        if diff is not None:
            raise PropertyFailure(f"the output at {node_name(case, diff[0])} changed (by up to {diff[1]:.3e}) when only "
                                  f"the inputs of {len(others)} node(s) that are not ancestors of {node_name(case, n)} "
                                  f"changed (e.g. {node_name(case, others[0])})",
                                  {"node": n, "changed_node": diff[0], "change": diff[1]})
        if before.state is not None and after.state is not None:
            inside = set(keep.tolist())
            upstream = [e for e in range(g.num_edges) if g.edges[e][0] in inside]
            diff = _first_difference(before.state[EDGES], after.state[EDGES], upstream)
            if diff is not None:
                raise PropertyFailure(f"the state of {edge_name(case, diff[0])} changed (by up to {diff[1]:.3e}) when "
                                      f"only inputs of nodes downstream of or beside its source changed",
                                      {"node": n, "changed_edge": diff[0], "change": diff[1]})

    def permuted(self, case: DagCase) -> tuple[DagCase, DagCase, dict]:
        rng = np.random.default_rng(case.seed % 2**32 + 1)

        def draw(n):
            p = rng.permutation(n)
            return np.roll(p, 1) if n > 1 and np.array_equal(p, np.arange(n)) else p
        perms = {"B": draw(case.dims["B"]), "H": draw(case.dims["H"])}
        return case, case.with_arrays({n: _perm(v, perms) for n, v in _flat_inputs(case).items()}), perms

    def unpermute(self, o, state, perms):
        return _perm(o, perms, inverse=True), None if state is None else {EDGES: _perm(state[EDGES], perms, inverse=True)}

    # --- gradients -----------------------------------------------------------------------------------
    def cotangent_shapes(self, case: DagCase, ref: DagReference) -> dict[str, tuple]:
        shapes = {"output": ref.output.shape}
        if self.caps.states is not None:
            shapes[EDGES] = ref.state[EDGES].shape
        return shapes

    def reference_vjp(self, case: DagCase, cotangents: dict, values: dict | None = None) -> dict[str, np.ndarray]:
        """Gradients (flat node axis) of ⟨w_o, o⟩ (+ ⟨w_C, C⟩) w.r.t. every input by float64 autograd
        through the node-by-node recurrence, eqs. 5–6 (the family's registered ``recurrent`` form)."""
        from lrnnspec.impls.registry import implementations

        (recurrent,) = (i.fn for i in implementations(case.family, "recurrent", kinds=("dag",)))
        g = case.graph
        src = values if values is not None else _flat_inputs(case)
        x = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in src.items()}
        scale = case.options.get("scale")
        if EDGES in cotangents and g.num_edges:
            o, C = recurrent(g, **x, scale=scale, return_states=True)
            loss = (o * cotangents["output"]).sum() + (C * cotangents[EDGES]).sum()
        else:
            loss = (recurrent(g, **x, scale=scale) * cotangents["output"]).sum()
        if not loss.requires_grad:  # e.g. one node without D: the output is identically zero
            return {n: np.zeros(v.shape) for n, v in src.items()}
        grads = torch.autograd.grad(loss, list(x.values()), allow_unused=True)
        return {n: (np.zeros(v.shape) if gr is None else gr.numpy()) for (n, v), gr in zip(x.items(), grads)}

    def gradient_values(self, case: DagCase) -> dict[str, np.ndarray]:
        return _flat_inputs(case)

    def gradient_length(self, case: DagCase, ref: DagReference) -> tuple[int, float, float]:
        return case.graph.num_nodes, 0.0, 1.0        # no log-space gates, no triangular solve

    def gradient_formats(self, case: DagCase, dtype: str) -> dict[str, str]:
        return dict.fromkeys(case.arrays, dtype)


def _perm(a, perms: dict, inverse: bool = False):
    """Batch (axis 0) and heads (axis 2) of a flat-node array or tensor, permuted."""
    b, h = (np.argsort(perms["B"]), np.argsort(perms["H"])) if inverse else (perms["B"], perms["H"])
    if isinstance(a, torch.Tensor):
        return a.index_select(0, torch.as_tensor(b)).index_select(2, torch.as_tensor(h))
    return np.take(np.take(a, b, axis=0), h, axis=2)


def _first_difference(a: torch.Tensor, b: torch.Tensor, rows) -> tuple[int, float] | None:
    """The first item (axis 1) among ``rows`` where a and b differ bitwise (NaN-aware), and the change."""
    for j in rows:
        d = bitwise_difference(a[:, j], b[:, j])
        if d.any():
            return int(j), float(d.max())
    return None


def prop_boundary(k: Kernel, case: DagCase, dtype: str) -> dict:
    """Gate entries of ports a node does not have (chain ends, grid borders, a DAG's sources and
    sinks) are never read: overwriting them with garbage (±U(2, 4), outside every regime's range)
    leaves the output and the edge states bitwise unchanged.

    Finite garbage, not NaN: a correct kernel may multiply a missing port's gate by an exactly-zero
    state (the zero boundary state, the zero padding of a blocked form), which is exact for any
    finite value but NaN for NaN (0·NaN); "never read" is the semantic claim — the value does not
    influence the result — and ±U(2, 4) keeps every product of garbage and path weights finite in
    fp16. On failure, each (gate, port) is tried alone to name the one that leaks."""
    dom, g, tdt = k.domain, case.graph, TORCH_DTYPES[dtype]
    ports = missing_ports(g)
    x = dom.inputs(case, dtype)
    gates = {i.name: ports[i.dims[3:]] for i in dom.fam.inputs if i.dims[3:] in ports and i.name in x}
    rng = np.random.default_rng([case.seed % 2**32, 13])
    garbage = {n: torch.tensor(rng.choice([-1.0, 1.0], x[n].shape) * rng.uniform(*GARBAGE, x[n].shape), dtype=tdt)
               for n in gates}
    base = dom.call(case, dtype, inputs=x)

    def poisoned(select: dict[str, np.ndarray]):
        out = dict(x)
        for name, mask in select.items():
            m = torch.as_tensor(mask)[None, :, None]          # [1,P,1,ports...]
            out[name] = torch.where(m, garbage[name], x[name])
        return out

    def changed(select) -> str | None:
        res = dom.call(case, dtype, inputs=poisoned(select))
        d = _first_difference(base.output, res.output, range(g.num_nodes))
        if d is not None:
            return f"the output at {node_name(case, d[0])} changed by up to {d[1]:.3e}"
        if base.state is not None:
            d = _first_difference(base.state[EDGES], res.state[EDGES], range(g.num_edges))
            if d is not None:
                return f"the state of {edge_name(case, d[0])} changed by up to {d[1]:.3e}"
        return None

    if not any(m.any() for m in gates.values()):
        return {}
    first = changed(gates)
    if first is None:
        return {}
    culprits = []
    for name, mask in gates.items():
        for port in np.ndindex(*mask.shape[1:]):
            nodes = np.flatnonzero(mask[(slice(None), *port)])
            if nodes.size == 0:
                continue
            only = np.zeros_like(mask)
            only[(slice(None), *port)] = mask[(slice(None), *port)]
            hit = changed({name: only})
            if hit is not None:
                axes = dom.fam.input(name).dims[3:]
                where = ", ".join(f"{'o' if a == 'O' else 'i'}={p}" for a, p in zip(axes, port))
                culprits.append(f"{name}[{where}] of the {len(nodes)} node(s) without an edge at that port "
                                f"(e.g. {node_name(case, nodes[0])}): {hit}")
    detail = "; ".join(culprits) if culprits else f"(only jointly) {first}"
    raise PropertyFailure(f"the kernel reads gate entries of ports that do not exist (the spec never reads them; set "
                          f"to garbage): {detail}", {"culprits": culprits})
