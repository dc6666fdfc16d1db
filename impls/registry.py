"""Every built-in implementation: (family, form, function, calling convention, precision contracts).

Generic tests, ``lrnnspec conformance`` and the benchmarks iterate over :func:`implementations`,
the way PyTorch's OpInfo database drives its tests. A module lists its forms in ``FORMS``, its
calling convention in ``CONVENTION`` (default ``"fla"``; per form: ``CONVENTIONS``) and, where it
rounds differently from the
default contract of a dtype (:data:`lrnnspec.tolerance.CONTRACTS`), its declared precision
contracts in ``CONTRACTS`` (dtype → spec contract).

Our two backends: ``torch`` (:mod:`lrnnspec.impls`, every family) and ``triton``
(:mod:`lrnnspec.kernels`, the delta and gated families; on a machine without a GPU they run in
Triton's interpreter, slowly — :func:`implementations` lists them only when asked). One peer
backend, ``fla``: flash-linear-attention's Triton chunk kernels (:data:`PEERS`), certified beside ours
on a GPU (``lrnnspec conformance --device cuda --backend fla``); never part of the default set.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

# module → spec family, per backend
MODULES = {
    "torch": {
        "lrnnspec.impls.linear_attention": "linear_attention",
        "lrnnspec.impls.retention": "retention",
        "lrnnspec.impls.simple_gla": "simple_gla",
        "lrnnspec.impls.gla": "gla",
        "lrnnspec.impls.mamba2": "mamba2",
        "lrnnspec.impls.mlstm": "mlstm",
        "lrnnspec.impls.mamba": "mamba",
        "lrnnspec.impls.delta_rule": "delta_rule",
        "lrnnspec.impls.gated_delta_rule": "gated_delta_rule",
        "lrnnspec.impls.delta_product": "delta_product",
        "lrnnspec.impls.dplr": "dplr",
        "lrnnspec.impls.plstm": "plstm",
    },
    "triton": {
        "lrnnspec.kernels.simple_gla": "simple_gla",
        "lrnnspec.kernels.gla": "gla",
        "lrnnspec.kernels.delta_rule": "delta_rule",
        "lrnnspec.kernels.gated_delta_rule": "gated_delta_rule",
        "lrnnspec.kernels.delta_product": "delta_product",
    },
}
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
BACKENDS = tuple(MODULES) + tuple(PEERS)
DEFAULT_BACKENDS = tuple(MODULES)
GPU_ONLY_BACKENDS = tuple(PEERS)
# the package a backend needs beyond lrnnspec's own dependencies, and the extra that installs it
BACKEND_REQUIRES = {"triton": ("triton", "lrnnspec[kernels]"), "fla": ("fla", "lrnnspec[test]")}


def backend_available(backend: str) -> bool:
    """Whether ``backend``'s extra package is importable here (``torch`` always is)."""
    import importlib.util

    package = BACKEND_REQUIRES.get(backend, (None,))[0]
    return package is None or importlib.util.find_spec(package) is not None


@dataclass(frozen=True)
class Implementation:
    family: str
    form: str
    fn: Callable
    convention: str
    backend: str = "torch"
    contracts: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """``module:function``, as ``lrnnspec certify`` takes it."""
        return f"{self.fn.__module__}:{self.fn.__name__}"

    @property
    def id(self) -> str:
        return f"{self.family}-{self.form}" if self.backend == "torch" else f"{self.family}-{self.backend}-{self.form}"


def implementations(family: str | None = None, form: str | None = None, backends: tuple[str, ...] = ("torch",),
                    kinds: tuple[str, ...] = ("sequence",)) -> list[Implementation]:
    """The implementations of ``backends`` for families of ``kinds`` (``"sequence"``, ``"dag"``),
    optionally only ``family`` / ``form``."""
    from lrnnspec.spec import get_family

    out = []
    for backend in backends:
        if backend not in BACKENDS:
            raise ValueError(f"backends: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        if not backend_available(backend):
            package, extra = BACKEND_REQUIRES[backend]
            raise ValueError(f"backends: backend {backend!r} needs the {package!r} package, which is not "
                             f"installed (pip install '{extra}')")
        if backend in PEERS:
            out += _peers(backend, family, form)
            continue
        for module_name, fam in MODULES[backend].items():
            if (family is not None and fam != family) or get_family(fam).kind not in kinds:
                continue
            module = importlib.import_module(module_name)
            conventions = getattr(module, "CONVENTIONS", {})
            contracts = dict(getattr(module, "CONTRACTS", {}))
            for form_name, fn in module.FORMS.items():
                if form is None or form == form_name:
                    convention = conventions.get(form_name, getattr(module, "CONVENTION", "fla"))
                    out.append(Implementation(fam, form_name, fn, convention, backend, contracts))
    return out


def _peers(backend: str, family: str | None, form: str | None) -> list[Implementation]:
    from lrnnspec.targets import load_target

    if form not in (None, "chunk"):
        return []
    return [Implementation(fam, "chunk", load_target(target), "fla", backend, dict(PEER_CONTRACTS[backend]))
            for fam, target in PEERS[backend] if family is None or fam == family]
