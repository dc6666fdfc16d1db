"""The error contract beyond the table: errors cross process boundaries intact, unexpected errors and
Ctrl-C end in one line (exit 3 with a log file, exit 130), every command states its exit codes, the
two wrong answers at their boundaries, nothing lost (bounded file names, run ids, one run per --out,
damaged caches discarded), imports bounded like calls."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from lrnnspec import errors
from lrnnspec.cli import build_parser, main

from .helpers import REPO, run


# --- errors cross process boundaries ----------------------------------------------------------------
def _error_types() -> list[type]:
    """Every exception type lrnnspec defines (the modules that define them, imported)."""
    import importlib

    for module in ("lrnnspec.errors", "lrnnspec.spec.errors", "lrnnspec.spec.graph", "lrnnspec.harness.process",
                   "lrnnspec.harness.verdicts", "lrnnspec.harness.worker", "lrnnspec.harness.targets",
                   "lrnnspec.harness.conventions", "lrnnspec.harness.wire", "lrnnspec.harness.kernel",
                   "lrnnspec.proofs.regular_dfa"):
        importlib.import_module(module)
    seen, todo = [], [Exception]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("lrnnspec") and sub not in seen and not sub.__name__.startswith("_"):
                seen.append(sub)
    return seen


def _instance(cls: type) -> BaseException:
    """One instance with a string for every argument of its ``__init__``."""
    params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return cls(*[f"{p.name}-value" for p in params])


def test_every_error_type_survives_a_real_worker_process():
    types = _error_types()
    names = {t.__name__ for t in types}
    assert {"SpecError", "UsageError", "CannotRun", "LoadError", "KernelDied", "DFAError", "TargetError",
            "PropertyFailure", "KernelFailure", "GraphError"} <= names, names
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for cls in types:
            exc = _instance(cls)
            # raised in the worker (exec: a builtin, importable there), pickled back by the pool
            future = pool.submit(exec, "import pickle\nraise pickle.loads(blob)", {"blob": pickle.dumps(exc)})
            with pytest.raises(cls) as got:
                future.result(timeout=120)
            back = got.value
            assert str(back) == str(exc) and type(back) is cls
            assert {k: v for k, v in vars(back).items() if k != "__traceback__"} == \
                {k: v for k, v in vars(exc).items() if k != "__traceback__"}


# --- one line for the unexpected, Ctrl-C, --debug ------------------------------------------------------
def test_an_unexpected_error_exits_3_with_one_line_and_a_log(monkeypatch, tmp_path, capsys):
    import lrnnspec.commands.spec as spec_cmd

    def boom(args):
        return 1 / 0

    monkeypatch.setenv("LRNNSPEC_LOG_DIR", str(tmp_path))
    monkeypatch.delenv("LRNNSPEC_DEBUG", raising=False)
    monkeypatch.setattr(spec_cmd, "_spec_list", boom)
    assert main(["spec", "list"]) == errors.CANNOT_RUN
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("lrnnspec spec list: error: unexpected ZeroDivisionError inside lrnnspec")
    (log,) = tmp_path.glob("*.log")
    assert str(log) in err and "ZeroDivisionError" in log.read_text() and "Traceback" in log.read_text()
    assert main(["spec", "list", "--debug"]) == errors.CANNOT_RUN
    assert "Traceback" in capsys.readouterr().err


def _as_at_a_terminal() -> None:
    """SIGINT delivered and default, as a shell gives it: a blocked or ignored SIGINT inherited from the
    test process (seen once in a full run) never arrives, and the command runs to its end."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, hostile_files):
    env = dict(os.environ, LRNNSPEC_LOG_DIR=str(tmp_path / "logs"))
    proc = subprocess.Popen(["lrnnspec", "prove", "regular", "--dfa", hostile_files["ok_dfa"], "--max-length",
                             "9000"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_at_a_terminal)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == errors.INTERRUPTED, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if line.strip()] == ["lrnnspec prove: interrupted; nothing was written"]


def test_every_command_states_what_its_exit_codes_mean():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        if name in ("peers", "campaign"):
            continue                   # peers: list / install (pip's own exit code); campaign: tests/campaign
        text = p.format_help()
        assert "Exit" in text and " 0 " in text and " 2 " in text and " 1" in text, name   # not argparse's "exit"
    assert "130" in parser.format_help()


# --- the two wrong answers, at their boundaries --------------------------------------------------------
@pytest.mark.parametrize("length", [62, 63, 64, 1500])
def test_prove_regular_counts_every_word_exactly(length):
    from lrnnspec.proofs.regular import prove_regular
    from lrnnspec.proofs.regular_dfa import parity_dfa

    res = prove_regular(parity_dfa(), max_length=length, random_words=0, engines=("fp64",),
                        variants=("deltaproduct",))
    assert res.ok, res.disagreements
    (run_,) = res.variants[0].runs
    assert run_.words == 2 ** (length + 1) - 1 and not run_.state_disagreements    # every word of length ≤ L


def test_prove_regular_past_63_through_the_command(hostile_files, capsys):
    assert main(["prove", "regular", "--dfa", hostile_files["ok_dfa"], "--max-length", "64"]) == 0
    out = capsys.readouterr().out
    assert "verdict: all agree" in out and "DISAGREE" not in out


@pytest.mark.parametrize("T, shape", [(0, "(1, 0, 2, 8) (empty)"), (1, "(1, 1, 2, 8)"), (None, "(1, 16, 2, 8)")])
def test_spec_eval_T_zero_is_the_empty_sequence(T, shape, capsys):
    assert main(["spec", "eval", "delta_rule"] + ([] if T is None else ["--T", str(T)])) == 0
    assert f"output: shape {shape}" in capsys.readouterr().out


# --- nothing lost or mixed up ----------------------------------------------------------------------------
def test_certificate_names_are_bounded_and_distinct():
    from lrnnspec.harness.certificate import STEM_CHARS, certificate_stem

    short = certificate_stem("gla", "pkg.mod:f")
    assert short == "gla-pkg.mod.f"
    a = certificate_stem("gla", "/very/" + "d" * 400 + "/k.py:f")
    b = certificate_stem("gla", "/very/" + "d" * 400 + "/k.py:g")
    assert len(a.encode()) <= STEM_CHARS and len((a + ".json").encode()) < 255 and a != b


def test_a_second_run_into_the_same_out_refuses(tmp_path, hostile_files):
    from lrnnspec.commands.checks import OutLock

    with OutLock(tmp_path):
        proc = run(["certify", "lrnnspec.impls.simple_gla:chunk_simple_gla", "--family", "simple_gla", "--out",
                    str(tmp_path)], tmp_path)
    assert proc.returncode == errors.USAGE, proc.stderr
    assert "--out: another lrnnspec run is writing into this directory" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "progress.jsonl").exists()
    with OutLock(tmp_path):            # released when the holder ends
        pass


def test_a_long_target_gets_its_certificate_and_progress_lines_carry_the_run(tmp_path):
    folder = tmp_path / ("k" * 200) / ("e" * 200)
    folder.mkdir(parents=True)
    kernel = folder / "kernel.py"
    kernel.write_text("from lrnnspec.impls.simple_gla import chunk_simple_gla as f\n")
    out = tmp_path / "out"
    proc = run(["certify", f"{kernel}:f", "--family", "simple_gla", "--properties", "forward", "--examples", "2",
                "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (cert,) = out.glob("*.json")
    data = json.loads(cert.read_text())
    assert data["certified"] and len(cert.name.encode()) < 255 and data["run"]
    lines = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert lines and all(line["run"] == data["run"] for line in lines)
    from lrnnspec.harness.certificate import Certificate

    again = Certificate.from_json(data)
    assert again.to_json() == data


def test_a_damaged_report_cache_is_discarded_with_a_warning(tmp_path, capsys):
    from lrnnspec.commands.report import _damage, _read_cache

    good = json.loads((REPO / "reports" / "expressivity.json").read_text())["horizons"]
    assert _damage(good) is None
    path = tmp_path / "expressivity.json"
    for broken, where in [({"horizons": {"budget": {}, "table": {"x": {"fp32": "garbage"}}}}, "horizons.table.x.fp32"),
                          ({"horizons": [1, 2]}, "horizons"),
                          ({"horizons": {"budget": {}, "table": {"x": {"fp32": {"horizon": "7"}, "bf16": {},
                                                                       "fp16": {}}}}}, "horizon")]:
        path.write_text(json.dumps(broken))
        assert _read_cache(path, recompute=False) is None
        err = capsys.readouterr().err
        assert "warning" in err and where in err and "discarded" in err
    path.write_text("{damaged")
    assert _read_cache(path, recompute=False) is None and "not a readable cache" in capsys.readouterr().err
    path.write_text(json.dumps({"horizons": good}))
    assert _read_cache(path, recompute=False) == good


def test_the_certificate_schema_file_is_current_and_accepts_the_committed_certificates():
    import jsonschema

    from lrnnspec.schema import SCHEMA_FILE, json_schema, validate

    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "run python -m lrnnspec.schema"
    validator = jsonschema.Draft202012Validator(json_schema())
    certificates = sorted((REPO / "reports").glob("certificates*/*.json"))
    assert len(certificates) > 20
    for path in certificates:
        data = json.loads(path.read_text())
        validate(data, str(path))
        assert not list(validator.iter_errors(data)), path


def test_the_schema_models_mirror_the_certificate_types():
    from dataclasses import fields

    from lrnnspec.harness.certificate import Certificate
    from lrnnspec.harness.scope import Scope
    from lrnnspec.harness.verdicts import STATUSES, Verdict
    from lrnnspec.schema import CertificateModel, ScopeModel, VerdictModel
    from lrnnspec.strategies.sequence import STRUCTURE

    assert set(CertificateModel.model_fields) == {f.name for f in fields(Certificate)} | {"certified"}
    assert set(VerdictModel.model_fields) == {f.name for f in fields(Verdict)}
    assert set(ScopeModel.model_fields) == {f.name for f in fields(Scope)}
    from lrnnspec.schema import SequenceCase

    assert set(SequenceCase.model_fields) == set(STRUCTURE)
    assert set(json_enum(VerdictModel, "status")) == set(STATUSES)


def json_enum(model, field):
    return model.model_json_schema()["properties"][field]["enum"]


def test_the_cli_keeps_its_copies_of_names_in_step():
    from lrnnspec import PROFILE_EXAMPLES
    from lrnnspec.commands import checks, train
    from lrnnspec.harness.kernel import TORCH_DTYPES
    from lrnnspec.training import models, tasks

    assert checks.DTYPES == tuple(TORCH_DTYPES) and checks.PROFILES == tuple(PROFILE_EXAMPLES)
    assert (train.MODELS, train.RANGES, train.TARGETS) == (models.MODELS, models.RANGES, tasks.TARGETS)
    assert train.TASKS == tuple(tasks.TASKS)


def test_help_does_not_import_torch(tmp_path):
    code = "import sys; from lrnnspec.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    proc = subprocess.run(["python", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.strip() == "False", proc.stderr


# --- replay: the hash, a relative target, a correct replay ------------------------------------------------
def test_replay_warns_on_a_changed_kernel_and_finds_a_relative_target(tmp_path):
    from .helpers import planted_certificate

    data = planted_certificate()
    data["kernel"]["target"] = "tests/certifier/planted.py:chunk_simple_gla_scale_ignored"    # relative to REPO
    data["kernel"]["directory"] = str(REPO)
    data["kernel"]["sha256"] = "0" * 64
    data["verdicts"][0]["counterexample"]["description"] = "edited by hand"       # a benign change
    cert = tmp_path / "cert.json"
    cert.write_text(json.dumps(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run(["replay", str(cert)], elsewhere)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "reproduced: output error" in proc.stdout
    assert "warning: the kernel's source differs from the certificate's" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
