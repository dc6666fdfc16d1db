"""Holonomy decomposition of a DFA into a cascade of permutation–reset automata.

Krohn–Rhodes (Krohn & Rhodes 1965): every finite automaton is covered by a cascade (wreath
product) of permutation–reset automata. We implement the *holonomy* proof of the theorem
(Zeiger 1967; Eilenberg, *Automata, Languages and Machines* vol. B, ch. II; presented as an
algorithm by Egri-Nagy & Nehaniv, "Computational holonomy decomposition of transformation
semigroups", 2015, and in cascade form by Maler & Pnueli 1990 / Maler 2010, "On the Krohn–Rhodes
cascaded decomposition theorem"). Our write-up below is self-contained; the level bookkeeping
(one component per equivalence class, "absolute" chains with explicit translations) is ours.

Notation. Q = states, letters act on the right: q·σ = delta[q][σ]; A·w = {q·w : q ∈ A}.

* Image sets I = {Q} ∪ {Q·w : w ∈ Σ⁺} ∪ {{q} : q ∈ Q}; closed under every letter.
* Tiles of A ∈ I, |A| ≥ 2: the maximal elements of {B ∈ I : B ⊊ A}. They cover A (singletons ∈ I).
* A ~ B (same class) iff B = A·u and A = B·v for words u, v (mutual reachability in the graph
  A → A·σ; then u, v act bijectively). Subduction X ≤ Y iff X ⊆ Y·w for some w ∈ Σ*.
  Level of a class: 1 for {Q}, else 1 + max level of the classes strictly above it. Hence
  X < Y (strictly) ⇒ level(X) > level(Y); in particular a tile lies strictly below its set.
* Each class C gets a representative P_C and, for each A ∈ C, the bijection r_A: A → P_C induced
  by a word. Lemma (standard): a bijection between equivalent sets induced by a word maps tiles
  to tiles (pull a set between a tile and A back with a return word; powers of a permutation of A
  are the identity). We assert it on every map we build.
* Component of class C: a permutation–reset automaton on tiles(P_C) (one-hot in the LRNN).

Coordinates. A cascade state x gives every component a tile index. It *decodes* to a state of Q
by the chain Q = A_0 ⊋ A_1 ⊋ … ⊋ A_m = {q}, A_{i+1} = r_{A_i}⁻¹(tile x[class(A_i)] of P).
Levels strictly increase along the chain, so a class occurs at most once in it; components whose
class is not on the chain are "dummies". Every q has an encoding (choose tiles containing q).

Transition on σ (the proof). Build the new chain top-down. For the new chain set B at level ℓ
let K be the deepest old chain set determined by the components of levels < ℓ (so level(K) ≥ ℓ
and q ∈ K). Invariant: K·σ ⊆ B (true at B = Q). Since K·σ ≤ K, level(K·σ) ≥ level(K) ≥ ℓ, so
either K·σ = B — then K ~ B (same level + subduction ⇒ equivalent), K is on the old chain at
level ℓ with the *same* component as B, and the new tile is A'·σ where A' is K's old tile: the
component applies the permutation τ ↦ r_B(σ(r_K⁻¹(τ))) of tiles(P) (an element of the holonomy
group) — or K·σ ⊊ B, and the component *resets* to r_B(T) for a fixed tile T ⊇ K·σ of B. In both
cases the invariant passes to the next new chain set, and at a singleton B = {q·σ}. Components off
the new chain are reset to tile 0 (canonical dummies). The choice between which permutation and
which reset depends only on σ and the coordinates of levels < ℓ: a cascade of permutation–reset
automata, in the classical form where component ℓ reads the *previous* coordinates of the levels
above it (cf. :mod:`regular_lrnn` for the LRNN, whose layers read the *updated* ones).
:func:`verify_cascade` checks decode(step(x, σ)) = decode(x)·σ on every reachable cascade state.

Worst-case size (n = |Q|): at most 2ⁿ − n − 1 non-singleton image sets, hence at most that many
components and levels; a component's width is its number of tiles, an antichain of subsets of
P_C, so ≤ C(|P_C|, ⌊|P_C|/2⌋) (Sperner) — 20 for |P| = 6 (not ≤ |Q| in general); a permutation of
w tiles is ≤ w − 1 transpositions. Groups need one component (level 1); aperiodic automata have
trivial holonomy groups (identity and resets only).
Permutations that fix every tile are returned as the identity action ``("id",)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Iterable

from .regular_dfa import DFA

Action = tuple  # ("id",) | ("perm", tuple[int, ...]) | ("reset", int)
IDENTITY: Action = ("id",)
# A component off the new chain is a dummy; resetting it to tile 0 (rather than keeping its value)
# makes every reachable cascade state the canonical encoding of its chain, so the reachable set
# stays small (at most the number of tile chains) and the exhaustive check below stays exhaustive.
OFF_CHAIN: Action = ("reset", 0)


def _members(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def _size(mask: int) -> int:
    return bin(mask).count("1")


@dataclass(frozen=True)
class Component:
    """A permutation–reset automaton on the tiles of ``rep`` (bitmasks over Q)."""

    index: int
    level: int
    members: tuple[int, ...]  # the image sets of the class (bitmasks)
    rep: int
    tiles: tuple[int, ...]  # tiles of rep, in a fixed order: the component's states

    @property
    def width(self) -> int:
        return len(self.tiles)


@dataclass
class Cascade:
    """The holonomy cascade of a DFA's transition structure (start and accept are not used)."""

    dfa: DFA
    images: tuple[int, ...]
    components: tuple[Component, ...]
    class_of: dict[int, int]  # non-singleton image set → component index
    to_rep: dict[int, dict[int, int]]  # A → r_A as a state map A → rep
    reset_tile: dict[tuple[int, int], int] = field(default_factory=dict)  # (B, K·σ) → chosen tile of B
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    # --- structure -----------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        return max((c.level for c in self.components), default=0)

    def at_level(self, level: int) -> list[Component]:
        return [c for c in self.components if c.level == level]

    def _image(self, mask: int, a: int) -> int:
        out = 0
        for q in _members(mask):
            out |= 1 << self.dfa.delta[q][a]
        return out

    def _map(self, mapping: dict[int, int], mask: int) -> int:
        out = 0
        for q in _members(mask):
            out |= 1 << mapping[q]
        return out

    def _from_rep(self, A: int, tile_index: int) -> int:
        """r_A⁻¹ of tile ``tile_index`` of A's representative: a tile of A."""
        comp = self.components[self.class_of[A]]
        inv = {v: k for k, v in self.to_rep[A].items()}
        return self._map(inv, comp.tiles[tile_index])

    def _to_rep_index(self, B: int, tile: int) -> int:
        comp = self.components[self.class_of[B]]
        return comp.tiles.index(self._map(self.to_rep[B], tile))

    # --- coordinates ---------------------------------------------------------------------------
    def encode(self, q: int) -> tuple[int, ...]:
        """A cascade state decoding to q (first tile containing q at each step; dummies 0)."""
        x = [0] * len(self.components)
        A = (1 << self.dfa.states) - 1
        while _size(A) > 1:
            comp = self.components[self.class_of[A]]
            for i in range(comp.width):
                T = self._from_rep(A, i)
                if T >> q & 1:
                    x[comp.index] = i
                    A = T
                    break
            else:  # pragma: no cover - tiles cover A
                raise AssertionError("tiles do not cover their set")
        return tuple(x)

    def chain(self, x: tuple[int, ...], below_level: int | None = None) -> list[int]:
        """The chain Q = A_0 ⊋ … of x; with ``below_level``, only the part fixed by the components
        of levels < below_level (its last set is K of the module docstring)."""
        A = (1 << self.dfa.states) - 1
        out = [A]
        while _size(A) > 1:
            comp = self.components[self.class_of[A]]
            if below_level is not None and comp.level >= below_level:
                break
            A = self._from_rep(A, x[comp.index])
            out.append(A)
        return out

    def decode(self, x: tuple[int, ...]) -> int:
        (q,) = _members(self.chain(x)[-1])
        return q

    # --- the transition ------------------------------------------------------------------------
    def action(self, comp_index: int, a: int, upper: tuple[int | None, ...]) -> Action:
        """What component ``comp_index`` does on letter ``a`` given the (previous) coordinates of
        the components of lower level numbers (``upper``; entries of other components are None and
        never read)."""
        comp = self.components[comp_index]
        key = (comp_index, a, tuple(v if self.components[i].level < comp.level else None
                                    for i, v in enumerate(upper)))
        if key not in self._memo:
            self._memo[key] = self._action(*key)
        return self._memo[key]

    def _action(self, comp_index: int, a: int, x: tuple[int | None, ...]) -> Action:
        comp = self.components[comp_index]
        B = (1 << self.dfa.states) - 1  # new chain, walked down to level comp.level
        while True:
            if _size(B) == 1:
                return OFF_CHAIN
            cB = self.components[self.class_of[B]]
            if cB.level > comp.level or (cB.level == comp.level and cB.index != comp.index):
                return OFF_CHAIN  # the component is off the new chain
            K = self.chain(x, below_level=cB.level)[-1]
            Ks = self._image(K, a)
            perm = Ks == B and _size(K) > 1 and self.class_of[K] == cB.index
            if Ks == B and not perm:  # pragma: no cover - the proof shows K·σ = B ⇒ K ~ B
                raise AssertionError("K·σ = B without K ~ B")
            if cB.index == comp.index:
                if perm:
                    pi = tuple(self._to_rep_index(B, self._image(self._from_rep(K, t), a)) for t in range(comp.width))
                    return IDENTITY if pi == tuple(range(comp.width)) else ("perm", pi)
                return ("reset", self._to_rep_index(B, self.reset_tile[(B, Ks)]))
            # a component above: follow the new chain one step
            if perm:
                B = self._image(self._from_rep(K, x[self.class_of[K]]), a)
            else:
                B = self.reset_tile[(B, Ks)]

    def step(self, x: tuple[int, ...], a: int) -> tuple[int, ...]:
        """One cascade transition: every component reads the previous coordinates above it."""
        return tuple(apply_action(self.action(i, a, x), v) for i, v in enumerate(x))

    def describe(self) -> list[dict]:
        return [{"component": c.index, "level": c.level, "width": c.width,
                 "representative": _members(c.rep), "class_size": len(c.members)} for c in self.components]


def apply_action(act: Action, v: int) -> int:
    if act[0] == "id":
        return v
    if act[0] == "perm":
        return act[1][v]
    return act[1]


def decompose(dfa: DFA) -> Cascade:
    """The holonomy cascade of ``dfa`` (algorithm and proof in the module docstring)."""
    n, m = dfa.states, dfa.letters
    full = (1 << n) - 1

    def image(A: int, a: int) -> int:
        out = 0
        for q in _members(A):
            out |= 1 << dfa.delta[q][a]
        return out

    # image sets: orbit of Q under the letters, plus singletons
    images = {full}
    todo = [full]
    while todo:
        A = todo.pop()
        for a in range(m):
            B = image(A, a)
            if B not in images:
                images.add(B)
                todo.append(B)
    images |= {1 << q for q in range(n)}
    imgs = sorted(images, key=lambda s: (-_size(s), _members(s)))

    def orbit(A: int) -> set[int]:
        seen, todo = {A}, [A]
        while todo:
            X = todo.pop()
            for a in range(m):
                Y = image(X, a)
                if Y not in seen:
                    seen.add(Y)
                    todo.append(Y)
        return seen

    orbits = {A: orbit(A) for A in imgs}
    big = [A for A in imgs if _size(A) > 1]
    # classes: mutual reachability
    classes: list[list[int]] = []
    cls: dict[int, int] = {}
    for A in big:
        if A in cls:
            continue
        members = [B for B in big if B in orbits[A] and A in orbits[B]]
        for B in members:
            cls[B] = len(classes)
        classes.append(members)

    def subducts(X: int, Y: int) -> bool:  # X ≤ Y
        return any(X & ~Z == 0 for Z in orbits[Y])

    nc = len(classes)
    reps = [min(c, key=lambda s: _members(s)) for c in classes]
    strictly_above = [[d for d in range(nc) if d != c and subducts(reps[c], reps[d])
                       and not subducts(reps[d], reps[c])] for c in range(nc)]
    level: dict[int, int] = {}

    def lev(c: int) -> int:
        if c not in level:
            level[c] = 1 + max((lev(d) for d in strictly_above[c]), default=0)
        return level[c]

    for c in range(nc):
        lev(c)
    # order components by level (stable), so that "upper" = smaller index is also true
    order = sorted(range(nc), key=lambda c: (level[c], _members(reps[c])))
    new_index = {c: i for i, c in enumerate(order)}

    def tiles_of(A: int) -> list[int]:
        below = [B for B in imgs if B != A and B & ~A == 0]
        return [B for B in below if not any(B != C and B & ~C == 0 for C in below)]

    to_rep: dict[int, dict[int, int]] = {}
    components = []
    for c in order:
        P = reps[c]
        # words from each member to P (BFS inside the class), as state maps
        maps = {P: {q: q for q in _members(P)}}
        frontier = [P]
        while frontier:  # BFS backwards: if B·a = X and X → P known, then B → P
            nxt = []
            for X in frontier:
                for B in classes[c]:
                    if B in maps:
                        continue
                    for a in range(m):
                        if image(B, a) == X:
                            maps[B] = {q: maps[X][dfa.delta[q][a]] for q in _members(B)}
                            nxt.append(B)
                            break
            frontier = nxt
        assert set(maps) == set(classes[c]), "class not strongly connected"
        tiles = tuple(sorted(tiles_of(P), key=_members))
        for A, r in maps.items():
            assert sorted(r.values()) == _members(P), "r_A is not a bijection onto the representative"
            inv = {v: k for k, v in r.items()}
            mapped = sorted(sum(1 << inv[q] for q in _members(T)) for T in tiles)
            assert mapped == sorted(tiles_of(A)), "r_A⁻¹ does not map tiles to tiles"
            to_rep[A] = r
        components.append(Component(new_index[c], level[c], tuple(sorted(classes[c], key=_members)), P, tiles))

    class_of = {A: new_index[cls[A]] for A in big}
    casc = Cascade(dfa, tuple(imgs), tuple(components), class_of, to_rep)
    # reset choices: for B non-singleton and X ∈ I, X ⊊ B: the first tile of B containing X
    for B in big:
        tB = sorted(tiles_of(B), key=_members)
        for X in imgs:
            if X != B and X & ~B == 0:
                casc.reset_tile[(B, X)] = next(T for T in tB if X & ~T == 0)
    return casc


# --- verification, independent of any LRNN ----------------------------------------------------
@dataclass
class CascadeCheck:
    ok: bool
    reachable_cascade_states: int
    transitions_checked: int
    components: int
    levels: int
    max_width: int
    all_actions_perm_or_reset: bool
    errors: list[str]

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _is_perm_or_const(f: tuple[int, ...]) -> bool:
    return len(set(f)) in (1, len(f))


def verify_cascade(casc: Cascade, *, max_states: int = 200_000) -> CascadeCheck:
    """Exhaustive check that ``decode`` is a homomorphism from the cascade states reachable from
    the encodings of every DFA state onto the DFA: decode(step(x, σ)) = delta[decode(x)][σ], every
    state has an encoding, and every component action, as a map of the component's own
    coordinate, is a permutation or a constant (identity included)."""
    dfa = casc.dfa
    errors: list[str] = []
    starts = {casc.encode(q) for q in range(dfa.states)}
    for q in range(dfa.states):
        if casc.decode(casc.encode(q)) != q:
            errors.append(f"encode/decode of state {q} gives {casc.decode(casc.encode(q))}")
    seen, todo, checked, shapes_ok = set(starts), list(starts), 0, True
    while todo and len(errors) < 5:
        x = todo.pop()
        q = casc.decode(x)
        for a in range(dfa.letters):
            for i, c in enumerate(casc.components):
                f = tuple(apply_action(casc.action(i, a, x), v) for v in range(c.width))
                shapes_ok &= _is_perm_or_const(f)
            y = casc.step(x, a)
            checked += 1
            if casc.decode(y) != dfa.delta[q][a]:
                errors.append(f"state {x} (decodes to {q}) on letter {dfa.alphabet[a]!r} goes to {y}, "
                              f"which decodes to {casc.decode(y)}, not {dfa.delta[q][a]}")
            if y not in seen:
                if len(seen) >= max_states:
                    errors.append(f"more than {max_states} reachable cascade states; stopped")
                    todo = []
                    break
                seen.add(y)
                todo.append(y)
    if not shapes_ok:
        errors.append("some component action is neither a permutation nor a constant")
    return CascadeCheck(not errors, len(seen), checked, len(casc.components), casc.levels,
                        max((c.width for c in casc.components), default=0), shapes_ok, errors)


def all_cascade_states(casc: Cascade) -> Iterable[tuple[int, ...]]:
    """Every coordinate tuple (the full product; small cascades only)."""
    return product(*(range(c.width) for c in casc.components))
