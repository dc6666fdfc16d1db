"""Every built-in implementation: (family, form, function, calling convention).

Generic tests, ``lrnnspec conformance`` and the benchmarks iterate over :func:`implementations`,
the way PyTorch's OpInfo database drives its tests. A family module lists its forms in ``FORMS``
and its calling convention in ``CONVENTION`` (default ``"fla"``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

# impls module → spec family
MODULES = {
    "linear_attention": "linear_attention",
    "retention": "retention",
    "simple_gla": "simple_gla",
    "gla": "gla",
    "mamba2": "mamba2",
    "mlstm": "mlstm",
    "mamba": "mamba",
    "delta_rule": "delta_rule",
    "gated_delta_rule": "gated_delta_rule",
    "delta_product": "delta_product",
    "dplr": "dplr",
}


@dataclass(frozen=True)
class Implementation:
    family: str
    form: str
    fn: Callable
    convention: str

    @property
    def target(self) -> str:
        """``module:function``, as ``lrnnspec certify`` takes it."""
        return f"{self.fn.__module__}:{self.fn.__name__}"

    @property
    def id(self) -> str:
        return f"{self.family}-{self.form}"


def implementations(family: str | None = None, form: str | None = None) -> list[Implementation]:
    out = []
    for module_name, fam in MODULES.items():
        if family is not None and fam != family:
            continue
        module = importlib.import_module(f"lrnnspec.impls.{module_name}")
        convention = getattr(module, "CONVENTION", "fla")
        for form_name, fn in module.FORMS.items():
            if form is None or form == form_name:
                out.append(Implementation(fam, form_name, fn, convention))
    return out
