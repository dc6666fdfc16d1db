"""Every regular language is recognized by a multi-layer LRNN whose transitions are products of
generalized Householder matrices (Grazzi et al. 2025, Thm 4; Siems et al. 2025, Gated
DeltaProduct, Thm 2 [S]).

Pipeline, for any DFA (validated by :mod:`regular_dfa`):

1. minimize it (Moore), keeping the map from original to minimal states;
2. decompose the minimal DFA into a cascade of permutation–reset automata — the holonomy
   decomposition (Zeiger 1967; Eilenberg vol. B; Egri-Nagy & Nehaniv 2015; Maler 2010), see
   :mod:`regular_cascade` — and check exhaustively, independently of any LRNN, that decoding is a
   homomorphism from the reachable cascade states onto the DFA;
3. compile each cascade level into one ``delta_product`` layer (one head per component) —
   :mod:`regular_lrnn` — with every token transition e^{g}·∏_j (I − β_j k_j k_jᵀ), β_j ∈ [0, 2],
   unit keys, and certify every transition used (exact rational product = the intended map,
   spectral norm ≤ 1);
4. run the stack through ``lrnnspec.spec.evaluate`` — :mod:`regular_run` — on every word up to a
   length and on long random words, in fp64, exact (mpmath) and emulated fp32 / bf16, and compare
   the decoded state and acceptance with the DFA on every prefix.

Variants (all verified by :func:`prove_regular`):

``deltaproduct``  DeltaProduct[−1,1], β ∈ {0,1,2}: swaps β = 2 with keys (e_i − e_j)/√2, zeroing
                  resets by w projections, the delay by a parity clock + registers.
``gated``         Gated DeltaProduct: the same with a reset by the scalar gate (e^{g} = 0 after
                  underflow of g = −10⁴; the spec rejects g = −∞) and one write.
``dyadic``        ``deltaproduct`` with every swap written I − 1·kkᵀ, k = e_i − e_j (the same matrix
                  as β = 2, k/√2): every spec input is in {0, ±1}, so fp64/fp32/bf16 are exact —
                  the check is that the bf16 state is *bitwise* one-hot on every word.
``memory``        resets halve instead of zeroing, so a layer's decoder can read its previous
                  coordinate: no clock, no registers, one layer per cascade level; β ∈ {0, ½, 1, 2}
                  (and only {0, ½, 1} — eigenvalues in [0, 1] — for aperiodic DFAs). Its states
                  keep a fading history, so configurations rarely merge: verified to a shorter length.
``gated-memory``  ``memory`` with the halving done by the scalar gate e^{g} = ½ and one write per
                  reset (not in the default run; used by ``regular.star_free``).
``deltanet``      DeltaNet[0,1] with one Householder factor per token, aperiodic DFAs only: each
                  head's state is a row (K = 1, V = width) and a reset is S ← ¼S + ¾e_c, β ∈ {0, ¾};
                  the decoder reads the previous row as 4S − 3e_c (not in the default run; used by
                  ``regular.star_free``; a DFA with a permutation component is refused).

What "exact" means here. ``1/√2`` is not a binary number, so the unit-key inputs are rounded:
in fp64 the rounded swap key has ‖k‖² = 1 + 2⁻⁵³-ish and the state drifts by ~1e-16 per swap
(reported as the max deviation; decoding has margin ½). The exact engine evaluates the
recurrence exactly *on those rounded inputs* (the spec converts inputs to float64), and returns
an error bound; it is run on all words up to a short length. In emulated fp32 and bf16 the
rounding of 2c² happens to land on 1 in the constructions here (measured deviations are
reported). The ``dyadic`` variant is exact by construction.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .regular_cascade import Cascade, CascadeCheck, decompose, verify_cascade
from .regular_dfa import (DFA, DFAError, ab_star_dfa, contains_aa_dfa, load_dfa, mod_dfa, parity_dfa, random_dfa,
                          second_last_a_dfa)
from .regular_lrnn import CompiledLRNN, certify_transitions, compile_cascade
from .regular_run import RunStats, run_sequences, run_words
from .result import CheckResult, check

__all__ = ["DFA", "DFAError", "load_dfa", "prove_regular", "prove_regular_cli", "RegularResult", "VARIANTS"]

SOURCE = ("Grazzi et al. 2025, Thm 4 (App. C.4–C.5); Siems et al. 2025, Gated DeltaProduct Thm 2 [S]; "
          "holonomy decomposition: Zeiger 1967, Eilenberg vol. B, Egri-Nagy & Nehaniv 2015")

VARIANTS = {
    "deltaproduct": dict(gated=False, keys="unit", delay="registers"),
    "gated": dict(gated=True, keys="unit", delay="registers"),
    "dyadic": dict(gated=False, keys="dyadic", delay="registers"),
    "memory": dict(gated=False, keys="unit", delay="memory"),
    "gated-memory": dict(gated=True, keys="unit", delay="memory"),
    "deltanet": dict(gated=False, keys="unit", delay="fading"),
}
DEFAULT_VARIANTS = ("deltaproduct", "gated", "dyadic", "memory")
APERIODIC_OR_NOT = tuple(v for v in VARIANTS if v != "deltanet")  # deltanet refuses permutation components
ENGINES = ("fp64", "exact", "emulate:fp32", "emulate:bf16")


@dataclass
class VariantResult:
    name: str
    summary: dict
    transitions: dict
    runs: list[RunStats] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.transitions["all_ok"] and all(r.ok for r in self.runs)

    def to_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "summary": self.summary, "transitions": self.transitions,
                "runs": [r.to_json() for r in self.runs]}


@dataclass
class RegularResult:
    dfa: DFA
    minimal_states: int
    cascade: CascadeCheck
    cascade_components: list[dict]
    variants: list[VariantResult]
    max_length: int
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.cascade.ok and all(v.ok for v in self.variants)

    @property
    def disagreements(self) -> list[dict]:
        return [dict(variant=v.name, engine=r.engine, mode=r.mode, **e)
                for v in self.variants for r in v.runs for e in r.examples]

    def words_checked(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.variants:
            for r in v.runs:
                out[f"{v.name}/{r.engine}"] = out.get(f"{v.name}/{r.engine}", 0) + r.words
        return out

    def to_json(self) -> dict:
        return {"ok": self.ok, "dfa": self.dfa.to_dict(), "minimal_states": self.minimal_states,
                "max_length": self.max_length, "cascade": self.cascade.to_json(),
                "cascade_components": self.cascade_components, "variants": [v.to_json() for v in self.variants],
                "words_checked": self.words_checked(), "disagreements": self.disagreements, "seconds": self.seconds}

    def render(self) -> str:
        d = self.dfa
        out = [f"Regular language → LRNN with generalized-Householder transitions ({SOURCE.split(';')[0]})",
               f"DFA: {d.states} states (minimal: {self.minimal_states}), alphabet {' '.join(d.alphabet)}, "
               f"start {d.start}, accept {list(d.accept)}"]
        c = self.cascade
        widths = [x["width"] for x in self.cascade_components]
        out.append(f"cascade (holonomy): {c.components} permutation–reset components on {c.levels} levels, "
                   f"widths {widths}; {c.reachable_cascade_states} reachable cascade states, "
                   f"{c.transitions_checked} transitions: homomorphism onto the DFA "
                   + ("verified" if c.ok else "FAILED: " + "; ".join(c.errors[:3])))
        for v in self.variants:
            s = v.summary
            out.append(f"[{v.name}] {s['variant']}")
            out.append(f"    layers {s['layers']} ({', '.join(s['layer_kinds'])})" if s["layers"] else
                       "    layers 0 (one-state minimal DFA: the language is ∅ or Σ*, a constant decoder)")
            if s["layers"]:
                out.append(f"    heads per layer {s['heads']}; width per layer {s['widths']}; "
                           f"Householders per token per layer {s['householders_per_token']} "
                           f"(total {s['total_householders_per_token']})")
            t = v.transitions
            fmt = lambda xs: "{" + ", ".join(f"{x:g}" for x in xs) + "}"  # noqa: E731
            out.append(f"    {t['count']} distinct token transitions: products of generalized Householder "
                       f"matrices, β ∈ {fmt(t['betas'])}, gates e^g ∈ {fmt(t['gates'])}, "
                       f"max ‖A‖₂ = {t['max_norm']:.17g}: "
                       + ("certified" if t["all_ok"] else f"NOT certified: {t['failures'][:3]}"))
            for r in v.runs:
                rate = _count(r.words // max(1, round(r.seconds)) if r.words > 10 ** 15 else
                              round(r.words / r.seconds) if r.seconds else 0)
                extra = f", exact bound ≤ {r.max_exact_bound:.1e}" if r.max_exact_bound is not None else ""
                out.append(f"    {r.engine:<13} {r.mode:<40} {_count(r.words):>10} words  "
                           f"{'agree' if r.ok else 'DISAGREE'}  max dev {r.max_deviation:.1e}{extra}  "
                           f"{r.seconds:6.2f} s ({rate} words/s, {r.rows:,} spec rows)")
                if not r.ok:
                    out.append(f"        state disagreements {r.state_disagreements:,}, acceptance "
                               f"{r.accept_disagreements:,}, margin violations {r.margin_violations:,}")
                    for e in r.examples:
                        out.append(f"        e.g. {e['word']!r}: DFA {'accepts' if e['dfa_accepts'] else 'rejects'} "
                                   f"(state {e['dfa_state']}), LRNN {'accepts' if e['lrnn_accepts'] else 'rejects'} "
                                   f"(state {e['lrnn_state']}), deviation {e['deviation']:.2g}")
        out.append(f"verdict: {'all agree' if self.ok else 'DISAGREEMENT'} ({self.seconds:.1f} s)")
        return "\n".join(out)


def _count(n: int) -> str:
    """An exact integer for the eye: ``1,024`` below 10¹⁵, else ``3.27e+150`` (no float: 2^1500 overflows one)."""
    if n < 10 ** 15:
        return f"{n:,}"
    digits = str(n)
    return f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


def _plan(max_length: int, random_words: int, random_length: int, engines: Sequence[str], exact_length: int,
          emulate_length: int, variants: Sequence[str], memory_length: int) -> list[tuple]:
    """(variant, engine, kind, length, count) runs. The main variant runs every engine; the others
    run where they add evidence (see the module docstring)."""
    plan = []
    for v in variants:
        for e in engines:
            if v == "deltaproduct":
                L = {"fp64": max_length, "exact": min(max_length, exact_length)}.get(e, min(max_length, emulate_length))
                plan.append((v, e, "words", L, None))
                if random_words and e == "fp64":
                    plan.append((v, e, "random", random_length, random_words))
            elif v == "gated" and e in ("fp64", "emulate:bf16"):
                plan.append((v, e, "words", max_length if e == "fp64" else min(max_length, emulate_length), None))
            elif v == "dyadic" and e == "emulate:bf16":
                plan.append((v, e, "words", min(max_length, emulate_length), None))
            elif v in ("memory", "gated-memory", "deltanet") and e in ("fp64", "emulate:bf16"):
                plan.append((v, e, "words", min(max_length, memory_length), None))
    return plan


def _transitions(net: CompiledLRNN) -> dict:
    certs = certify_transitions(net)
    betas = sorted({b for c in certs for b in c.betas})
    gates = sorted({c.gate for c in certs})
    return {"count": len(certs), "all_ok": all(c.ok for c in certs),
            "betas": [float(b) for b in betas], "gates": [float(g) for g in gates],
            "max_norm": max((c.float_norm for c in certs), default=0.0),
            "max_key_norm_error": max((c.key_norm_error for c in certs), default=0.0),
            "failures": [f"layer {c.layer} {c.head} {c.action}" for c in certs if not c.ok]}


def prove_regular(dfa: DFA, max_length: int = 10, random_words: int = 4, random_length: int = 1000, seed: int = 0,
                  engines: Sequence[str] = ENGINES, *, variants: Sequence[str] = DEFAULT_VARIANTS,
                  exact_length: int = 3, emulate_length: int = 7, memory_length: int = 6) -> RegularResult:
    """Compile ``dfa`` (see the module docstring) and verify it; never raises on a disagreement —
    inspect ``.ok`` / ``.disagreements``. Lengths: fp64 checks every word of length ≤ ``max_length``;
    exact ≤ ``exact_length``; emulated formats ≤ ``emulate_length``; the ``memory`` variant
    ≤ ``memory_length``; the ``dyadic`` variant in bf16 ≤ ``emulate_length``; plus ``random_words`` random words of ``random_length`` letters in fp64,
    drawn with ``seed`` (emulated long words are left out of the default plan: the emulated spec
    runs ~4 ms per layer and step on these shapes — :func:`regular_run.run_sequences` does them on
    request)."""
    if not isinstance(dfa, DFA):
        raise TypeError(f"dfa: must be a DFA (see load_dfa), got {type(dfa).__name__}")
    for name, val, lo in (("max_length", max_length, 0), ("random_words", random_words, 0),
                          ("random_length", random_length, 1), ("seed", seed, 0), ("exact_length", exact_length, 0),
                          ("emulate_length", emulate_length, 0), ("memory_length", memory_length, 0)):
        if not isinstance(val, (int, np.integer)) or isinstance(val, bool) or val < lo:
            raise ValueError(f"{name}: must be an integer ≥ {lo}, got {val!r}")
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        raise ValueError(f"engines: must be a non-empty subset of {ENGINES}, got {list(engines)}")
    badv = [v for v in variants if v not in VARIANTS]
    if badv or not variants:
        raise ValueError(f"variants: must be a non-empty subset of {tuple(VARIANTS)}, got {list(variants)}")
    t0 = time.perf_counter()
    minimal, state_map = dfa.minimize()
    casc: Cascade = decompose(minimal)
    cascade_check = verify_cascade(casc)
    rng = np.random.default_rng(seed)
    nets = {v: compile_cascade(casc, **VARIANTS[v]) for v in variants}
    results = {v: VariantResult(v, nets[v].summary(), {}) for v in variants}
    for v, engine, kind, length, count in _plan(max_length, random_words, random_length, engines, exact_length,
                                                emulate_length, variants, memory_length):
        net = nets[v]
        if kind == "words":
            stats = run_words(net, dfa, minimal, state_map, length, engine=engine)
        else:
            words = rng.integers(0, dfa.letters, size=(count, length))
            stats = run_sequences(net, dfa, minimal, state_map, words, engine=engine)
        results[v].runs.append(stats)
    for v in variants:  # after the runs: every action the runs requested is certified too
        results[v].transitions = _transitions(nets[v])
        results[v].summary = nets[v].summary()
    ran = [r for r in results.values() if r.runs]  # a variant no chosen engine applies to is left out
    if not ran:
        raise ValueError(f"engines: none of {list(engines)} applies to the variants {list(variants)} "
                         f"(see the module docstring)")
    return RegularResult(dfa, minimal.states, cascade_check, casc.describe(), ran, max_length,
                         time.perf_counter() - t0)


def prove_regular_cli(dfa_path: str, max_length: int = 10, seed: int = 0, *, as_json: bool = False,
                      out=None, err=None) -> int:
    """``lrnnspec prove regular --dfa FILE --max-length L``: print the construction and the
    verification; exit 0 if every check agrees with the DFA, 1 on any disagreement, 2 for a bad
    DFA file or bad arguments (with a message naming the field and the rule)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        dfa = load_dfa(dfa_path)
    except DFAError as exc:
        print(f"lrnnspec prove regular: error: {dfa_path}: {exc}", file=err)
        return 2
    try:
        res = prove_regular(dfa, max_length=max_length, seed=seed)
    except (TypeError, ValueError) as exc:
        print(f"lrnnspec prove regular: error: {exc}", file=err)
        return 2
    print(json.dumps(res.to_json(), ensure_ascii=False, indent=1, default=str) if as_json else res.render(), file=out)
    return 0 if res.ok else 1


# --- registered checks -------------------------------------------------------------------------
_LENGTHS = {"dev": 6, "ci": 8, "certify": 10}
_RANDOM_DFAS = {"dev": 12, "ci": 30, "certify": 200}


def _length(profile: str) -> int:
    return _LENGTHS.get(profile, 8)


def _example_check(name: str, dfa: DFA, result: str, hypothesis: str, profile: str, *, expect=None,
                   variants=APERIODIC_OR_NOT, source: str = SOURCE) -> CheckResult:
    res = prove_regular(dfa, max_length=_length(profile), random_words=4, random_length=500, seed=0,
                        variants=variants)
    problems = [] if expect is None else expect(res)
    evidence = {"summary": "; ".join(f"{v.name}: {v.summary['layers']} layers, n_h {v.summary['householders_per_token']}"
                                     for v in res.variants) + f"; {res.words_checked()}",
                "words_checked": res.words_checked(), "disagreements": res.disagreements[:5],
                "cascade": res.cascade.to_json(), "variants": [v.to_json() | {"runs": [
                    {k: r[k] for k in ("engine", "mode", "words", "ok", "max_deviation", "seconds")}
                    for r in v.to_json()["runs"]]} for v in res.variants], "expectations_failed": problems}
    verdict = "verified" if res.ok and not problems else "failed"
    return CheckResult(name, result, source, hypothesis, verdict, evidence)


@check("regular.cascade")
def check_cascade(profile: str) -> CheckResult:
    """Random DFAs (fixed seed), up to 6 states and 4 letters: holonomy cascade verified exhaustively,
    compiled (DeltaProduct, clock + registers), transitions certified, all words ≤ L in fp64."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(20250)
    L = _length(profile) - 2
    n, failures, worst = _RANDOM_DFAS.get(profile, 30), [], {"layers": 0, "width": 0, "n_h": 0, "levels": 0,
                                                               "components": 0, "seconds": 0.0}
    words = 0
    for i in range(n):
        dfa = random_dfa(rng, int(rng.integers(1, 7)), int(rng.integers(1, 5)))
        t1 = time.perf_counter()
        minimal, smap = dfa.minimize()
        casc = decompose(minimal)
        chk = verify_cascade(casc)
        net = compile_cascade(casc, **VARIANTS["deltaproduct"])
        st = run_words(net, dfa, minimal, smap, L)
        tr = _transitions(net)
        words += st.words
        if not (chk.ok and st.ok and tr["all_ok"]):
            failures.append({"dfa": dfa.to_dict(), "cascade_errors": chk.errors[:2], "examples": st.examples[:2],
                             "transition_failures": tr["failures"][:2]})
        s = net.summary()
        worst = {"layers": max(worst["layers"], s["layers"]), "width": max(worst["width"], max(s["widths"] or [0])),
                 "n_h": max(worst["n_h"], max(s["householders_per_token"] or [0])),
                 "levels": max(worst["levels"], casc.levels), "components": max(worst["components"], len(casc.components)),
                 "seconds": max(worst["seconds"], time.perf_counter() - t1)}
    outcome = (f"cascade homomorphism, transition certificates and all {words:,} words ≤ {L} agree with the given DFAs"
               if not failures else f"{len(failures)} of {n} DFAs FAILED (cascade, transition certificate, or a word ≤ "
                                    f"{L} decoded differently from the given DFA; {words:,} words run)")
    evidence = {"summary": f"{n} random DFAs (≤ 6 states, ≤ 4 letters, seed 20250): {outcome}; worst: "
                           f"{worst['layers']} layers, width {worst['width']}, n_h {worst['n_h']}, "
                           f"{worst['seconds']:.2f} s per DFA",
                "dfas": n, "max_length": L, "words": words, "worst": worst, "failures": failures[:5],
                "seconds": time.perf_counter() - t0}
    return CheckResult("regular.cascade", "Every regular language is recognized by a multi-layer LRNN whose "
                       "transitions are products of generalized Householder matrices (β ∈ [0,2])", SOURCE,
                       "DFA → holonomy cascade of permutation–reset automata (homomorphism checked on every "
                       "reachable cascade state) → one DeltaProduct layer per level + parity clock + registers; "
                       "every token transition certified ∏(I − βkkᵀ), ‖k‖ = 1, β ∈ [0,2], ‖·‖₂ ≤ 1",
                       "failed" if failures else "verified", evidence)


@check("regular.parity")
def check_parity(profile: str) -> CheckResult:
    def expect(res):  # one layer, one swap reflection per token (Grazzi Thm 3, m = 2)
        v = res.variants[0].summary
        return [] if v["layers"] == 1 and v["householders_per_token"] == [1] else [f"expected 1 layer, n_h 1: {v}"]
    return _example_check("regular.parity", parity_dfa(), "Parity (odd number of 1s) through the regular-language "
                          "compiler", "Z2 = one permutation component: 1 layer, 1 reflection per token", profile,
                          expect=expect)


@check("regular.mod3")
def check_mod3(profile: str) -> CheckResult:
    def expect(res):  # the 3-cycle as two swaps (Grazzi Thm 3: k − 1 = 2 reflections)
        v = res.variants[0].summary
        return [] if v["layers"] == 1 and v["householders_per_token"] == [2] else [f"expected 1 layer, n_h 2: {v}"]
    return _example_check("regular.mod3", mod_dfa(3), "Counting mod 3 through the regular-language compiler",
                          "Z3 = one permutation component of width 3: 1 layer, 2 reflections per token", profile,
                          expect=expect)


def _aperiodic_expect(res) -> list[str]:
    """Star-free ⇔ aperiodic ⇒ every holonomy component is reset-only: the memory variants then use
    β ∈ {0, ½, 1} only (no swap, so every token transition is diagonal, eigenvalues in [0, 1]) and no
    clock."""
    problems = []
    for v in res.variants:
        if v.name == "deltanet":
            if any(b not in (0.0, 0.75) for b in v.transitions["betas"]):
                problems.append(f"deltanet variant uses β {v.transitions['betas']} (expected ⊆ {{0, ¾}})")
            if any(n != 1 for n in v.summary["householders_per_token"]):
                problems.append(f"deltanet variant has n_h {v.summary['householders_per_token']} (expected 1)")
        if v.name.endswith("memory"):
            if any(b not in (0.0, 0.5, 1.0) for b in v.transitions["betas"]):
                problems.append(f"memory variant uses β {v.transitions['betas']} (expected ⊆ {{0, ½, 1}})")
            if "clock" in v.summary["layer_kinds"]:
                problems.append("memory variant has a clock")
    return problems


@check("regular.star_free")
def check_star_free(profile: str) -> CheckResult:
    """Star-free (aperiodic) languages: "contains aa" and (ab)*; the memory variant recognizes
    them with every transition a product of GH matrices with β ∈ {0, ½, 1} (eigenvalues in [0,1],
    diagonal in the one-hot basis) — DeltaProduct[0,1]."""
    t0 = time.perf_counter()
    results = [_example_check(f"regular.star_free[{name}]", d, "", "", profile, expect=_aperiodic_expect,
                              variants=("memory", "gated-memory", "deltanet", "deltaproduct"))
               for name, d in (("contains aa", contains_aa_dfa()), ("(ab)*", ab_star_dfa()),
                               ("Σ*aΣ", second_last_a_dfa()))]
    random_aperiodic = _random_aperiodic(profile)
    ok = all(r.verdict == "verified" for r in results) and not random_aperiodic["failures"]
    return CheckResult(
        "regular.star_free", "Star-free languages are recognized by multi-layer LRNNs whose transitions have "
        "eigenvalues in [0,1] (products of GH matrices with β ∈ {0, ½, ¾, 1}), down to one factor per token",
        "Sarrof et al. 2024 [S] (star-free ⇔ nonnegative); construction: holonomy cascade + halving / fading "
        "resets [ours]",
        "contains-aa, (ab)* and Σ*aΣ (aperiodic minimal DFAs: reset-only holonomy components); memory variants: "
        "certified β ⊆ {0, ½, 1}, no clock, every token transition diagonal with entries in {0, ½, 1} "
        "(ungated: n_h = component width micro-steps with k = e_j; gated: scalar gate ½ and one write, n_h = 1); "
        "deltanet variant: one Householder factor per token (n_h = 1, β ∈ {0, ¾}, rows S ← ¼S + ¾e_c) — "
        "DeltaNet[0,1]; decoding checked on every word ≤ L (fp64, bf16); plus random aperiodic DFAs through "
        "the deltanet variant",
        "verified" if ok else "failed",
        {"summary": "; ".join(f"{r.name.split('[')[1][:-1]}: {r.evidence['summary']}" for r in results)
                    + f"; {random_aperiodic['summary']}",
         "languages": {r.name: r.evidence for r in results}, "random_aperiodic": random_aperiodic,
         "seconds": time.perf_counter() - t0})


def _random_aperiodic(profile: str) -> dict:
    """Random DFAs (≤ 6 states, ≤ 3 letters, seed 20251) whose minimal DFA is aperiodic — every
    holonomy component reset-only — compiled with one factor per token (the deltanet variant) and
    checked on every word ≤ L in fp64 and bf16."""
    from .regular_lrnn import cascade_actions

    rng, want = np.random.default_rng(20251), _RANDOM_DFAS.get(profile, 30) // 2
    found, tried, words, failures = 0, 0, 0, []
    while found < want and tried < 50 * want:
        tried += 1
        dfa = random_dfa(rng, int(rng.integers(2, 7)), int(rng.integers(1, 4)))
        casc = decompose(dfa.minimize()[0])
        if casc.levels == 0 or any(a[0] == "perm" for acts in cascade_actions(casc).values() for a in acts):
            continue
        found += 1
        res = prove_regular(dfa, max_length=_length(profile) - 2, random_words=0, variants=("deltanet",),
                            memory_length=_length(profile) - 2)
        words += sum(res.words_checked().values())
        problems = _aperiodic_expect(res)
        if not res.ok or problems:
            failures.append({"dfa": dfa.to_dict(), "disagreements": res.disagreements[:2], "problems": problems})
    return {"summary": f"{found} random aperiodic DFAs (of {tried} drawn, seed 20251) through one factor per token: "
                       + (f"{len(failures)} FAILED ({words:,} words run)" if failures else f"{words:,} words agree"),
            "dfas": found, "drawn": tried, "words": words, "failures": failures[:5]}


@check("regular.group_free_reset")
def check_reset_only(profile: str) -> CheckResult:
    """"The last letter is a" — a flip-flop: one reset-only component (a one-layer LRNN)."""
    dfa = DFA(["a", "b"], 2, 0, [1], [[1, 0], [1, 0]])

    def expect(res):
        problems = []
        for v in res.variants:
            if v.summary["layers"] != 1:
                problems.append(f"{v.name}: {v.summary['layers']} layers, expected 1")
            if v.name == "gated" and v.summary["householders_per_token"] != [1]:
                problems.append(f"gated: n_h {v.summary['householders_per_token']}, expected 1 (gate + one write)")
            if any(b == 2.0 for b in v.transitions["betas"]):
                problems.append(f"{v.name}: a reflection (β = 2) in a reset-only automaton")
        return problems
    return _example_check("regular.group_free_reset", dfa, "A flip-flop language needs one reset-only layer; "
                          "with the scalar gate, one write per token", "last letter = a: resets only, no β = 2",
                          profile, expect=expect)


@check("regular.delay")
def check_delay(profile: str) -> CheckResult:
    """[ours] Reading the *updated* coordinates of the layers above (the naive one-layer-per-
    component wiring) is wrong: it fails on Σ*aΣ, which both delay mechanisms recognize."""
    from .regular_run import run_words as _run

    t0 = time.perf_counter()
    dfa = second_last_a_dfa()
    minimal, smap = dfa.minimize()
    casc = decompose(minimal)
    L = _length(profile)
    naive = _run(compile_cascade(casc, delay="none"), dfa, minimal, smap, L)
    fixed = {d: _run(compile_cascade(casc, delay=d), dfa, minimal, smap, L) for d in ("registers", "memory")}
    ok = (not naive.ok) and all(s.ok for s in fixed.values())
    return CheckResult(
        "regular.delay", "A cascade compiled layer-per-component must give each level the previous coordinates "
        "of the levels above (an LRNN layer reads the updated ones)", "[ours]",
        "Σ*aΣ: naive wiring disagrees with the DFA; parity-clock registers and halving-reset memories agree on "
        "every word ≤ L", "verified" if ok else "failed",
        {"summary": f"naive: {naive.state_disagreements:,} of {naive.words:,} words wrong (e.g. "
                    f"{naive.examples[0]['word'] if naive.examples else '—'}); registers: "
                    f"{'agree' if fixed['registers'].ok else 'DISAGREE'}; memory: "
                    f"{'agree' if fixed['memory'].ok else 'DISAGREE'} (all words ≤ {L})",
         "naive": naive.to_json(), "registers": fixed["registers"].to_json(), "memory": fixed["memory"].to_json(),
         "seconds": time.perf_counter() - t0})

