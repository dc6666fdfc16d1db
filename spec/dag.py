"""Evaluating DAG families (``Family.kind == "dag"``): validation, the node-by-node driver, the
public entry point :func:`evaluate_dag`.

A DAG family's inputs live on nodes: ``[B, P…, H, ...]`` where ``P…`` is the graph's node layout
(``(n,)`` chain, ``(h, w)`` grid) or the flat node axis ``P``. Its state lives on edges, one
``[K, V]`` matrix per (batch, edge, head). The engines (fp64, ``emulate:<contract>``, ``exact`` with
its two-precision bound or ``exact:arb`` balls) are the sequence engines unchanged: only the loop
differs — :func:`run_dag` visits the nodes in the graph's topological order and calls the family's

* ``readout(ar, incoming, x, p) -> y`` — the node's output from its incoming edge states
  ``incoming = [(in_port, C), ...]`` (in-port order, existing edges only) and its inputs ``x``;
* ``step(ar, incoming, out_ports, x, p) -> {out_port: C}`` — the states of its outgoing edges.

The evaluation's ``output`` has the layout the inputs were given in, ``final_state`` holds the
state of every edge ``[B, E, H, K, V]`` (edge order of ``graph.edges``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from .engines import Engine, Evaluation, get_engine
from .errors import ShapeError, SpecError
from .family import Family, get_family
from .graph import Graph, GraphError
from .prepare import Prepared, _check_finite, _check_options, as_float_array, collect_inputs

POSITIVE = ("B", "H", "K", "V")


@dataclass
class DagPrepared(Prepared):
    graph: Graph = None
    layout: tuple[int, ...] = ()  # node axes of the given inputs: graph.layout or (P,)
    eps: dict = None              # machine epsilon of each input's original dtype


def _bind_dag(fam: Family, graph: Graph, arrays: dict[str, np.ndarray]):
    """Shapes → dims; every input's node axes must be the graph's layout or the flat (P,)."""
    dims: dict[str, int] = {"O": graph.out_ports, "I": graph.in_ports}
    where: dict[str, str] = {"O": "graph", "I": "graph"}
    layouts = {graph.layout, (graph.num_nodes,)}
    layout = None
    flat = {}
    for inp in fam.inputs:
        if inp.name not in arrays:
            continue
        arr = arrays[inp.name]
        rest = inp.dims[2:]  # after B, P
        node_axes = arr.shape[1:arr.ndim - len(rest)] if arr.ndim >= 1 + len(rest) else None
        if arr.ndim < 2 + len(rest) or node_axes not in layouts:
            expected = " or ".join("[B," + ",".join(map(str, lay)) + "," + ",".join(rest) + "]"
                                   for lay in sorted(layouts, key=len, reverse=True))
            raise ShapeError(inp.name, f"expected {expected} (node axes = the graph's layout {graph.layout} or "
                                       f"{graph.num_nodes} nodes flat; {', '.join(rest)} as named), got shape "
                                       f"{tuple(arr.shape)}")
        if layout is None:
            layout = node_axes
        for sym, size in zip(("B", *rest), (arr.shape[0], *arr.shape[arr.ndim - len(rest):])):
            if sym in dims and dims[sym] != size:
                what = (f"the graph has {dims[sym]} {'out' if sym == 'O' else 'in'}-ports" if sym in ("O", "I")
                        else f"{dims[sym]} in {where[sym]}")
                raise ShapeError(inp.name, f"dimension {sym} is {size} here but {what} (shape {tuple(arr.shape)} "
                                           f"vs [{','.join(inp.dims)}])")
            dims.setdefault(sym, size)
            where.setdefault(sym, inp.name)
        flat[inp.name] = arr.reshape(arr.shape[0], graph.num_nodes, *arr.shape[arr.ndim - len(rest):])
    for sym in POSITIVE:
        if dims.get(sym, 1) < 1:
            raise ShapeError(where[sym], f"dimension {sym} must be ≥ 1, got 0")
    dims["P"] = graph.num_nodes
    dims["E"] = graph.num_edges
    return dims, flat, layout


def prepare_dag(family: "str | Family", graph: Graph, inputs: Mapping[str, Any],
                options: Mapping[str, Any] | None = None) -> DagPrepared:
    fam = get_family(family)
    if fam.kind != "dag":
        raise SpecError("family", f"{fam.name!r} is a {fam.kind} family; use evaluate() without a graph")
    if not isinstance(graph, Graph):
        raise GraphError("graph", f"family {fam.name!r} runs on a graph: pass graph=lrnnspec.spec.graph.chain(n), "
                                  f"grid(h, w, direction) or Graph.from_edges(...), got {type(graph).__name__}")
    declared = {i.name: i for i in fam.inputs}
    converted = collect_inputs(fam, inputs, as_float_array)
    opts = _check_options(fam, options or {})
    arrays = {k: v[0] for k, v in converted.items()}
    eps = {k: v[1] for k, v in converted.items()}
    dims, flat, layout = _bind_dag(fam, graph, arrays)
    for name, arr in flat.items():
        _check_finite(name, arr)
        declared[name].domain_for(opts).check(name, arr)
    if fam.check is not None:
        fam.check(flat, opts, graph, eps)
    if fam.defaults is not None:
        for name, value in fam.defaults(dims, opts).items():
            flat.setdefault(name, value)
    scale = None
    if "scale" in opts:
        scale = float(opts["scale"]) if opts["scale"] is not None else dims["K"] ** -0.5
    return DagPrepared(fam, flat, {}, opts, dims, {}, None, scale, graph=graph, layout=layout, eps=eps)


def run_dag(prep: DagPrepared, ar, seq: dict, static: dict, init: dict):
    """Evaluate a DAG family node by node in ``prep.graph.order``. Returns (output [B,P,H,V], {"C":
    edge states [B,E,H,K,V]}) as engine-native arrays (edges never written stay zero)."""
    fam, g = prep.family, prep.graph
    p = SimpleNamespace(**prep.options, **static)
    if prep.scale is not None:
        p.scale = ar.const(prep.scale)
    d = prep.dims
    edge: list = [None] * g.num_edges
    outs: list = [None] * g.num_nodes
    for n in g.order:
        x = {name: v[:, n] for name, v in seq.items()}
        incoming = [(i, edge[e]) for i, e in enumerate(g.in_edges[n]) if e >= 0]
        outs[n] = fam.readout(ar, incoming, x, p)
        ports = [o for o, e in enumerate(g.out_edges[n]) if e >= 0]
        if ports:
            new = fam.step(ar, incoming, ports, x, p)
            for o in ports:
                edge[g.out_edges[n][o]] = new[o]
    zero = ar.zeros((d["B"], d["H"], d["K"], d["V"]))
    states = [zero if s is None else s for s in edge]
    C = np.stack(states, axis=1) if states else ar.zeros((d["B"], 0, d["H"], d["K"], d["V"]))
    return np.stack(outs, axis=1), {"C": C}


def evaluate_dag(family: "str | Family", inputs: Mapping[str, Any], *, graph: Graph | None = None,
                 engine: "str | Engine" = "fp64", prec: int | None = None, **options) -> Evaluation:
    """Evaluate a DAG family (``plstm``) on ``graph`` with any engine.

    * ``inputs``: name → array with node axes in the graph's layout (``[B,n,H,K]`` on a chain,
      ``[B,h,w,H,K]`` on a grid) or flat (``[B,P,H,K]``); see ``family.inputs``.
    * ``engine``: ``"fp64"``, ``"fp64:sequential"``, ``"exact"`` / ``"exact:arb"`` (``prec`` bits),
      ``"emulate:<contract>"``.
    * ``**options``: family options (``scale``, ``mode``).

    Returns an :class:`Evaluation`: ``output`` [B, layout…, H, V], ``final_state`` = the state of
    every edge [B, E, H, K, V], and for the exact engine the bounds of both.
    """
    eng = get_engine(engine, prec=prec)
    prep = prepare_dag(family, graph, inputs, options)
    res = eng.evaluate(prep)
    shape = (prep.dims["B"], *prep.layout, *res.output.shape[2:])
    res.output = res.output.reshape(shape)
    if res.output_bound is not None:
        res.output_bound = res.output_bound.reshape(shape)
    return res


def random_dag_inputs(family: "str | Family", graph: Graph, *, seed: int = 0, B: int = 1, H: int = 2, K: int = 8,
                      V: int = 8, flat: bool = False, options: dict | None = None) -> dict:
    """Random valid inputs on ``graph`` in its layout (``flat``: node axis flattened): the family's
    ``sample(rng, graph, dims, options)`` hook draws them."""
    fam = get_family(family)
    rng = np.random.default_rng(seed)
    dims = {"B": B, "H": H, "K": K, "V": V, "O": graph.out_ports, "I": graph.in_ports, "P": graph.num_nodes}
    x = fam.sample(rng, graph, dims, options or {})
    if not flat:
        x = {n: a.reshape(B, *graph.layout, *a.shape[2:]) for n, a in x.items()}
    return x
