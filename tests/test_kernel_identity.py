"""A certificate's source sha256 covers the code the kernel runs: every Python file of its package directory
(a launcher's backward in a sibling file changes the hash, whether or not it was imported yet), only the
file itself for a standalone file target, and it sees through decorators and partials. The harness reads
the files itself from what the kernel's process reports (:func:`lrnnspec.harness.worker.load`, run here)."""

import sys

from lrnnspec.harness.certificate import kernel_identity
from lrnnspec.harness.worker import load


def _identity(target: str) -> dict:
    _, info = load({"target": target})
    return kernel_identity(target, info)


def _package(tmp_path, helper_body: str):
    pkg = tmp_path / "idpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("import functools\n")
    (pkg / "_backward.py").write_text(f"def grad(x):\n    return {helper_body}\n")
    (pkg / "ops.py").write_text("import functools\nfrom ._backward import grad\n\n\ndef kernel(x):\n    return grad(x)\n\n\n"
                                "@functools.wraps(kernel)\ndef wrapped(*a, **kw):\n    return kernel(*a, **kw)\n\n\n"
                                "half = functools.partial(kernel, x=0.5)\n")
    return pkg


def test_hash_covers_sibling_modules_and_changes_with_them(tmp_path, monkeypatch):
    pkg = _package(tmp_path, "2 * x")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "idpkg" or m.startswith("idpkg.")]:
        monkeypatch.delitem(sys.modules, name)
    before = _identity("idpkg.ops:kernel")
    assert before["sources"] == ["idpkg", "idpkg._backward", "idpkg.ops"]
    assert before["function"] == "idpkg.ops:kernel"
    (pkg / "later.py").write_text("X = 1\n")       # never imported: still the package's code
    with_later = _identity("idpkg.ops:kernel")
    assert "idpkg.later" in with_later["sources"] and with_later["sha256"] != before["sha256"]
    (pkg / "later.py").unlink()
    assert _identity("idpkg.ops:kernel") == before
    (pkg / "_backward.py").write_text("def grad(x):\n    return 3 * x\n")
    after = _identity("idpkg.ops:kernel")
    assert after["sha256"] != before["sha256"]
    # decorated and partial kernels hash their own package
    assert _identity("idpkg.ops:wrapped")["sha256"] == after["sha256"]
    assert _identity("idpkg.ops:half")["sha256"] == after["sha256"]


def test_standalone_file_target_hashes_only_itself(tmp_path):
    (tmp_path / "solo.py").write_text("import json\n\n\ndef kernel(x):\n    return x\n")
    ident = _identity(f"{tmp_path / 'solo.py'}:kernel")
    assert ident["sources"] == ["_lrnnspec_target_solo"] and ident["sha256"] != "unavailable"


def test_a_triton_launcher_hashes_its_sibling_kernels():
    assert "lrnnspec.kernels._gated_linear_triton" in _identity("lrnnspec.kernels.gla:chunk_gla")["sources"]


def test_a_kernel_without_a_file_is_unavailable_not_an_error():
    ident = kernel_identity("x:y", {"module": "builtins", "file": None, "qualname": "len"})
    assert ident["sha256"] == "unavailable" and ident["sources"] == []
