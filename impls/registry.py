"""Every built-in implementation: (family, form, target, calling convention, precision contracts).

Generic tests, ``lrnnspec conformance`` and the benchmarks iterate over :func:`implementations`, the
way PyTorch's OpInfo database drives its tests. A module registers its forms where it defines them::

    FORMS = register_forms("gated_delta_rule", {"recurrent": recurrent_gated_delta_rule, "chunk": ...})

with its calling convention (default ``"fla"``; per form: ``conventions``) and, where it rounds
differently from the default contract of a dtype (:data:`lrnnspec.harness.tolerance.CONTRACTS`), its
declared precision contracts. Every module of a backend's package is imported on first use, so a
new module needs no list to be kept anywhere.

Our two backends: ``torch`` (:mod:`lrnnspec.impls`, every family) and ``triton``
(:mod:`lrnnspec.kernels`, the delta and gated families; on a machine without a GPU they run in
Triton's interpreter, slowly — :func:`implementations` lists them only when asked). One peer
backend, ``fla``: flash-linear-attention's Triton chunk kernels (:data:`PEERS`), named by target and
never imported here (the kernel runs in its own process), certified beside ours on a GPU
(``lrnnspec conformance --device cuda --backend fla``); never part of the default set.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

PACKAGES = {"torch": "lrnnspec.impls", "triton": "lrnnspec.kernels"}
# peer kernels: backend → [(family, "module:function")], all FLA-convention, chunk form
PEERS = {
    "fla": [
        ("delta_rule", "fla.ops.delta_rule:chunk_delta_rule"),
        ("gated_delta_rule", "fla.ops.gated_delta_rule:chunk_gated_delta_rule"),
        ("gla", "fla.ops.gla:chunk_gla"),
        ("simple_gla", "fla.ops.simple_gla:chunk_simple_gla"),
    ],
}
# what the peers declare: Triton's default fp32 dot on NVIDIA GPUs rounds operands to TF32
PEER_CONTRACTS = {"fla": {"fp32": "tf32"}}
BACKENDS = tuple(PACKAGES) + tuple(PEERS)
DEFAULT_BACKENDS = tuple(PACKAGES)
GPU_ONLY_BACKENDS = tuple(PEERS)
# the package a backend needs beyond lrnnspec's own dependencies, and the extra that installs it
BACKEND_REQUIRES = {"triton": ("triton", "lrnnspec[kernels]"), "fla": ("fla", "lrnnspec[test]")}


@dataclass(frozen=True)
class Implementation:
    family: str
    form: str
    target: str                      # ``module:function``, as ``lrnnspec certify`` takes it
    convention: str
    backend: str = "torch"
    contracts: dict[str, str] = field(default_factory=dict)
    fn: Callable | None = field(default=None, compare=False, repr=False)   # ours only: peers are not imported

    @property
    def id(self) -> str:
        return f"{self.family}-{self.form}" if self.backend == "torch" else f"{self.family}-{self.backend}-{self.form}"


REGISTRY: list[Implementation] = []


def register_forms(family: str, forms: dict[str, Callable], *, convention: str = "fla",
                   conventions: dict[str, str] | None = None, contracts: dict[str, str] | None = None) -> dict:
    """Register the forms a module defines (see the module docstring); returns ``forms``."""
    from lrnnspec.spec import get_family

    get_family(family)
    for form, fn in forms.items():
        module = fn.__module__
        backend = next((b for b, pkg in PACKAGES.items() if module.startswith(pkg + ".")), None)
        if backend is None:
            raise ValueError(f"{module}.{fn.__name__}: register_forms serves the packages {', '.join(PACKAGES.values())}")
        impl = Implementation(family, form, f"{module}:{fn.__name__}", (conventions or {}).get(form, convention),
                              backend, dict(contracts or {}), fn)
        same = [i for i in REGISTRY if (i.backend, i.family, i.form) == (backend, family, form)]
        if same and same[0].target != impl.target:
            raise ValueError(f"{backend} form {form!r} of {family!r} registered twice ({same[0].target}, {impl.target})")
        if same:              # the module imported anew: its functions replace the old ones
            REGISTRY[REGISTRY.index(same[0])] = impl
        else:
            REGISTRY.append(impl)
    return forms


def backend_available(backend: str) -> bool:
    """Whether ``backend``'s extra package is importable here (``torch`` always is)."""
    package = BACKEND_REQUIRES.get(backend, (None,))[0]
    return package is None or importlib.util.find_spec(package) is not None


def discover(backend: str) -> None:
    """Import every module of ``backend``'s package: each registers its forms."""
    package = importlib.import_module(PACKAGES[backend])
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"{package.__name__}.{info.name}")


def implementations(family: str | None = None, form: str | None = None, backends: tuple[str, ...] = ("torch",),
                    kinds: tuple[str, ...] = ("sequence",)) -> list[Implementation]:
    """The implementations of ``backends`` for families of ``kinds`` (``"sequence"``, ``"dag"``),
    optionally only ``family`` / ``form``, in the order of the spec's family registry."""
    from lrnnspec.spec import all_families, get_family

    order = {f.name: i for i, f in enumerate(all_families())}
    out = []
    for backend in backends:
        if backend not in BACKENDS:
            raise ValueError(f"backends: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        if not backend_available(backend):
            package, extra = BACKEND_REQUIRES[backend]
            raise ValueError(f"backends: backend {backend!r} needs the {package!r} package, which is not "
                             f"installed (pip install '{extra}')")
        if backend in PEERS:
            found = [Implementation(fam, "chunk", target, "fla", backend, dict(PEER_CONTRACTS[backend]))
                     for fam, target in PEERS[backend]]
        else:
            discover(backend)
            found = [i for i in REGISTRY if i.backend == backend]
        found = [i for i in found if (family is None or i.family == family) and (form is None or i.form == form)
                 and get_family(i.family).kind in kinds]
        out += sorted(found, key=lambda i: order[i.family])
    return out
