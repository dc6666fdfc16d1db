"""Non-abelian word problems with several DeltaNet [−1,1] layers — one reflection per token per layer.

**Claims** (Siems et al. 2025, DeltaProduct [S]): DeltaNet[−1,1] solves every dihedral group D_m with 2
layers (v2 abstract) and S_n with 4 layers (Thm 1(iii), through wide lookup MLPs). Checked here: D_m
(D3 ≅ S3) with 2 layers and S4 with 3 layers, by explicit constructions [ours]; A5, S4 and S5 by
blocks of tokens are in :mod:`deltanet_blocks`.

**D_m in two layers** (the idea of Grazzi et al. 2025 Thm 6, carried to D_m). D_m acts on R² as
``(j, f) ↦ R(2πj/m) Fᶠ`` with ``F = diag(1, −1)``: rotations (f = 0) and the reflections
``R(2πj/m) F = Href(2πj/m)`` (f = 1). A rotation is two reflections, so one layer with one reflection
per token cannot apply it — but it can apply it *up to a frame flip*. Let c_t be the parity of the
number of non-identity rotations among x_1..x_t, and keep

    h_t = F^{c_t} g_t v₀,            g_t = x_t ⋯ x_1 (the prefix product).

Then ``h_t = M_t h_{t−1}`` with ``M_t = F^{c_t} x_t F^{c_{t−1}}``, and det M_t = det(x_t)·(−1)^{c_t+c_{t−1}}:
x_t = e gives M_t = I (β = 0); a reflection x_t keeps c and M_t = F^c x_t F^c is a reflection; a
rotation x_t ≠ e flips c and M_t = F^{c_t} x_t F^{1−c_t} is a reflection. So

* layer 1 (K = V = 1): the scalar reflection h ← −h on non-identity rotations (β = 2, else 0); it
  outputs c_t;
* layer 2 (K = 2, V = 1): reads (x_t, c_t) — c_{t−1} = c_t ⊕ [x_t a rotation ≠ e] — and applies M_t as
  ``I − 2 n nᵀ``, n the unit normal of its mirror; its decoder takes the nearest of the 2m points
  ``E v₀`` (E ∈ D_m; v₀ at angle π/(2m), on no mirror: 2m points π/m apart), and g_t = F^{c_t} E.

**S4 in three layers** (a quotient by a normal subgroup). V4 = {e, (01)(23), (02)(13), (03)(12)} is
normal in S4 with S4/V4 ≅ S3 (S4 permuting the three pairings of {0,1,2,3}) and the stabilizer of 3 a
complement: every g = s(ḡ)·n, s(ḡ) ∈ Stab(3), n ∈ V4. Layers 1–2 run the D3 construction on the
image ḡ_t ∈ S3 ≅ D3. Then n_t = s(ḡ_t)⁻¹ g_t obeys n_t = M_t n_{t−1} with

    M_t = s(ḡ_t)⁻¹ x_t s(ḡ_{t−1}) ∈ V4,         ḡ_{t−1} = x̄_t⁻¹ ḡ_t,

a function of (x_t, ḡ_t) — what layer 3 reads. V4 ≅ Z2 × Z2 (basis (01)(23), (02)(13)) is abelian,
so each coordinate is one scalar reflection head of layer 3. The readout is g_t = s(ḡ_t)·n_t.

Every transition has a real spectrum (±1), so no single layer counts mod 3 (Grazzi Thm 2); the
stack does, because the layers together realize the rotations.

Each layer declares the matrix every token means — ±1 for the counters, ``F^c X F^{c_{t−1}}``
multiplied out in sympy for the mirrors — and the checks compare the realized transitions with them
(:mod:`exactness`): a mirror key off by 0.1° fails, though every checked word still decodes.
"""

from __future__ import annotations

import time

import numpy as np

from .construction import Automaton, Construction, Layer, construction, hypothesis_report, nearest
from .groups import Group, compose, isomorphism_to_permutations, symmetric_group
from .linalg import reflection2, reflection2_key, rotation2
from .result import CheckResult, check
from .verify import summarize, verify

ORDERS = (3, 4, 5)  # D3 ≅ S3 (order 6), D4 (8), D5 (10)
SOURCE = ("Siems et al. 2025 (DeltaProduct: v2 abstract, Thm 1(iii)) [S]; constructions [ours], "
          "after Grazzi et al. 2025 Thm 6")
HYPOTHESIS = ("every layer DeltaNet with n_h = 1: scalar transitions in {1, −1} or 2×2 identity / reflection "
              "(β ∈ {0, 2}, unit keys)")


def dihedral_group(m: int) -> Group:
    """D_m as pairs (j, f) ↔ R(2πj/m) Fᶠ; identity first; ``table[q, a]`` = index of a ∘ q."""
    elements = tuple((j, f) for f in (0, 1) for j in range(m))
    index = {e: i for i, e in enumerate(elements)}

    def product(a, b):  # a ∘ b: R_a Fᶠᵃ R_b Fᶠᵇ = R_{a + (−1)^{fa} b} F^{fa ⊕ fb}
        return ((a[0] + (-1) ** a[1] * b[0]) % m, a[1] ^ b[1])

    table = np.array([[index[product(a, q)] for a in elements] for q in elements], dtype=np.int64)
    return Group(f"D{m}", elements, table)


def matrix(m: int, element) -> np.ndarray:
    j, f = element
    return reflection2(2 * np.pi * j / m) if f else rotation2(2 * np.pi * j / m)


def exact_matrix(m: int, element):
    """``R(2πj/m) Fᶠ`` in sympy (algebraic numbers), F = diag(1, −1)."""
    import sympy as sp

    from . import exactness

    j, f = element
    return exactness.rotation2(j, m) * sp.diag(1, -1) ** f


def z2_layer(name: str) -> Layer:
    """A Z2 counter: token 1 flips the scalar state (h ← −h, β = 2), token 0 keeps it; label 0 / 1."""
    import sympy as sp

    return Layer("delta_rule", {"k": [[[1.0]], [[1.0]]], "beta": [[0.0], [2.0]], "v": np.zeros((2, 1, 1))},
                 h0=np.ones((1, 1, 1)), decode=nearest([[1.0], [-1.0]]), options={"eigenvalue_range": "[-1,1]"},
                 name=name, exact={0: sp.Matrix([[1]]), 1: sp.Matrix([[-1]])})


class Dihedral:
    """The two layers of the D_m construction and how they read letters and are read out."""

    def __init__(self, m: int):
        self.m, self.group = m, dihedral_group(m)
        g = self.group
        self.F = g.elements.index((0, 1))
        self.rotation = np.array([f == 0 and j != 0 for j, f in g.elements], dtype=np.int64)  # flips c
        keys, betas = [], []
        for x in range(g.order):  # layer-2 token 2x + c_t: M = F^c ∘ x ∘ F^(c_{t−1})
            for c in (0, 1):
                before = self.F if c ^ self.rotation[x] else 0
                j, f = g.elements[self.flip(c, g.table[before, x])]
                if (j, f) == (0, 0):
                    keys.append([np.array([1.0, 0.0])])
                    betas.append([0.0])
                elif f == 1:
                    keys.append([reflection2_key(2 * np.pi * j / m)])
                    betas.append([2.0])
                else:
                    raise AssertionError(f"D{m}: token ({x}, {c}) would need a rotation")
        v0 = rotation2(np.pi / (2 * m)) @ np.array([1.0, 0.0])
        self.layers = [
            z2_layer("c_t: h ← −h on rotations ≠ e"),
            Layer("delta_rule", {"k": keys, "beta": betas, "v": np.zeros((2 * g.order, 1, 1))},
                  h0=v0.reshape(1, 2, 1), decode=nearest([matrix(m, e) @ v0 for e in g.elements]),
                  options={"eigenvalue_range": "[-1,1]"}, name=f"2×2 reflections M(x_t, c_t), m = {m}",
                  exact={2 * x + c: self.exact_transition(x, c) for x in range(g.order) for c in (0, 1)}),
        ]

    def exact_transition(self, x: int, c: int):
        """What token (x, c) must realize, multiplied out in sympy: ``M = F^c X F^{c_{t−1}}`` with
        ``c_{t−1} = c ⊕ [x a rotation ≠ e]`` — independent of the keys and of the group table."""
        F, X = exact_matrix(self.m, (0, 1)), exact_matrix(self.m, self.group.elements[x])
        return F ** c * X * F ** (c ^ int(self.rotation[x]))

    def flip(self, c, e):
        """F^c ∘ e (element indices; c may be an array)."""
        return np.where(c == 1, self.group.table[e, self.F], e)

    def route(self, i: int, letters: np.ndarray, labels: list) -> np.ndarray:
        return self.rotation[letters] if i == 0 else 2 * letters + labels[0]

    def read(self, labels: list) -> np.ndarray:
        return self.flip(labels[0], labels[1])


def dihedral_construction(m: int) -> Construction:
    d = Dihedral(m)
    return Construction(f"groups.dihedral.D{m}", Automaton(d.group.table), d.layers, route=d.route,
                        readout=d.read, description=f"D{m} in two DeltaNet [−1,1] layers: c_t = parity of rotations "
                                                    f"≠ e; h_t = F^(c_t) g_t v₀ by one reflection per token")


V4_BASIS = ((1, 0, 3, 2), (2, 3, 0, 1))  # (01)(23), (02)(13); their product is (03)(12)
PAIRINGS = (frozenset({frozenset({0, 1}), frozenset({2, 3})}), frozenset({frozenset({0, 2}), frozenset({1, 3})}),
            frozenset({frozenset({0, 3}), frozenset({1, 2})}))


def s4_construction() -> Construction:
    s4, s3 = symmetric_group(4), symmetric_group(3)
    d = Dihedral(3)
    to_d3 = {v: k for k, v in isomorphism_to_permutations(d.group, s3).items()}   # S3 index → D3 index
    index4, index3 = {p: i for i, p in enumerate(s4.elements)}, {p: i for i, p in enumerate(s3.elements)}

    def bar(p):  # S4 → S3: the permutation of the three pairings
        return index3[tuple(PAIRINGS.index(frozenset(frozenset(p[i] for i in pair) for pair in P)) for P in PAIRINGS)]

    quotient = np.array([bar(p) for p in s4.elements])
    section = {quotient[i]: i for i, p in enumerate(s4.elements) if p[3] == 3}       # Stab(3) ≅ S3
    assert len(section) == 6
    power = lambda p, e: p if e else s4.elements[0]  # noqa: E731
    v4 = {index4[compose(power(V4_BASIS[0], a), power(V4_BASIS[1], b))]: (a, b) for a in (0, 1) for b in (0, 1)}
    inverse3 = np.array([s3.table[:, a].tolist().index(0) for a in range(6)])        # a⁻¹ in S3
    inverse4 = np.array([s4.table[:, a].tolist().index(0) for a in range(24)])
    # M(x, ḡ_t) = s(ḡ_t)⁻¹ ∘ x ∘ s(ḡ_{t−1}) ∈ V4, as its two coordinates
    bits = np.zeros((24, 6, 2), dtype=np.int64)
    for x in range(24):
        for gbar in range(6):
            prev = s3.table[gbar, inverse3[quotient[x]]]                                # x̄⁻¹ ∘ ḡ_t
            M = s4.table[s4.table[section[prev], x], inverse4[section[gbar]]]
            bits[x, gbar] = v4[M]
    letters_d3 = np.array([to_d3[quotient[x]] for x in range(24)])
    d3_to_s3 = {v: k for k, v in to_d3.items()}
    d3_to_s3 = np.array([d3_to_s3[i] for i in range(6)])
    section_of = np.array([section[i] for i in range(6)])
    v4_of = {ab: i for i, ab in v4.items()}
    v4_of = np.array([[v4_of[(a, b)] for b in (0, 1)] for a in (0, 1)])

    def gbar_of(labels):
        return d3_to_s3[d.read(labels[:2])]

    def route(i, letters, labels):
        if i < 2:
            return d.route(i, letters_d3[letters], labels)
        return bits[letters, gbar_of(labels), i - 2]

    def readout(labels):
        n = v4_of[labels[2], labels[3]]
        return s4.table[n, section_of[gbar_of(labels)]]                                # s(ḡ) ∘ n

    return Construction("groups.deltanet.S4", Automaton(s4.table),
                        d.layers + [z2_layer("V4 coordinate (01)(23)"), z2_layer("V4 coordinate (02)(13)")],
                        route=route, readout=readout, levels=(1, 2, 3, 3),
                        description="S4 in three DeltaNet [−1,1] layers: S4/V4 ≅ S3 ≅ D3 by the two-layer D3 "
                                    "construction, then n_t = s(ḡ_t)⁻¹ g_t ∈ V4 ≅ Z2² by two scalar "
                                    "reflection heads")


for _m in ORDERS:
    construction(f"groups.dihedral.D{_m}")(lambda m=_m: dihedral_construction(m))
construction("groups.deltanet.S4")(s4_construction)


def verified_check(name: str, result: str, build, extra=None, exact_cap: int = 3, emulate_cap: int = 4,
                   source: str = SOURCE, hypothesis: str = HYPOTHESIS):
    """Register check ``name``: every construction ``build()`` returns is verified (:func:`verify`: its
    words, and its realized transitions against the exact elements its layers declare), meets its
    hypothesis and has one factor per token; ``extra()`` adds evidence (its booleans must hold)."""
    @check(name)
    def run(profile: str) -> CheckResult:
        start = time.perf_counter()
        evidence, ok = dict(extra() if extra else {}), True
        ok &= all(v for v in evidence.values() if isinstance(v, bool))
        for con in build():
            hyp = hypothesis_report(con)
            ev = verify(con, profile, exact_cap=exact_cap, emulate_cap=emulate_cap)
            evidence[con.name] = {"construction": con.description, "layers": con.depth, "heads": len(con.layers),
                                  "n_h": [layer.n_h for layer in con.layers], "hypothesis": hyp,
                                  "summary": summarize(ev), **ev}
            ok &= hyp["ok"] and ev["ok"] and all(layer.n_h == 1 for layer in con.layers)
        return CheckResult(name, result, source, hypothesis, "verified" if ok else "failed", evidence,
                           time.perf_counter() - start)

    return run


verified_check("groups.dihedral", "D_m word problems (D3 ≅ S3, D4, D5) with two DeltaNet [−1,1] layers",
               lambda: [dihedral_construction(m) for m in ORDERS],
               lambda: {"D3 ≅ S3 (explicit isomorphism found)":
                        isomorphism_to_permutations(dihedral_group(3), symmetric_group(3)) is not None})
verified_check("groups.deltanet.S4", "S4 word problem with three DeltaNet [−1,1] layers (quotient by V4)",
               lambda: [s4_construction()], exact_cap=2, emulate_cap=3)
