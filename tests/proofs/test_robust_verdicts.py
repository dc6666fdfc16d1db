"""Negative tests: each verdict fails (or keeps its rounding model) under the mutation that used to slip
through — step-wise cycles, a 120.1° rotation, mirrors tilted by 1° (dihedral, parity) or 10⁻⁹ rad (blocks), a DFA
compiled from a perturbed automaton, a summary that said "agree" on failure, one seed's horizon, a stale
horizon cache, a key that ignored the construction's source."""

import re

import numpy as np
import pytest

import lrnnspec.proofs  # noqa: F401  (registers the checks)
from lrnnspec.proofs import complex_diagonal as CD
from lrnnspec.proofs import deltanet_blocks as DB
from lrnnspec.proofs import deltanet_groups as DG
from lrnnspec.proofs import deltanet_regular as DR
from lrnnspec.proofs import horizon as HZ
from lrnnspec.proofs import modcount, parity, regular
from lrnnspec.proofs.castmodel import stack_cast_labels
from lrnnspec.proofs.construction import CONSTRUCTIONS
from lrnnspec.proofs.deltanet_regular import CascadeBlocks, verify_dfa
from lrnnspec.proofs.exactness import layers_report, precision_bound, representation_defect
from lrnnspec.proofs.linalg import rotation2
from lrnnspec.proofs.verify import EXACT_KEY
from lrnnspec.proofs.groups import icosahedral_group
from lrnnspec.proofs.models import NONNEGATIVE_KINDS
from lrnnspec.proofs.regular_dfa import DFA, mod_dfa
from lrnnspec.proofs.result import CHECKS, run
from lrnnspec.proofs.witness import stack_stepwise


# --- impossibilities hold in the cast model, whatever step-wise rounding does --------------------------------
def test_multilayer_parity_witness_does_not_depend_on_stepwise_rounding(monkeypatch):
    """Under --profile certify 7 of 24 stacks cycled step-wise and the old witness turned *open*."""
    monkeypatch.setattr(parity, "stack_stepwise", lambda layers, fmt, cap: {"status": "ok", "tail": 5, "period": 6})
    res = run("parity.multilayer", "ci")
    assert res.verdict == "witnessed", res.evidence
    assert res.evidence["stacks × formats cycling under step-wise rounding"] > 0


def test_a_stack_that_cycles_under_stepwise_rounding_is_decided_in_the_cast_model():
    rng = np.random.default_rng(9)  # found by search: gh2[0,1] then diag[0,1], fp16 step-wise period 4
    kinds = [NONNEGATIVE_KINDS[int(i)] for i in rng.integers(0, 3, size=2)]
    layers = [parity.gapped_layer(kinds[0], rng, 1)] + [parity.gapped_layer(k, rng, 2) for k in kinds[1:]]
    o = stack_stepwise(layers, "fp16", 3000)
    assert o["status"] == "ok" and o["period"] > 1
    res = stack_cast_labels(layers, "fp16")
    assert len(res) == 2 and all(r.status == "ok" and r.eventual is not None for r in res)


# --- construction checks see drift -------------------------------------------------------------------------
def test_a_120_1_degree_rotation_fails_modcount_rotation(monkeypatch):
    original = modcount.rotation

    def drifted():
        con = original()
        con.layers[0].tokens["k"][1, 1] = [np.cos(np.radians(60.05)), np.sin(np.radians(60.05))]
        return con

    monkeypatch.setattr(modcount, "rotation", drifted)
    res = run("modcount.rotation", "ci")
    ev = res.evidence["modcount.rotation"]
    assert ev["ok"]  # every word run decodes right: words alone cannot see it
    assert res.verdict == "failed" and "DRIFT" in ev["summary"]
    assert ev["realized transitions vs exact group elements"]["max |A_realized − A_exact|"] > 1e-4


def _tilted(key_fn, degrees):
    """``key_fn`` with every key it returns rotated by ``degrees`` (2-D keys)."""
    return lambda *args: rotation2(np.radians(degrees)) @ key_fn(*args)


def _words_all_right(ev: dict) -> bool:
    """What verify's verdict rested on before the exactness check: every exhaustive word, exact random words."""
    return all(r["ok"] for r in ev["exhaustive"]) and ev["random"][0]["ok"]


def test_a_1_degree_mirror_drift_fails_groups_dihedral_though_every_word_decodes(monkeypatch):
    monkeypatch.setattr(DG, "reflection2_key", _tilted(DG.reflection2_key, 1.0))
    res = run("groups.dihedral", "ci")
    assert res.verdict == "failed"
    for m in DG.ORDERS:
        ev = res.evidence[f"groups.dihedral.D{m}"]
        assert _words_all_right(ev)  # words alone cannot see it
        assert not ev[EXACT_KEY]["ok"] and ev[EXACT_KEY]["max |A_realized − A_exact|"] > 1e-3
        assert "DRIFT" in ev["summary"]


def test_a_1_degree_swap_key_drift_fails_parity_reflection_though_every_word_decodes(monkeypatch):
    monkeypatch.setattr(parity, "swap_key", _tilted(parity.swap_key, 1.0))
    res = run("parity.reflection", "ci")
    assert res.verdict == "failed" and _words_all_right(res.evidence)  # a tilted mirror still squares to I
    assert not res.evidence[EXACT_KEY]["ok"] and "DRIFT" in res.evidence["summary"]


def test_a_drifted_swap_normal_is_seen_in_the_deltanet_blocks_main_layer(monkeypatch):
    original = DB.swap_key

    def drifted(i, j, n):  # the mirror of (0 1) leans 10⁻⁹ rad towards e₂: below the codebook's 10⁻⁶ resolution
        k = original(i, j, n)
        if (i, j) == (0, 1):
            k = k + 1e-9 * np.eye(n)[2]
            k = k / np.linalg.norm(k)
        return k

    monkeypatch.setattr(DB, "swap_key", drifted)
    rep = layers_report(DB.blocks_construction("S5").layers)
    assert not rep["ok"] and rep["drifting layers"] == ["5×5 reflections, one factor of a block product per token"]


def test_every_deltanet_groups_and_blocks_layer_declares_its_exact_transitions():
    for name in ("groups.dihedral.D3", "groups.deltanet.S4", "groups.deltanet.blocks.A5", "groups.deltanet.blocks.S5",
                 "parity.reflection"):
        layers = CONSTRUCTIONS[name]().layers
        assert all(layer.exact is not None and len(layer.exact) == layer.num_tokens for layer in layers), name
        assert layers_report(layers)["ok"], name


def test_representation_defect_sees_a_drifted_generator():
    group, mats = icosahedral_group()
    assert representation_defect(mats, group.table) <= precision_bound(3, 2)
    c, s = np.cos(1e-6), np.sin(1e-6)
    tilt = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    assert representation_defect([mats[0]] + [tilt @ m for m in mats[1:]], group.table) > 1e-7


def test_complex_diagonal_drift_and_miswiring_fail():
    con = CD.mod_construction(3)
    con.layers[0].lam[1, 0] = np.exp(2j * np.pi * (1 / 3 + 1e-4))
    drifted = CD.verify(con, "ci")
    assert not drifted["realized vs exact"]["ok"] and not drifted["ok"]
    s3 = CD.s3_construction()
    s3.layers[1].lam = CD.roots(3)[[j for j, _ in CD.dihedral_group(3).elements for _ in (0, 1)]][:, None]
    assert not CD.verify(s3, "ci")["ok"]  # ignoring the flip bit breaks S3


# --- regular languages: compared with the DFA given, summaries honest ------------------------------------
@pytest.mark.parametrize("perturbed", [
    DFA(["0", "1"], 3, 0, [0], [[0, 1], [0, 2], [2, 0]]),      # one transition changed
    DFA(["0", "1"], 3, 0, [0, 1], [[0, 1], [1, 2], [2, 0]]),   # one more accepting state
])
def test_deltanet_blocks_compares_with_the_dfa_it_was_given(perturbed):
    good = mod_dfa(3)
    assert verify_dfa(good, "ci", np.random.default_rng(0))["ok"]
    assert not verify_dfa(good, "ci", np.random.default_rng(0), stack=CascadeBlocks(perturbed))["ok"]


def test_cascade_failure_is_failed_and_its_summary_never_says_agree(monkeypatch):
    original = regular.decompose

    def perturbed(dfa):  # compile a different automaton than the one the check compares with
        delta = [list(r) for r in dfa.delta]
        if dfa.states > 1:
            delta[0][0] = (delta[0][0] + 1) % dfa.states
        return original(DFA(dfa.alphabet, dfa.states, dfa.start, dfa.accept, delta))

    monkeypatch.setattr(regular, "decompose", perturbed)
    monkeypatch.setitem(regular._RANDOM_DFAS, "ci", 6)
    res = CHECKS["regular.cascade"]("ci")
    assert res.verdict == "failed"
    assert not re.search(r"\bagree\b", res.evidence["summary"]) and "FAILED" in res.evidence["summary"]


def test_deltanet_blocks_failure_is_failed_and_its_summary_never_says_agree(monkeypatch):
    class Perturbed(CascadeBlocks):  # compiles a different automaton than the one the check compares with
        def __init__(self, dfa, name=""):
            delta = [list(r) for r in dfa.delta]
            delta[0][0] = (delta[0][0] + 1) % dfa.states
            super().__init__(DFA(dfa.alphabet, dfa.states, dfa.start, dfa.accept, delta), name)

    monkeypatch.setattr(DR, "CascadeBlocks", Perturbed)
    monkeypatch.setattr(DR, "EXAMPLES", {"parity": DR.EXAMPLES["parity"]})
    monkeypatch.setitem(DR._RANDOM, "ci", 2)
    res = CHECKS["regular.deltanet_blocks"]("ci")
    assert res.verdict == "failed" and not res.evidence["parity"]["words"]
    summary = res.evidence["summary"]
    assert not re.search(r"\bagree\b", summary, re.IGNORECASE)
    assert "FAILED on parity (a word decoded wrong)" in summary


# --- horizons: distributions over seeds, cache keyed on the construction ------------------------------------
def test_random_horizon_is_a_distribution_over_at_least_five_seeds():
    con = CONSTRUCTIONS["modcount.reflections.m5"]()
    r = HZ.random_horizon(con, "bf16", 3000, 4)
    assert len(r["seeds"]) >= 5 and len(r["per_seed_min"]) == len(r["seeds"]) and r["words"] == 4 * len(r["seeds"])
    assert r["min"] is not None and 0 <= r["never_wrong"] <= 1
    assert r["min"] == min(v for v in r["per_seed_min"] if v is not None)
    assert "median" in HZ.describe({"horizon": None, "open_from": 5, "random": r})


def test_horizon_cache_is_keyed_on_the_construction_and_the_budget(monkeypatch):
    budget = {"pairs": 50, "steps": 20, "words": 2, "seeds": 5}
    monkeypatch.setattr(HZ, "CONSTRUCTIONS", {n: CONSTRUCTIONS[n] for n in ("parity.diagonal", "modcount.rotation")})
    first = HZ.cached_horizons(None, budget)
    assert set(first["table"]) == {"parity.diagonal", "modcount.rotation"}
    computed = []
    monkeypatch.setattr(HZ, "horizon_table", lambda b, names: computed.extend(names) or
                        {n: {"key": HZ.construction_key(n)} for n in names})
    assert HZ.cached_horizons(first, budget) == first and computed == []
    HZ.cached_horizons(first, {**budget, "steps": 21})
    assert sorted(computed) == ["modcount.rotation", "parity.diagonal"]
    computed.clear()
    original = modcount.rotation

    def edited():
        con = original()
        con.layers[0].h0 = con.layers[0].h0 * 0.5
        return con

    monkeypatch.setitem(HZ.CONSTRUCTIONS, "modcount.rotation", edited)
    HZ.cached_horizons(first, budget)
    assert computed == ["modcount.rotation"]


def test_construction_key_changes_when_only_its_module_source_changes(monkeypatch):
    import inspect

    names = ("modcount.rotation", "parity.diagonal")
    before = {n: HZ.construction_key(n) for n in names}
    original = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: original(obj) + ("\n# edited\n" if obj is modcount else ""))
    after = {n: HZ.construction_key(n) for n in names}
    assert after["modcount.rotation"] != before["modcount.rotation"]  # same parameters, edited source
    assert after["parity.diagonal"] == before["parity.diagonal"]     # another module's construction keeps its key
