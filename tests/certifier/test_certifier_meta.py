"""The certifier certifies itself: every planted bug is rejected by the property that names it, and
the correct chunk forms are accepted, under the ci example budget with a fixed seed.

(Permutation equivariance is not yet checked by the certifier: a bug expecting it would be xfail.)
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from lrnnspec.certifier import Kernel, run_property
from lrnnspec.impls import implementations


def _planted():
    name = "_lrnnspec_planted"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), "planted.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


PLANTED = _planted().PLANTED
LOW_PRECISION_BUGS = {"gla.low_precision_state": "bf16", "mamba2.fp32_output": "bf16"}


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_planted_bug_is_rejected_by_its_property(bug):
    k = Kernel(bug.fn, bug.family, bug.convention, "cpu", timeout=60)
    verdict = run_property(k, bug.expected_property, LOW_PRECISION_BUGS.get(bug.name, "fp32"), max_examples=25,
                           seed=0)
    if verdict.status == "not_checked":
        pytest.xfail(f"{bug.expected_property}: {verdict.reason}")
    assert verdict.status == "fail", f"{bug.name} was not rejected by {bug.expected_property}: {verdict}"
    assert verdict.counterexample is not None and verdict.counterexample["case"]


CHUNK_FORMS = implementations(form="chunk")


@pytest.mark.parametrize("prop", ["forward", "final_state", "state_passing"])
@pytest.mark.parametrize("impl", CHUNK_FORMS, ids=lambda i: i.id)
def test_correct_chunk_form_is_accepted(impl, prop):
    k = Kernel(impl.fn, impl.family, impl.convention, "cpu", timeout=60)
    verdict = run_property(k, prop, "fp32", max_examples=15, seed=0)
    assert verdict.status == "pass", f"{impl.id} falsely rejected by {prop}: {verdict.reason} " \
                                     f"{(verdict.counterexample or {}).get('description')}"
