"""Verification of a construction on the spec engines, bounded by the profile.

A construction check runs, on the ``exact`` engine (mpmath, with its error bound) and on the
emulated ``fp32`` and ``bf16`` precision contracts (every operation rounded, sequential order):

1. every word up to a length ``L`` (prefix sharing; ``L`` is the largest length whose word count
   fits the profile's budget), and
2. long random words.

The verdict is ``verified`` when the exact engine decodes every word correctly, the emulated
formats decode every exhaustive word correctly and — for a construction whose layers declare the
transitions they mean (``Layer.exact``) — every realized transition equals its exact element within
the float64 bound (:func:`lrnnspec.proofs.exactness.layers_report`): words cannot see a slow drift,
the matrices can. Long random words in a *finite* format may go
wrong: that is a finite-precision horizon (``lrnnspec.proofs.horizon``), reported, not a failure
of the theorem, whose statement is about exact arithmetic (or a fixed finite set of values).
"""

from __future__ import annotations

import numpy as np

from lrnnspec.spec.errors import DomainError

from .construction import Construction, exhaustive_length, random_letters, run_exhaustive, run_words
from .exactness import layers_report

EXACT_KEY = "realized transitions vs exact elements"

PROFILE_BUDGETS = {
    # words (summed over lengths) for the exhaustive runs, and (words, length) of random runs
    "ci": {"exact_words": 400, "emulate_words": 4000, "exact_random": (3, 12), "emulate_random": (16, 96)},
    "dev": {"exact_words": 1500, "emulate_words": 20000, "exact_random": (4, 24), "emulate_random": (32, 300)},
    "certify": {"exact_words": 6000, "emulate_words": 100000, "exact_random": (8, 48), "emulate_random": (64, 2000)},
}
EMULATED = ("emulate:fp32", "emulate:bf16")


def budgets(profile: str) -> dict:
    if profile not in PROFILE_BUDGETS:
        raise DomainError("profile", f"must be one of {tuple(PROFILE_BUDGETS)}, got {profile!r}")
    return PROFILE_BUDGETS[profile]


def verify(con: Construction, profile: str, *, seed: int = 0, letters: list[int] | None = None,
           exact_cap: int = 12, emulate_cap: int = 12) -> dict:
    """Run ``con`` exhaustively and on random words; returns evidence with ``ok``."""
    b = budgets(profile)
    rng = np.random.default_rng(seed)
    a = con.automaton.num_letters
    runs = []
    L_exact = exhaustive_length(a, b["exact_words"], exact_cap)
    runs.append(run_exhaustive(con, "exact", L_exact))
    L_emu = exhaustive_length(a, b["emulate_words"], emulate_cap)
    for eng in EMULATED:
        runs.append(run_exhaustive(con, eng, L_emu))
    n, t = b["exact_random"]
    random_runs = [run_words(con, "exact", random_letters(con, rng, n, t, letters))]
    n, t = b["emulate_random"]
    words = random_letters(con, rng, n, t, letters)
    for eng in EMULATED:
        random_runs.append(run_words(con, eng, words))
    ok = all(r["ok"] for r in runs) and random_runs[0]["ok"]
    out = {"ok": bool(ok), "exhaustive": runs, "random": random_runs}
    exact = layers_report(con.layers)
    if exact is not None:
        out[EXACT_KEY] = exact
        out["ok"] = bool(ok and exact["ok"])
    return out


def summarize(evidence: dict) -> str:
    """One line: 'exact ≤L (N words) ✓; fp32 ≤L ✓; ...; random exact 3×12 ✓, fp32 16×96 ✓ ...'."""
    parts = []
    for r in evidence["exhaustive"]:
        eng = r["engine"].replace("emulate:", "")
        mark = "✓" if r["ok"] else f"✗ at length {r['first_failure']['length']}"
        parts.append(f"{eng} all words ≤{r['max_length']} ({r['words']}) {mark}")
    for r in evidence["random"]:
        eng = r["engine"].replace("emulate:", "")
        mark = "✓" if r["ok"] else f"wrong from step {r['first_failure']['step']}"
        parts.append(f"{eng} random {r['words']}×{r['length']} {mark}")
    if EXACT_KEY in evidence:
        parts.append("transitions = exact elements ± float64 bound" if evidence[EXACT_KEY]["ok"] else
                     "transitions DRIFT from the exact elements")
    return "; ".join(parts)
