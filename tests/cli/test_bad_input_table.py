"""A table of hostile invocations of every subcommand, run as a user runs them (subprocesses): each
ends with the exit code of the contract, one line ``lrnnspec <command>: error: <argument>: <rule>``
naming the argument, no traceback, no unexpected-error log, and nothing misleading written (no
certificate, report or progress file in the working directory).

Most rows are refused before torch is imported (~0.3 s each); the rows that need torch, a kernel's
process or pytest are marked ``heavy`` and kept few (the whole table runs in about a minute with
``-n 2``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run

U = 2   # usage / bad input
X = 3   # could not run here
LONG = "y" * 5000
UNI = "fp32\u200b"   # a zero-width space: looks like fp32

C = ["certify", "lrnnspec.impls.simple_gla:chunk_simple_gla", "--family", "simple_gla"]   # a good certify prefix
R = ["prove", "regular", "--dfa"]
E = ["spec", "eval", "delta_rule"]
T = ["train", "parity", "--model", "gla", "--eigenvalues", "0,1", "--quiet"]

# (id, argv, exit code, text the error line must contain, heavy)
ROWS = [
    # --- top level -----------------------------------------------------------------------------
    ("no-command", [], U, "COMMAND", False),
    ("unknown-command", ["certifyy"], U, "COMMAND", False),
    ("unknown-global-option", ["--frobnicate", "spec", "list"], U, "--frobnicate", False),
    ("unicode-command", ["сертификат"], U, "COMMAND", False),
    ("long-command", [LONG], U, "COMMAND", False),
    ("extra-args-after-list", ["spec", "list", "extra"], U, "unrecognized arguments", False),
    # --- spec ----------------------------------------------------------------------------------
    ("spec-no-subcommand", ["spec"], U, "SUBCOMMAND", False),
    ("spec-eval-no-family", ["spec", "eval"], U, "family", False),
    ("spec-eval-unknown-family", ["spec", "eval", "nope"], U, "FAMILY: unknown family", False),
    ("spec-eval-empty-family", ["spec", "eval", ""], U, "FAMILY", False),
    ("spec-eval-long-family", ["spec", "eval", LONG], U, "FAMILY", False),
    ("spec-eval-T-negative", E + ["--T", "-1"], U, "--T", False),
    ("spec-eval-T-float", E + ["--T", "2.5"], U, "--T", False),
    ("spec-eval-T-huge", E + ["--T", "1000000000"], X, "--T", False),
    ("spec-eval-K-zero", E + ["--K", "0"], U, "--K", False),
    ("spec-eval-H-huge", E + ["--H", "100000", "--K", "100000"], X, "sizes", False),
    ("spec-eval-B-unicode", E + ["--B", "٣"], U, "--B", False),
    ("spec-eval-engine-unknown", E + ["--engine", "banana"], U, "--engine", False),
    ("spec-eval-engine-bad-format", E + ["--engine", "emulate:fp9"], U, "--engine", False),
    ("spec-eval-engine-empty", E + ["--engine", ""], U, "--engine", False),
    ("spec-eval-prec-without-exact", E + ["--prec", "64"], U, "--prec", False),
    ("spec-eval-prec-huge", E + ["--engine", "exact", "--prec", "10000000"], U, "--prec", False),
    ("spec-eval-prec-zero", E + ["--engine", "exact", "--prec", "0"], U, "--prec", False),
    ("spec-eval-graph-on-sequence", E + ["--graph", "chain:4"], U, "--graph", False),
    ("spec-eval-graph-garbage", ["spec", "eval", "plstm", "--graph", "tree:3"], U, "--graph", False),
    ("spec-eval-graph-and-T", ["spec", "eval", "plstm", "--graph", "chain:4", "--T", "3"], U, "--T", False),
    ("spec-eval-dag-T0", ["spec", "eval", "plstm", "--T", "0"], U, "--T", False),
    ("spec-eval-seed-negative", E + ["--seed", "-3"], U, "--seed", False),
    ("spec-eval-seed-huge", E + ["--seed", str(2 ** 70)], U, "--seed", False),
    ("spec-list-extra-option", ["spec", "list", "--T", "3"], U, "unrecognized arguments", False),
    # --- prove ---------------------------------------------------------------------------------
    ("prove-bad-profile", ["prove", "parity", "--profile", "fast"], U, "--profile", False),
    ("prove-unknown-name", ["prove", "no.such.check"], U, "NAME", False),
    ("prove-max-length-without-dfa", ["prove", "parity", "--max-length", "3"], U, "--max-length", False),
    ("prove-dfa-without-regular", ["prove", "--dfa", "{ok_dfa}"], U, "--dfa", False),
    ("prove-regular-missing-file", R + ["nope.json"], U, "dfa", False),
    ("prove-regular-directory", R + ["{a_dir}"], U, "dfa", False),
    ("prove-regular-not-json", R + ["{not_json}"], U, "dfa", False),
    ("prove-regular-binary", R + ["{binary}"], U, "dfa", False),
    ("prove-regular-empty-file", R + ["{empty}"], U, "dfa", False),
    ("prove-regular-deeply-nested", R + ["{deep}"], U, "dfa", False),
    ("prove-regular-bad-delta", R + ["{dfa_bad_delta}"], U, "delta", False),
    ("prove-regular-missing-field", R + ["{dfa_missing}"], U, "delta", False),
    ("prove-regular-extra-field", R + ["{dfa_extra}"], U, "x: is not a DFA field", False),
    ("prove-regular-list", R + ["{dfa_list}"], U, "dfa", False),
    ("prove-regular-dup-letters", R + ["{dfa_dup_letters}"], U, "alphabet", False),
    ("prove-regular-string-states", R + ["{dfa_str_states}"], U, "states", False),
    ("prove-regular-max-length-negative", R + ["{ok_dfa}", "--max-length", "-1"], U, "--max-length", False),
    ("prove-regular-max-length-huge", R + ["{ok_dfa}", "--max-length", "10001"], U, "--max-length", False),
    ("prove-regular-max-length-word", R + ["{ok_dfa}", "--max-length", "ten"], U, "--max-length", False),
    ("prove-regular-extra-name", ["prove", "regular", "parity", "--dfa", "{ok_dfa}"], U, "NAME", False),
    ("prove-regular-with-profile", R + ["{ok_dfa}", "--profile", "ci"], U, "--profile", False),
    ("prove-regular-long-path", R + [LONG], U, "dfa", False),
    # --- report --------------------------------------------------------------------------------
    ("report-no-kind", ["report"], U, "KIND", False),
    ("report-unknown-kind", ["report", "nonsense"], U, "KIND", False),
    ("report-expressivity-bad-profile", ["report", "expressivity", "--profile", "x", "--out", "o"], U, "--profile",
     False),
    ("report-expressivity-out-file", ["report", "expressivity", "--out", "{a_file}"], U, "--out", False),
    ("report-expressivity-out-proc", ["report", "expressivity", "--out", "/proc/lrnnspec-report"], U, "--out", False),
    ("report-expressivity-out-long", ["report", "expressivity", "--out", "{long_name}"], U, "--out", False),
    ("report-expressivity-steps-zero", ["report", "expressivity", "--horizon-steps", "0"], U, "--horizon-steps",
     False),
    ("report-trained-out-file", ["report", "trained", "--out", "{a_file}"], U, "--out", False),
    ("report-trained-unknown-option", ["report", "trained", "--steps", "3"], U, "unrecognized", False),
    # --- bench ---------------------------------------------------------------------------------
    ("bench-empty-k", ["bench", "-k", "", "--out", "o"], U, "-k", False),
    ("bench-out-file", ["bench", "--out", "{a_file}"], U, "--out", False),
    ("bench-bad-device", ["bench", "--device", "tpu"], U, "--device", False),
    ("bench-k-matches-nothing", ["bench", "-k", "zzz_no_such_benchmark", "--out", "o"], U, "-k", True),
    # --- certify: the options ------------------------------------------------------------------
    ("certify-no-target", ["certify", "--family", "gla"], U, "target", False),
    ("certify-no-family", ["certify", "a:b"], U, "--family", False),
    ("certify-unknown-family", ["certify", "a:b", "--family", "nope"], U, "--family", False),
    ("certify-empty-family", ["certify", "a:b", "--family", ""], U, "--family", False),
    ("certify-target-no-colon", ["certify", "lrnnspec.impls", "--family", "gla"], U, "TARGET", False),
    ("certify-target-empty", ["certify", "", "--family", "gla"], U, "TARGET", False),
    ("certify-target-missing-file", ["certify", "nowhere/k.py:f", "--family", "gla"], U, "TARGET", False),
    ("certify-target-long", ["certify", LONG + ":f", "--family", "gla"], U, "TARGET", False),
    ("certify-dtype-empty", C + ["--dtype", ""], U, "--dtype", False),
    ("certify-dtype-empty-item", C + ["--dtype", "fp32,,bf16"], U, "--dtype", False),
    ("certify-dtype-unknown", C + ["--dtype", "fp33"], U, "--dtype", False),
    ("certify-dtype-repeated", C + ["--dtype", "fp32,fp32"], U, "--dtype", False),
    ("certify-dtype-lookalike", C + ["--dtype", UNI], U, "--dtype", False),
    ("certify-dtype-long", C + ["--dtype", LONG], U, "--dtype", False),
    ("certify-contract-not-requested", C + ["--contract", "bf16=tf32"], U, "--contract", False),
    ("certify-contract-twice", C + ["--contract", "fp32=tf32", "--contract", "fp32=fp32"], U, "--contract", False),
    ("certify-contract-no-equals", C + ["--contract", "tf32"], U, "--contract", False),
    ("certify-contract-unknown", C + ["--contract", "fp32=fp31"], U, "--contract", False),
    ("certify-contract-bad-dtype", C + ["--contract", "int8=fp32"], U, "--contract", False),
    ("certify-arg-malformed", C + ["--arg", "q"], U, "--arg", False),
    ("certify-arg-twice", C + ["--arg", "q=a", "--arg", "q=b"], U, "--arg", False),
    ("certify-env-malformed", C + ["--env", "=1"], U, "--env", False),
    ("certify-examples-zero", C + ["--examples", "0"], U, "--examples", False),
    ("certify-examples-float", C + ["--examples", "2.5"], U, "--examples", False),
    ("certify-seed-word", C + ["--seed", "abc"], U, "--seed", False),
    ("certify-timeout-zero", C + ["--timeout", "0"], U, "--timeout", False),
    ("certify-timeout-nan", C + ["--timeout", "nan"], U, "--timeout", False),
    ("certify-max-len-zero", C + ["--max-len", "0"], U, "--max-len", False),
    ("certify-profile-unknown", C + ["--profile", "fast"], U, "--profile", False),
    ("certify-convention-unknown", C + ["--convention", "keras"], U, "--convention", False),
    ("certify-convention-mamba-on-gla", C + ["--convention", "mamba_ssm"], U, "--convention", False),
    ("certify-convention-dag-on-sequence", C + ["--convention", "grid"], U, "--convention", False),
    ("certify-layout-on-dag", ["certify", "a:b", "--family", "plstm", "--layout", "heads-first"], U, "--layout", False),
    ("certify-max-len-on-dag", ["certify", "a:b", "--family", "plstm", "--max-len", "8"], U, "--max-len", False),
    ("certify-properties-empty", C + ["--properties", ""], U, "--properties", False),
    ("certify-properties-empty-item", C + ["--properties", "forward,"], U, "--properties", False),
    ("certify-require-repeated", C + ["--require", "varlen,varlen"], U, "--require", False),
    ("certify-device-banana", C + ["--device", "banana"], U, "--device", False),
    ("certify-device-cpu-index", C + ["--device", "cpu:1"], U, "--device", False),
    ("certify-out-file", C + ["--out", "{a_file}"], U, "--out", False),
    ("certify-out-proc", C + ["--out", "/proc/lrnnspec-certify"], U, "--out", False),
    ("certify-out-long", C + ["--out", "{long_name}"], U, "--out", False),
    ("certify-out-under-file", C + ["--out", "{a_file}/sub"], U, "--out", False),
    ("certify-database-file", C + ["--database", "{a_file}"], U, "--database", False),
    ("certify-device-cuda-here", C + ["--device", "cuda"], X, "--device", True),
    ("certify-properties-unknown", C + ["--properties", "telepathy"], U, "--properties", True),
    # --- certify: targets that load badly (a kernel process starts) ------------------------------
    ("certify-signature-cannot-take-family", ["certify", "lrnnspec.impls.delta_rule:chunk_delta_rule", "--family",
                                              "gla"], U, "--family", True),
    ("certify-target-exits-at-import", ["certify", "{kernel_exits}:f", "--family", "gla"], U, "TARGET", True),
    ("certify-target-crashes-at-import", ["certify", "{kernel_segfaults}:f", "--family", "gla"], X, "TARGET", True),
    ("certify-target-hangs-at-import", ["certify", "{kernel_hangs}:f", "--family", "gla", "--timeout", "3"], X,
     "TARGET", True),
    # --- replay --------------------------------------------------------------------------------
    ("replay-no-file", ["replay"], U, "certificate", False),
    ("replay-missing-file", ["replay", "nope.json"], U, "CERT", False),
    ("replay-directory", ["replay", "{a_dir}"], U, "CERT", False),
    ("replay-not-json", ["replay", "{not_json}"], U, "CERT", False),
    ("replay-binary", ["replay", "{binary}"], U, "CERT", False),
    ("replay-deeply-nested", ["replay", "{deep}"], U, "CERT", False),
    ("replay-a-dfa", ["replay", "{ok_dfa}"], U, "kernel", False),
    ("replay-bad-dtype", ["replay", "{cert_bad_dtype}"], U, "verdicts[0].dtype", False),
    ("replay-bad-status", ["replay", "{cert_bad_status}"], U, "verdicts[0].status", False),
    ("replay-negative-dim", ["replay", "{cert_negative_dim}"], U, "verdicts[0].counterexample.case.dims.T", False),
    ("replay-float-dim", ["replay", "{cert_float_dim}"], U, "verdicts[0].counterexample.case.dims.T", False),
    ("replay-huge-dim", ["replay", "{cert_huge_dim}"], U, "verdicts[0].counterexample.case.dims.T", False),
    ("replay-verdicts-string", ["replay", "{cert_verdicts_string}"], U, "verdicts", False),
    ("replay-unknown-field", ["replay", "{cert_unknown_field}"], U, "surprise", False),
    ("replay-bool-seed", ["replay", "{cert_bool_seed}"], U, "seed", False),
    ("replay-bad-profile", ["replay", "{cert_bad_profile}"], U, "profile", False),
    ("replay-no-dtypes", ["replay", "{cert_no_dtypes}"], U, "dtypes", False),
    ("replay-missing-family", ["replay", "{cert_missing_family}"], U, "family", False),
    ("replay-missing-kernel", ["replay", "{cert_missing_kernel}"], U, "kernel", False),
    ("replay-missing-case-dims", ["replay", "{cert_missing_case}"], U, "verdicts[0].counterexample.case", False),
    ("replay-timeout-negative", ["replay", "{cert_ok}", "--timeout", "-1"], U, "--timeout", False),
    ("replay-unknown-property", ["replay", "{cert_unknown_property}"], U, "verdicts[0].property", True),
    ("replay-unknown-family", ["replay", "{cert_unknown_family}"], U, "family", False),
    ("replay-case-of-another-family", ["replay", "{cert_case_family}"], U, "case.family", True),
    ("replay-target-gone", ["replay", "{cert_target_gone}"], U, "kernel.target", True),
    # --- conformance ---------------------------------------------------------------------------
    ("conformance-family-without-names", ["conformance", "--family"], U, "--family", False),
    ("conformance-family-unknown", ["conformance", "--family", "nope"], U, "--family", False),
    ("conformance-family-repeated", ["conformance", "--family", "gla", "gla"], U, "--family", False),
    ("conformance-dtype-unknown-jobs", ["conformance", "--dtype", "fp33", "--jobs", "2"], U, "--dtype", False),
    ("conformance-examples-zero-jobs", ["conformance", "--examples", "0", "--jobs", "2"], U, "--examples", False),
    ("conformance-jobs-zero", ["conformance", "--jobs", "0"], U, "--jobs", False),
    ("conformance-timeout-negative", ["conformance", "--timeout", "-2"], U, "--timeout", False),
    ("conformance-out-file", ["conformance", "--out", "{a_file}"], U, "--out", False),
    ("conformance-device-banana", ["conformance", "--device", "banana"], U, "--device", False),
    # --- campaign (its own table is tests/campaign) -------------------------------------------
    ("campaign-no-subcommand", ["campaign"], U, "campaign", False),
    ("campaign-missing-file", ["campaign", "run", "nope.toml"], U, "CAMPAIGN", False),
    ("campaign-not-a-campaign", ["campaign", "run", "{a_file}"], U, "CAMPAIGN", False),
    # --- peers / train -------------------------------------------------------------------------
    ("peers-no-subcommand", ["peers"], U, "SUBCOMMAND", False),
    ("peers-install-unknown", ["peers", "install", "tensorflow"], U, "name", False),
    ("train-no-task", ["train"], U, "task", False),
    ("train-unknown-model", ["train", "parity", "--model", "gpt", "--eigenvalues", "0,1"], U, "--model", False),
    ("train-bad-eigenvalues", ["train", "parity", "--model", "gla", "--eigenvalues", "-2,2"], U, "--eigenvalues",
     False),
    ("train-threads-zero", T + ["--threads", "0"], U, "--threads", False),
    ("train-steps-zero", T + ["--steps", "0"], U, "--steps", True),
    ("train-out-directory", T + ["--out", "{a_dir}"], U, "--out", False),
    ("train-too-big", T + ["--d-model", "100000", "--steps", "1"], X, "--d-model", True),
]


def test_the_table_is_large_and_covers_every_subcommand():
    assert len(ROWS) >= 100 and len({r[0] for r in ROWS}) == len(ROWS)
    from lrnnspec.commands import COMMANDS

    covered = {r[1][0] for r in ROWS if r[1] and not r[1][0].startswith("-")}
    assert set(COMMANDS) <= covered, set(COMMANDS) - covered


def _written(folder: Path) -> list[str]:
    """What would mislead: a certificate, report, progress log or figure."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.suffix in (".json", ".md", ".jsonl", ".png"))


@pytest.mark.parametrize("name, argv, code, needle, heavy", ROWS, ids=[r[0] for r in ROWS])
def test_hostile_invocation(name, argv, code, needle, heavy, hostile_files, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    args = [a.format(**hostile_files) if "{" in a else a for a in argv]
    proc = run(args, cwd, timeout=240 if heavy else 60)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}:\n{out[-2000:]}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "no message"
    last = lines[-1]
    assert last.startswith("lrnnspec") and ": error: " in last, last
    assert needle in last, f"{needle!r} not in {last!r}"
    assert len(last) < 2500
    assert not (tmp_path / "lrnnspec-logs").exists(), "an unexpected error was logged"
    assert _written(cwd) == []
