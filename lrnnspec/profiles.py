"""Hypothesis profiles shared by lrnnspec's own tests and by users' suites.

``dev``     quick local runs (10 examples, random);
``ci``      derandomized, no example database, 25 examples — reproducible in CI;
``certify`` thorough (200 examples), failures printed with a reproduction blob.
The same counts are the certifier's examples per property (:data:`EXAMPLES`).
Select with ``settings.load_profile(name)`` or the ``LRNNSPEC_PROFILE`` environment variable
(read by :func:`load_profile_from_env`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from lrnnspec import PROFILE_EXAMPLES as EXAMPLES

PROFILES = tuple(EXAMPLES)
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile("dev", max_examples=EXAMPLES["dev"], **_common)
settings.register_profile("ci", max_examples=EXAMPLES["ci"], derandomize=True, database=None, print_blob=True,
                          **_common)
settings.register_profile("certify", max_examples=EXAMPLES["certify"], print_blob=True, **_common)


def load_profile_from_env(default: str = "ci") -> str:
    name = os.environ.get("LRNNSPEC_PROFILE", default)
    if name not in PROFILES:
        raise ValueError(f"LRNNSPEC_PROFILE: must be one of {PROFILES}, got {name!r}")
    settings.load_profile(name)
    return name
