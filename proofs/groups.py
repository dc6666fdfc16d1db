"""Finite groups as automata: permutation groups and the rotation groups of the cube and icosahedron.

A group ``G`` with elements ``g_0 = e, g_1, ...`` is the automaton of its *word problem*
(Grazzi et al. 2025, §2): states and letters are the elements, and on word ``x_1 ⋯ x_t`` the state is
the prefix product ``x_t ∘ ⋯ ∘ x_1`` (x_1 acts first). ``Group.table[q, a]`` is the index of
``a ∘ q``.

Permutations are tuples ``p`` with ``p[i]`` the image of ``i``; composition ``(p∘q)[i] = p[q[i]]``;
the permutation matrix has ``P[p[i], i] = 1`` so that ``P_{p∘q} = P_p P_q``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from lrnnspec.spec.errors import DomainError


@dataclass(frozen=True)
class Group:
    name: str
    elements: tuple  # hashable elements; index 0 is the identity
    table: np.ndarray  # [|G|, |G|] int: table[q, a] = index of a ∘ q

    @property
    def order(self) -> int:
        return len(self.elements)

    def element_orders(self) -> dict[int, int]:
        """Histogram {order: count} — identifies A5 ({1:1, 2:15, 3:20, 5:24}) among groups of order 60."""
        hist: dict[int, int] = {}
        for g in range(self.order):
            q, n = g, 1
            while q != 0:
                q, n = self.table[q, g], n + 1
            hist[n] = hist.get(n, 0) + 1
        return dict(sorted(hist.items()))

    def run(self, words: np.ndarray, q0: int = 0) -> np.ndarray:
        """Prefix states [N, T] of words [N, T] (letter indices)."""
        words = np.asarray(words)
        out = np.empty(words.shape, dtype=np.int64)
        q = np.full(words.shape[0], q0, dtype=np.int64)
        for t in range(words.shape[1]):
            q = self.table[q, words[:, t]]
            out[:, t] = q
        return out


# --- permutations -----------------------------------------------------------------------------
def compose(p, q) -> tuple:
    """``p ∘ q`` (q acts first)."""
    return tuple(p[i] for i in q)


def perm_matrix(p) -> np.ndarray:
    n = len(p)
    m = np.zeros((n, n))
    m[list(p), list(range(n))] = 1.0
    return m


def moved(p) -> int:
    return sum(1 for i, j in enumerate(p) if i != j)


def as_swaps(p) -> list[tuple[int, int]]:
    """Transpositions ``[(i_1, j_1), ..., (i_r, j_r)]`` in the order they act, with
    ``P_p = T_r ⋯ T_1`` and ``r = moved(p) − #cycles ≤ moved(p) − 1`` (a k-cycle
    ``c_0 → c_1 → ⋯ → c_{k−1} → c_0`` is ``(c_0 c_{k−1}) ∘ ⋯ ∘ (c_0 c_1)``)."""
    seen, swaps = set(), []
    for start in range(len(p)):
        if start in seen or p[start] == start:
            continue
        cycle, i = [], start
        while i not in seen:
            seen.add(i)
            cycle.append(i)
            i = p[i]
        swaps.extend((cycle[0], c) for c in cycle[1:])
    return swaps


def closure(generators, op, identity, key=lambda g: g, limit: int = 10_000) -> list:
    """All products of ``generators`` (breadth first), identity first; ``key`` makes elements hashable."""
    elems, index = [identity], {key(identity): 0}
    frontier = [identity]
    while frontier:
        nxt = []
        for g in frontier:
            for s in generators:
                h = op(s, g)
                if key(h) not in index:
                    index[key(h)] = len(elems)
                    elems.append(h)
                    nxt.append(h)
                    if len(elems) > limit:
                        raise DomainError("generators", f"generate more than {limit} elements")
        frontier = nxt
    return elems


def _table(elems, op, key) -> np.ndarray:
    index = {key(g): i for i, g in enumerate(elems)}
    n = len(elems)
    table = np.empty((n, n), dtype=np.int64)
    for q, gq in enumerate(elems):
        for a, ga in enumerate(elems):
            table[q, a] = index[key(op(ga, gq))]
    return table


def symmetric_group(n: int) -> Group:
    if not isinstance(n, int) or n < 2 or n > 6:
        raise DomainError("n", f"must be an integer in [2, 6] (|S_n| = n! states), got {n!r}")
    ident = tuple(range(n))
    elems = [ident] + [p for p in itertools.permutations(range(n)) if p != ident]
    return Group(f"S{n}", tuple(elems), _table(elems, compose, lambda g: g))


def limited_symmetric_group_letters(group: Group, max_moved: int) -> list[int]:
    """Indices of the elements moving at most ``max_moved`` points (Grazzi's "only swaps": 2)."""
    return [i for i, p in enumerate(group.elements) if moved(p) <= max_moved]


# --- rotation groups --------------------------------------------------------------------------
def _rot_key(m: np.ndarray) -> tuple:
    return tuple(np.round(np.asarray(m) * 1e6).astype(np.int64).reshape(-1))


def _matrix_group(name: str, generators) -> tuple[Group, list[np.ndarray]]:
    mats = closure([np.asarray(g, dtype=np.float64) for g in generators], lambda s, g: s @ g, np.eye(3),
                   key=_rot_key)
    group = Group(name, tuple(_rot_key(m) for m in mats), _table(mats, lambda s, g: s @ g, _rot_key))
    return group, mats


PHI = (1 + 5 ** 0.5) / 2


def icosahedral_group() -> tuple[Group, list[np.ndarray]]:
    """The 60 rotations of the icosahedron (≅ A5), generated by 2π/5 about (0, 1, φ) and 2π/3 about
    (1, 1, 1) (theorems.md §8(3); checked: 60 elements with element orders {1:1, 2:15, 3:20, 5:24})."""
    from .linalg import rotation3

    return _matrix_group("A5 (icosahedral rotations)",
                         [rotation3([0, 1, PHI], 2 * np.pi / 5), rotation3([1, 1, 1], 2 * np.pi / 3)])


def octahedral_group() -> tuple[Group, list[np.ndarray]]:
    """The 24 rotations of the cube (≅ S4): signed 3×3 permutation matrices with determinant +1,
    generated by a quarter turn about e3 and the 2π/3 turn about (1, 1, 1)."""
    from .linalg import rotation3

    return _matrix_group("S4 (cube rotations)",
                         [rotation3([0, 0, 1], np.pi / 2), rotation3([1, 1, 1], 2 * np.pi / 3)])


def isomorphism_to_permutations(group: Group, target: Group) -> dict[int, int] | None:
    """An explicit isomorphism ``group → target`` found by mapping two generators of ``group`` to
    every pair of ``target`` elements and extending multiplicatively; None when there is none.
    The two generators are the first two non-identity elements that generate ``group``."""
    n = group.order
    if n != target.order:
        return None

    def words_from(gens):
        # BFS: element index -> list of generator indices (a shortest word)
        word = {0: []}
        frontier = [0]
        while frontier:
            nxt = []
            for q in frontier:
                for gi, g in enumerate(gens):
                    r = group.table[q, g]
                    if r not in word:
                        word[r] = word[q] + [gi]
                        nxt.append(r)
            frontier = nxt
        return word

    gens = None
    for a, b in itertools.combinations(range(1, n), 2):
        if len(words_from([a, b])) == n:
            gens = [a, b]
            break
    if gens is None:
        return None
    word = words_from(gens)
    order_g, order_t = _orders(group), _orders(target)
    cand_a = [i for i in range(1, n) if order_t[i] == order_g[gens[0]]]
    cand_b = [i for i in range(1, n) if order_t[i] == order_g[gens[1]]]
    for ia, ib in itertools.product(cand_a, cand_b):
        images = [ia, ib]
        phi = {}
        for g, w in word.items():
            q = 0
            for gi in w:
                q = target.table[q, images[gi]]
            phi[g] = q
        if len(set(phi.values())) != n:
            continue
        if all(phi[group.table[q, a]] == target.table[phi[q], phi[a]] for q in range(n) for a in range(n)):
            return phi
    return None


def _orders(group: Group) -> list[int]:
    out = []
    for g in range(group.order):
        q, n = g, 1
        while q != 0:
            q, n = group.table[q, g], n + 1
        out.append(n)
    return out


def alternating_group(n: int) -> Group:
    """The even permutations of ``n`` points."""
    def sign(p):
        s = 1
        for i in range(len(p)):
            for j in range(i + 1, len(p)):
                if p[i] > p[j]:
                    s = -s
        return s

    ident = tuple(range(n))
    elems = [ident] + [p for p in itertools.permutations(range(n)) if p != ident and sign(p) == 1]
    return Group(f"A{n}", tuple(elems), _table(elems, compose, lambda g: g))
