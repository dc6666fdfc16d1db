"""The prediction matrix of research/theorems.md §9, each cell backed by the checks that establish it.

A cell states a claim — ``✓ L`` (a construction with L layers exists), ``✗`` (impossible by a
theorem) or ``?`` — and names the checks behind it. Its status, given the check results, is

* ``verified``  — a ✓ claim whose every backing check returned ``verified``;
* ``witnessed`` — a ✗ claim whose every backing check returned ``witnessed`` or ``verified``;
* ``witnessed + verified`` — a claim with both (``✗ 1 layer; ✓ 2``) whose checks all passed;
* ``open``      — anything else: no backing check, a backing check not registered (e.g. a
  ``regular.*`` check not present), or one that did not pass. Never shown as verified.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS = ("parity", "mod-3", "S3", "S4", "A5", "S5", "star-free", "all regular")

# the mod-3 obstruction propagates: S3, S4, A5, S5 each contain an element of order 3, so their word
# problem contains a (1^3)* counter (research/theorems.md §9, last line)
_ORDER3 = "contains an element of order 3, hence a (1^3)* counter"


@dataclass(frozen=True)
class Cell:
    claim: str  # "✓ 1", "✗", "?" ...
    checks: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Row:
    family: str
    eigenvalues: str
    householders: str
    examples: str
    cells: dict
    trained: tuple = ()  # (model, eigenvalues, n_h: "any" | "1" | ">1") of the lrnnspec.training runs of this row


CAST = "in the cast model (exact products, then rounded: the theorems' model; step-wise rounding not covered)"
_MERRILL = ("Merrill, Petty & Sabharwal 2024, Thm 4.4 / Cor. 4.7: complex diagonal SSMs are in TC⁰ (log precision, "
            "fixed depth), so no NC¹-complete word problem (A5, S5) unless TC⁰ = NC¹ — conditional on a "
            "complexity-class separation, which has no executable witness")

ROWS = (
    Row("diagonal", "[0,1]", "—", "Mamba, GLA, mLSTM, Mamba2, RetNet", {
        "parity": Cell("✗ any L", ("parity.nonnegative", "parity.multilayer"), "Grazzi Thm 1; Sarrof Thm 2 — " + CAST),
        "mod-3": Cell("✗ any L", ("modcount.real_spectrum",), "Grazzi Thm 2 (one layer witnessed) — " + CAST),
        "S3": Cell("✗", ("modcount.real_spectrum",), _ORDER3), "S4": Cell("✗", ("modcount.real_spectrum",), _ORDER3),
        "A5": Cell("✗", ("modcount.real_spectrum",), _ORDER3), "S5": Cell("✗", ("modcount.real_spectrum",), _ORDER3),
        "star-free": Cell("✓ multi-layer", ("regular.star_free",),
                          "Sarrof et al. [S]; `regular.star_free` checks diagonal {0, ½, 1} constructions on sample languages"),
        "all regular": Cell("✗", ("parity.nonnegative",), "parity is regular"),
    }, trained=(("mamba", "0,1", "any"), ("gla", "0,1", "any"), ("mlstm", "0,1", "any"))),
    Row("diagonal", "[-1,1]", "—", "Mamba [−1,1]", {
        "parity": Cell("✓ 1", ("parity.mamba", "parity.diagonal"), "Grazzi Thm 3 / §5"),
        "mod-3": Cell("✗ any L", ("modcount.real_spectrum",), "Grazzi Thm 2 — " + CAST +
                      "; mod 2^p ✓ p layers (modcount.binary)"),
        "S3": Cell("✗", ("modcount.real_spectrum",), _ORDER3), "S4": Cell("✗", ("modcount.real_spectrum",), _ORDER3),
        "A5": Cell("✗", ("modcount.real_spectrum",), _ORDER3), "S5": Cell("✗", ("modcount.real_spectrum",), _ORDER3),
        "star-free": Cell("✓ multi-layer", ("regular.star_free",),
                          "Sarrof et al. [S]; `regular.star_free` checks diagonal {0, ½, 1} constructions on sample languages"),
        "all regular": Cell("✗", ("modcount.real_spectrum",), "(1^3)* is regular"),
    }, trained=(("mamba", "-1,1", "any"),)),
    Row("diagonal, complex", "|λ| ≤ 1", "—", "complex-diagonal SSMs (LRU, S4D); Merrill et al. 2024", {
        "parity": Cell("✓ 1", ("parity.diagonal",), "λ = −1 is a complex diagonal value (the real row's construction)"),
        "mod-3": Cell("✓ 1", ("complexdiag.mod3",), "λ(1) = e^{2πi/3}, state ω^{#ones}"),
        "S3": Cell("✓ 2", ("complexdiag.S3",), "cascade: layer 1 real −1 on reflections, layer 2 ω^{±j} (research/"
                                               "theorems.md §9 [D], checked); one layer: likely ✗ [D heuristic: "
                                               "diagonal affine maps commute], not checked"),
        "S4": Cell("✓ multi-layer [D]", (), "S4 is solvable (S4 ⊳ A4 ⊳ V4 ⊳ 1, abelian factors): a cascade of "
                                            "cyclic layers [D]; no check here"),
        "A5": Cell("✗ (conditional)", (), _MERRILL),
        "S5": Cell("✗ (conditional)", (), _MERRILL),
        "star-free": Cell("✓ multi-layer", ("regular.star_free",), "contains the real [0,1] diagonal constructions"),
        "all regular": Cell("✗ (conditional)", (), _MERRILL + "; A5's word problem is regular"),
    }),
    Row("generalized Householder", "[0,1]", "1", "DeltaNet", {
        "parity": Cell("✗ any L", ("parity.nonnegative", "parity.multilayer"), "Grazzi Thm 1 + Prop. 1.3 — " + CAST),
        "mod-3": Cell("✗", ("modcount.real_spectrum",), "Grazzi Thm 2 (symmetric ⇒ real spectrum) — " + CAST),
        "S3": Cell("✗", ("modcount.real_spectrum",), _ORDER3), "S4": Cell("✗", ("modcount.real_spectrum",), _ORDER3),
        "A5": Cell("✗", ("modcount.real_spectrum",), _ORDER3), "S5": Cell("✗", ("modcount.real_spectrum",), _ORDER3),
        "star-free": Cell("✓ multi-layer", ("regular.star_free",),
                          "`regular.star_free` (deltanet variant): one factor per token, rows S ← ¼S + ¾e_c, "
                          "β ∈ {0, ¾}; Sarrof et al. [S] for the nonnegative-diagonal analogue"),
        "all regular": Cell("✗", ("parity.nonnegative",), "parity is regular"),
    }, trained=(("deltanet", "0,1", "any"), ("gated_deltanet", "0,1", "any"), ("deltaproduct", "0,1", "1"))),
    Row("generalized Householder", "[-1,1]", "1", "DeltaNet [−1,1]", {
        "parity": Cell("✓ 1", ("parity.reflection",), "Grazzi Thm 3"),
        "mod-3": Cell("✗ 1 layer; ✓ 2", ("modcount.real_spectrum", "modcount.reflections"),
                      "Grazzi Thm 2 (one layer, " + CAST + ") / Thm 6"),
        "S3": Cell("✓ 2", ("groups.dihedral",), "S3 ≅ D3: parity of rotations in layer 1, one reflection per "
                                                "token in layer 2 (Siems et al. [S]; construction ours)"),
        "S4": Cell("✓ 2", ("groups.deltanet.blocks.SO3", "groups.deltanet.S4"),
                   "cube rotations by two-letter blocks, one half-turn mirror per token (ours); also 3 layers by "
                   "S4/V4 ≅ S3 (ours); Siems et al. Thm 1(iii) [S] state 4 layers"),
        "A5": Cell("✓ 2", ("groups.deltanet.blocks.SO3",),
                   "icosahedral rotations by two-letter blocks: layer 1 = parity + fading delay, layer 2 applies "
                   "each block's product as two mirrors, one per token (ours); Siems et al. Thm 1(iii) [S] state 4"),
        "S5": Cell("✓ 3", ("groups.deltanet.blocks.S5", "groups.permutation.S5_swaps"),
                   "permutation matrices by four-letter blocks of ≤ 4 swaps (ours); swap letters alone: 1 layer "
                   "(Grazzi Thm 3 with k = 2)"),
        "star-free": Cell("✓ multi-layer", ("regular.star_free",), "as for DeltaNet [0,1] (β ∈ {0, ¾} ⊂ [0, 2])"),
        "all regular": Cell("✓ multi-layer", ("regular.deltanet_blocks",),
                            "ungated [ours]: cascade components apply each block's product (≤ L swaps or "
                            "coordinate writes) one factor per token; gated: Siems et al. Thm 2 [S]"),
    }, trained=(("deltanet", "-1,1", "any"), ("gated_deltanet", "-1,1", "any"), ("deltaproduct", "-1,1", "1"))),
    Row("generalized Householder", "[0,1]", "n_h", "DeltaProduct [0,1]", {
        "parity": Cell("✗ (n_h ≤ 2)", ("parity.nonnegative", "householder.two_factor_real"),
                       "Grazzi Thm 1 + Prop. 1.3; n_h ≥ 3: [D] only (householder.three_factor_complex shows why)"),
        "mod-3": Cell("✗ (n_h ≤ 2)", ("modcount.real_spectrum", "householder.two_factor_real"), "Grazzi Thm 2"),
        "S3": Cell("✗ (n_h ≤ 2)", ("modcount.real_spectrum",), _ORDER3),
        "S4": Cell("✗ (n_h ≤ 2)", ("modcount.real_spectrum",), _ORDER3),
        "A5": Cell("✗ (n_h ≤ 2)", ("modcount.real_spectrum",), _ORDER3),
        "S5": Cell("✗ (n_h ≤ 2)", ("modcount.real_spectrum",), _ORDER3),
        "star-free": Cell("✓ [D]", ("regular.star_free",), "`regular.star_free`: k = e_j, β ∈ {0, ½, 1}, n_h = width"),
        "all regular": Cell("✗ (n_h ≤ 2)", ("parity.nonnegative",), "parity is regular"),
    }, trained=(("deltaproduct", "0,1", ">1"),)),
    Row("generalized Householder", "[-1,1]", "n_h", "DeltaProduct [−1,1]", {
        "parity": Cell("✓ 1", ("parity.reflection",), "n_h = 1 suffices"),
        "mod-3": Cell("✓ 1 (n_h = 2)", ("modcount.rotation", "symbolic.rotation_cube"), "rotation = two reflections"),
        "S3": Cell("✓ 1 (n_h = 2)", ("groups.permutation.S3",), "Grazzi Thm 3"),
        "S4": Cell("✓ 1 (n_h = 2)", ("groups.so3.S4", "groups.permutation.S4"), "SO(3); permutations need n_h = 3"),
        "A5": Cell("✓ 1 (n_h = 2)", ("groups.so3.A5", "symbolic.two_reflections"), "icosahedral rotations"),
        "S5": Cell("✓ 1 (n_h = 4)", ("groups.permutation.S5",), "Grazzi Thm 3; Siems Thm 1(i)"),
        "star-free": Cell("✓", ("regular.star_free",), ""),
        "all regular": Cell("✓ multi-layer", ("regular.cascade",), "Grazzi Thm 4 (Krohn–Rhodes cascade)"),
    }, trained=(("deltaproduct", "-1,1", ">1"),)),
    Row("diagonal + rank-1 (DPLR)", "RWKV-7: iclr ∈ [0,1]", "1 (non-symmetric)", "RWKV-7", {
        "parity": Cell("?", (), "not settled by our sources (research/theorems.md §9). A DPLR layer with a free "
                                "low-rank term contains DeltaNet [−1,1] (a = k, b = −βk), hence parity; RWKV-7's "
                                "in-context rate iclr ∈ [0,1] is what is open"),
        "mod-3": Cell("?", (), "not settled by our sources"),
        "S3": Cell("?", (), "not settled by our sources"),
        "S4": Cell("?", (), "not settled by our sources"),
        "A5": Cell("?", (), "not settled by our sources"),
        "S5": Cell("✓ (claimed) [S]", (), "claimed by the RWKV-7 paper (research/theorems.md §9 [S]); no construction here"),
        "star-free": Cell("✓ multi-layer", ("regular.star_free",),
                          "iclr = 0 leaves the diagonal [0,1] row (decays e^w), whose constructions apply"),
        "all regular": Cell("✓ 4 layers (claimed) [S]", (), "claimed by the RWKV-7 paper [S]; no construction here"),
    }),
)


def cell_status(cell: Cell, verdicts: dict[str, str]) -> str:
    """``verified`` / ``witnessed`` / ``open`` for ``cell`` given {check name: verdict}."""
    if not cell.checks or any(c not in verdicts for c in cell.checks):
        return "open"
    got = [verdicts[c] for c in cell.checks]
    if "✓" in cell.claim and "✗" in cell.claim:  # e.g. "✗ 1 layer; ✓ 2": both halves must be established
        return "witnessed + verified" if all(v in ("witnessed", "verified") for v in got) else "open"
    if cell.claim.startswith("✓") and all(v == "verified" for v in got):
        return "verified"
    if cell.claim.startswith("✗") and all(v in ("witnessed", "verified") for v in got):
        return "witnessed"
    return "open"


def matrix(verdicts: dict[str, str]) -> list[dict]:
    out = []
    for row in ROWS:
        cells = {}
        for col in COLUMNS:
            c = row.cells[col]
            missing = [n for n in c.checks if n not in verdicts]
            cells[col] = {"claim": c.claim, "checks": list(c.checks), "status": cell_status(c, verdicts),
                          "note": c.note, "missing_checks": missing}
        out.append({"family": row.family, "eigenvalues": row.eigenvalues, "householders": row.householders,
                    "examples": row.examples, "cells": cells, "trained": [list(t) for t in row.trained]})
    return out
