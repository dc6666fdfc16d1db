"""Every registered theorem check of this package reaches its verdict under the profile's bounds.

Each check is its own property (its name says which); constructions must be *verified* on every word
up to the profile's length in exact arithmetic and emulated fp32/bf16, impossibility checks
*witnessed*, symbolic identities *verified*.
"""

import pytest

import lrnnspec.proofs  # noqa: F401  (registers the checks)
from lrnnspec.proofs.result import CHECKS, run

from lrnnspec.profiles import load_profile_from_env

PROFILE = load_profile_from_env()

MINE = ("parity.", "modcount.", "groups.", "householder.", "symbolic.", "horizon.emulator", "complexdiag.")
EXPECTED = {"parity.nonnegative": "witnessed", "parity.multilayer": "witnessed",
            "modcount.real_spectrum": "witnessed"}
NAMES = sorted(n for n in CHECKS if n.startswith(MINE))
CAST_MODEL = ("parity.nonnegative", "parity.multilayer", "modcount.real_spectrum")  # stated in their rounding model


def test_all_theorem_modules_registered_their_checks():
    for prefix in ("parity.diagonal", "parity.reflection", "parity.mamba", "parity.nonnegative", "modcount.rotation",
                   "modcount.reflections", "modcount.binary", "modcount.real_spectrum", "householder.norm",
                   "groups.so3.A5", "groups.permutation.S5", "symbolic.chunkwise", "horizon.finite_precision",
                   "complexdiag.mod3", "complexdiag.S3"):
        assert prefix in CHECKS


@pytest.mark.parametrize("name", NAMES)
def test_check_reaches_its_verdict(name):
    res = run(name, PROFILE)
    want = EXPECTED.get(name, "verified")
    want = want if isinstance(want, tuple) else (want,)
    assert res.verdict in want, res.evidence.get("traceback") or res.evidence
    if name in CAST_MODEL:
        assert "cast model" in res.result and "any finite precision" not in res.result
