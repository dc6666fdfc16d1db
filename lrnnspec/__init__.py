"""lrnnspec — a verified specification and property-testing harness for linear RNNs.

Subpackages: :mod:`lrnnspec.spec` (reference semantics and engines), :mod:`lrnnspec.impls`,
:mod:`lrnnspec.kernels`, :mod:`lrnnspec.proofs`.
"""

__version__ = "0.1.0"
SPEC_VERSION = "0.1"
# Hypothesis examples per profile: per test in lrnnspec's profiles, per property in the certifier
PROFILE_EXAMPLES = {"dev": 10, "ci": 25, "certify": 200}


def _subpackages_of_a_checkout() -> None:
    """Installed, ``lrnnspec.spec`` is ``spec/`` of the source tree (pyproject's package-dir), and so
    for impls, kernels and proofs. A process started in a checkout (``python -m lrnnspec`` there, or a
    worker it spawns) imports this folder instead of the installed copy: the checkout's root joins this
    package's path so that the same names resolve to the same folders."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if not os.path.isdir(os.path.join(here, "spec")) and os.path.isfile(os.path.join(root, "spec", "__init__.py")):
        __path__.append(root)       # noqa: F821 — a package's module namespace has __path__


_subpackages_of_a_checkout()
