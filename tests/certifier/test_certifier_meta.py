"""The certifier certifies itself:

* every planted bug (tests/certifier/planted.py) is rejected, by the property that names it, with
  a shrunk counterexample, under every seed of ``LRNNSPEC_META_SEEDS`` (default ``0,1,2``) and the
  ``ci`` example budget;
* every correct kernel — every form of lrnnspec.impls and fla-core's pure-PyTorch references
  wrapped to FLA's public conventions — passes every property (zero false rejections), here under
  the ``dev`` budget and the first seed (lengths reach 515 and the long tier 256: this is the
  expensive half); ``lrnnspec conformance`` runs the ``ci`` budget over every implementation.

Each kernel runs in its own worker process, as under ``lrnnspec certify``; one process serves all
seeds and properties of a kernel.
"""

from __future__ import annotations

import os

import pytest

from lrnnspec import PROFILE_EXAMPLES
from lrnnspec.harness.kernel import Kernel
from lrnnspec.harness.runner import run_property
from lrnnspec.harness.sequence import LONG_LENGTHS, PROPERTIES
from lrnnspec.harness.targets import load_module_file

SEEDS = tuple(int(x) for x in os.environ.get("LRNNSPEC_META_SEEDS", "0,1,2").split(",") if x.strip())
EXAMPLES = PROFILE_EXAMPLES["ci"]


def _planted():
    return load_module_file(os.path.join(os.path.dirname(__file__), "planted.py"), "_lrnnspec_planted")


PLANTED = _planted().PLANTED
CORRECT = _planted().CORRECT
# bugs that only exist below fp32: certified in the dtype they break
LOW_PRECISION_BUGS = {"gla.low_precision_state": "bf16", "mamba2.fp32_output": "bf16"}


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_planted_bug_is_rejected_by_its_property(bug):
    k = Kernel(bug.target, bug.family, bug.convention, "cpu", timeout=60)
    try:
        for seed in SEEDS:
            verdict = run_property(k, bug.expected_property, LOW_PRECISION_BUGS.get(bug.name, "fp32"),
                                   max_examples=EXAMPLES, seed=seed)
            assert verdict.status == "fail", f"{bug.name} was not rejected by {bug.expected_property} " \
                                             f"(seed {seed}): {verdict}"
            assert verdict.counterexample is not None and verdict.counterexample["case"]
    finally:
        k.close()


@pytest.mark.parametrize("kernel", CORRECT, ids=lambda c: c.name)
def test_correct_kernel_passes_every_property(kernel):
    k = Kernel(kernel.target, kernel.family, kernel.convention, "cpu", timeout=120)
    k.domain.long_len = LONG_LENGTHS["dev"]
    rejected = []
    try:
        for seed in SEEDS[:1]:
            for prop in PROPERTIES:
                v = run_property(k, prop, "fp32", max_examples=PROFILE_EXAMPLES["dev"], seed=seed)
                if v.status in ("fail", "error"):
                    where = v.counterexample["description"] if v.counterexample else ""
                    rejected.append(f"{prop} (seed {seed}, {v.status}): {v.reason} — {where}")
    finally:
        k.close()
    assert not rejected, f"{kernel.name} falsely rejected:\n" + "\n".join(rejected)
