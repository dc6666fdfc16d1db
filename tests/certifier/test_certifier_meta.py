"""The certifier certifies itself, under the ``ci`` example budget, with the seeds in
``LRNNSPEC_META_SEEDS`` (default ``0,1,2``; ``LRNNSPEC_META_SEEDS=0`` for a quick local run):

* every planted bug (tests/certifier/planted.py) is rejected, by the property that names it, with
  a shrunk counterexample;
* every correct kernel — every form of lrnnspec.impls and fla-core's pure-PyTorch references
  wrapped to FLA's public conventions — passes every property (zero false rejections).
"""

from __future__ import annotations

import os

import pytest

from lrnnspec.certifier import PROFILE_EXAMPLES, PROPERTIES, Kernel, run_property
from lrnnspec.targets import load_module_file

SEEDS = tuple(int(x) for x in os.environ.get("LRNNSPEC_META_SEEDS", "0,1,2").split(",") if x.strip())
EXAMPLES = PROFILE_EXAMPLES["ci"]


def _planted():
    return load_module_file(os.path.join(os.path.dirname(__file__), "planted.py"), "_lrnnspec_planted")


PLANTED = _planted().PLANTED
CORRECT = _planted().CORRECT
# bugs that only exist below fp32: certified in the dtype they break
LOW_PRECISION_BUGS = {"gla.low_precision_state": "bf16", "mamba2.fp32_output": "bf16"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_planted_bug_is_rejected_by_its_property(bug, seed):
    k = Kernel(bug.fn, bug.family, bug.convention, "cpu", timeout=60)
    verdict = run_property(k, bug.expected_property, LOW_PRECISION_BUGS.get(bug.name, "fp32"),
                           max_examples=EXAMPLES, seed=seed)
    assert verdict.status == "fail", f"{bug.name} was not rejected by {bug.expected_property}: {verdict}"
    assert verdict.counterexample is not None and verdict.counterexample["case"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kernel", CORRECT, ids=lambda c: c.name)
def test_correct_kernel_passes_every_property(kernel, seed):
    k = Kernel(kernel.fn, kernel.family, kernel.convention, "cpu", timeout=120)
    rejected = []
    for prop in PROPERTIES:
        v = run_property(k, prop, "fp32", max_examples=EXAMPLES, seed=seed)
        if v.status == "fail":
            rejected.append(f"{prop}: {v.reason} — {v.counterexample['description']}")
    assert not rejected, f"{kernel.name} falsely rejected (seed {seed}):\n" + "\n".join(rejected)
