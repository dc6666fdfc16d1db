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
2. **Random words.** If the search exceeds its budget of pairs first, long random words — ``words``
   per seed for seeds 0 … 4, up to ``steps`` steps — give the *distribution* of the step at which a
   word first goes wrong (min / median / max over words, each seed's minimum, the fraction of words
   never wrong within the budget), not one seed's minimum.

Report rows are cached (:func:`cached_horizons`) under the budget and a key over the construction's
source and realized parameters (:func:`construction_key`): an edited construction is recomputed.
"""

from __future__ import annotations

import time

import numpy as np

from .construction import CONSTRUCTIONS, Construction
from .emulate import FAST_FORMATS, FastConstruction
from .result import CheckResult, check

HORIZON_SEEDS = 5  # random words are drawn with seeds 0 … 4: a distribution, not one seed's minimum
HORIZON_BUDGETS = {"ci": {"pairs": 3000, "steps": 1000, "words": 4, "seeds": HORIZON_SEEDS},
                   "dev": {"pairs": 30000, "steps": 10000, "words": 8, "seeds": HORIZON_SEEDS},
                   "certify": {"pairs": 300000, "steps": 100000, "words": 16, "seeds": HORIZON_SEEDS},
                   "report": {"pairs": 100000, "steps": 30000, "words": 8, "seeds": HORIZON_SEEDS}}


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
        wrong = np.flatnonzero(decoded != con.automaton.expected(q))
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


def random_horizon(con: Construction, fmt: str, steps: int, words: int, seeds=HORIZON_SEEDS) -> dict:
    """``words`` random words per seed (seeds ``0 … seeds − 1``, one batch), run up to ``steps`` steps:
    the distribution over words of the first step that decodes wrong (min / median / max, words never
    wrong counted as "> steps"), each seed's minimum, and the fraction of words never wrong."""
    if isinstance(seeds, int):
        seeds = range(seeds)
    seeds = list(seeds)
    fc = FastConstruction(con, fmt)
    a = con.automaton.num_letters
    rngs = [np.random.default_rng(s) for s in seeds]
    n = words * len(seeds)
    states = fc.initial(n)
    q = np.full(n, con.automaton.q0)
    first = np.full(n, np.inf)
    overflow = False
    for t in range(1, steps + 1):
        letters = np.concatenate([r.integers(0, a, size=words) for r in rngs])
        q = con.automaton.table[q, letters]
        with np.errstate(over="ignore", invalid="ignore"):
            states, decoded = fc.step(states, letters)
        wrong = (decoded != con.automaton.expected(q)) & np.isinf(first)
        if wrong.any():
            first[wrong] = t
            overflow |= not all(np.all(np.isfinite(s.astype(np.float64))) for s in states)
            if np.all(np.isfinite(first)):
                break
    never = float(np.mean(np.isinf(first)))
    per_seed = [None if np.all(np.isinf(first[i * words:(i + 1) * words])) else int(first[i * words:(i + 1) * words].min())
                for i in range(len(seeds))]

    def stat(v):
        return None if np.isinf(v) else int(v)

    res = {"method": "random words", "seeds": seeds, "words": n, "steps": steps,
           "min": stat(first.min()), "median": stat(np.median(first)), "max": stat(first.max()),
           "per_seed_min": per_seed, "never_wrong": never, "overflow": bool(overflow),
           "horizon": stat(first.min())}
    if res["horizon"] is None:
        res["lower_bound"] = steps
    res["why"] = (f"{len(seeds)} seeds × {words} words, {steps} steps: " +
                  ("no wrong decode" if res["horizon"] is None else
                   f"first wrong decode min {res['min']}, median {_fmt(res['median'], steps)}, max "
                   f"{_fmt(res['max'], steps)}; {never:.0%} of the words never wrong")
                  + (" (the state had overflowed to inf/NaN)" if overflow else ""))
    return res


def _fmt(v, steps) -> str:
    return f"> {steps}" if v is None else str(v)


def horizon(con: Construction, fmt: str, budget: dict) -> dict:
    start = time.perf_counter()
    res = reachable_search(con, fmt, budget["pairs"])
    if res["horizon"] is None and "open_from" in res:
        rnd = random_horizon(con, fmt, budget["steps"], budget["words"], budget.get("seeds", HORIZON_SEEDS))
        res = {**res, "random": rnd}
    res["seconds"] = round(time.perf_counter() - start, 3)
    return res


def construction_key(name: str) -> str:
    """What a construction's horizons depend on: the source of the module defining its factory and of
    the machinery (construction, emulator, horizon search), and its realized parameters (token tables,
    initial states, options, automaton). Any edit to them changes the key (16 hex digits)."""
    import hashlib
    import inspect
    import sys

    factory = CONSTRUCTIONS[name]
    con = factory()
    h = hashlib.sha256(name.encode())
    modules = {inspect.getmodule(factory), sys.modules[__name__], sys.modules[Construction.__module__],
               sys.modules[FastConstruction.__module__]}
    for mod in sorted(modules, key=lambda m: m.__name__):
        h.update(inspect.getsource(mod).encode())
    for layer in con.layers:
        h.update(layer.family.encode() + repr(sorted(layer.options.items())).encode())
        for table in (layer.tokens, layer.static):
            for k in sorted(table):
                h.update(k.encode() + np.ascontiguousarray(table[k], dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(layer.h0, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(con.automaton.table, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def horizon_table(budget: dict, names: list[str] | None = None, formats=FAST_FORMATS) -> dict:
    """{construction: {fmt: result, "key": construction_key}} for the registered constructions."""
    out = {}
    for name in names or sorted(CONSTRUCTIONS):
        con = CONSTRUCTIONS[name]()
        out[name] = {fmt: horizon(con, fmt, budget) for fmt in formats}
        out[name]["key"] = construction_key(name)
    return out


def cached_horizons(old: dict | None, budget: dict, log=None) -> dict:
    """``{"budget", "table"}`` reusing the rows of ``old`` (a previous report's horizons) whose budget
    equals ``budget`` and whose construction key (:func:`construction_key`) is unchanged; the other
    registered constructions are recomputed."""
    table = {}
    fresh = []
    reuse = old is not None and old.get("budget") == budget
    for name in sorted(CONSTRUCTIONS):
        row = (old or {}).get("table", {}).get(name) if reuse else None
        if row is not None and row.get("key") == construction_key(name):
            table[name] = row
        else:
            fresh.append(name)
    if fresh:
        if log is not None:
            log(f"computing finite-precision horizons of {', '.join(fresh)} ...")
        table.update(horizon_table(budget, fresh))
    return {"budget": budget, "table": {n: table[n] for n in sorted(table)}}


def describe(res: dict) -> str:
    """Short text: 'never (closed, N pairs)', 'L (shortest wrong word)', or the random-word distribution."""
    if res["horizon"] is not None:
        return f"{res['horizon']} (shortest wrong word)"
    if "open_from" not in res:
        return f"never (closed set, {res['pairs']} pairs)"
    rnd = res.get("random", {})
    seeds = len(rnd.get("seeds", [0]))
    if rnd.get("horizon") is None:
        return f"≥{res['open_from']} worst case; > {rnd.get('lower_bound')} on all {rnd.get('words')} random words ({seeds} seeds)"
    steps = rnd.get("steps", rnd.get("lower_bound"))
    return (f"≥{res['open_from']}; random words ({seeds} seeds × {rnd['words'] // seeds}): first wrong min {rnd['min']} / "
            f"median {_fmt(rnd['median'], steps)} / max {_fmt(rnd['max'], steps)}, "
            f"{rnd['never_wrong']:.0%} never wrong" + (" (overflow)" if rnd.get("overflow") else ""))


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
                    if f != "key" and r["horizon"] is None and "open_from" in r]
    summary = {n: {f: describe(r) for f, r in row.items() if f != "key"} for n, row in table.items()}
    verdict = "verified" if not undetermined else "open"
    return CheckResult("horizon.finite_precision", "Finite-precision horizon of every construction (fp32, bf16, fp16)",
                       "[ours] (new; no paper has it)",
                       "keys L2-normalized then rounded to the format; every operation rounded (step-wise)", verdict,
                       {"budget": budget, "horizons": summary, "undetermined": undetermined, "details": table},
                       time.perf_counter() - start)
