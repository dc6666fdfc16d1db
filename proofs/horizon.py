"""Finite-precision horizons of the constructions (new; no paper has them).

For each registered construction and each format (fp32, bf16, fp16), with keys L2-normalized in
float64 and rounded to the format (the spec's input rounding), every operation rounded as the spec's
``emulate:<fmt>`` engine does (:mod:`lrnnspec.proofs.emulate`, bitwise equal to it):

1. **Reachable-set search.** With a fixed input letter the emulated step is a deterministic map of
   a finite set, so we explore the pairs (emulated state, automaton state) breadth first from
   (H₀, q₀). If some pair decodes wrong, its depth is the *shortest* word on which the construction
   goes wrong — the exact worst-case horizon. If the set of pairs closes (no new pair) and every pair
   decodes right, the construction is correct on *every* word of *every* length in that format: a
   proof of an infinite horizon ("never"), the reason being that rounding keeps the states in that
   finite closed set.
2. **Random words.** If the search exceeds its budget of pairs first, long random words (up to
   ``max_steps``, 10^5 in the report) give the step at which a typical word first goes wrong, or a
   lower bound when none does.
"""

from __future__ import annotations

import time

import numpy as np

from .construction import CONSTRUCTIONS, Construction
from .emulate import FAST_FORMATS, FastConstruction
from .result import CheckResult, check

HORIZON_BUDGETS = {"ci": {"pairs": 3000, "steps": 1000, "words": 4},
                   "dev": {"pairs": 30000, "steps": 10000, "words": 8},
                   "certify": {"pairs": 300000, "steps": 100000, "words": 16},
                   "report": {"pairs": 200000, "steps": 100000, "words": 8}}


def _keys(states: list[np.ndarray], q: np.ndarray) -> list[bytes]:
    flat = np.concatenate([s.reshape(s.shape[0], -1).view(np.uint8).reshape(s.shape[0], -1) for s in states]
                          + [q.astype(np.int64).view(np.uint8).reshape(q.shape[0], -1)], axis=1)
    return [row.tobytes() for row in flat]


def reachable_search(con: Construction, fmt: str, max_pairs: int) -> dict:
    fc = FastConstruction(con, fmt)
    a = con.automaton.num_letters
    states, q = fc.initial(1), np.array([con.automaton.q0])
    seen = set(_keys(states, q))
    depth = 0
    while True:
        n = q.shape[0]
        if len(seen) + n * a > max_pairs:  # the next level would exceed the budget
            return {"method": "reachable-set search", "horizon": None, "pairs": len(seen), "open_from": depth + 1,
                    "why": f"no wrong word up to length {depth}; search stopped at {len(seen)} pairs"}
        depth += 1
        states = [np.repeat(s, a, axis=0) for s in states]
        letters = np.tile(np.arange(a), n)
        q = con.automaton.table[np.repeat(q, a), letters]
        with np.errstate(over="ignore", invalid="ignore"):
            states, decoded = fc.step(states, letters)
        wrong = np.flatnonzero(decoded != q)
        if wrong.size:
            return {"method": "reachable-set search", "horizon": depth, "pairs": len(seen),
                    "why": f"shortest word that decodes wrong has length {depth}"}
        keys = _keys(states, q)
        fresh, idx = [], []
        for i, k in enumerate(keys):
            if k not in seen:
                seen.add(k)
                fresh.append(k)
                idx.append(i)
        if not idx:
            return {"method": "reachable-set search", "horizon": None, "pairs": len(seen),
                    "why": f"never: the {len(seen)} reachable (state, automaton state) pairs in {fmt} form a "
                           f"closed set and all decode correctly (proof for every length)"}
        idx = np.array(idx)
        states, q = [s[idx] for s in states], q[idx]


def random_horizon(con: Construction, fmt: str, steps: int, words: int, seed: int = 0) -> dict:
    fc = FastConstruction(con, fmt)
    rng = np.random.default_rng(seed)
    states = fc.initial(words)
    q = np.full(words, con.automaton.q0)
    a = con.automaton.num_letters
    for t in range(1, steps + 1):
        letters = rng.integers(0, a, size=words)
        q = con.automaton.table[q, letters]
        with np.errstate(over="ignore", invalid="ignore"):
            states, decoded = fc.step(states, letters)
        if np.any(decoded != q):
            overflow = not all(np.all(np.isfinite(s.astype(np.float64))) for s in states)
            return {"method": "random words", "horizon": t, "words": words, "overflow": overflow,
                    "why": f"first wrong decode at step {t} on {words} random words"
                           + (" (the state had overflowed to inf/NaN)" if overflow else "")}
    return {"method": "random words", "horizon": None, "words": words, "lower_bound": steps,
            "why": f"no wrong decode within {steps} steps on {words} random words"}


def horizon(con: Construction, fmt: str, budget: dict) -> dict:
    start = time.perf_counter()
    res = reachable_search(con, fmt, budget["pairs"])
    if res["horizon"] is None and "open_from" in res:
        rnd = random_horizon(con, fmt, budget["steps"], budget["words"])
        res = {**res, "random": rnd}
    res["seconds"] = round(time.perf_counter() - start, 3)
    return res


def horizon_table(budget: dict, names: list[str] | None = None, formats=FAST_FORMATS) -> dict:
    """{construction: {fmt: result}} for the registered constructions."""
    out = {}
    for name in names or sorted(CONSTRUCTIONS):
        con = CONSTRUCTIONS[name]()
        out[name] = {fmt: horizon(con, fmt, budget) for fmt in formats}
    return out


def describe(res: dict) -> str:
    """Short text: 'never (closed, N pairs)', 'L (shortest wrong word)', 'wrong at t (random)', '> T'."""
    if res["horizon"] is not None:
        return f"{res['horizon']} (shortest wrong word)"
    if "open_from" not in res:
        return f"never (closed set, {res['pairs']} pairs)"
    rnd = res.get("random", {})
    if rnd.get("horizon") is not None:
        return f"≥{res['open_from']}; random words wrong at {rnd['horizon']}" + (" (overflow)" if rnd.get("overflow") else "")
    return f"≥{res['open_from']} worst case; > {rnd.get('lower_bound')} on random words"


@check("horizon.emulator")
def emulator_matches_spec(profile: str) -> CheckResult:
    """The fast emulator is bitwise the spec's emulate engine on every construction (random words)."""
    from lrnnspec.spec import evaluate

    start = time.perf_counter()
    rng = np.random.default_rng(41)
    mismatches, runs = [], 0
    steps = {"ci": 6, "dev": 20, "certify": 60}.get(profile, 6)
    for name in sorted(CONSTRUCTIONS):
        con = CONSTRUCTIONS[name]()
        for fmt in FAST_FORMATS:
            fc = FastConstruction(con, fmt)
            words = rng.integers(0, con.automaton.num_letters, size=(3, steps))
            fast = fc.initial(3)
            spec = [layer.initial(3) for layer in con.layers]
            for t in range(steps):
                fast, _ = fc.step(fast, words[:, t])
                labels = []
                for i, layer in enumerate(con.layers):
                    tok = con.tokens_for(i, words[:, t], labels)
                    r = evaluate(layer.family, layer.inputs(tok), engine=f"emulate:{fmt}", initial_state=spec[i],
                                 **layer.options)
                    spec[i] = r.final_state
                    labels.append(layer.decode(r.final_state))
                runs += 1
                for i, fl in enumerate(fc.layers):
                    if not np.array_equal(fl.to_spec_state(fast[i]), spec[i]):
                        mismatches.append({"construction": name, "format": fmt, "step": t + 1, "layer": i})
                        break
                # continue from the spec's state so one mismatch is not counted at every later step
                fast = [spec[i].reshape(fast[i].shape).astype(fl.dt) for i, fl in enumerate(fc.layers)]
    ok = not mismatches
    return CheckResult("horizon.emulator", "The fast step-wise emulator equals the spec's emulate engine bitwise",
                       "[ours] (tooling for the horizons)", "uniform precision contracts fp32 / bf16 / fp16",
                       "verified" if ok else "failed",
                       {"constructions": len(CONSTRUCTIONS), "formats": list(FAST_FORMATS), "steps compared": runs,
                        "mismatches": mismatches[:10]}, time.perf_counter() - start)


@check("horizon.finite_precision")
def finite_precision(profile: str) -> CheckResult:
    start = time.perf_counter()
    budget = HORIZON_BUDGETS.get(profile, HORIZON_BUDGETS["ci"])
    table = horizon_table(budget)
    undetermined = [(n, f) for n, row in table.items() for f, r in row.items()
                    if r["horizon"] is None and "open_from" in r]
    summary = {n: {f: describe(r) for f, r in row.items()} for n, row in table.items()}
    verdict = "verified" if not undetermined else "open"
    return CheckResult("horizon.finite_precision", "Finite-precision horizon of every construction (fp32, bf16, fp16)",
                       "[ours] (new; no paper has it)",
                       "keys L2-normalized then rounded to the format; every operation rounded (step-wise)", verdict,
                       {"budget": budget, "horizons": summary, "undetermined": undetermined, "details": table},
                       time.perf_counter() - start)
