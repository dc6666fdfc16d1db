"""Loading what a user names: ``package.module:function`` or ``path/to/file.py:function`` targets,
and Python files outside any package (planted-bug corpora, fla-core's ``naive.py`` references)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from lrnnspec.errors import Picklable


def load_module_file(path: str | Path, name: str, *, reuse: bool = True):
    """Execute the Python file at ``path`` as module ``name`` (registered in ``sys.modules``, so
    dataclasses and pickling work). With ``reuse``, a module already loaded under ``name`` is
    returned as is; without, the file is executed again."""
    if reuse and name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_path(path: Path):
    """A file inside a package (its folder has ``__init__.py``) is imported as that package's module —
    ``impls/delta_rule.py`` as ``impls.delta_rule``, with the folder above the outermost package on
    the path — so its relative imports work; any other file is executed on its own."""
    path = path.resolve()
    if not (path.parent / "__init__.py").is_file():
        return load_module_file(path, f"_lrnnspec_target_{path.stem}", reuse=False)
    parts, root = [path.stem], path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(".".join(parts))
    finally:
        sys.path.remove(str(root))
    if Path(module.__file__).resolve() != path:
        raise TargetError(f"{path} is inside package {'.'.join(parts[:-1])!r}, but that name imports "
                          f"{module.__file__}; pass the module as package.module:function")
    return module


class TargetError(Picklable, Exception):
    pass


def check_target(target: str) -> str:
    """``target`` checked for its form without importing anything; a file target made absolute (the
    kernel's process runs in a working directory of its own)."""
    if not isinstance(target, str):
        raise TargetError(f"TARGET must be a string, got {type(target).__name__}")
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"TARGET must be package.module:function or path/to/file.py:function, got {target!r}")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise TargetError(f"no such file: {path}")
        return f"{path.resolve()}:{attr}"
    return target


def load_target(target: str):
    """Import ``package.module:function`` or ``path/to/file.py:function``."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"TARGET must be package.module:function or path/to/file.py:function, got {target!r}")
    try:
        if module_name.endswith(".py") or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise TargetError(f"no such file: {path}")
            module = _import_path(path)
        else:
            module = importlib.import_module(module_name)
    except TargetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any import failure is a usage error
        raise TargetError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise TargetError(f"{module_name!r} has no attribute {attr!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise TargetError(f"{target!r} is not callable")
    return fn
