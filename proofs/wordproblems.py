"""Group word problems in one layer with products of reflections.

**Theorem** (Grazzi et al. 2025, Thm 3; App. C.3): an automaton whose transition monoid is a group
G ↪ S_n is implemented by one LRNN layer with ``A: Σ → M^n_{k−1}({−1, 1})``, k the most states one
letter moves: ``H_0 = (1, 2, …, n)ᵀ``, ``B ≡ 0``, ``A(g)`` = the permutation matrix of g written as
≤ k − 1 swap reflections ``I − 2vvᵀ``, ``v = (e_i − e_j)/√2``. With every element of S_n as a letter this
is DeltaProduct with n_h = n − 1 (S3: 2, S4: 3, S5: 4; Siems et al. 2025, Thm 1(i)); Grazzi's
"only swaps" S5 variant needs n_h = 1 (DeltaNet). Unused micro-steps are padded with β = 0.

**SO(3) shortcut** (Siems et al. 2025, orthogonal-group result [S in research/theorems.md §3.2];
construction [ours, standard]): a rotation by θ about a is ``H(v)H(u)`` for any unit ``u ⊥ a`` and
``v = cos(θ/2)u + sin(θ/2)(a × u)``, so every subgroup of SO(3) needs only n_h = 2 with a 3-D key
space: the 60 icosahedral rotations (≅ A5) and the 24 cube rotations (≅ S4). State ``H_0 = I``
(3×3), decoded as the nearest group element. The isomorphisms to A5 / S4 are found explicitly.
"""

from __future__ import annotations

import time

import numpy as np

from .construction import Automaton, Construction, Layer, construction, hypothesis_report, nearest
from .exactness import precision_bound, representation_defect
from .groups import (Group, alternating_group, as_swaps, icosahedral_group, isomorphism_to_permutations, moved,
                     octahedral_group, perm_matrix, symmetric_group)
from .linalg import rotation_as_reflections, swap_key, axis_angle
from .result import CheckResult, check
from .verify import summarize, verify


def permutation_construction(n: int, n_h: int | None = None, max_moved: int | None = None) -> Construction:
    """S_n word problem with letters = the elements moving ≤ ``max_moved`` points (all by default),
    one DeltaProduct layer with ``n_h`` = the most swaps any letter needs (default: the minimum)."""
    group = symmetric_group(n)
    letters = [i for i, p in enumerate(group.elements) if max_moved is None or moved(p) <= max_moved]
    swaps = [as_swaps(group.elements[i]) for i in letters]
    need = max(len(s) for s in swaps)
    n_h = need if n_h is None else n_h
    if n_h < need:
        raise ValueError(f"n_h: a letter needs {need} swaps, got n_h = {n_h}")
    e1 = np.eye(n)[0]
    keys = [[swap_key(i, j, n) for i, j in s] + [e1] * (n_h - len(s)) for s in swaps]
    betas = [[2.0] * len(s) + [0.0] * (n_h - len(s)) for s in swaps]
    h0 = np.arange(1, n + 1, dtype=np.float64)
    book = nearest([perm_matrix(p) @ h0 for p in group.elements])
    fam = "delta_rule" if n_h == 1 else "delta_product"
    layer = Layer(fam, {"k": keys, "beta": betas, "v": np.zeros((len(letters), n_h, 1))}, h0=h0.reshape(1, n, 1),
                  decode=book, options={"eigenvalue_range": "[-1,1]"}, name=f"{fam} n_h={n_h}")
    auto = Automaton(group.table[:, letters])
    tag = "" if max_moved is None else f".moved{max_moved}"
    return Construction(f"groups.S{n}{tag}", auto, [layer],
                        description=f"S{n} ({len(letters)} letters), permutation matrices as ≤ {n_h} swap "
                                    f"reflections, H₀ = (1..{n})ᵀ")


def exact_swap_products(con: Construction, n: int, letters_group: Group, letters: list[int]) -> bool:
    """Every token's factors multiply to its permutation matrix *exactly*: ``I − 2vvᵀ`` with
    ``v = (e_i − e_j)/√2`` is the integer matrix ``I − (e_i − e_j)(e_i − e_j)ᵀ``."""
    layer = con.layers[0]
    for t, g in enumerate(letters):
        m = np.eye(n, dtype=np.int64)
        for k, beta in zip(layer.tokens["k"][t], layer.tokens["beta"][t]):
            if beta == 0:
                continue
            w = np.rint(k * np.sqrt(2.0)).astype(np.int64)  # e_i − e_j
            m = (np.eye(n, dtype=np.int64) - np.outer(w, w)) @ m
        if not np.array_equal(m, perm_matrix(letters_group.elements[g]).astype(np.int64)):
            return False
    return True


for _n in (3, 4, 5):
    construction(f"groups.S{_n}")(lambda n=_n: permutation_construction(n))
construction("groups.S5.swaps")(lambda: permutation_construction(5, max_moved=2))


def so3_construction(which: str) -> tuple[Construction, Group, list[np.ndarray]]:
    group, mats = icosahedral_group() if which == "A5" else octahedral_group()
    keys, betas = [], []
    for m in mats:
        axis, angle = axis_angle(m)
        if angle == 0.0:
            keys.append([np.eye(3)[0], np.eye(3)[0]])
            betas.append([0.0, 0.0])
        else:
            u, v = rotation_as_reflections(axis, angle)
            keys.append([u, v])
            betas.append([2.0, 2.0])
    layer = Layer("delta_product", {"k": keys, "beta": betas, "v": np.zeros((len(mats), 2, 3))},
                  h0=np.eye(3).reshape(1, 3, 3), decode=nearest(mats), options={"eigenvalue_range": "[-1,1]"},
                  name="delta_product n_h=2, K=V=3")
    con = Construction(f"groups.so3.{which}", Automaton(group.table), [layer],
                       description=f"{group.name}: each rotation as two reflections H(v)H(u), n_h = 2, H₀ = I₃")
    return con, group, mats


construction("groups.so3.A5")(lambda: so3_construction("A5")[0])
construction("groups.so3.S4")(lambda: so3_construction("S4")[0])


def _perm_check(name: str, n: int, max_moved: int | None, result: str):
    @check(name)
    def run(profile: str) -> CheckResult:
        start = time.perf_counter()
        con = permutation_construction(n, max_moved=max_moved)
        group = symmetric_group(n)
        letters = [i for i, p in enumerate(group.elements) if max_moved is None or moved(p) <= max_moved]
        exact = exact_swap_products(con, n, group, letters)
        layer = con.layers[0]
        drift = max(float(np.max(np.abs(layer.transition(t) - perm_matrix(group.elements[g]))))
                    for t, g in enumerate(letters))
        exact &= drift <= precision_bound(n, layer.n_h)
        hyp = hypothesis_report(con)
        ev = verify(con, profile, exact_cap=2, emulate_cap=3)
        ok = exact and hyp["ok"] and ev["ok"]
        evidence = {"construction": con.description, "n_h": con.layers[0].n_h, "letters": len(letters),
                    "factors multiply to the permutation matrices exactly (integer arithmetic)": exact,
                    "max |A_realized − P_g| (float64 keys)": drift,
                    "hypothesis": hyp, "summary": summarize(ev), **ev}
        return CheckResult(name, result, "Grazzi et al. 2025, Thm 3 (App. C.3); Siems et al. 2025, Thm 1(i) [S]",
                           "A(g) ∈ M^n_{k−1}({−1, 1}): ≤ k − 1 swap reflections (β = 2, unit keys), B ≡ 0",
                           "verified" if ok else "failed", evidence, time.perf_counter() - start)

    return run


_perm_check("groups.permutation.S3", 3, None, "S3 word problem in one layer, n_h = 2")
_perm_check("groups.permutation.S4", 4, None, "S4 word problem in one layer, n_h = 3")
_perm_check("groups.permutation.S5", 5, None, "S5 word problem in one layer, n_h = 4")
_perm_check("groups.permutation.S5_swaps", 5, 2, "S5 with swap letters only in one DeltaNet layer (n_h = 1)")


def _so3_check(name: str, which: str, target: Group, result: str):
    @check(name)
    def run(profile: str) -> CheckResult:
        start = time.perf_counter()
        con, group, mats = so3_construction(which)
        iso = isomorphism_to_permutations(group, target)
        layer = con.layers[0]
        bound = precision_bound(3, 2)
        err = max(float(np.max(np.abs(layer.transition(t) - m))) for t, m in enumerate(mats))
        defect = representation_defect(mats, group.table)
        hyp = hypothesis_report(con)
        ev = verify(con, profile, exact_cap=2, emulate_cap=2)
        ok = iso is not None and err <= bound and defect <= bound and hyp["ok"] and ev["ok"]
        evidence = {"construction": con.description, "group order": group.order,
                    "element orders": group.element_orders(),
                    f"explicit isomorphism to {target.name}": iso is not None,
                    "max |H(v)H(u) − R| (float64)": err,
                    "group elements: max |R_a R_q − R_(a∘q)|, |R_e − I| (drift would break the table)": defect,
                    "bound (float64 precision)": bound, "hypothesis": hyp, "summary": summarize(ev), **ev}
        return CheckResult(name, result, "Siems et al. 2025 (SO(3) ⇒ n_h = 2) [S]; construction [ours]",
                           "each token: two reflections (β = 2, unit keys) whose product is a rotation of the group",
                           "verified" if ok else "failed", evidence, time.perf_counter() - start)

    return run


_so3_check("groups.so3.A5", "A5", alternating_group(5), "All 60 elements of A5 in one layer, n_h = 2 (SO(3))")
_so3_check("groups.so3.S4", "S4", symmetric_group(4), "All 24 elements of S4 in one layer, n_h = 2 (SO(3))")
