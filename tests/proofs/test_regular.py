"""The DFA type (validation, JSON, minimization) and ``prove_regular`` / its CLI entry point."""

import io
import json

import numpy as np
import pytest
from hypothesis import given

from lrnnspec.proofs import regular
from lrnnspec.proofs.regular import prove_regular, prove_regular_cli
from lrnnspec.proofs.regular_dfa import DFA, DFAError, contains_aa_dfa, load_dfa, mod_dfa, parity_dfa
from lrnnspec.strategies import dfas

GOOD = {"alphabet": ["a", "b"], "states": 3, "start": 0, "accept": [2], "delta": [[1, 0], [2, 0], [2, 2]]}


@pytest.mark.parametrize("change, field, rule", [
    ({"states": 0}, "states", "≥ 1"),
    ({"states": 2.0}, "states", "integer"),
    ({"start": 3}, "start", "0..2"),
    ({"start": -1}, "start", "0..2"),
    ({"accept": [3]}, "accept", "0..2"),
    ({"accept": [2, 2]}, "accept", "unique"),
    ({"delta": [[1, 0], [2, 0]]}, "delta", "one row per state"),
    ({"delta": [[1, 0], [2], [2, 2]]}, "delta", "row 1"),
    ({"delta": [[1, 0], [2, 3], [2, 2]]}, "delta", "delta[1][1] = 3"),
    ({"delta": [[1, 0], [2, True], [2, 2]]}, "delta", "delta[1][1]"),
    ({"alphabet": ["a", "a"], "delta": [[1, 0], [2, 0], [2, 2]]}, "alphabet", "unique"),
    ({"alphabet": ["a", 1]}, "alphabet", "strings"),
    ({"alphabet": []}, "alphabet", "at least one"),
    ({"alphabet": "ab"}, "alphabet", "list"),
])
def test_validation_names_field_and_rule(change, field, rule):
    with pytest.raises(DFAError) as exc:
        DFA.from_dict({**GOOD, **change})
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{field}:") and rule in str(exc.value)


def test_missing_and_unknown_fields():
    with pytest.raises(DFAError, match="^delta: is required"):
        DFA.from_dict({k: v for k, v in GOOD.items() if k != "delta"})
    with pytest.raises(DFAError, match="^final: is not a DFA field"):
        DFA.from_dict({**GOOD, "final": [1]})
    with pytest.raises(DFAError, match="^dfa: must be a JSON object"):
        DFA.from_dict([1, 2])


def test_json_round_trip_and_load(tmp_path):
    d = DFA.from_dict(GOOD)
    assert DFA.from_json(d.to_json()) == d
    path = tmp_path / "d.json"
    path.write_text(json.dumps(GOOD))
    assert load_dfa(path) == d
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DFAError, match="^dfa: is not valid JSON"):
        load_dfa(bad)
    with pytest.raises(DFAError, match="^dfa: cannot read"):
        load_dfa(tmp_path / "missing.json")


def _words(m, L):
    for length in range(L + 1):
        for idx in np.ndindex(*(m,) * length):
            yield list(idx)


@given(dfas())
def test_minimization_preserves_the_language(dfa):
    mini, smap = dfa.minimize()
    assert mini.states <= len(dfa.reachable())
    for w in _words(dfa.letters, 5 if dfa.letters <= 2 else 3):
        assert mini.accepts(w) == dfa.accepts(w)
        assert smap[dfa.run(w)] == mini.run(w)
    # minimal: states pairwise distinguishable (Moore's partition cannot split further)
    again, _ = mini.minimize()
    assert again.states == mini.states


def test_prove_regular_result_on_parity():
    res = prove_regular(parity_dfa(), max_length=6, random_words=2, random_length=50)
    assert res.ok
    dp = res.variants[0]
    assert dp.summary["layers"] == 1 and dp.summary["householders_per_token"] == [1]
    assert res.words_checked()["deltaproduct/fp64"] == 2 ** 7 - 1 + 2 * 50
    assert "verdict: all agree" in res.render()
    json.dumps(res.to_json(), default=str)


def test_prove_regular_rejects_bad_arguments():
    with pytest.raises(ValueError, match="^max_length: must be an integer ≥ 0"):
        prove_regular(parity_dfa(), max_length=-1)
    with pytest.raises(ValueError, match="^engines: must be a non-empty subset"):
        prove_regular(parity_dfa(), engines=("fp16",))
    with pytest.raises(ValueError, match="^variants: must be a non-empty subset"):
        prove_regular(parity_dfa(), variants=("rwkv",))
    with pytest.raises(TypeError, match="^dfa: must be a DFA"):
        prove_regular({"states": 1})


def test_cli_exit_codes(tmp_path, monkeypatch):
    good = tmp_path / "aa.json"
    good.write_text(contains_aa_dfa().to_json())
    out, err = io.StringIO(), io.StringIO()
    small = dict(random_words=1, random_length=20, engines=("fp64",))
    real = regular.prove_regular
    monkeypatch.setattr(regular, "prove_regular", lambda d, **kw: real(d, **{**kw, **small}))
    assert prove_regular_cli(str(good), 5, 0, out=out, err=err) == 0
    assert "layers" in out.getvalue() and "Householders per token" in out.getvalue()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**GOOD, "start": 7}))
    assert prove_regular_cli(str(bad), 5, 0, out=out, err=err) == 2
    assert "start: must be a state in 0..2" in err.getvalue()
    assert prove_regular_cli(str(good), -3, 0, out=out, err=err) == 2
    # a wrong construction (the naive wiring, which reads updated coordinates) must exit 1
    monkeypatch.setattr(regular, "VARIANTS", {"deltaproduct": dict(gated=False, keys="unit", delay="none")})
    monkeypatch.setattr(regular, "prove_regular",
                        lambda d, **kw: real(d, **{**kw, **small, "variants": ("deltaproduct",)}))
    out = io.StringIO()
    assert prove_regular_cli(str(good), 5, 0, out=out, err=err) == 1
    assert "DISAGREE" in out.getvalue()


def test_cli_through_lrnnspec_command(tmp_path, capsys):
    pytest.importorskip("lrnnspec.commands.prove")
    from lrnnspec.cli import main

    path = tmp_path / "mod3.json"
    path.write_text(mod_dfa(3).to_json())
    assert main(["prove", "regular", "--dfa", str(path), "--max-length", "4"]) == 0
    capsys.readouterr()
    assert main(["prove", "regular", "--dfa", str(path), "--max-length", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["minimal_states"] == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**GOOD, "delta": [[1, 0]]}))
    assert main(["prove", "regular", "--dfa", str(bad), "--max-length", "4"]) == 2


def test_registered_checks():
    import lrnnspec.proofs  # noqa: F401  (registers the checks)
    from lrnnspec.proofs.result import CHECKS

    for name in ("regular.cascade", "regular.parity", "regular.mod3", "regular.star_free",
                 "regular.group_free_reset", "regular.delay"):
        assert name in CHECKS
    for name in ("regular.parity", "regular.group_free_reset", "regular.delay"):
        res = CHECKS[name]("dev")
        assert res.verdict == "verified", res.evidence
