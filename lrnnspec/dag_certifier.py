"""Certifying implementations of DAG families (pLSTM, arXiv 2506.11997) against the spec.

The sequence certifier (:mod:`lrnnspec.certifier`) drives kernels along a time axis; a DAG family
has inputs on nodes and states on edges of a :class:`~lrnnspec.spec.graph.Graph`. This module
is its counterpart: the same verdicts (:class:`~lrnnspec.certifier.Verdict`), failures
(:class:`~lrnnspec.certifier.PropertyFailure`), Hypothesis driving and shrinking
(:func:`run_dag_property`, cases from :func:`lrnnspec.dag_strategies.dag_cases`) and the same error
budget (:func:`lrnnspec.tolerance.compare`), with the time axis replaced by the graph's order.

Calling conventions (:data:`DAG_CONVENTIONS`; inputs keep the spec's names, ``D`` and ``scale``
optional, ``D`` omitted when a case has no direct gate):

``native``  ``fn(graph, q, k, v, S, T, M, D=None, scale=None)`` with ONE flat node axis
            (q [B,P,H,K] ..., P = graph.num_nodes in node-id order), output [B,P,H,V] — like
            :func:`lrnnspec.impls.plstm.recurrent` and ``parallel_dag``. Certified on chains
            (both directions), grids (all four covers) and small random DAGs.
``chain``   ``fn(q, k, v, S, T, M, D=None, scale=None[, chunk])`` on ``chain(n)``: node axis (n,),
            O = I = 1 (S [B,n,H,1], T [B,n,H,1,1], M [B,n,H,1]) — ``parallel_1d``, ``chunked_1d``.
``grid``    ``fn(q, k, v, S, T, M, D=None, scale=None[, direction][, chunk])`` on
            ``grid(h, w, direction)``: node axes (h, w), O = I = 2 (port 0 horizontal, 1 vertical),
            output [B,h,w,H,V] — ``parallel_2d``, ``chunked_2d``. Without a ``direction`` parameter
            only the ``right_down`` cover is drawn.

Capabilities come from the signature: ``D``, ``scale``, ``direction``; ``chunk`` or ``chunk_size``
(cases then carry a chunk drawn from {1, 2, 4, 8}, so block boundaries fall inside small graphs,
and the ``chunk`` property applies); ``return_states`` or ``output_final_state`` (the kernel then
returns ``(output, C)`` with C the state of every edge [B,E,H,K,V] in ``graph.edges`` order —
the spec's ``final_state`` —, and ``final_state`` applies).

Error budget on a DAG. :func:`~lrnnspec.tolerance.compare` bounds an element at time t by
C_BASE·E(t) + C_MAG·u·√(t+1)·M(t) + ulp, E and M envelopes over s ≤ t: the rounding errors committed
at s persist in the state read at t, and a chunked kernel reassociates sums of t + 1 terms. On a
DAG the node's *ancestor cone* plays the role of {s ≤ t}: h^n is a sum over the writes of its
ancestors and itself only (eq. 7), errors committed upstream reach n through the edge states, and
nothing else does. So for node n we call ``compare`` on the outputs of cone(n) = ancestors of n in
topological order followed by n, ``time_axis`` along the cone, and keep the last entry: E(n) =
max over the cone, M(n) likewise and √(|cone(n)|) terms — on a chain this is exactly the sequence
rule. The alternatives are worse: the topological depth (anti-diagonal index on a grid) counts
y + x + 1 nodes where (y+1)(x+1) ancestors are summed, and mixes in non-ancestors of equal depth;
no envelope with length = P grants every node the worst node's error. Edge states get the same
treatment over the edges leaving the cone of their source (the edge itself last). The oracle is
the spec in fp64 (:func:`lrnnspec.spec.dag.evaluate_dag`), the baseline its ``emulate:<contract>``
engine under :data:`lrnnspec.tolerance.CONTRACTS` (or the kernel's declared contract), the
magnitude shadow the spec on the absolute values of every input (pLSTM's gates are linear
multipliers, so |S|, |T|, |M|, |D| keep the mode valid and give Σ|terms|).

Properties (:data:`DAG_PROPERTIES`): ``forward``, ``final_state``, ``gradients`` (vs float64
autograd of the node-by-node recurrence), ``causality`` (inputs of non-ancestors of n leave h^n
bitwise unchanged), ``boundary`` (gate entries of ports a node does not have are never read),
``chunk``, ``determinism``, ``no_mutation``, ``nan_poison``, ``contract``, ``finite``,
``permutation`` (batch and heads).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException

from lrnnspec.certifier import (
    TORCH_DTYPES, PropertyFailure, Verdict, _deadline, check_gradients, gradient_sensitivity, kernel_vjp,
    nan_poisoned_allocations,
)
from lrnnspec.dag_strategies import DagCase, dag_cases
from lrnnspec.spec.dag import evaluate_dag
from lrnnspec.spec.errors import SpecError
from lrnnspec.spec.family import get_family
from lrnnspec.spec.graph import DIRECTIONS, Graph
from lrnnspec.tolerance import C_GRAD, CONTRACTS, UNIT_ROUNDOFF, compare

DAG_CONVENTIONS = ("native", "chain", "grid")
DAG_PROPERTIES = ("forward", "final_state", "gradients", "causality", "boundary", "chunk", "determinism",
                  "no_mutation", "nan_poison", "contract", "finite", "permutation")
CONVENTION_LAYOUTS = {"native": ("chain", "grid", "dag"), "chain": ("chain",), "grid": ("grid",)}
INPUTS = ("q", "k", "v", "S", "T", "M")
CHUNK_KEYWORDS = ("chunk", "chunk_size")
STATE_KEYWORDS = ("return_states", "output_final_state")
CHUNKS = (1, 2, 4, 8)
GARBAGE = (2.0, 4.0)   # |garbage| written into the gate entries of missing ports (boundary)


# --- the kernel under test -----------------------------------------------------------------------
@dataclass(frozen=True)
class DagCapabilities:
    """What a DAG kernel accepts, read from its signature."""

    parameters: frozenset[str]
    var_keyword: bool
    direct: bool                 # takes D
    scale: bool
    direction: bool              # grid covers other than right_down
    chunk: str | None            # the keyword carrying the chunk size
    states: str | None           # the keyword asking for the edge states

    def accepts(self, name: str) -> bool:
        return name in self.parameters or self.var_keyword


def dag_capabilities(fn: Callable, convention: str) -> DagCapabilities:
    """Read the capabilities of ``fn`` under ``convention`` from its signature (see the module
    docstring). A function without a signature is assumed to take D, scale and direction."""
    _check_convention(convention)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return DagCapabilities(frozenset(), True, True, True, True, None, None)
    params = sig.parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = frozenset(params)
    if convention == "native":
        positional = [p for p in params.values() if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                               inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        if not positional or positional[0].name in INPUTS:
            raise SpecError("convention", f"'native' DAG kernels take the graph first, fn(graph, q, k, v, S, T, M, "
                                          f"D=None, scale=None); {getattr(fn, '__name__', fn)!r} has parameters "
                                          f"({', '.join(params)}) — use convention 'chain' or 'grid' for "
                                          f"shape-based 1-D / 2-D forms")
    missing = [n for n in INPUTS if n not in names and not var_kw]
    if missing:
        raise SpecError("fn", f"{getattr(fn, '__name__', fn)!r} does not take the input(s) {missing}; a DAG kernel "
                              f"takes q, k, v, S, T, M (and optionally D, scale) by the spec's names")
    has = lambda n: n in names  # noqa: E731
    chunk = next((n for n in CHUNK_KEYWORDS if has(n)), None)
    states = next((n for n in STATE_KEYWORDS if has(n)), None)
    return DagCapabilities(names, var_kw, has("D") or var_kw, has("scale") or var_kw,
                           convention == "native" or has("direction"), chunk, states)


def _check_convention(convention) -> None:
    if convention not in DAG_CONVENTIONS:
        raise SpecError("convention", f"DAG kernels use one of {', '.join(DAG_CONVENTIONS)}, got {convention!r}")


def infer_dag_convention(fn: Callable) -> str:
    """``native`` when the first parameter is not an input (the graph), ``grid`` when the signature
    has ``direction``; anything else is ambiguous (a 1-D and a 2-D form look alike) and raises."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if params and params[0].name not in INPUTS and params[0].kind is not inspect.Parameter.VAR_KEYWORD:
        return "native"
    if any(p.name == "direction" for p in params):
        return "grid"
    raise SpecError("convention", f"cannot tell whether {getattr(fn, '__name__', fn)!r} is a 1-D or a 2-D form "
                                  f"from its signature; pass convention 'chain' or 'grid' (or 'native' for "
                                  f"fn(graph, q, k, v, S, T, M, ...))")


class DagKernel:
    """The function under test, its DAG calling convention, capabilities and precision contracts.

    ``layouts`` restricts the graphs drawn (default: all the convention supports); ``max_nodes``
    caps chain lengths and grid areas (grids are at most 6×6, random DAGs 7 nodes)."""

    def __init__(self, fn: Callable, family: str = "plstm", convention: str | None = None, device: str = "cpu",
                 timeout: float = 60.0, contracts: dict[str, str] | None = None, layouts=None,
                 max_nodes: int = 36):
        fam = get_family(family)
        if fam.kind != "dag":
            raise SpecError("family", f"{fam.name!r} is a {fam.kind} family; DagKernel certifies DAG families "
                                      f"(use lrnnspec.certifier.Kernel)")
        if not callable(fn):
            raise SpecError("fn", f"must be callable, got {type(fn).__name__}")
        convention = infer_dag_convention(fn) if convention is None else convention
        _check_convention(convention)
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise SpecError("max_nodes", f"must be an integer ≥ 1, got {max_nodes!r}")
        supported = CONVENTION_LAYOUTS[convention]
        if layouts is None:
            layouts = supported
        layouts = (layouts,) if isinstance(layouts, str) else tuple(layouts)
        bad = [lay for lay in layouts if lay not in supported]
        if not layouts or bad:
            raise SpecError("layouts", f"convention {convention!r} runs on {supported}, got {layouts!r}")
        for d, contract in (contracts or {}).items():
            if d not in TORCH_DTYPES:
                raise SpecError("contracts", f"keys must be dtypes ({', '.join(TORCH_DTYPES)}), got {d!r}")
        self.fn, self.family, self.convention, self.device, self.timeout = fn, fam.name, convention, device, timeout
        self.fam = fam
        self.caps = dag_capabilities(fn, convention)
        self.layouts, self.max_nodes = layouts, max_nodes
        self.directions = DIRECTIONS if self.caps.direction else ("right_down",)
        self.chain_directions = ("forward", "reverse") if convention == "native" else ("forward",)
        self.contracts = {**CONTRACTS, **(contracts or {})}

    def coverage(self) -> dict:
        """What a certificate of this kernel covers (record it in the Certificate)."""
        return {"convention": self.convention, "layouts": list(self.layouts),
                "grid_directions": list(self.directions) if "grid" in self.layouts else [],
                "chain_directions": list(self.chain_directions) if "chain" in self.layouts else [],
                "max_nodes": self.max_nodes, "chunks": list(CHUNKS) if self.caps.chunk else [],
                "direct_gate": self.caps.direct, "scale": self.caps.scale,
                "edge_states": self.caps.states is not None}

    def strategy(self, prop: str = "forward", **overrides):
        """The cases drawn for ``prop`` (see :func:`lrnnspec.dag_strategies.dag_cases`)."""
        kw = dict(layouts=self.layouts, max_nodes=self.max_nodes, directions=self.directions,
                  chain_directions=self.chain_directions, direct=None if self.caps.direct else False,
                  vary_scale=self.caps.scale, chunks=CHUNKS if self.caps.chunk else None,
                  max_batch=3 if prop == "permutation" else 2, max_heads=3 if prop == "permutation" else 2)
        kw.update(overrides)
        base = dag_cases(self.family, **kw)
        if prop == "causality":
            base = base.filter(lambda c: c.num_nodes >= 2)
        if prop == "permutation":
            base = base.filter(lambda c: c.dims["B"] > 1 or c.dims["H"] > 1)
        return base

    def reference(self, case: DagCase, dtype: str) -> "DagReference":
        return dag_reference(case, dtype, self.contracts[dtype])

    def call(self, case: DagCase, dtype: str, *, inputs: dict | None = None, want_states: bool = False,
             chunk: Any = "case"):
        """Run the kernel on ``inputs`` (flat node axis [B,P,...], default: the case's in ``dtype``);
        returns (output [B,P,H,V], edge states [B,E,H,K,V] or None). Exceptions, hangs past
        ``timeout``, non-tensors and wrong shapes become a PropertyFailure."""
        g = case.graph
        x = inputs if inputs is not None else case.torch(TORCH_DTYPES[dtype], self.device, flat=True)
        B, P = x["q"].shape[:2]
        layout = case.shape if self.convention == "grid" else (P,)
        kw = {n: t.reshape(B, *layout, *t.shape[2:]) for n, t in x.items()}
        if "D" in kw and not self.caps.direct:
            raise PropertyFailure("the case has a direct gate D but the kernel takes none (harness error)")
        if case.options.get("scale") is not None:
            kw["scale"] = case.options["scale"]
        if self.convention == "grid" and self.caps.direction:
            kw["direction"] = case.direction
        chunk = case.chunk if chunk == "case" else chunk
        if chunk is not None and self.caps.chunk:
            kw[self.caps.chunk] = chunk
        if want_states:
            kw[self.caps.states] = True
        try:
            with _deadline(self.timeout):
                result = self.fn(g, **kw) if self.convention == "native" else self.fn(**kw)
        except PropertyFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - any kernel error is a finding
            raise PropertyFailure(f"the kernel raised {type(exc).__name__}: {exc}") from None
        states = None
        if want_states:
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise PropertyFailure(f"asked for its edge states ({self.caps.states}=True) the kernel returned "
                                      f"{type(result).__name__}, not (output, states)")
            result, states = result
            if isinstance(states, dict) and "C" in states:
                states = states["C"]
            if not isinstance(states, torch.Tensor):
                raise PropertyFailure(f"the kernel returned {type(states).__name__} as its edge states, not a tensor")
        elif isinstance(result, (tuple, list)) and result:
            result = result[0]
        if not isinstance(result, torch.Tensor):
            raise PropertyFailure(f"the kernel returned {type(result).__name__} as its output, not a tensor")
        H, V = x["v"].shape[2:]
        want = (B, *layout, H, V)
        if tuple(result.shape) != want:
            raise PropertyFailure(f"output has shape {tuple(result.shape)}, the spec's is {want} "
                                  f"({self.convention} convention)")
        if states is not None:
            want_c = (B, g.num_edges, H, x["q"].shape[-1], V)
            if tuple(states.shape) != want_c:
                raise PropertyFailure(f"edge states have shape {tuple(states.shape)}, the spec's is {want_c} "
                                      f"[B,E,H,K,V]")
        return result.reshape(B, P, H, V), states


# --- references ---------------------------------------------------------------------------------------
@dataclass
class DagReference:
    """Flat-node references for one (rounded) case: oracle, baseline, magnitude shadow of the output
    [B,P,H,V] and of the edge states [B,E,H,K,V], and the cones (see the module docstring)."""

    output: np.ndarray
    state: np.ndarray
    emul_output: np.ndarray
    emul_state: np.ndarray
    mag_output: np.ndarray
    mag_state: np.ndarray
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


def dag_reference(case: DagCase, dtype: str, contract: str | None = None) -> DagReference:
    """For a case already rounded to ``dtype``: the spec in fp64 (oracle), under ``emulate:<contract>``
    (baseline; default the dtype's :data:`~lrnnspec.tolerance.CONTRACTS` entry), and in fp64 on the
    absolute values of every input (magnitude shadow)."""
    g, x = case.graph, _flat_inputs(case)
    ref = evaluate_dag(case.family, x, graph=g, engine="fp64", **case.options)
    emu = evaluate_dag(case.family, x, graph=g, engine=f"emulate:{contract or CONTRACTS[dtype]}", **case.options)
    mag = evaluate_dag(case.family, {n: np.abs(v) for n, v in x.items()}, graph=g, engine="fp64", **case.options)
    cones = node_cones(g)
    return DagReference(ref.output, ref.final_state, emu.output, emu.final_state, np.abs(mag.output),
                        np.abs(mag.final_state), cones, edge_cones(g, cones))


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


def _node_name(case: DagCase, n: int) -> str:
    if case.layout == "grid":
        y, x = divmod(int(n), case.shape[1])
        return f"node (y={y}, x={x})"
    return f"node {int(n)}"


def _edge_name(case: DagCase, e: int) -> str:
    src, _, dst, _ = case.graph.edges[e]
    return f"edge {int(e)} ({_node_name(case, src)} → {_node_name(case, dst)})"


def _judge(r: np.ndarray, got: np.ndarray, ref: np.ndarray, what: str, where: str, calls: int) -> dict:
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


def check_output(o: torch.Tensor, ref: DagReference, case: DagCase, dtype: str, what: str = "output",
                 calls: int = 1) -> dict:
    """The output [B,P,H,V] against the spec within the cone budget (``calls``: how many kernel runs
    composed it; each may spend the whole budget)."""
    got = _np(o)
    if got.shape != ref.output.shape:
        raise PropertyFailure(f"{what} has shape {got.shape}, the spec's is {ref.output.shape}")
    r = _cone_ratios(got, ref.output, ref.emul_output, ref.mag_output, dtype, ref.node_cones, (-1,))
    return _judge(r, got, ref.output, what,
                  lambda i: f"batch {i[0]}, {_node_name(case, i[1])}, head {i[2]}, value {i[3]}", calls)


def check_states(C: torch.Tensor, ref: DagReference, case: DagCase, dtype: str, what: str = "edge state") -> dict:
    got = _np(C)
    if got.shape != ref.state.shape:
        raise PropertyFailure(f"{what}s have shape {got.shape}, the spec's is {ref.state.shape} [B,E,H,K,V]")
    r = _cone_ratios(got, ref.state, ref.emul_state, ref.mag_state, dtype, ref.edge_cones, (-2, -1))
    return _judge(r, got, ref.state, what,
                  lambda i: f"batch {i[0]}, {_edge_name(case, i[1])}, head {i[2]}, [k={i[3]}, v={i[4]}]", 1)


# --- properties ---------------------------------------------------------------------------------------
def prop_forward(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """The output equals the spec's within the cone budget."""
    o, _ = k.call(case, dtype)
    return check_output(o, k.reference(case, dtype), case, dtype)


def prop_final_state(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Every edge's state [B,E,H,K,V] equals the spec's ``final_state`` within the cone budget."""
    _, C = k.call(case, dtype, want_states=True)
    return check_states(C, k.reference(case, dtype), case, dtype)


def dag_reference_vjp(case: DagCase, cot_output: torch.Tensor, cot_states: torch.Tensor | None = None,
                      arrays: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Gradients (flat node axis) of ⟨w_o, o⟩ (+ ⟨w_C, C⟩) w.r.t. every input by float64 autograd
    through the node-by-node recurrence, eqs. 5–6 (:func:`lrnnspec.impls.plstm.recurrent`)."""
    from lrnnspec.impls.plstm import recurrent

    g = case.graph
    src = arrays if arrays is not None else _flat_inputs(case)
    x = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in src.items()}
    scale = case.options.get("scale")
    if cot_states is not None and g.num_edges:
        o, C = recurrent(g, **x, scale=scale, return_states=True)
        loss = (o * cot_output).sum() + (C * cot_states).sum()
    else:
        loss = (recurrent(g, **x, scale=scale) * cot_output).sum()
    if not loss.requires_grad:  # e.g. one node without D: the output is identically zero
        return {n: np.zeros(v.shape) for n, v in src.items()}
    grads = torch.autograd.grad(loss, list(x.values()), allow_unused=True)
    return {n: (np.zeros(v.shape) if gr is None else gr.numpy()) for (n, v), gr in zip(x.items(), grads)}


def prop_gradients(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Kernel VJP vs the float64 recurrence's, per element i of each input X:
    |ĝ_i − g_i| ≤ C_GRAD·u·√(P+1)·s_i + C_SENS·σ_X + ulp, s_i = max(‖g_X‖_∞, max_Y ‖g_Y ⊙ Y‖_∞ / |X_i|)
    — the rule of :func:`lrnnspec.certifier.prop_gradients` with the number of nodes P for the
    sequence length (no log-space gates: Λ = 0; no triangular solve: κ = 1). Cotangents on the
    output and, when the kernel returns them, on the edge states, rounded to the dtypes the kernel
    returned (what autograd hands its backward), so both sides differentiate the same loss."""
    tdt = TORCH_DTYPES[dtype]
    g = case.graph
    gen = np.random.default_rng(case.seed % 2**32)
    B, P, H, V = case.dims["B"], g.num_nodes, case.dims["H"], case.dims["V"]
    with_states = k.caps.states is not None
    x = case.torch(tdt, k.device, requires_grad=True, flat=True)
    o, C = k.call(case, dtype, inputs=x, want_states=with_states)
    cot_o = torch.from_numpy(gen.standard_normal((B, P, H, V))).to(o.dtype).double()
    cot_c = None
    if with_states:
        cot_c = torch.from_numpy(gen.standard_normal((B, g.num_edges, H, case.dims["K"], V)))
        cot_c = cot_c.to(C.dtype).double() if C is not None else cot_c
    want = dag_reference_vjp(case, cot_o, cot_c)
    u = UNIT_ROUNDOFF[dtype]
    sensitivity = gradient_sensitivity(_flat_inputs(case), lambda moved: dag_reference_vjp(case, cot_o, cot_c, moved),
                                       want, u, case.seed)
    loss = (o.double() * cot_o.to(o.device)).sum()
    if C is not None:
        loss = loss + (C.double() * cot_c.to(C.device)).sum()
    got = kernel_vjp(loss, x, want)
    if got is None:
        return {}

    def locate(i):
        tail = f", {[int(j) for j in i[3:]]}" if len(i) > 3 else ""
        return f"batch {i[0]}, {_node_name(case, i[1])}, head {i[2]}{tail}"

    return check_gradients(got, want, {n: _np(v) for n, v in x.items()}, factor=C_GRAD * u * np.sqrt(P + 1),
                           sensitivity=sensitivity, formats=dict.fromkeys(x, dtype), locate=locate)


def _first_difference(a: torch.Tensor, b: torch.Tensor, rows) -> tuple[int, float] | None:
    """The first item (axis 1) among ``rows`` where a and b differ bitwise (NaN-aware), and the change."""
    for j in rows:
        x, y = a[:, j], b[:, j]
        if not _same(x, y):
            return int(j), float((x.double() - y.double()).abs().nan_to_num(nan=float("inf")).max())
    return None


def _same(a, b) -> bool:
    return a.shape == b.shape and torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)) \
        and torch.equal(a.isnan(), b.isnan())


def prop_causality(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Changing the inputs of every node that is neither n nor an ancestor of n leaves h^n (and the
    outputs of n's ancestors, and the states of the edges they write) bitwise unchanged. n is drawn
    from the case's seed. The change keeps every mode valid: q, k, v ← −2x + 1 and every gate
    (S, T, M, D) × 1/2 at those nodes."""
    g, tdt = case.graph, TORCH_DTYPES[dtype]
    cones = node_cones(g)
    candidates = [n for n in range(g.num_nodes) if len(cones[n]) < g.num_nodes]
    n = candidates[int(np.random.default_rng([case.seed % 2**32, 11]).integers(len(candidates)))]
    keep = cones[n]
    others = torch.tensor(sorted(set(range(g.num_nodes)) - set(keep.tolist())), device=k.device)
    x = case.torch(tdt, k.device, flat=True)
    with_states = k.caps.states is not None
    o, C = k.call(case, dtype, inputs=x, want_states=with_states)
    moved = {}
    for name, v in x.items():
        v = v.clone()
        v[:, others] = -2.0 * v[:, others] + 1.0 if name in ("q", "k", "v") else 0.5 * v[:, others]
        moved[name] = v
    o2, C2 = k.call(case, dtype, inputs=moved, want_states=with_states)
    diff = _first_difference(o, o2, keep.tolist())
    if diff is not None:
        raise PropertyFailure(f"the output at {_node_name(case, diff[0])} changed (by up to {diff[1]:.3e}) when only "
                              f"the inputs of {len(others)} node(s) that are not ancestors of {_node_name(case, n)} "
                              f"changed (e.g. {_node_name(case, int(others[0]))})",
                              {"node": int(n), "changed_node": diff[0], "change": diff[1]})
    if C is not None:
        inside = set(keep.tolist())
        upstream = [e for e in range(g.num_edges) if g.edges[e][0] in inside]
        diff = _first_difference(C, C2, upstream)
        if diff is not None:
            raise PropertyFailure(f"the state of {_edge_name(case, diff[0])} changed (by up to {diff[1]:.3e}) when "
                                  f"only inputs of nodes downstream of or beside its source changed",
                                  {"node": int(n), "changed_edge": diff[0], "change": diff[1]})
    return {}


def missing_ports(graph: Graph) -> dict[str, np.ndarray]:
    """Boolean masks of the gate entries the spec never reads: S [P,O] (no out-edge at o), M [P,I]
    (no in-edge at i), T [P,O,I] (either)."""
    dead_out, dead_in = graph.out_edges < 0, graph.in_edges < 0
    return {"S": dead_out, "M": dead_in, "T": dead_out[:, :, None] | dead_in[:, None, :]}


def _port_text(case: DagCase, gate: str, port: tuple, nodes: np.ndarray) -> str:
    if gate == "T":
        p, lack = f"T[o={port[0]}, i={port[1]}]", f"edge at out-port {port[0]} or in-port {port[1]}"
    elif gate == "S":
        p, lack = f"S[o={port[0]}]", f"out-edge at port {port[0]}"
    else:
        p, lack = f"M[i={port[0]}]", f"in-edge at port {port[0]}"
    return f"{p} of the {len(nodes)} node(s) without an {lack} (e.g. {_node_name(case, nodes[0])})"


def prop_boundary(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Gate entries of ports a node does not have (chain ends, grid borders, a DAG's sources and
    sinks) are never read: overwriting them with garbage (±U(2, 4), outside every regime's range)
    leaves the output and the edge states bitwise unchanged.

    Finite garbage, not NaN: a correct kernel may multiply a missing port's gate by an exactly-zero
    state (the zero boundary state, the zero padding of a blocked form), which is exact for any
    finite value but NaN for NaN (0·NaN); "never read" is the semantic claim — the value does not
    influence the result — and ±U(2, 4) keeps every product of garbage and path weights finite in
    fp16. On failure, each (gate, port) is tried alone to name the one that leaks."""
    g, tdt = case.graph, TORCH_DTYPES[dtype]
    masks = missing_ports(g)
    x = case.torch(tdt, k.device, flat=True)
    rng = np.random.default_rng([case.seed % 2**32, 13])
    garbage = {n: torch.tensor(rng.choice([-1.0, 1.0], x[n].shape) * rng.uniform(*GARBAGE, x[n].shape),
                               dtype=tdt, device=k.device) for n in masks}
    with_states = k.caps.states is not None
    o, C = k.call(case, dtype, inputs=x, want_states=with_states)

    def poisoned(select: dict[str, np.ndarray]):
        out = dict(x)
        for name, mask in select.items():
            m = torch.as_tensor(mask, device=k.device)[None, :, None]          # [1,P,1,ports...]
            out[name] = torch.where(m, garbage[name], x[name])
        return out

    def changed(select) -> tuple[str, float] | None:
        o2, C2 = k.call(case, dtype, inputs=poisoned(select), want_states=with_states)
        d = _first_difference(o, o2, range(g.num_nodes))
        if d is not None:
            return f"the output at {_node_name(case, d[0])} changed by up to {d[1]:.3e}", d[1]
        if C is not None:
            d = _first_difference(C, C2, range(g.num_edges))
            if d is not None:
                return f"the state of {_edge_name(case, d[0])} changed by up to {d[1]:.3e}", d[1]
        return None

    if not any(m.any() for m in masks.values()):
        return {}
    first = changed(masks)
    if first is None:
        return {}
    culprits = []
    for name, mask in masks.items():
        for port in np.ndindex(*mask.shape[1:]):
            nodes = np.flatnonzero(mask[(slice(None), *port)])
            if nodes.size == 0:
                continue
            only = np.zeros_like(mask)
            only[(slice(None), *port)] = mask[(slice(None), *port)]
            hit = changed({name: only})
            if hit is not None:
                culprits.append(f"{_port_text(case, name, port, nodes)}: {hit[0]}")
    detail = "; ".join(culprits) if culprits else f"(only jointly) {first[0]}"
    raise PropertyFailure(f"the kernel reads gate entries of ports that do not exist (the spec never reads "
                          f"them; set to garbage): {detail}", {"culprits": culprits})


def prop_chunk(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Every chunk size in {1, 2, 4, 8} gives the spec's output within the budget."""
    ref, worst = k.reference(case, dtype), {}
    for c in CHUNKS:
        o, _ = k.call(case, dtype, chunk=c)
        worst[f"{k.caps.chunk}={c}"] = check_output(o, ref, case, dtype, f"output with {k.caps.chunk}={c}")
    return {"worst_normalized": max(w.get("worst_normalized", 0.0) for w in worst.values()), "per_chunk": worst}


def prop_determinism(k: DagKernel, case: DagCase, dtype: str) -> dict:
    with_states = k.caps.states is not None
    runs = [k.call(case, dtype, want_states=with_states) for _ in range(3)]
    o0, c0 = runs[0]
    for o, c in runs[1:]:
        if not _same(o, o0) or (c0 is not None and not _same(c, c0)):
            raise PropertyFailure("two runs on the same inputs gave different results (bitwise)")
    return {}


def prop_no_mutation(k: DagKernel, case: DagCase, dtype: str) -> dict:
    x = case.torch(TORCH_DTYPES[dtype], k.device, flat=True)
    before = {n: v.clone() for n, v in x.items()}
    k.call(case, dtype, inputs=x, want_states=k.caps.states is not None)
    for name, v in before.items():
        if not _same(v, x[name]):
            raise PropertyFailure(f"the kernel modified its input {name!r} in place")
    return {}


def prop_nan_poison(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """With torch.empty & co. returning NaN-filled memory, results still match the spec: no output
    element or edge state is left unwritten."""
    with_states = k.caps.states is not None
    with nan_poisoned_allocations():
        o, C = k.call(case, dtype, want_states=with_states)
    ref = k.reference(case, dtype)
    worst = check_output(o, ref, case, dtype)
    if C is not None:
        check_states(C, ref, case, dtype)
    return worst


def prop_contract(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Output dtype = the inputs' dtype, on the inputs' device (shapes are checked on every call);
    edge states in the inputs' dtype or, for fp16/bf16 inputs, float32."""
    with_states = k.caps.states is not None
    o, C = k.call(case, dtype, want_states=with_states)
    want = TORCH_DTYPES[dtype]
    if o.dtype != want:
        raise PropertyFailure(f"output dtype {o.dtype}, expected the inputs' {want}")
    if o.device.type != torch.device(k.device).type:
        raise PropertyFailure(f"output on {o.device}, inputs on {k.device}")
    if C is not None:
        allowed = {want, torch.float32} if dtype in ("fp16", "bf16") else {want}
        if C.dtype not in allowed:
            raise PropertyFailure(f"edge states dtype {C.dtype}, expected one of {sorted(map(str, allowed))}")
        if C.device.type != torch.device(k.device).type:
            raise PropertyFailure(f"edge states on {C.device}, inputs on {k.device}")
    return {}


def prop_finite(k: DagKernel, case: DagCase, dtype: str) -> dict:
    o, _ = k.call(case, dtype)
    ref = evaluate_dag(case.family, _flat_inputs(case), graph=case.graph, **case.options).output
    finite_ref = np.isfinite(ref) & (np.abs(ref) < torch.finfo(TORCH_DTYPES[dtype]).max)
    bad = finite_ref & ~np.isfinite(_np(o))
    if bad.any():
        i = np.argwhere(bad)[0]
        raise PropertyFailure(f"{int(bad.sum())} output elements are NaN/inf where the spec's are finite, e.g. batch "
                              f"{i[0]}, {_node_name(case, i[1])}, head {i[2]}")
    return {}


def prop_permutation(k: DagKernel, case: DagCase, dtype: str) -> dict:
    """Permuting the batch and the heads permutes the results: k(πx) = π k(x), bitwise or, failing
    that, both runs within the forward budget."""
    rng = np.random.default_rng(case.seed % 2**32 + 1)

    def draw(n):
        p = rng.permutation(n)
        return np.roll(p, 1) if n > 1 and np.array_equal(p, np.arange(n)) else p
    pb, ph = draw(case.dims["B"]), draw(case.dims["H"])

    def perm(a, inverse=False):
        b, h = (np.argsort(pb), np.argsort(ph)) if inverse else (pb, ph)
        if isinstance(a, torch.Tensor):
            return a.index_select(0, torch.as_tensor(b, device=a.device)).index_select(
                2, torch.as_tensor(h, device=a.device))
        return np.take(np.take(a, b, axis=0), h, axis=2)
    # flat node axis: batch is axis 0 and heads axis 2 of every input, of the output and of the states
    permuted = case.with_arrays({n: perm(v) for n, v in _flat_inputs(case).items()})
    with_states = k.caps.states is not None
    o, C = k.call(case, dtype, want_states=with_states)
    o_p, C_p = k.call(permuted, dtype, want_states=with_states)
    back, back_c = perm(o_p, inverse=True), None if C_p is None else perm(C_p, inverse=True)
    if _same(back, o) and (C is None or _same(back_c, C)):
        return {}
    try:
        ref = k.reference(case, dtype)
        worst = check_output(back, ref, case, dtype)
        if back_c is not None:
            check_states(back_c, ref, case, dtype)
        return worst
    except PropertyFailure as f:
        raise PropertyFailure(f"permuting the batch by {pb.tolist()} and the heads by {ph.tolist()} does not "
                              f"permute the results: {f}", f.detail) from None


DAG_PROPERTY_FUNCTIONS = {
    "forward": prop_forward, "final_state": prop_final_state, "gradients": prop_gradients,
    "causality": prop_causality, "boundary": prop_boundary, "chunk": prop_chunk,
    "determinism": prop_determinism, "no_mutation": prop_no_mutation, "nan_poison": prop_nan_poison,
    "contract": prop_contract, "finite": prop_finite, "permutation": prop_permutation,
}


def dag_applicability(k: DagKernel, prop: str) -> str | None:
    """None if ``prop`` applies to the kernel, else the reason it does not."""
    if prop == "final_state" and k.caps.states is None:
        return f"the kernel returns no edge states (no {' / '.join(STATE_KEYWORDS)} parameter)"
    if prop == "chunk" and k.caps.chunk is None:
        return f"the signature has no {' / '.join(CHUNK_KEYWORDS)}"
    if prop == "gradients" and not _has_backward(k):
        return "the kernel's output does not require grad for inputs that do (no backward)"
    return None


def _has_backward(k: DagKernel) -> bool:
    layout = k.layouts[0]
    probe = DagCase(k.family, layout, (2, 2) if layout == "grid" else (2,),
                    {"grid": k.directions[0], "chain": "forward"}.get(layout),
                    {"B": 1, "H": 1, "K": 1, "V": 1}, {n: "normal" for n in ("q", "k", "v")} |
                    {"S": "sigmoid", "T": "tanh", "M": "sigmoid"}, {"mode": None}, 0)
    try:
        o, _ = k.call(probe, "fp32", inputs=probe.torch(torch.float32, k.device, requires_grad=True, flat=True))
    except PropertyFailure:
        return True  # let the property report the failure on drawn cases
    return bool(o.requires_grad)


def run_dag_property(k: DagKernel, prop: str, dtype: str, *, max_examples: int, seed: int,
                     progress: Callable[[str], None] | None = None) -> Verdict:
    """Run one property of a DAG kernel with Hypothesis (seeded, shrinking failures) and return its
    :class:`~lrnnspec.certifier.Verdict`. A kernel that raises, hangs or returns garbage fails the
    property with the shrunk case (``counterexample``: its JSON, description, message); the harness
    never crashes on it. ``worst["coverage"]`` counts the examples per graph layout and direction."""
    if not isinstance(k, DagKernel):
        raise SpecError("kernel", f"must be a DagKernel, got {type(k).__name__}")
    if prop not in DAG_PROPERTIES:
        raise SpecError("prop", f"unknown DAG property {prop!r}; known: {', '.join(DAG_PROPERTIES)}")
    if dtype not in TORCH_DTYPES:
        raise SpecError("dtype", f"must be one of {', '.join(TORCH_DTYPES)}, got {dtype!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise SpecError("max_examples", f"must be a positive integer, got {max_examples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError("seed", f"must be an integer, got {seed!r}")
    why = dag_applicability(k, prop)
    if why is not None:
        return Verdict(prop, dtype, "not_applicable", why)
    fn = DAG_PROPERTY_FUNCTIONS[prop]
    failures: list[tuple[DagCase, PropertyFailure]] = []
    worst: dict[str, Any] = {}
    coverage: dict[str, int] = {}
    count = [0]

    current: list[DagCase] = []

    def one(case: DagCase):
        count[0] += 1
        rounded = case.rounded(TORCH_DTYPES[dtype])
        current[:] = [rounded]
        try:
            result = fn(k, rounded, dtype)
        except PropertyFailure as f:
            failures.append((rounded, f))
            raise AssertionError(str(f)) from None
        key = case.layout + (f":{case.direction}" if case.direction else "")
        coverage[key] = coverage.get(key, 0) + 1
        w = result.get("worst_normalized") if isinstance(result, dict) else None
        if w is not None and w >= worst.get("worst_normalized", -1.0):
            worst.update(worst_normalized=w, case=rounded.to_json())

    test = settings(max_examples=max_examples, derandomize=False, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                    print_blob=False, report_multiple_bugs=False)(given(k.strategy(prop))(one))
    from hypothesis import seed as hseed

    test = hseed(seed)(test)
    start = time.perf_counter()

    def counterexample():
        case, failure = failures[-1]
        return {"case": case.to_json(), "description": case.describe(), "detail": failure.detail,
                "message": str(failure)}
    try:
        test()
    except AssertionError:
        return Verdict(prop, dtype, "fail", str(failures[-1][1]), count[0], time.perf_counter() - start,
                       worst | {"coverage": coverage}, counterexample())
    except HypothesisException as exc:  # unsatisfiable filters, a flaky kernel
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if failures:
            return Verdict(prop, dtype, "fail", f"{failures[-1][1]} (and the failure did not reproduce: {msg})",
                           count[0], time.perf_counter() - start, worst | {"coverage": coverage}, counterexample())
        return Verdict(prop, dtype, "not_applicable", msg, count[0], time.perf_counter() - start,
                       worst | {"coverage": coverage})
    except Exception as exc:  # noqa: BLE001 - an error outside the kernel call: never a pass
        msg = f"the certifier raised {type(exc).__name__}: {exc}".splitlines()[0]
        cex = None
        if current:
            cex = {"case": current[0].to_json(), "description": current[0].describe(), "detail": {},
                   "message": msg}
        return Verdict(prop, dtype, "fail", msg + " (a harness error on this case; not a certificate)", count[0],
                       time.perf_counter() - start, worst | {"coverage": coverage}, cex)
    finally:
        if progress:
            progress(f"{prop} [{dtype}]: {count[0]} examples")
    return Verdict(prop, dtype, "pass", "", count[0], time.perf_counter() - start, worst | {"coverage": coverage})
