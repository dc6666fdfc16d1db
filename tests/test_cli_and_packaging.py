"""The installed package: one import namespace, and the ``lrnnspec spec`` commands as a user runs them."""

import shutil
import subprocess
import sys

import pytest

from lrnnspec.spec import all_families

LRNNSPEC = shutil.which("lrnnspec")


def run(*args, cwd=None):
    return subprocess.run([LRNNSPEC, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("module", ["spec", "impls", "kernels", "proofs"])
def test_top_level_names_are_not_installed(module, tmp_path):
    """lrnnspec installs nothing under these names (another distribution may: HF's ``kernels``)."""
    code = ("import importlib.metadata as m; d = m.packages_distributions(); "
            f"print('lrnnspec' in d.get('lrnnspec', []), 'lrnnspec' in d.get({module!r}, []))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.stdout.split() == ["True", "False"], proc.stdout + proc.stderr


def test_subpackages_live_under_lrnnspec(tmp_path):
    code = "import lrnnspec.spec, lrnnspec.impls, lrnnspec.kernels, lrnnspec.proofs; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_spec_list_shows_every_family_with_recurrence_and_domains():
    proc = run("spec", "list")
    assert proc.returncode == 0, proc.stderr
    for fam in all_families():
        assert f"{fam.name}\n    {fam.recurrence}" in proc.stdout
    assert "β ∈ [0, 2]" in proc.stdout and "log-space gate ≤ 0" in proc.stdout


def test_spec_eval_exact_prints_outputs_and_error_bound():
    proc = run("spec", "eval", "gated_delta_rule", "--engine", "exact", "--T", "5")
    assert proc.returncode == 0, proc.stderr
    assert "engine exact:mpmath" in proc.stdout and "error bound" in proc.stdout and "output: shape (1, 5" in proc.stdout


@pytest.mark.parametrize("engine", ["fp64", "emulate:bf16", "emulate:mixed-fp16", "exact:arb"])
def test_spec_eval_engines(engine):
    proc = run("spec", "eval", "mlstm", "--engine", engine, "--T", "4", "--initial-state")
    assert proc.returncode == 0, proc.stderr
    assert "output: shape (1, 4, 2, 8)" in proc.stdout and "final C: shape" in proc.stdout


@pytest.mark.parametrize("args,needle", [
    (("spec", "eval", "nope"), "FAMILY: unknown family"),
    (("spec", "eval", "delta_rule", "--engine", "emulate:fp9"), "unknown format"),
    (("spec", "eval", "delta_rule", "--engine", "exact", "--prec", "8"), "prec:"),
    (("spec", "eval", "delta_rule", "--K", "0"), "--K: must be"),
    (("spec",), "SUBCOMMAND"),
])
def test_usage_errors_exit_2(args, needle):
    proc = run(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
