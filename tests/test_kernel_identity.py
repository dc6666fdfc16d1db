"""A certificate's source sha256 covers the code the kernel runs: every Python file of its package directory
(a launcher's backward in a sibling file changes the hash, whether or not it was imported yet), only the
file itself for a standalone file target, and it sees through decorators and partials."""

import functools
import sys

from lrnnspec.certificate import kernel_identity
from lrnnspec.targets import load_target


def _package(tmp_path, helper_body: str):
    pkg = tmp_path / "idpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_backward.py").write_text(f"def grad(x):\n    return {helper_body}\n")
    (pkg / "ops.py").write_text("from ._backward import grad\n\n\ndef kernel(x):\n    return grad(x)\n")
    return pkg


def test_hash_covers_sibling_modules_and_changes_with_them(tmp_path, monkeypatch):
    pkg = _package(tmp_path, "2 * x")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "idpkg" or m.startswith("idpkg.")]:
        monkeypatch.delitem(sys.modules, name)
    fn = load_target("idpkg.ops:kernel")
    before = kernel_identity(fn, "idpkg.ops:kernel")
    assert before["sources"] == ["idpkg", "idpkg._backward", "idpkg.ops"]
    (pkg / "later.py").write_text("X = 1\n")       # never imported: still the package's code
    with_later = kernel_identity(fn, "idpkg.ops:kernel")
    assert "idpkg.later" in with_later["sources"] and with_later["sha256"] != before["sha256"]
    (pkg / "later.py").unlink()
    assert kernel_identity(fn, "idpkg.ops:kernel") == before
    (pkg / "_backward.py").write_text("def grad(x):\n    return 3 * x\n")
    after = kernel_identity(fn, "idpkg.ops:kernel")
    assert after["sha256"] != before["sha256"]
    assert kernel_identity(fn)["target"] == "idpkg.ops:kernel"


def test_standalone_file_target_hashes_only_itself(tmp_path):
    (tmp_path / "solo.py").write_text("import json\n\n\ndef kernel(x):\n    return x\n")
    ident = kernel_identity(load_target(f"{tmp_path / 'solo.py'}:kernel"))
    assert ident["sources"] == ["_lrnnspec_target_solo"] and ident["sha256"] != "unavailable"


def test_decorated_and_partial_kernels_hash_their_own_package():
    from lrnnspec.kernels import gla

    @functools.wraps(gla.chunk_gla)
    def wrapped(*args, **kwargs):
        return gla.chunk_gla(*args, **kwargs)

    plain = kernel_identity(gla.chunk_gla)
    assert "lrnnspec.kernels._gated_linear_triton" in plain["sources"]
    assert kernel_identity(wrapped)["sha256"] == plain["sha256"]
    assert kernel_identity(functools.partial(gla.chunk_gla, scale=0.5))["sha256"] == plain["sha256"]


def test_a_lambda_without_a_file_is_unavailable_not_an_error():
    namespace = {}
    exec("kernel = lambda x: x", namespace)           # no module, no file, no source to read
    ident = kernel_identity(namespace["kernel"])
    assert ident["sha256"] == "unavailable" and ident["sources"] == []
