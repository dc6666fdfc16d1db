"""The certification harness: a kernel judged against the spec, property by property, from outside.

It owns everything between a kernel and its certificate. The kernel runs in its own worker process
(:mod:`.worker`, driven by :mod:`.process` over :mod:`.wire`), called through a calling convention
(:mod:`.conventions`); this process draws the cases (:mod:`lrnnspec.strategies`), evaluates the
spec on them, compares within the tolerance (:mod:`.tolerance`, :mod:`.gradients`), decides the
verdicts (:mod:`.verdicts`, :mod:`.runner`) and writes the certificate (:mod:`.certificate`). One
set of properties (:mod:`.properties`) serves every family; what a time axis or a graph changes
lives in :mod:`.sequence` and :mod:`.dag`.

    from lrnnspec.harness import certify
    cert = certify("my_pkg.ops:chunk_gdn", "gated_delta_rule", dtypes=["fp32", "bf16"], out="certs")
"""


def __getattr__(name):
    # light on import: the worker process imports this package before the kernel
    if name in ("certify", "Certificate"):
        from . import certificate

        return getattr(certificate, name)
    if name in ("Kernel",):
        from .kernel import Kernel

        return Kernel
    if name in ("run_property",):
        from .runner import run_property

        return run_property
    if name in ("Verdict", "PropertyFailure"):
        from . import verdicts

        return getattr(verdicts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
