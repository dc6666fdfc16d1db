"""Directed acyclic graphs for DAG families (pLSTM, arXiv 2506.11997 §3).

A :class:`Graph` has nodes ``0 … P−1`` (the node axis of the inputs, in the graph's *layout*:
``(n,)`` for a chain, ``(h, w)`` row-major for a grid) and directed edges, each leaving its source
node through an **out-port** and entering its target node through an **in-port**. Ports give gates
a fixed shape: a node's Source gate is indexed by out-port ``[O]``, its Transition by
``[O, I]`` (out-port, in-port), its Mark by in-port ``[I]``; a node that lacks an edge at a port
(a chain's ends, a grid's border) simply never reads the gate entries of that port.

Validation (:meth:`Graph.from_edges`) rejects node ids out of range, two edges on one port and
cycles — the error names the cycle, e.g. ``edges: the graph has a cycle 2 → 5 → 3 → 2``. Evaluation
visits nodes in ``order``, a topological order (Kahn's algorithm, smallest ready node first, so a
chain or a right/down grid is visited in its natural order).

Constructors:

* :func:`chain` ``(n)`` — ``0 → 1 → … → n−1``; one port each way (a 1-D linear RNN);
* :func:`grid` ``(h, w, direction)`` — one of the four directional DAG covers of an h×w image
  (``right_down``, ``right_up``, ``left_down``, ``left_up``; pLSTM §3.2): every node has a
  horizontal edge (port 0) towards its left/right neighbour and a vertical edge (port 1) towards
  its upper/lower neighbour; hence two in-ports (0 from the horizontal neighbour, 1 from the
  vertical one) and two out-ports (0 horizontal, 1 vertical).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from .errors import SpecError

DIRECTIONS = ("right_down", "right_up", "left_down", "left_up")


class GraphError(SpecError):
    """An invalid graph: a cycle, a node id out of range, two edges on one port, a bad size."""


@dataclass(frozen=True)
class Graph:
    """A validated DAG. Build it with :meth:`from_edges`, :func:`chain` or :func:`grid`.

    ``edges[e] = (src, src_port, dst, dst_port)``; ``in_edges[n][i]`` / ``out_edges[n][o]`` is
    the edge at that port of node n, or -1; ``order`` is a topological order of the nodes.
    """

    num_nodes: int
    edges: tuple[tuple[int, int, int, int], ...]
    in_ports: int
    out_ports: int
    layout: tuple[int, ...]
    kind: str = "dag"            # "chain", "grid" or "dag"
    direction: str | None = None  # grids: the cover
    order: tuple[int, ...] = field(default=(), repr=False)
    in_edges: np.ndarray = field(default=None, repr=False, compare=False)   # [P, I] int, -1 = none
    out_edges: np.ndarray = field(default=None, repr=False, compare=False)  # [P, O] int, -1 = none

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @classmethod
    def from_edges(cls, num_nodes: int, edges, *, in_ports: int | None = None, out_ports: int | None = None,
                   layout: tuple[int, ...] | None = None, kind: str = "dag", direction: str | None = None) -> "Graph":
        """Validate and build. ``edges``: pairs ``(src, dst)`` (ports assigned in order of appearance
        at each node) or quadruples ``(src, src_port, dst, dst_port)``."""
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 1:
            raise GraphError("num_nodes", f"must be an integer ≥ 1, got {num_nodes!r}")
        num_nodes = int(num_nodes)
        try:
            rows = [tuple(int(v) for v in e) for e in edges]
        except (TypeError, ValueError) as exc:
            raise GraphError("edges", "must be a sequence of (src, dst) or (src, src_port, dst, dst_port) "
                                      "integer tuples") from exc
        next_out, next_in, quads = [0] * num_nodes, [0] * num_nodes, []
        for j, r in enumerate(rows):
            if len(r) not in (2, 4):
                raise GraphError("edges", f"edge {j} = {r} is neither (src, dst) nor (src, src_port, dst, dst_port)")
            src, dst = (r[0], r[1]) if len(r) == 2 else (r[0], r[2])
            for end, node in (("source", src), ("target", dst)):
                if not 0 <= node < num_nodes:
                    raise GraphError("edges", f"edge {j} = {r}: {end} node {node} is not in [0, {num_nodes})")
            if len(r) == 2:
                quads.append((src, next_out[src], dst, next_in[dst]))
                next_out[src] += 1
                next_in[dst] += 1
            else:
                if r[1] < 0 or r[3] < 0:
                    raise GraphError("edges", f"edge {j} = {r}: ports must be ≥ 0")
                quads.append(r)
        n_in = max([q[3] + 1 for q in quads], default=0)
        n_out = max([q[1] + 1 for q in quads], default=0)
        for name, given, needed in (("in_ports", in_ports, n_in), ("out_ports", out_ports, n_out)):
            if given is not None and given < needed:
                raise GraphError(name, f"is {given} but an edge uses port {needed - 1}")
        in_ports = max(n_in, 1) if in_ports is None else in_ports
        out_ports = max(n_out, 1) if out_ports is None else out_ports
        layout = (num_nodes,) if layout is None else tuple(int(s) for s in layout)
        if int(np.prod(layout)) != num_nodes:
            raise GraphError("layout", f"{layout} has {int(np.prod(layout))} nodes, not {num_nodes}")
        in_e = np.full((num_nodes, in_ports), -1, dtype=np.int64)
        out_e = np.full((num_nodes, out_ports), -1, dtype=np.int64)
        for j, (src, sp, dst, dp) in enumerate(quads):
            for table, node, port, what in ((out_e, src, sp, "out-port"), (in_e, dst, dp, "in-port")):
                if table[node, port] >= 0:
                    raise GraphError("edges", f"edges {int(table[node, port])} and {j} share {what} {port} "
                                              f"of node {node}; each port carries one edge")
                table[node, port] = j
        order = _topological_order(num_nodes, quads)
        return cls(num_nodes, tuple(quads), in_ports, out_ports, layout, kind, direction, tuple(order), in_e, out_e)

    # --- structure of the line graph (nodes = edges of G, e' → e when e' enters the node e leaves) --
    def line_graph_is_multitree(self, active: np.ndarray | None = None) -> tuple[bool, tuple[int, int] | None]:
        """Whether at most one directed path joins any two edges in the line graph restricted to the
        *active* transitions (``active[n, o, i]`` true when T^n[o, i] ≠ 0; all when None).
        Returns ``(ok, witness)`` with a pair of edges joined by ≥ 2 paths when not ok."""
        E = self.num_edges
        if E == 0:
            return True, None
        counts = np.zeros((E, E), dtype=np.int8)  # counts[src_edge, e] = min(#paths, 2)
        for n in self.order:
            for o, e in enumerate(self.out_edges[n]):
                if e < 0:
                    continue
                acc = np.zeros(E, dtype=np.int16)
                acc[e] = 1
                for i, e_in in enumerate(self.in_edges[n]):
                    if e_in >= 0 and (active is None or active[n, o, i]):
                        acc += counts[:, e_in]
                counts[:, e] = np.minimum(acc, 2)
        bad = np.argwhere(counts >= 2)
        if bad.size:
            return False, (int(bad[0][0]), int(bad[0][1]))
        return True, None


def _topological_order(num_nodes: int, quads) -> list[int]:
    indeg = [0] * num_nodes
    succ: list[list[int]] = [[] for _ in range(num_nodes)]
    for src, _, dst, _ in quads:
        succ[src].append(dst)
        indeg[dst] += 1
    ready = [n for n in range(num_nodes) if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, m)
    if len(order) < num_nodes:
        cycle = _find_cycle(num_nodes, succ, {n for n in range(num_nodes) if indeg[n] > 0})
        raise GraphError("edges", "the graph has a cycle " + " → ".join(map(str, cycle + [cycle[0]]))
                         + "; pLSTM needs a directed acyclic graph")
    return order


def _find_cycle(num_nodes: int, succ, remaining: set[int]) -> list[int]:
    """A directed cycle among ``remaining``: every node Kahn's algorithm leaves has a predecessor that
    is also left, so walking predecessors from any of them must revisit a node."""
    pred: dict[int, int] = {}
    for a in sorted(remaining):
        for b in succ[a]:
            if b in remaining:
                pred.setdefault(b, a)
    seen: dict[int, int] = {}
    walk, n = [], min(remaining)
    while n not in seen:
        seen[n] = len(walk)
        walk.append(n)
        n = pred[n]
    cycle = walk[seen[n]:][::-1]  # predecessors walked backwards: reverse into edge direction
    i = cycle.index(min(cycle))
    return cycle[i:] + cycle[:i]


def chain(n: int, *, reverse: bool = False) -> Graph:
    """The 1-D chain ``0 → 1 → … → n−1`` (``reverse``: ``n−1 → … → 0``); one port each way."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise GraphError("n", f"chain length must be an integer ≥ 1, got {n!r}")
    pairs = [(i + 1, 0, i, 0) for i in range(n - 1)] if reverse else [(i, 0, i + 1, 0) for i in range(n - 1)]
    return Graph.from_edges(n, pairs, in_ports=1, out_ports=1, layout=(n,), kind="chain",
                            direction="reverse" if reverse else "forward")


def grid(h: int, w: int, direction: str = "right_down") -> Graph:
    """One directional DAG cover of an h×w grid; node (y, x) has id y·w + x.

    ``right_down``: (y,x) → (y,x+1) [port 0] and (y,x) → (y+1,x) [port 1]; ``right_up`` uses
    (y−1,x), ``left_*`` uses (y,x−1). In-port 0 receives the horizontal edge, in-port 1 the
    vertical one. Transition T^n[o, i]: T[0,0] straight horizontal, T[1,1] straight vertical,
    T[1,0] turn horizontal→vertical, T[0,1] turn vertical→horizontal.
    """
    for name, v in (("h", h), ("w", w)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise GraphError(name, f"grid size must be an integer ≥ 1, got {v!r}")
    if direction not in DIRECTIONS:
        raise GraphError("direction", f"must be one of {DIRECTIONS}, got {direction!r}")
    dx = 1 if direction.startswith("right") else -1
    dy = 1 if direction.endswith("down") else -1
    quads = []
    ys = range(h) if dy > 0 else range(h - 1, -1, -1)
    xs = range(w) if dx > 0 else range(w - 1, -1, -1)
    for y in ys:
        for x in xs:
            if 0 <= x + dx < w:
                quads.append((y * w + x, 0, y * w + x + dx, 0))
            if 0 <= y + dy < h:
                quads.append((y * w + x, 1, (y + dy) * w + x, 1))
    return Graph.from_edges(h * w, quads, in_ports=2, out_ports=2, layout=(h, w), kind="grid", direction=direction)
