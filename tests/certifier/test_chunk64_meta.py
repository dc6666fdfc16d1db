"""Kernels that hard-code chunk 64 and take no ``chunk_size``, like every chunk op of
flash-linear-attention, are judged where their bugs live: each bug of tests/certifier/planted_chunk64.py
— beyond the first chunk boundary, or at long T, and invisible at T ≤ 31 — is rejected by the property
that names it under every seed of ``LRNNSPEC_META_SEEDS`` (default 0, 1, 2), with a counterexample
beyond the first chunk; and the correct chunk-64 kernels they derive from are certified."""

from __future__ import annotations

import os

import pytest

from lrnnspec import PROFILE_EXAMPLES
from lrnnspec.harness.kernel import Kernel
from lrnnspec.harness.runner import run_property
from lrnnspec.harness.targets import load_module_file
from lrnnspec.strategies import case_from_json

SEEDS = tuple(int(x) for x in os.environ.get("LRNNSPEC_META_SEEDS", "0,1,2").split(",") if x.strip())
MODULE = load_module_file(os.path.join(os.path.dirname(__file__), "planted_chunk64.py"), "_lrnnspec_planted_chunk64")


BUGS = [pytest.param(b, id=b.name) for b in MODULE.PLANTED_CHUNK64]


@pytest.mark.parametrize("bug", BUGS)
def test_a_bug_beyond_the_first_chunk_is_rejected_by_its_property(bug):
    k = Kernel(bug.target, bug.family, bug.convention, "cpu", timeout=120)
    try:
        for seed in SEEDS:
            v = run_property(k, bug.expected_property, "fp32", max_examples=PROFILE_EXAMPLES["ci"], seed=seed)
            assert v.status == "fail", f"{bug.name}: {bug.expected_property} not rejected (seed {seed}): {v}"
            case = case_from_json(v.counterexample["case"])
            assert case.dims["T"] > 31, f"{bug.name}: shrunk to T = {case.dims['T']}, where the bug hides"
    finally:
        k.close()


@pytest.mark.parametrize("family", sorted(MODULE.CORRECT_CHUNK64))
def test_the_correct_chunk_64_kernels_are_certified(family):
    from lrnnspec.harness.certificate import certify

    fn = MODULE.CORRECT_CHUNK64[family]
    cert = certify(f"{MODULE.FILE}:{fn.__name__}", family, profile="ci", seed=SEEDS[0], database=None,
                   properties=["scope", "forward", "final_state", "state_passing", "varlen", "causality", "gradients"])
    assert cert.certified, [f"{v.property}: {v.reason}" for v in cert.verdicts if v.status in ("fail", "error")]
