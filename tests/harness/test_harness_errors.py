"""An exception in the harness's own code is the verdict ``error``: never a pass, never the kernel's
failure — the run is not certified, ``lrnnspec certify`` exits 3, and the certificate holds the
traceback — for sequence and DAG families alike. And ``lrnnspec replay`` runs the kernel in the
environment its certificate recorded."""

from __future__ import annotations

import json

import pytest

from lrnnspec.cli import main
from lrnnspec.harness import dag, sequence


def _broken(*args, **kwargs):
    raise ZeroDivisionError("the reference could not be computed")


@pytest.mark.parametrize("target, family, module, name", [
    ("lrnnspec.impls.simple_gla:chunk_simple_gla", "simple_gla", sequence, "reference"),
    ("lrnnspec.impls.plstm:chunked_2d", "plstm", dag, "dag_reference"),
])
def test_a_harness_exception_is_an_error_and_exit_3(target, family, module, name, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(module, name, _broken)
    code = main(["certify", target, "--family", family, "--profile", "dev", "--properties", "forward,determinism",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 3, out
    assert "NOT CERTIFIED (harness error)" in out and "Harness errors" in out
    cert = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert not cert["certified"]
    for v in cert["verdicts"]:
        assert v["status"] == "error", v
        assert "not the kernel's fault" in v["reason"] and "ZeroDivisionError" in v["traceback"]
        assert v["counterexample"]["case"]                   # the case on which it failed, to reproduce it


def test_the_runner_stops_at_a_harness_error_without_shrinking(monkeypatch):
    """The runner keeps a kernel's failure and the harness's apart on one property."""
    from lrnnspec.harness.kernel import Kernel
    from lrnnspec.harness.runner import run_property

    k = Kernel("lrnnspec.impls.retention:chunk_retention", "retention")
    try:
        assert run_property(k, "forward", "fp32", max_examples=3, seed=0).status == "pass"
        monkeypatch.setattr(sequence, "reference", _broken)
        v = run_property(k, "forward", "fp32", max_examples=3, seed=0)
        assert v.status == "error" and v.examples == 1      # stopped at once: nothing to shrink
    finally:
        k.close()


def test_replay_restores_the_recorded_variables_and_names_what_differs(tmp_path, capsys, monkeypatch):
    from . import hostile

    target = f"{hostile.FILE}:wrong_under_a_triton_variable"
    monkeypatch.setenv("TRITON_LRNNSPEC_PROBE", "1")
    assert main(["certify", target, "--family", hostile.FAMILY, "--profile", "dev", "--properties", "forward",
                 "--out", str(tmp_path)]) == 1
    (path,) = tmp_path.glob("*.json")
    cert = json.loads(path.read_text())
    assert cert["environment"]["variables"]["TRITON_LRNNSPEC_PROBE"] == "1"
    cert["environment"]["torch"] = "0.0.1"                        # as if certified with another torch
    path.write_text(json.dumps(cert))
    monkeypatch.delenv("TRITON_LRNNSPEC_PROBE")                   # this shell lacks it: replay restores it
    capsys.readouterr()
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "torch: 0.0.1 in the certificate" in out and "reproduced: output error" in out
