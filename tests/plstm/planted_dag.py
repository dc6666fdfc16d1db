"""Planted-bug pLSTM kernels for the DAG certifier's meta-tests (tests/plstm/test_dag_certifier.py).

Each kernel is a correct form of :mod:`lrnnspec.impls.plstm` with ONE realistic bug and the
same signature (the certifier reads capabilities from it). ``expected_property`` is the DAG property
that must reject it (others may fail too); ``description`` says where the bug lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from lrnnspec.impls import plstm as P
from lrnnspec.spec.graph import Graph, grid


FILE = os.path.abspath(__file__)


@dataclass(frozen=True)
class PlantedDagBug:
    name: str
    convention: str
    fn: Callable
    expected_property: str
    description: str

    @property
    def target(self) -> str:
        return f"{FILE}:{self.fn.__name__}"


def explodes(q, k, v, S, T, M, D=None, scale=None, direction="right_down"):
    """Not a planted bug: a 2-D form that raises on grids of more than four nodes·heads."""
    if q.shape[1] * q.shape[2] > 4:
        raise RuntimeError("kernel launch failed")
    return P.parallel_2d(q, k, v, S, T, M, D, scale, direction)


def takes_too_little(graph, q, k):
    """Not a planted bug: a native DAG kernel that does not take the gates."""
    return q


def transposed_turns_2d(q, k, v, S, T, M, D=None, scale=None, direction: str = "right_down"):
    # BUG: the transition is indexed T[i, o] (in-port first), swapping the two turns T[1,0] ↔ T[0,1]
    return P.parallel_2d(q, k, v, S, T.transpose(-1, -2), M, D, scale, direction)


def chunked_1d_drops_tail(q, k, v, S, T, M, D=None, scale=None, chunk_size: int = 16):
    n = q.shape[1]
    full = (n // chunk_size) * chunk_size          # BUG: floor division — the last partial block is never launched
    out = torch.zeros_like(v)
    if full:
        cut = lambda x: None if x is None else x[:, :full]  # noqa: E731
        out[:, :full] = P.chunked_1d(cut(q), cut(k), cut(v), cut(S), cut(T), cut(M), cut(D), scale, chunk_size)
    return out


def chunked_2d_ignores_direct(q, k, v, S, T, M, D=None, scale=None, direction: str = "right_down", chunk_size: int = 8):
    # BUG: D is accepted but never added (the direct term D^n (qs^n·k^n) v^n of eq. 6 is dropped)
    return P.chunked_2d(q, k, v, S, T, M, None, scale, direction, chunk_size)


def _raster_graph(h: int, w: int, direction: str) -> Graph:
    """grid(h, w, direction) plus, for each row after the first (in the cover's vertical order), an
    edge from the last node of the previous row to the first node of this one, through the
    horizontal ports the border nodes do not have."""
    g = grid(h, w, direction)
    right, down = direction.startswith("right"), direction.endswith("down")
    ys = list(range(h)) if down else list(range(h - 1, -1, -1))
    first, last = (0, w - 1) if right else (w - 1, 0)
    wrap = [(a * w + last, 0, b * w + first, 0) for a, b in zip(ys, ys[1:])]
    return Graph.from_edges(h * w, list(g.edges) + wrap, in_ports=2, out_ports=2, layout=(h, w), kind="grid",
                            direction=direction)


def raster_carry_2d(q, k, v, S, T, M, D=None, scale=None, direction: str = "right_down"):
    # BUG: the image is scanned as one raster sequence and the horizontal state is carried across
    # row ends: node (y, first) receives the state of (y−1, last) through in-port 0 — its border
    # gates M[0], T[:, 0] (and S[0] of the previous row's last node) are read
    B, h, w = q.shape[:3]
    flat = lambda x: None if x is None else x.reshape(B, h * w, *x.shape[3:])  # noqa: E731
    out = P.recurrent(_raster_graph(h, w, direction), flat(q), flat(k), flat(v), flat(S), flat(T), flat(M), flat(D),
                      scale)
    return out.reshape(B, h, w, *out.shape[2:])


def parallel_1d_detached_gates(q, k, v, S, T, M, D=None, scale=None):
    # BUG: the gating matrix is built from detached gates ("no autograd through the hierarchical
    # merges"): the forward is exact, the gradients w.r.t. S, T, M are zero
    return P.masked_attention(q, k, v, P.gating_matrix_1d(S.detach(), T.detach(), M.detach()), D, scale)


def recurrent_states_in_write_order(graph, q, k, v, S, T, M, D=None, scale=None, return_states: bool = False):
    if not return_states:
        return P.recurrent(graph, q, k, v, S, T, M, D, scale)
    if graph.num_edges == 0:
        return P.recurrent(graph, q, k, v, S, T, M, D, scale), q.new_zeros(q.shape[0], 0, q.shape[2], q.shape[3],
                                                                            v.shape[3])
    out, C = P.recurrent(graph, q, k, v, S, T, M, D, scale, return_states=True)
    # BUG: the states are stacked in the order the recurrence writes them (node order, then port),
    # not in graph.edges order; identical on chains and right_down grids, permuted elsewhere
    written = [e for n in graph.order for e in graph.out_edges[n].tolist() if e >= 0]
    return out, C[:, written]


PLANTED = (
    PlantedDagBug("transposed_turns_2d", "grid", transposed_turns_2d, "forward",
                  "2-D gating-matrix form that reads the turn transitions transposed (T[i, o])"),
    PlantedDagBug("chunked_1d_drops_tail", "chain", chunked_1d_drops_tail, "forward",
                  "1-D chunked form that launches n // chunk blocks: the last partial block is zero"),
    PlantedDagBug("chunked_2d_ignores_direct", "grid", chunked_2d_ignores_direct, "forward",
                  "2-D chunked form that takes D and ignores it"),
    PlantedDagBug("raster_carry_2d", "grid", raster_carry_2d, "boundary",
                  "2-D scan that carries the horizontal state across row ends, reading border gates"),
    PlantedDagBug("parallel_1d_detached_gates", "chain", parallel_1d_detached_gates, "gradients",
                  "1-D gating-matrix form built from detached gates: no gradient w.r.t. S, T, M"),
    PlantedDagBug("recurrent_states_in_write_order", "native", recurrent_states_in_write_order, "final_state",
                  "recurrence returning the edge states in write order instead of graph.edges order"),
)
