"""Dihedral word problems with two DeltaNet [−1,1] layers (one reflection per token per layer).

**Claim** (Siems et al. 2025, DeltaProduct v2 abstract [S]): DeltaNet[−1,1] solves the word problem of
every dihedral group D_m with 2 layers. D_3 ≅ S_3, so this is the "S3 with two DeltaNet layers" cell.

**Construction** [ours, the idea of Grazzi et al. 2025 Thm 6 carried to D_m]. D_m acts on R² as
``(j, f) ↦ R(2πj/m) Fᶠ`` with ``F = diag(1, −1)``: rotations (f = 0) and the reflections
``R(2πj/m) F = Href(2πj/m)`` (f = 1). A rotation is a product of two reflections, so one layer with one
reflection per token cannot apply it — but it can apply it *up to a frame flip*. Let c_t be the parity
of the number of non-identity rotations among x_1..x_t, and keep

    h_t = F^{c_t} g_t v₀,            g_t = x_t ⋯ x_1 (the prefix product).

Then ``h_t = M_t h_{t−1}`` with ``M_t = F^{c_t} x_t F^{c_{t−1}}``, and det M_t = det(x_t)·(−1)^{c_t+c_{t−1}}:

* x_t = e: c_t = c_{t−1}, M_t = I (β = 0);
* x_t a reflection: c_t = c_{t−1}, M_t = F^c x_t F^c, a reflection;
* x_t a non-identity rotation: c_t = 1 − c_{t−1}, M_t = F^{c_t} x_t F^{1−c_t}, a reflection.

So every token is one generalized Householder factor ``I − β k kᵀ`` with β ∈ {0, 2}:

* layer 1 (K = V = 1): the scalar reflection h ← −h on non-identity rotations, β = 0 otherwise;
  it outputs c_t;
* layer 2 (K = 2, V = 1): reads (x_t, c_t) — c_{t−1} = c_t ⊕ [x_t a rotation ≠ e] — and applies M_t as
  ``I − 2 n nᵀ`` with n the unit normal of its mirror; the decoder takes the nearest of the 2m points
  ``E v₀`` (E ∈ D_m; v₀ at angle π/(2m), on no mirror, so the orbit is 2m points π/m apart) and returns
  ``g_t = F^{c_t} E``.

Every transition is real-spectrum (eigenvalues ±1), so no single layer counts mod 3 (Grazzi Thm 2);
the pair does because the two layers together realize the rotation.
"""

from __future__ import annotations

import time

import numpy as np

from .construction import Automaton, Construction, Layer, construction, hypothesis_report, nearest
from .groups import Group, isomorphism_to_permutations, symmetric_group
from .linalg import reflection2, reflection2_key, rotation2
from .result import CheckResult, check
from .verify import summarize, verify

ORDERS = (3, 4, 5)  # D3 ≅ S3 (order 6), D4 (8), D5 (10)
SOURCE = "Siems et al. 2025 (DeltaProduct, v2 abstract) [S]; construction [ours], after Grazzi et al. 2025 Thm 6"


def dihedral_group(m: int) -> Group:
    """D_m as pairs (j, f) ↔ R(2πj/m) Fᶠ; identity first; ``table[q, a]`` = index of a ∘ q."""
    elements = tuple((j, f) for f in (0, 1) for j in range(m))
    index = {e: i for i, e in enumerate(elements)}

    def compose(a, b):  # a ∘ b: R_a Fᶠᵃ R_b Fᶠᵇ = R_{a + (−1)^{fa} b} F^{fa ⊕ fb}
        return ((a[0] + (-1) ** a[1] * b[0]) % m, a[1] ^ b[1])

    table = np.array([[index[compose(a, q)] for a in elements] for q in elements], dtype=np.int64)
    return Group(f"D{m}", elements, table)


def matrix(m: int, element) -> np.ndarray:
    j, f = element
    return reflection2(2 * np.pi * j / m) if f else rotation2(2 * np.pi * j / m)


def dihedral_construction(m: int) -> Construction:
    group = dihedral_group(m)
    G, F = group.order, group.elements.index((0, 1))
    rotation = np.array([f == 0 and j != 0 for j, f in group.elements], dtype=np.int64)  # flips c
    flip = lambda c, e: group.table[e, F] if c else e  # noqa: E731  — F^c ∘ e

    keys, betas = [], []
    for x in range(G):  # layer-2 token 2x + c_t
        for c in (0, 1):
            before = F if c ^ rotation[x] else 0                      # F^(c_{t−1})
            j, f = group.elements[flip(c, group.table[before, x])]  # M = F^c ∘ x ∘ F^(c_{t−1})
            if (j, f) == (0, 0):
                keys.append([np.array([1.0, 0.0])])
                betas.append([0.0])
            elif f == 1:
                keys.append([reflection2_key(2 * np.pi * j / m)])
                betas.append([2.0])
            else:
                raise AssertionError(f"D{m}: token ({x}, {c}) would need a rotation")
    v0 = rotation2(np.pi / (2 * m)) @ np.array([1.0, 0.0])
    book = nearest([matrix(m, e) @ v0 for e in group.elements])
    sign = Layer("delta_rule", {"k": [[[1.0]], [[1.0]]], "beta": [[0.0], [2.0]], "v": np.zeros((2, 1, 1))},
                 h0=np.ones((1, 1, 1)), decode=nearest([[1.0], [-1.0]]), options={"eigenvalue_range": "[-1,1]"},
                 name="c_t: h ← −h on rotations ≠ e")
    mirror = Layer("delta_rule", {"k": keys, "beta": betas, "v": np.zeros((2 * G, 1, 1))},
                   h0=v0.reshape(1, 2, 1), decode=book, options={"eigenvalue_range": "[-1,1]"},
                   name=f"2×2 reflections M(x_t, c_t), m = {m}")

    def route(i, letters, labels):
        return rotation[letters] if i == 0 else 2 * letters + labels[0]

    def readout(labels):
        c, e = labels
        return np.where(c == 1, group.table[e, F], e)

    return Construction(f"groups.dihedral.D{m}", Automaton(group.table), [sign, mirror], route=route,
                        readout=readout,
                        description=f"D{m} in two DeltaNet [−1,1] layers: c_t = parity of rotations ≠ e; "
                                    f"h_t = F^(c_t) g_t v₀ by one reflection per token")


for _m in ORDERS:
    construction(f"groups.dihedral.D{_m}")(lambda m=_m: dihedral_construction(m))


@check("groups.dihedral")
def check_dihedral(profile: str) -> CheckResult:
    start = time.perf_counter()
    evidence, ok = {}, True
    iso = isomorphism_to_permutations(dihedral_group(3), symmetric_group(3))
    evidence["D3 ≅ S3 (explicit isomorphism found)"] = iso is not None
    ok &= iso is not None
    for m in ORDERS:
        con = dihedral_construction(m)
        hyp = hypothesis_report(con)
        ev = verify(con, profile, exact_cap=3, emulate_cap=4)
        evidence[con.name] = {"construction": con.description, "hypothesis": hyp, "summary": summarize(ev), **ev}
        ok &= hyp["ok"] and ev["ok"]
    return CheckResult("groups.dihedral", "D_m word problems (D3 ≅ S3, D4, D5) with two DeltaNet [−1,1] layers, "
                       "one reflection per token", SOURCE,
                       "layer 1: scalar transitions in {1, −1}; layer 2: 2×2 identity or reflection (β ∈ {0, 2}, "
                       "unit keys); n_h = 1 in both", "verified" if ok else "failed", evidence,
                       time.perf_counter() - start)
