"""The prediction matrix never shows an unchecked cell as verified; ``lrnnspec prove`` selection,
exit codes and the ``regular --dfa`` dispatch."""

import json
import sys
import types

import pytest

import lrnnspec.proofs  # noqa: F401
from lrnnspec.cli import main
from lrnnspec.proofs import result as R
from lrnnspec.proofs.matrix import COLUMNS, ROWS, Cell, cell_status, matrix


def test_cell_with_a_missing_check_is_open_never_verified():
    cell = Cell("✓ multi-layer", ("regular.cascade",))
    assert cell_status(cell, {}) == "open"
    assert cell_status(cell, {"regular.cascade": "verified"}) == "verified"
    assert cell_status(cell, {"regular.cascade": "failed"}) == "open"


def test_impossibility_cell_needs_a_witness():
    cell = Cell("✗", ("parity.nonnegative",))
    assert cell_status(cell, {"parity.nonnegative": "witnessed"}) == "witnessed"
    assert cell_status(cell, {"parity.nonnegative": "open"}) == "open"


def test_matrix_covers_every_column_and_references_only_known_or_regular_checks():
    rows = matrix({})
    assert all(set(r["cells"]) == set(COLUMNS) for r in rows)
    assert all(c["status"] == "open" for r in rows for c in r["cells"].values())
    for row in ROWS:
        for cell in row.cells.values():
            for name in cell.checks:
                assert name in R.CHECKS or name.startswith("regular."), name


def test_select_by_dotted_prefix():
    assert R.select(["parity.reflection"]) == ["parity.reflection"]
    assert set(R.select(["parity"])) >= {"parity.diagonal", "parity.mamba", "parity.nonnegative"}
    with pytest.raises(KeyError, match="known:"):
        R.select(["parity.refl"])  # a prefix must end at a dot


def test_unknown_name_exits_2_and_lists_the_known_names(capsys):
    assert main(["prove", "no_such_check"]) == 2
    err = capsys.readouterr().err
    assert "no_such_check" in err and "parity.diagonal" in err


def test_prove_json_and_exit_1_on_a_failed_check(monkeypatch, capsys):
    monkeypatch.setitem(R.CHECKS, "zz_test.fails",
                        lambda profile: R.CheckResult("zz_test.fails", "r", "s", "h", "failed", {"why": "planted"}))
    monkeypatch.setitem(R.CHECKS, "zz_test.passes",
                        lambda profile: R.CheckResult("zz_test.passes", "r", "s", "h", "verified", {}))
    assert main(["prove", "zz_test.passes"]) == 0
    capsys.readouterr()
    assert main(["prove", "zz_test", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in data["checks"]] == ["failed", "verified"]


def test_a_crashing_check_is_reported_as_failed(monkeypatch):
    def boom(profile):
        raise RuntimeError("planted")

    monkeypatch.setitem(R.CHECKS, "zz_test.crash", boom)
    res = R.run("zz_test.crash", "ci")
    assert res.verdict == "failed" and "planted" in res.evidence["error"]


def test_prove_regular_dispatches_to_the_compiler(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("lrnnspec.proofs.regular")
    fake.prove_regular_cli = lambda dfa_path, max_length, seed, as_json: calls.append(
        (dfa_path, max_length, seed, as_json)) or 7
    monkeypatch.setitem(sys.modules, "lrnnspec.proofs.regular", fake)
    monkeypatch.setattr(lrnnspec.proofs, "regular", fake, raising=False)
    dfa = tmp_path / "d.json"
    dfa.write_text("{}")
    assert main(["prove", "regular", "--dfa", str(dfa), "--max-length", "5"]) == 7
    assert main(["prove", "regular", "--dfa", str(dfa), "--max-length", "5", "--json"]) == 7
    assert calls == [(str(dfa), 5, 0, False), (str(dfa), 5, 0, True)]


def test_dfa_without_regular_is_a_usage_error(capsys):
    assert main(["prove", "parity", "--dfa", "x.json"]) == 2
    assert "lrnnspec prove: error: --dfa: needs the NAME 'regular'" in capsys.readouterr().err


def test_report_needs_a_kind(capsys):
    assert main(["report"]) == 2
    assert "lrnnspec report: error: the following arguments are required: KIND" in capsys.readouterr().err
