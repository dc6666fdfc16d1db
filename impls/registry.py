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
Triton's interpreter, slowly — :func:`implementations` lists them only when asked). The peer
backends (:data:`lrnnspec.peers.backends.PEER_BACKENDS`: fla-ref, fla, transformers, mlstm_kernels,
mamba_ssm) are the field's functions, named by target and never imported here (each runs in its
own process); never part of the default set.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from lrnnspec.peers.backends import PEER_BACKENDS

PACKAGES = {"torch": "lrnnspec.impls", "triton": "lrnnspec.kernels"}
BACKENDS = tuple(PACKAGES) + tuple(PEER_BACKENDS)
DEFAULT_BACKENDS = tuple(PACKAGES)
# the package a backend needs beyond lrnnspec's own dependencies, and how to install it
BACKEND_REQUIRES = {"triton": ("triton", "pip install 'lrnnspec[kernels]'"),
                    **{name: (b.package, b.install) for name, b in PEER_BACKENDS.items()}}


@dataclass(frozen=True)
class Implementation:
    family: str
    form: str
    target: str                      # ``module:function``, as ``lrnnspec certify`` takes it
    convention: str | None          # None: the family's default (a peer's, read from its signature)
    backend: str = "torch"
    contracts: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)      # variables set in the kernel's process
    budget: dict = field(default_factory=dict)   # limits where it runs slowly: max_len, examples, dtypes
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
                              backend, dict(contracts or {}), fn=fn)
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
                    kinds: tuple[str, ...] = ("sequence",), device: str = "cpu") -> list[Implementation]:
    """The implementations of ``backends`` for families of ``kinds`` (``"sequence"``, ``"dag"``),
    optionally only ``family`` / ``form``, in the order of the spec's family registry; a peer's
    variables and contracts are those it needs on ``device``."""
    from lrnnspec.spec import all_families, get_family

    order = {f.name: i for i, f in enumerate(all_families())}
    out = []
    for backend in backends:
        if backend not in BACKENDS:
            raise ValueError(f"backends: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        if not backend_available(backend):
            package, how = BACKEND_REQUIRES[backend]
            raise ValueError(f"backends: backend {backend!r} needs the {package!r} package, which is not "
                             f"installed ({how})")
        if backend in PEER_BACKENDS:
            peer = PEER_BACKENDS[backend]
            found = [Implementation(f.family, f.form, f.target, None, backend, peer.contracts_for(f, device),
                                    peer.env_for(f, device), peer.budget_for(f, device)) for f in peer.functions]
        else:
            discover(backend)
            found = [i for i in REGISTRY if i.backend == backend]
        found = [i for i in found if (family is None or i.family == family) and (form is None or i.form == form)
                 and get_family(i.family).kind in kinds]
        out += sorted(found, key=lambda i: order[i.family])
    return out
