"""lrnnspec.impls — fast PyTorch forms (recurrent, chunkwise, parallel) of every family.

Signatures follow the peer library each family comes from (flash-linear-attention, mamba_ssm,
mlstm_kernels) with one argument order and one set of defaults across the forms of a family.
Every form is certified against :mod:`lrnnspec.spec`; :func:`implementations` lists them all.
Each form is importable from here by its function name (``from lrnnspec.impls import
chunk_gated_delta_rule``): the modules register their forms (:func:`.registry.register_forms`), and
this package looks the name up among them — there is no list to keep.
"""

from .registry import Implementation, implementations


def _forms() -> dict:
    from .registry import REGISTRY, discover

    discover("torch")
    return {i.fn.__name__: i.fn for i in REGISTRY if i.backend == "torch"}


def __getattr__(name: str):
    forms = _forms()
    if name in forms:
        return forms[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_forms()))


__all__ = ["implementations", "Implementation"]
