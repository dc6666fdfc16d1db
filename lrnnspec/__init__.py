"""lrnnspec — a verified specification and property-testing harness for linear RNNs.

Subpackages: :mod:`lrnnspec.spec` (reference semantics and engines), :mod:`lrnnspec.impls`,
:mod:`lrnnspec.kernels`, :mod:`lrnnspec.proofs`.
"""

__version__ = "0.1.0"
SPEC_VERSION = "0.1"
# Hypothesis examples per profile: per test in lrnnspec's profiles, per property in the certifier
PROFILE_EXAMPLES = {"dev": 10, "ci": 25, "certify": 200}
