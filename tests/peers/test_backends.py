"""The peer backends' tables hold: every listed function imports where its package is installed, maps
to a family the spec defines, and its signature takes every required input of that family under the
convention it is certified with — so a renamed or removed function in a new release of a peer fails
here, not in the middle of a conformance run."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

import pytest

from lrnnspec.harness.conventions import convention_for, resolve, signature_of
from lrnnspec.harness.kernel import Signature
from lrnnspec.impls.registry import implementations
from lrnnspec.peers.backends import PEER_BACKENDS
from lrnnspec.peers.known import KNOWN, known
from lrnnspec.peers.shims import ABSENT
from lrnnspec.spec import get_family

FUNCTIONS = [(b.name, f) for b in PEER_BACKENDS.values() for f in b.functions]


@pytest.mark.parametrize("backend, fn", FUNCTIONS, ids=[f"{b}-{f.target.split(':')[1]}" for b, f in FUNCTIONS])
def test_every_listed_peer_function_imports_and_takes_its_familys_inputs(backend, fn, monkeypatch):
    peer = PEER_BACKENDS[backend]
    fam = get_family(fn.family)
    assert fn.form in ("recurrent", "chunk", "parallel")
    if importlib.util.find_spec(peer.package) is None:
        pytest.skip(f"{peer.distribution} is not installed ({peer.install})")
    for name, value in peer.env.items():
        monkeypatch.setenv(name, value)
    if ABSENT in peer.env:
        from lrnnspec.peers.shims import install_requested

        install_requested()
    module, name = fn.target.split(":")
    func = getattr(importlib.import_module(module), name)
    record = known(fn.target)
    params = record.parameters if record and record.parameters else [p["name"] for p in signature_of(func)]
    conv = resolve(convention_for((record and record.convention) or "fla", fam.name),
                   {i.name: i.dims for i in fam.inputs}, frozenset(params), layout=record and record.layout,
                   rename=record.rename if record else None)
    signature = Signature(frozenset(params), any(p.get("kind") == "VAR_KEYWORD" for p in signature_of(func) or ()))
    missing = [i.name for i in fam.inputs if not i.optional and not signature.names(conv.keyword(i.name))]
    assert not missing, f"{fn.target} takes none of the keywords for {missing} (parameters: {params})"


def test_every_known_record_names_a_family_the_spec_defines():
    for target, record in KNOWN.items():
        get_family(record.family)
        assert ":" in target


def test_peer_implementations_carry_the_interpreter_only_on_a_cpu():
    impls = implementations(backends=tuple(b for b in PEER_BACKENDS if importlib.util.find_spec(
        PEER_BACKENDS[b].package)), device="cpu")
    if not impls:
        pytest.skip("no peer package is installed")
    for impl in impls:
        triton = any(f.triton for f in PEER_BACKENDS[impl.backend].functions if f.target == impl.target)
        assert (impl.env.get("TRITON_INTERPRET") == "1") == triton
        assert (impl.budget.get("dtypes") == ("fp32",)) == triton
    cuda = PEER_BACKENDS["fla"]
    fn = cuda.functions[0]
    assert cuda.env_for(fn, "cuda:0") == {} and cuda.contracts_for(fn, "cuda") == {"fp32": "tf32"}
    assert cuda.budget_for(fn, "cuda") == {}


AUTOTUNED = '''
import torch, triton, triton.language as tl
{shim}
@triton.autotune(configs=[triton.Config({{"BLOCK": 4}}), triton.Config({{"BLOCK": 8}})], key=["n"])
@triton.jit
def double(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, 2 * tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)
x = torch.arange(10, dtype=torch.float32); y = torch.empty_like(x)
double[lambda meta: (triton.cdiv(10, meta["BLOCK"]),)](x, y, 10)
assert torch.equal(y, 2 * x), y
print("ran on", double.best_config)
'''


def _interpret(source: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "autotuned.py"
    script.write_text(source)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""})


def test_the_autotuning_shim_runs_an_autotuned_kernel_in_the_interpreter_on_its_first_config(tmp_path):
    pytest.importorskip("triton")
    without = _interpret(AUTOTUNED.format(shim=""), tmp_path)
    if without.returncode == 0:
        pytest.skip("this machine has a Triton driver: the autotuner benchmarks without the shim")
    assert "active drivers" in without.stderr
    shim = "from lrnnspec.peers.shims import first_config_autotuning; first_config_autotuning()"
    with_shim = _interpret(AUTOTUNED.format(shim=shim), tmp_path)
    assert with_shim.returncode == 0, with_shim.stderr[-2000:]
    assert "BLOCK: 4" in with_shim.stdout


def test_an_absent_extension_lets_its_importer_load_and_names_itself_when_used(tmp_path, monkeypatch):
    (tmp_path / "needs_ext.py").write_text("import no_such_extension_xyz\n\ndef f():\n"
                                           "    return no_such_extension_xyz.fwd()\n")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from lrnnspec.peers.shims import install_requested\n"
            "print(install_requested())\n"
            "import needs_ext\n"
            "try:\n    needs_ext.f()\nexcept ImportError as e:\n    print('refused:', e)\n") % str(tmp_path)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, ABSENT: "no_such_extension_xyz"})
    assert run.returncode == 0, run.stderr
    assert f"['{ABSENT}']" in run.stdout
    assert "refused: no_such_extension_xyz.fwd: the compiled extension 'no_such_extension_xyz' is not built" in run.stdout


@pytest.mark.parametrize("name, value, rule", [("LRNNSPEC_TRITON_AUTOTUNE", "best", "must be 'first'"),
                                               (ABSENT, "a b;c", "comma-separated module names")])
def test_a_shim_variable_with_a_bad_value_is_refused_naming_the_variable(name, value, rule, monkeypatch):
    from lrnnspec.peers.shims import install_requested

    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=rule) as info:
        install_requested()
    assert name in str(info.value)
