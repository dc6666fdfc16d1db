"""Hypothesis draws argument vectors from each command's own options — wrong types, empty, duplicated,
out of range, unicode, very long — and runs ``main`` in this process: the contract holds (an exit
code in 0–3; for 2 and 3 one line ``lrnnspec <command>: error: …``), never a traceback, never an
unexpected-error log.

Past validation the work itself is replaced by :class:`Reached` (raised where each command starts its
work: drawing inputs, loading a kernel, running checks or benchmarks), so an argument vector that
validation accepts ends there instead of running for minutes: what is tested is that validation
either refuses cleanly or lets through only what the work can take."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lrnnspec.cli import build_parser, main

from .helpers import PLANTED


class Reached(BaseException):
    """Validation accepted the arguments; the work would start here."""


def _stop(*args, **kwargs):
    raise Reached()


@pytest.fixture
def stubbed(monkeypatch, tmp_path):
    """The work of every command replaced by :class:`Reached`; the working directory and the log
    directory are fresh."""
    import lrnnspec.commands.bench as bench
    import lrnnspec.commands.certify as certify
    import lrnnspec.harness.kernel as kernel
    import lrnnspec.impls.registry as registry
    import lrnnspec.proofs.regular as regular
    import lrnnspec.proofs.result as result
    import lrnnspec.spec as spec
    import lrnnspec.training.loop as loop
    import lrnnspec.training.report as training_report

    for module, name in [(certify, "_run"), (bench, "_run_suite"), (kernel, "Kernel"), (registry, "implementations"),
                         (regular, "prove_regular"), (result, "run"), (result, "select"), (spec, "evaluate"),
                         (spec, "evaluate_dag"), (spec, "random_inputs"), (spec, "random_dag_inputs"),
                         (loop, "train"), (training_report, "write_report")]:
        monkeypatch.setattr(module, name, _stop)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRNNSPEC_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("LRNNSPEC_DEBUG", raising=False)
    return tmp_path


def _leaves(parser, words=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
        return
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, (*words, name))


PARSER = build_parser()
# the commands whose work can be stopped before it starts (campaign: tests/campaign; peers install: pip)
LEAVES = [(w, p) for w, p in _leaves(PARSER) if w[0] not in ("campaign", "peers")]

GOOD = {   # a plausible value per option or positional, so that drawn vectors get past the first check
    "family": ["simple_gla", "delta_rule", "plstm", "gla"], "target": [f"{PLANTED}:chunk_simple_gla_scale_ignored",
                                                                       "lrnnspec.impls.simple_gla:chunk_simple_gla"],
    "dtype": ["fp32", "fp32,bf16", "bf16"], "device": ["cpu"], "profile": ["dev", "ci"], "out": ["o", "o/p"],
    "contract": ["fp32=tf32", "bf16=mixed-bf16"], "engine": ["fp64", "exact", "emulate:bf16"],
    "graph": ["chain:3", "grid:2x2"], "names": ["parity", "regular"], "task": ["parity", "S3"],
    "model": ["gla", "deltanet"], "eigenvalues": ["0,1", "-1,1"], "backend": ["torch", "ours"],
    "properties": ["forward", "forward,final_state"], "require": ["varlen"], "convention": ["fla", "native"],
}
HOSTILE = st.one_of(
    st.just(""), st.just(" "), st.just(","), st.just("=="), st.just("-1"), st.just("0"), st.just("nan"),
    st.just("inf"), st.just("1e309"), st.just("٣"), st.just("fp32\u200b"), st.just("x" * 3000),
    st.just("/proc/x"), st.just("/dev/null"), st.just("../../.."), st.just("a:b:c"),
    st.integers(-2 ** 70, 2 ** 70).map(str), st.floats(allow_nan=True).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
)


@st.composite
def argv_for(draw, words, parser):
    argv = list(words)
    options = [a for a in parser._actions if a.option_strings and a.dest not in ("help", "debug")]
    positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]

    def value(action):
        choices = list(action.choices or []) + GOOD.get(action.dest, [])
        return draw(st.one_of(st.sampled_from(choices), HOSTILE) if choices else HOSTILE)

    for action in positionals:
        if draw(st.booleans()) or action.nargs in (None,) and draw(st.integers(0, 9)) > 0:
            argv.append(value(action))
    for action in draw(st.lists(st.sampled_from(options), max_size=5)) if options else []:
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(flag)
        elif action.nargs in ("+", "*"):
            argv += [flag] + [value(action) for _ in range(draw(st.integers(0, 2)))]
        else:
            argv += [flag, value(action)]
    return argv


def _check(argv, capsys, folder):
    try:
        code = main(argv)
    except Reached:
        code = None
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text, (argv, text[-3000:])
    assert not (folder / "logs").exists(), (argv, "an unexpected error inside lrnnspec", text[-2000:])
    if code is None:
        return
    assert code in (0, 1, 2, 3), (argv, code)
    if code in (2, 3):
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("lrnnspec") and ": error: " in lines[-1], (argv, captured.err)


@pytest.mark.parametrize("words, parser", LEAVES, ids=[" ".join(w) for w, _ in LEAVES])
def test_drawn_argument_vectors_keep_the_contract(words, parser, stubbed, capsys):
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.filter_too_much])
    @given(argv=argv_for(words, parser))
    def check(argv):
        _check(argv, capsys, stubbed)

    check()


@given(argv=st.lists(HOSTILE, max_size=4))
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_words_keep_the_contract(argv, stubbed, capsys):
    _check(argv, capsys, stubbed)
