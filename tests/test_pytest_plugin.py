"""The pytest plugin (``lrnnspec.pytest_plugin``) as a third party uses it: a kernel configured by
options or environment variables becomes one pytest test per (property, dtype); an xfails file marks
known failures; bad configuration is a usage error naming the option; unconfigured, it adds nothing."""

from pathlib import Path

import pytest
from hypothesis import settings

import ml_dtypes  # noqa: F401 - see below

from lrnnspec.cli import main as lrnnspec_main
from lrnnspec.harness.sequence import PROPERTIES
from lrnnspec.pytest_plugin import OPTIONS, node_id

# pytester's in-process runs drop the modules they imported from sys.modules afterwards; a native
# extension imported again then fails ("DType ... appears already registered"). The spec's emulate
# engine imports ml_dtypes lazily, so it is imported up front.

pytest_plugins = ["pytester"]

CORRECT = "lrnnspec.impls.simple_gla:chunk_simple_gla"
PLANTED = Path(__file__).parent / "certifier" / "planted.py"
SCALE_IGNORED = f"{PLANTED}:chunk_simple_gla_scale_ignored"     # a planted bug the property 'forward' names
FAST = ("--lrnnspec-max-examples", "3")
ENV_VARS = [env for _, env, _ in OPTIONS.values()] + ["LRNNSPEC_PROFILE"]

settings.register_profile("lrnnspec-plugin-test", max_examples=2)


@pytest.fixture(autouse=True)
def _no_lrnnspec_env(monkeypatch):
    for env in ENV_VARS:
        monkeypatch.delenv(env, raising=False)


@pytest.fixture
def restore_hypothesis_profile():
    """In-process runs given --hypothesis-profile load it globally: put the outer one back."""
    name = settings.get_current_profile_name()
    yield
    settings.load_profile(name)


def kernel_args(target=CORRECT, family="simple_gla", *more):
    return ("--lrnnspec-target", str(target), "--lrnnspec-family", family, *more)


def call_reports(reprec):
    """nodeid -> the report of the phase that decided the outcome (call, or setup when skipped there)."""
    out = {}
    for r in reprec.getreports("pytest_runtest_logreport"):
        if r.when == "call" or (r.when == "setup" and not r.passed):
            out[r.nodeid] = r
    return out


# --- (a) a correct kernel ----------------------------------------------------------------------------
def test_correct_kernel_every_property_passes_or_skips_with_its_reason(pytester):
    reprec = pytester.inline_run(*kernel_args(CORRECT, "simple_gla", *FAST))
    reports = call_reports(reprec)
    assert list(reports) == [node_id(p, "fp32") for p in PROPERTIES]
    for nodeid, r in reports.items():
        assert r.passed or r.skipped, (nodeid, r.longrepr)
        if r.skipped:
            reason = r.longrepr[2]
            assert nodeid in reason and ("not applicable: " in reason or "not checked: " in reason), reason
    skipped = {n: r.longrepr[2] for n, r in reports.items() if r.skipped}
    assert "no β-parameterized negative eigenvalue range" in skipped[node_id("negative_eigenvalues", "fp32")]
    assert reports[node_id("forward", "fp32")].passed and reports[node_id("gradients", "fp32")].passed
    # 3 examples (too few for the sweep of 15 boundary lengths), then one at each long length: 256, 511, 1024
    assert dict(reports[node_id("forward", "fp32")].user_properties)["lrnnspec_examples"] == 3 + 3
    assert dict(reports[node_id("gradients", "fp32")].user_properties)["lrnnspec_examples"] == 3
    assert reprec.ret == pytest.ExitCode.OK


def test_a_dag_family_is_certified_from_pytest_too(pytester):
    from lrnnspec.harness.dag import PROPERTIES as DAG_PROPERTIES

    result = pytester.runpytest(*kernel_args("lrnnspec.impls.plstm:chunked_2d", "plstm", *FAST),
                                "-k", "forward or boundary or final_state")
    result.assert_outcomes(passed=2, skipped=1, deselected=len(DAG_PROPERTIES) - 3)
    result.stdout.fnmatch_lines(["lrnnspec: lrnnspec.impls.plstm:chunked_2d as plstm (grid) on cpu, *"])


def test_ids_are_dtype_major_under_a_lrnnspec_node_and_can_be_selected(pytester):
    result = pytester.runpytest(*kernel_args(CORRECT, "simple_gla", "--lrnnspec-dtypes", "fp32,bf16"),
                                "--collect-only", "-q")
    ids = [line for line in result.outlines if line.startswith("lrnnspec::")]
    assert ids == [node_id(p, d) for d in ("fp32", "bf16") for p in PROPERTIES]
    result = pytester.runpytest(*kernel_args(CORRECT, "simple_gla", "--lrnnspec-dtypes", "fp32,bf16"),
                                "--collect-only", "-q", "-m", "lrnnspec", "-k", "forward and bf16")
    assert [line for line in result.outlines if line.startswith("lrnnspec::")] == ["lrnnspec::forward[bf16]"]


# --- (b) a planted bug --------------------------------------------------------------------------------
def test_planted_bug_fails_the_property_that_names_it_with_a_replayable_counterexample(pytester, tmp_path, capsys):
    out = tmp_path / "replays"
    result = pytester.runpytest(*kernel_args(SCALE_IGNORED, "simple_gla", *FAST), "--lrnnspec-out", str(out),
                                "-k", "forward or final_state or contract")
    result.assert_outcomes(failed=1, passed=2, deselected=len(PROPERTIES) - 3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*_ lrnnspec::forward[[]fp32[]] _*",
        "property 'forward' [[]fp32[]] fails: output error * is *× the allowed",
        f"  kernel: {PLANTED}:chunk_simple_gla_scale_ignored as simple_gla (fla convention) on cpu; seed 0, "
        "at most 3 examples drawn, * cases run (shrinking included)",
        "  shrunk counterexample: simple_gla(B=*",
        f"  replay: lrnnspec replay {out}/*forward-fp32.json",
        "FAILED lrnnspec::forward[[]fp32[]] - Failed: property 'forward' [[]fp32[]] fails: *",
    ])
    (replay,) = out.glob("*forward-fp32.json")
    capsys.readouterr()
    assert lrnnspec_main(["replay", str(replay)]) == 1
    assert "reproduced: output error" in capsys.readouterr().out


# --- (c) the xfails file --------------------------------------------------------------------------------
def test_xfails_file_turns_the_failure_into_xfail_non_strict(pytester, tmp_path):
    xfails = pytester.path / "xfails.txt"
    xfails.write_text("# known problems\n\nlrnnspec::forward[fp32]   # scale ignored\n"
                      "lrnnspec::final_state[fp32]\n")
    result = pytester.runpytest(*kernel_args(SCALE_IGNORED, "simple_gla", *FAST), "--lrnnspec-xfails", str(xfails),
                                "--lrnnspec-out", str(tmp_path), "-k", "forward or final_state", "-rxX")
    # forward fails as listed (XFAIL); final_state is listed but passes: XPASS, not a failure (non-strict)
    result.assert_outcomes(xfailed=1, xpassed=1, deselected=len(PROPERTIES) - 2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*lrnnspec::forward[[]fp32[]]*scale ignored (*xfails.txt:3)*",
                                 "*lrnnspec::final_state[[]fp32[]]*listed in *xfails.txt:4*"])


@pytest.mark.parametrize("text, line, rule", [
    ("lrnnspec::forward[fp32]\n\n# typo below\nlrnnspec::forwrd[fp32]  # x\n", 4,
     "'lrnnspec::forwrd[fp32]' matches no lrnnspec test of this configuration"),
    ("lrnnspec::forward[bf16]\n", 1, "'lrnnspec::forward[bf16]' matches no lrnnspec test"),
    ("forward[fp32]\n", 1, "'forward[fp32]' matches no lrnnspec test"),
    ("lrnnspec::forward[fp32] lrnnspec::varlen[fp32]\n", 1, "one test id per line"),
    ("lrnnspec::forward[fp32]\nlrnnspec::forward[fp32]  # again\n", 2, "already listed on line 1"),
])
def test_a_stale_or_malformed_xfails_entry_is_a_usage_error_naming_the_line(pytester, text, line, rule):
    xfails = pytester.path / "xfails.txt"
    xfails.write_text(text)
    result = pytester.runpytest(*kernel_args(), "--lrnnspec-xfails", str(xfails), "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (error,) = [e for e in result.errlines if e.startswith("ERROR:")]
    assert error.startswith(f"ERROR: lrnnspec: --lrnnspec-xfails {xfails}:{line}: ") and rule in error, error


# --- (d) bad configuration ------------------------------------------------------------------------------
BROKEN_MODULE = "raise RuntimeError('boom at import')\n"


@pytest.mark.parametrize("args, env, message", [
    (["--lrnnspec-target", CORRECT], {},
     "--lrnnspec-target is set, so --lrnnspec-family / LRNNSPEC_FAMILY is required"),
    ([], {"LRNNSPEC_TARGET": CORRECT}, "LRNNSPEC_TARGET is set, so --lrnnspec-family / LRNNSPEC_FAMILY is required"),
    ([], {"LRNNSPEC_FAMILY": "gla"}, "LRNNSPEC_FAMILY set without a target: set --lrnnspec-target / LRNNSPEC_TARGET"),
    (["--lrnnspec-dtypes", "fp16"], {}, "--lrnnspec-dtypes set without a target"),
    (kernel_args(CORRECT, "no_such_family"), {}, "--lrnnspec-family: family: unknown family 'no_such_family'"),
    ([], {"LRNNSPEC_TARGET": CORRECT, "LRNNSPEC_FAMILY": "nope"}, "LRNNSPEC_FAMILY: family: unknown family 'nope'"),
    (kernel_args(CORRECT, "plstm"), {}, f"--lrnnspec-target: cannot certify '{CORRECT}': convention: cannot tell"),
    (kernel_args("lrnnspec.impls"), {}, "--lrnnspec-target: TARGET must be package.module:function"),
    (kernel_args("no_such_module:fn"), {}, "--lrnnspec-target: cannot import 'no_such_module': ModuleNotFoundError"),
    (kernel_args("lrnnspec.impls.simple_gla:nope"), {},
     "--lrnnspec-target: 'lrnnspec.impls.simple_gla' has no attribute"),
    (kernel_args("broken.py:fn"), {}, "--lrnnspec-target: cannot import '*broken.py': RuntimeError: boom at import"),
    (kernel_args("missing.py:fn"), {}, "--lrnnspec-target: no such file: missing.py"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-convention", "jax"), {},
     "--lrnnspec-convention: must be one of fla, mamba_ssm, mlstm_kernels, native, got 'jax'"),
    (kernel_args(), {"LRNNSPEC_CONVENTION": "jax"}, "LRNNSPEC_CONVENTION: must be one of fla, *got 'jax'"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-convention", "mamba_ssm"), {},
     "--lrnnspec-convention: mamba_ssm applies to families mamba and mamba2, not 'simple_gla'"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-dtypes", "fp32,fp8"), {},
     "--lrnnspec-dtypes: each comma-separated dtype must be one of fp32, fp16, bf16, fp64, got 'fp8'*"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-dtypes", "fp32,fp32"), {},
     "--lrnnspec-dtypes: each dtype at most once, fp32 repeated*"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-device", "warp_drive"), {},
     "--lrnnspec-device: 'warp_drive' must be a torch device tensors can be created on*"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-max-examples", "0"), {},
     "--lrnnspec-max-examples: must be a positive integer, got '0'"),
    (kernel_args(), {"LRNNSPEC_MAX_EXAMPLES": "ten"}, "LRNNSPEC_MAX_EXAMPLES: must be a positive integer, got 'ten'"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-xfails", "no_such_file.txt"), {},
     "--lrnnspec-xfails: cannot read the xfails file 'no_such_file.txt'*"),
    (kernel_args(CORRECT, "simple_gla", "--lrnnspec-target", ""), {}, "--lrnnspec-target: must not be empty"),
    (kernel_args(CORRECT, "simple_gla", "--hypothesis-seed", "abc"), {},
     "--hypothesis-seed: lrnnspec's tests need an integer seed, got 'abc'"),
])
def test_bad_configuration_is_a_usage_error_naming_the_option(pytester, monkeypatch, args, env, message):
    pytester.makepyfile(broken=BROKEN_MODULE)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest(*args, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines
    result.stderr.fnmatch_lines([f"ERROR: lrnnspec: {message}*"])
    assert "Traceback" not in result.stderr.str()


def test_options_override_environment_variables(pytester, monkeypatch):
    monkeypatch.setenv("LRNNSPEC_TARGET", "no_such_module:fn")
    monkeypatch.setenv("LRNNSPEC_FAMILY", "gla")
    monkeypatch.setenv("LRNNSPEC_CONVENTION", "jax")
    monkeypatch.setenv("LRNNSPEC_DTYPES", "fp8")
    monkeypatch.setenv("LRNNSPEC_MAX_EXAMPLES", "7")
    items, _ = pytester.inline_genitems(*kernel_args(CORRECT, "simple_gla"), "--lrnnspec-convention", "fla",
                                        "--lrnnspec-dtypes", "fp64")
    assert [i.nodeid for i in items] == [node_id(p, "fp64") for p in PROPERTIES]
    result = pytester.runpytest(*kernel_args(CORRECT, "simple_gla"), "--lrnnspec-convention", "fla",
                                "--lrnnspec-dtypes", "fp64", "--collect-only")
    # the count still comes from the environment variable no option overrides
    result.stdout.fnmatch_lines([f"lrnnspec: {CORRECT} as simple_gla (fla) on cpu, dtypes fp64, 7 examples per "
                                 "property (LRNNSPEC_MAX_EXAMPLES), seed 0"])


def test_example_count_follows_the_active_hypothesis_profile(pytester, restore_hypothesis_profile):
    result = pytester.runpytest(*kernel_args(), "--hypothesis-profile", "lrnnspec-plugin-test", "--collect-only")
    result.stdout.fnmatch_lines(["lrnnspec: * 2 examples per property (Hypothesis profile 'lrnnspec-plugin-test'), "
                                 "seed 0"])
    result = pytester.runpytest(*kernel_args(), "--hypothesis-profile", "lrnnspec-plugin-test",
                                "--hypothesis-seed", "12", *FAST, "--collect-only")
    result.stdout.fnmatch_lines(["lrnnspec: * 3 examples per property (--lrnnspec-max-examples), seed 12"])


# --- (e) unconfigured: inert ------------------------------------------------------------------------------
def test_without_configuration_the_plugin_adds_nothing(pytester):
    pytester.makepyfile(test_user="def test_ok():\n    assert True\n")
    items, _ = pytester.inline_genitems()
    assert [i.nodeid for i in items] == ["test_user.py::test_ok"]
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "lrnnspec:" not in result.stdout.str()


def test_unconfigured_in_a_fresh_process_it_imports_nothing_heavy(pytester):
    pytester.makepyfile(test_probe="""
        import sys

        def test_probe(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("lrnnspec")      # loaded through the entry point
            heavy = [m for m in ("torch", "hypothesis", "numpy", "lrnnspec.harness.kernel") if m in sys.modules]
            assert not heavy, heavy
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# --- as users run it: a fresh process, the entry point, environment variables, an empty directory ------
def test_entry_point_with_environment_variables_from_an_empty_directory(pytester, monkeypatch):
    assert not any(pytester.path.iterdir())
    monkeypatch.setenv("LRNNSPEC_TARGET", CORRECT)
    monkeypatch.setenv("LRNNSPEC_FAMILY", "simple_gla")
    monkeypatch.setenv("LRNNSPEC_MAX_EXAMPLES", "2")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "contract or negative_eigenvalues", "-rs")
    result.assert_outcomes(passed=1, skipped=1, deselected=len(PROPERTIES) - 2)
    result.stdout.fnmatch_lines([
        f"lrnnspec: {CORRECT} as simple_gla (fla) on cpu, dtypes fp32, 2 examples per property "
        "(LRNNSPEC_MAX_EXAMPLES), seed 0",
        f"collected {len(PROPERTIES)} items / {len(PROPERTIES) - 2} deselected / 2 selected",
        "SKIPPED * lrnnspec::negative_eigenvalues[[]fp32[]]: not applicable: *"])
    assert result.ret == pytest.ExitCode.OK


def test_loaded_by_name_when_plugin_autoload_is_off(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # a family without a target: the plugin's own usage error, raised before anything heavy is imported
    off = pytester.runpytest_subprocess("--lrnnspec-family", "gla", "--collect-only")
    assert off.ret == pytest.ExitCode.USAGE_ERROR
    off.stderr.fnmatch_lines(["*unrecognized arguments: --lrnnspec-family*"])     # not loaded
    on = pytester.runpytest_subprocess("-p", "lrnnspec", "--lrnnspec-family", "gla", "--collect-only")
    assert on.ret == pytest.ExitCode.USAGE_ERROR
    on.stderr.fnmatch_lines(["ERROR: lrnnspec: --lrnnspec-family set without a target*"])   # loaded by name
