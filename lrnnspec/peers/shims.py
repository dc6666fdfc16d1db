"""Opt-in shims that let a peer's pure-PyTorch or Triton code run on a CPU-only machine, installed in
memory in the kernel's worker process only — never in the harness, never on disk — when the worker's
environment asks for them. A certificate records the variables, so a report can say which rows used
a shim and ``lrnnspec replay`` restores them.

``LRNNSPEC_TRITON_AUTOTUNE=first``
    Triton's autotuner, choosing among several configs, benchmarks each on the active driver; under
    ``TRITON_INTERPRET=1`` without a GPU there is none ("0 active drivers"). The shim makes every
    autotuner keep the first config its own pruning leaves, so the kernel runs on that one config.
``LRNNSPEC_ABSENT_EXTENSIONS=name[,name...]``
    A peer module that imports a compiled extension at its top (mamba_ssm's
    ``selective_scan_interface`` imports ``selective_scan_cuda``) cannot even be imported where the
    extension was not built, though its pure-PyTorch reference never uses it. Each named module is
    registered as a placeholder whose every attribute raises ``ImportError`` naming it.
"""

from __future__ import annotations

import os
import sys
import types

AUTOTUNE = "LRNNSPEC_TRITON_AUTOTUNE"
ABSENT = "LRNNSPEC_ABSENT_EXTENSIONS"


def first_config_autotuning() -> None:
    """Make every Triton autotuner of this process use its first (pruned) config."""
    from triton.runtime.autotuner import Autotuner

    prune = Autotuner.prune_configs
    if getattr(prune, "keeps_first", False):
        return

    def first_config(self, kwargs):
        return prune(self, kwargs)[:1]

    first_config.keeps_first = True
    Autotuner.prune_configs = first_config


class AbsentExtension(types.ModuleType):
    """A placeholder for a compiled extension that was not built here."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(f"{self.__name__}.{attr}: the compiled extension {self.__name__!r} is not built on this "
                          f"machine (a placeholder from {ABSENT}); only pure-PyTorch code paths can run here")


def absent_extensions(names: list[str]) -> None:
    """Register a placeholder for each of ``names`` not importable here."""
    import importlib.util

    for name in names:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = AbsentExtension(name)


def install_requested() -> list[str]:
    """Install the shims this process's environment asks for; returns the variables honoured.
    Raises ValueError on a value the shims do not know."""
    used = []
    autotune = os.environ.get(AUTOTUNE)
    if autotune is not None:
        if autotune != "first":
            raise ValueError(f"{AUTOTUNE} must be 'first' (each autotuner keeps its first config), got {autotune!r}")
        first_config_autotuning()
        used.append(AUTOTUNE)
    names = [n.strip() for n in os.environ.get(ABSENT, "").split(",") if n.strip()]
    if names:
        if not all(n.replace("_", "a").replace(".", "a").isalnum() for n in names):
            raise ValueError(f"{ABSENT} must be comma-separated module names, got {os.environ[ABSENT]!r}")
        absent_extensions(names)
        used.append(ABSENT)
    return used
