"""A5, S4 and S5 with DeltaNet [−1,1] — one reflection per token, the group element of a block of tokens.

**Claim** [ours; constructive]. Let G ⊂ O(d) be finite, N a finite set of unit normals, and L = 2^j
such that every element of G is a product of at most L reflections ``H(n) = I − 2nnᵀ``, n ∈ N.
Then a stack of DeltaNet [−1,1] layers (one generalized Householder factor per token, β ∈ {0, ¾, 2})
solves G's word problem with 1 + max(j, log₂P + 1) layers (P below). Siems et al. 2025 (DeltaProduct,
Thm 1(iii) [S]) state S_n with 4 DeltaNet layers through wide lookup MLPs; this is a different,
explicit construction, verified here for

* A5 (icosahedral rotations) and S4 (cube rotations) ⊂ SO(3): N = the axes of the group's half turns
  (the half turn J about a is ``2aaᵀ − I = −H(a)``), every element is a product of two half turns of
  the group (``J₁J₂ = H(a₁)H(a₂)``; checked by search), L = 2, P = 1 — **two layers**;
* S5 as 5×5 permutation matrices: N = the swap normals (e_i − e_j)/√2, ≤ 4 swaps per element,
  L = 4, P = 2 — **three layers**.

**Blocks.** Cut the word into blocks of L letters; the block ``x_{(s−1)L+1} ⋯ x_{sL}`` multiplies to
``u_s = x_{sL} ∘ ⋯ ∘ x_{(s−1)L+1}`` ∈ G, again a product of ≤ L reflections ``H(n_L)⋯H(n_1)`` (padded with
identity factors, β = 0). One reflection per token cannot apply a letter (a rotation needs two), but
L tokens have L factors to spend on their product: the main layer (state h ∈ R^{d×d}, h₀ = I) applies
the factors of u_s one per step at steps sL, sL + 1, …, sL + L − 1 — from the block's last step on,
through the next block. After step t = sL + r (0 ≤ r < L, s ≥ 1), with g_t = x_t ∘ ⋯ ∘ x_1,

    h_t = H(n_{r+1})⋯H(n_1) · g_{(s−1)L},              (the factors of u_s)
    g_t = x_t ∘ ⋯ ∘ x_{sL+1} ∘ [H(n_L)⋯H(n_{r+2}) · h_t],

and for t < L, h_t = I and g_t is the product of the letters so far. Both the factor to apply and
the readout are finite lookups of r = t mod L and of the letters x_t, …, x_{t−2L+2}; h_t is decoded
as the nearest matrix of the finite group the reflections in N generate (G × {±I} for the SO(3)
groups, S5 itself for swaps).

**What the lower layers supply.**

* r = t mod L: a ripple counter of j scalar reflection layers (bit i flips, h ← −h, on the steps
  where bits 1..i−1 are all 0).
* The last 2L − 1 letters: P *fading* delay heads [ours, as ``delay="fading"`` in
  :mod:`regular_lrnn`]. Head ρ has the row state S ∈ R^{1×|Σ|} (K = 1, key 1) and on the steps
  t ≡ ρ (mod P) resets S ← ¼S + ¾e_x (β = ¾, v = e_x; otherwise β = 0), so it holds
  Σ_k ¾·4^{−k} e_{k-th newest letter} — base-4 digits: the newest letter is argmax S (¾ against
  ≤ ¼), and 4S − 3e_{newest} holds the older ones in the same form. Each head reads back
  ⌈(2L − 1)/P⌉ letters: more heads, fewer digits each — what bf16 (8 significant bits) needs.
  Heads keyed by t mod P sit one layer above the counter bit that gives it.

Every transition has eigenvalues in {1, −1} (reflections, counters) or {1, ¼} (delays), and norm ≤ 1.
Each layer declares the matrix every token means (the counters ±1, the delays 1 and ¼, the main
layer's mirrors: a transposition, or −J for the half turn J) and :func:`verify` compares the realized
transitions with them, so a drifted key fails even where every word still decodes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .construction import Automaton, Construction, Layer, construction, nearest, run_words
from .deltanet_groups import verified_check, z2_layer
from .exactness import precision_bound, representation_defect
from .groups import (Group, _rot_key, alternating_group, as_swaps, closure, icosahedral_group,
                     isomorphism_to_permutations, octahedral_group, perm_matrix, symmetric_group)
from .linalg import axis_angle, swap_key
from .regular_lrnn import FADING_BETA

SOURCE = ("construction [ours]; Siems et al. 2025 (DeltaProduct, Thm 1(iii)) [S] state S_n with 4 DeltaNet "
          "layers; SO(3) factorization: Cartan–Dieudonné")
HYPOTHESIS = ("every layer DeltaNet with n_h = 1: one generalized Householder factor per token, unit keys, "
              "β ∈ {0, ¾, 2} (eigenvalues in [−1, 1]), spectral norm ≤ 1")


def fading_head(alphabet: int, depth: int, name: str) -> Layer:
    """A delay head over ``alphabet`` letters: token 0 holds (β = 0), token 1 + x resets to x
    (S ← ¼S + ¾e_x). Its label codes the ``depth`` newest letters, newest first, as base-(|Σ|+1)
    digits; digit |Σ| means "no letter yet"."""
    import sympy as sp

    none = alphabet
    keys = np.ones((alphabet + 1, 1, 1))
    betas = np.array([[0.0]] + [[FADING_BETA]] * alphabet)
    quarter = sp.Matrix([[sp.Rational(1, 4)]])                      # S ← ¼S + ¾e_x: the transition is ¼
    exact = {0: sp.Matrix([[1]]), **{1 + x: quarter for x in range(alphabet)}}
    values = np.concatenate([np.zeros((1, 1, alphabet)), np.eye(alphabet)[:, None, :]])

    def decode(states: np.ndarray) -> np.ndarray:
        s = np.array(states, dtype=np.float64).reshape(states.shape[0], alphabet)
        rows = np.arange(s.shape[0])
        code, present = np.zeros(s.shape[0], dtype=np.int64), np.ones(s.shape[0], dtype=bool)
        for j in range(depth):
            c = np.argmax(np.where(np.isfinite(s), s, -np.inf), axis=1)
            present &= s[rows, c] > 0.5
            code += np.where(present, c, none) * (alphabet + 1) ** j
            s = 4.0 * s
            s[rows, c] -= 3.0
        return code

    return Layer("delta_rule", {"k": keys, "beta": betas, "v": values}, h0=np.zeros((1, 1, alphabet)),
                 decode=decode, options={"eigenvalue_range": "[-1,1]"}, name=name, exact=exact)


class Wiring:
    """Heads of a DeltaNet stack at their levels — a ripple counter, delayed streams, main heads —
    and the lookups between them. Subclasses give a stream's current value (:meth:`stream_value`) and
    the main heads' tokens (:meth:`main_tokens`)."""

    def __init__(self, block: int, phases: int):
        if block < 2 or block & (block - 1) or phases < 1 or phases & (phases - 1) or block % phases:
            raise ValueError(f"block must be a power of two ≥ 2 and phases a power of two dividing it, got "
                             f"{block}, {phases}")
        self.L, self.P = block, phases
        self.bits, self.phase_bits = int(math.log2(block)), int(math.log2(phases))
        self.sizes: dict = {}
        self.reaches: dict = {}
        self._entries = [(b + 1, ("counter", b), z2_layer(f"counter bit {b + 1}: t mod {2 ** (b + 1)}"))
                         for b in range(self.bits)]

    def add_stream(self, stream, alphabet: int, reach: int, level: int) -> None:
        """P fading heads keyed by t mod P, together holding the stream's values x_{t−k}, k ≤ ``reach``."""
        if level <= self.phase_bits:
            raise ValueError(f"a stream keyed by t mod {self.P} needs level > {self.phase_bits}, got {level}")
        self.sizes[stream], self.reaches[stream] = alphabet, reach
        self._entries += [(level, ("delay", stream, p), fading_head(alphabet, reach // self.P + 1,
                                                                    f"delay {stream}, t ≡ {p} mod {self.P}"))
                          for p in range(self.P)]

    def add(self, level: int, role, layer: Layer) -> None:
        self._entries.append((level, role, layer))

    def finish(self) -> None:
        entries = sorted(self._entries, key=lambda e: e[0])
        self.levels = tuple(e[0] for e in entries)
        self.roles = [e[1] for e in entries]
        self.layers = [e[2] for e in entries]
        self.index = {role: i for i, role in enumerate(self.roles)}

    # --- lookups -------------------------------------------------------------------------------
    def phase(self, labels: list, bits: int, n: int) -> np.ndarray:
        """t mod 2^bits (of n sequences) from the counter labels."""
        return sum((labels[self.index["counter", b]].astype(np.int64) << b for b in range(bits)),
                   np.zeros(n, dtype=np.int64))

    def history(self, labels: list, stream) -> np.ndarray:
        """[reach + 1, N]: row k is the stream's value at t − k (its alphabet size where t − k < 1),
        read from head (t − k) mod P, digit ⌊k/P⌋."""
        size, reach = self.sizes[stream], self.reaches[stream]
        codes = np.stack([labels[self.index["delay", stream, p]] for p in range(self.P)])
        k = np.arange(reach + 1)[:, None]
        head = (self.phase(labels, self.phase_bits, codes.shape[1])[None, :] - k) % self.P
        return (codes[head, np.arange(codes.shape[1])[None, :]] // (size + 1) ** (k // self.P)) % (size + 1)

    def route(self, i: int, letters: np.ndarray, labels: list) -> np.ndarray:
        role = self.roles[i]
        if role[0] == "counter":
            lower = [labels[self.index["counter", b]] == 0 for b in range(role[1])]
            return np.all(lower, axis=0).astype(np.int64) if lower else np.ones_like(letters)
        if role[0] == "delay":
            due = self.phase(labels, self.phase_bits, len(letters)) == role[2]
            return np.where(due, self.stream_value(role[1], letters, labels) + 1, 0)
        return self.main_tokens(role, letters, labels)

    def stream_value(self, stream, letters: np.ndarray, labels: list) -> np.ndarray:
        raise NotImplementedError

    def main_tokens(self, role, letters: np.ndarray, labels: list) -> np.ndarray:
        raise NotImplementedError


class BlockSchedule(Wiring):
    """The block construction for ``group`` (matrices ``mats``): ``normals`` N and ``factors[g]``,
    indices into N in the order they act, with ``H(n_m)⋯H(n_1) = mats[g]``, m ≤ ``block``;
    ``mirrors[i]`` is the matrix ``H(normals[i])`` means (sympy, or a float group matrix), the main
    layer's exact transition (:mod:`exactness`)."""

    def __init__(self, name: str, group: Group, mats: list[np.ndarray], normals: list[np.ndarray],
                 factors: list[list[int]], block: int, phases: int, mirrors: list):
        import sympy as sp

        super().__init__(block, phases)
        if max(len(f) for f in factors) > block:
            raise ValueError(f"{name}: an element needs more than block = {block} reflections")
        self.name, self.group, self.mats = name, group, mats
        self.A, d = group.order, mats[0].shape[0]
        self.reach = 2 * block - 2                               # oldest letter read: x_{t−2L+2}
        self.depth_per_head = self.reach // phases + 1
        # main-layer tokens: 0 = identity (β = 0), 1 + m = H(normals[m])
        self.factor = np.zeros((self.A, block), dtype=np.int64)
        for g, f in enumerate(factors):
            self.factor[g, :len(f)] = np.asarray(f, dtype=np.int64) + 1
        keys = [[np.eye(d)[0]]] + [[n] for n in normals]
        betas = [[0.0]] + [[2.0]] * len(normals)
        reflections = [np.eye(d) - 2.0 * np.outer(n, n) for n in normals]
        self.book = book = closure(reflections, lambda s, g: s @ g, np.eye(d), key=_rot_key)
        index = {_rot_key(m): i for i, m in enumerate(mats)}
        # rest[g, r, c]: the group element H(n_L)⋯H(n_{r+2}) · book[c] (−1 where that is not in G)
        self.rest = np.full((self.A, block, len(book)), -1, dtype=np.int64)
        for g in range(self.A):
            for r in range(block):
                tail = np.eye(d)
                for tok in self.factor[g, r + 1:]:
                    if tok:
                        tail = reflections[tok - 1] @ tail
                for c, m in enumerate(book):
                    self.rest[g, r, c] = index.get(_rot_key(tail @ m), -1)
        main = Layer("delta_rule", {"k": keys, "beta": betas, "v": np.zeros((len(keys), 1, d))},
                     h0=np.eye(d).reshape(1, d, d), decode=nearest(book), options={"eigenvalue_range": "[-1,1]"},
                     name=f"{d}×{d} reflections, one factor of a block product per token",
                     exact={0: sp.eye(d), **{1 + i: m for i, m in enumerate(mirrors)}})
        self.add_stream("x", self.A, self.reach, self.phase_bits + 1)
        self.add(max(self.bits, self.phase_bits + 1) + 1, ("main",), main)
        self.finish()

    def stream_value(self, stream, letters, labels):
        return letters

    def block_product(self, xs: np.ndarray, r: np.ndarray):
        """u_s (the product of the block completed r steps ago) and whether that block exists; ``xs``
        the letters' :meth:`history`."""
        u, ok = np.zeros_like(r), np.ones(len(r), dtype=bool)
        for k in range(self.reach, -1, -1):
            inside = (k >= r) & (k <= r + self.L - 1)
            ok &= ~inside | (xs[k] < self.A)
            u = np.where(inside & (xs[k] < self.A), self.group.table[u, np.minimum(xs[k], self.A - 1)], u)
        return u, ok

    def main_tokens(self, role, letters, labels):
        r = self.phase(labels, self.bits, len(letters))
        u, ok = self.block_product(self.history(labels, "x"), r)
        return np.where(ok, self.factor[u, r], 0)

    def read(self, labels: list) -> np.ndarray:
        main = labels[-1]
        r = self.phase(labels, self.bits, len(main))
        xs = self.history(labels, "x")
        u, ok = self.block_product(xs, r)
        q = np.where(ok, self.rest[u, r, np.maximum(main, 0)], 0)
        for k in range(self.L - 2, -1, -1):                     # x_{sL+1}, …, x_t
            q = np.where((k < r) & (q >= 0), self.group.table[np.maximum(q, 0), np.minimum(xs[k], self.A - 1)], q)
        return np.where(main >= 0, q, -1)

    def construction(self, description: str) -> Construction:
        return Construction(self.name, Automaton(self.group.table), self.layers, route=self.route, readout=self.read,
                            levels=self.levels, description=description)


# --- instances ----------------------------------------------------------------------------------
def half_turns(mats: list[np.ndarray]) -> list[int]:
    """Indices of the group's half turns (rotations by π)."""
    return [i for i, m in enumerate(mats) if i and abs(axis_angle(m)[1] - np.pi) < 1e-9]


def half_turn_factors(mats: list[np.ndarray]) -> tuple[list[np.ndarray], list[list[int]]]:
    """Normals = the axes of the half turns J of the group (in :func:`half_turns` order); each element
    g ≠ e as J₁J₂ = H(a₁)H(a₂), i.e. factors [a₂, a₁] (a₂'s reflection acts first). Raises if some
    element is no such product."""
    index = {_rot_key(m): i for i, m in enumerate(mats)}
    halves = half_turns(mats)
    normals = [axis_angle(mats[i])[0] for i in halves]
    factors = [[] for _ in mats]
    for (p, a), (q, b) in itertools.product(enumerate(halves), repeat=2):
        g = index[_rot_key(mats[a] @ mats[b])]
        if g and not factors[g]:
            factors[g] = [q, p]
    missing = [g for g in range(1, len(mats)) if not factors[g]]
    if missing:
        raise ValueError(f"elements {missing} are not products of two half turns of the group")
    return normals, factors


def so3_blocks(which: str) -> BlockSchedule:
    """The mirror of half turn J about a is H(a) = −J: its exact matrix is −J, a matrix of the group
    (whose distance from an exact representation :func:`_so3_evidence` bounds)."""
    group, mats = icosahedral_group() if which == "A5" else octahedral_group()
    normals, factors = half_turn_factors(mats)
    return BlockSchedule(f"groups.deltanet.blocks.{which}", group, mats, normals, factors, block=2, phases=1,
                         mirrors=[-mats[i] for i in half_turns(mats)])


def s5_blocks(phases: int = 2) -> BlockSchedule:
    """The mirror of swap normal (e_i − e_j)/√2 means the transposition (i j), exactly."""
    from .exactness import transposition

    group = symmetric_group(5)
    pairs = list(itertools.combinations(range(5), 2))
    normals = [swap_key(i, j, 5) for i, j in pairs]
    factors = [[pairs.index(tuple(sorted(s))) for s in as_swaps(p)] for p in group.elements]
    return BlockSchedule("groups.deltanet.blocks.S5", group, [perm_matrix(p) for p in group.elements], normals,
                         factors, block=4, phases=phases, mirrors=[transposition(i, j, 5) for i, j in pairs])


DESCRIPTIONS = {
    "A5": "A5 as icosahedral rotations in two DeltaNet [−1,1] layers: layer 1 = parity + one fading delay head; "
          "layer 2 applies each two-letter block's product as two half-turn mirrors, one per token",
    "S4": "S4 as cube rotations in two DeltaNet [−1,1] layers: layer 1 = parity + one fading delay head; "
          "layer 2 applies each two-letter block's product as two half-turn mirrors, one per token",
    "S5": "S5 as 5×5 permutation matrices in three DeltaNet [−1,1] layers: counter bits (t mod 4), two fading "
          "delay heads (keyed by t mod 2); layer 3 applies each four-letter block's product as ≤ 4 swap "
          "reflections, one per token",
}


def blocks_construction(which: str) -> Construction:
    return (s5_blocks() if which == "S5" else so3_blocks(which)).construction(DESCRIPTIONS[which])


for _which in DESCRIPTIONS:
    construction(f"groups.deltanet.blocks.{_which}")(lambda w=_which: blocks_construction(w))


def _so3_evidence() -> dict:
    """The isomorphisms, the two-half-turn factorization, and that the float group matrices the
    mirrors are compared with (−J) are an exact representation up to the float64 bound."""
    a5, mats = icosahedral_group()
    s4, cube = octahedral_group()
    return {"icosahedral rotations ≅ A5 (explicit isomorphism found)":
            isomorphism_to_permutations(a5, alternating_group(5)) is not None,
            "cube rotations ≅ S4 (explicit isomorphism found)":
            isomorphism_to_permutations(s4, symmetric_group(4)) is not None,
            "every element a product of two half turns of its group": all(
                bool(half_turn_factors(m)) for m in (mats, cube)),
            "group matrices (the mirrors' exact −J) satisfy the group table within the float64 bound (as groups.so3)":
            max(representation_defect(mats, a5.table), representation_defect(cube, s4.table)) <= precision_bound(3, 2)}


verified_check("groups.deltanet.blocks.SO3", "A5 and S4 (SO(3)) word problems with two DeltaNet [−1,1] layers",
               lambda: [blocks_construction(w) for w in ("A5", "S4")], _so3_evidence,
               exact_cap=2, emulate_cap=2, source=SOURCE, hypothesis=HYPOTHESIS)
def _s5_evidence() -> dict:
    """Why two delay heads: one head reading back 2L − 1 = 7 base-4 digits needs 14 bits; bf16 has 8."""
    words = np.random.default_rng(0).integers(0, 120, size=(16, 40))
    one_head = s5_blocks(phases=1).construction("S5 with one delay head")
    return {"every element ≤ 4 swaps": max(len(as_swaps(p)) for p in symmetric_group(5).elements) <= 4,
            "one delay head (7 digits) goes wrong in bf16, not in fp32 (why two heads)":
            run_words(one_head, "emulate:fp32", words)["ok"] and not run_words(one_head, "emulate:bf16", words)["ok"]}


verified_check("groups.deltanet.blocks.S5", "S5 word problem with three DeltaNet [−1,1] layers",
               lambda: [blocks_construction("S5")], _s5_evidence,
               exact_cap=1, emulate_cap=2, source=SOURCE, hypothesis=HYPOTHESIS)
