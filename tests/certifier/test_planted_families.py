"""The certifier rejects the planted bugs of the new families' chunk forms (tests/certifier/
planted_families.py), each by the property that names it, with a shrunk counterexample, under every
seed of ``LRNNSPEC_META_SEEDS`` (default ``0`` here: ``0,1,2`` for the thorough run) and the ``ci`` example budget — and each bug is
real: the kernel it derives from, with the bug taken out, agrees with the spec at the bug's trigger
while the buggy one does not.

Each kernel runs in its own worker process, as under ``lrnnspec certify``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lrnnspec import PROFILE_EXAMPLES
from lrnnspec.harness.kernel import Kernel
from lrnnspec.harness.runner import run_property
from lrnnspec.harness.targets import load_module_file
from lrnnspec.spec import evaluate, get_family, random_inputs

SEEDS = tuple(int(x) for x in os.environ.get("LRNNSPEC_META_SEEDS", "0").split(",") if x.strip())
MODULE = load_module_file(os.path.join(os.path.dirname(__file__), "planted_families.py"), "_lrnnspec_planted_families")
PLANTED = MODULE.PLANTED_FAMILIES


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_planted_bug_is_rejected_by_its_property(bug):
    k = Kernel(bug.target, bug.family, bug.convention, "cpu", timeout=60)
    try:
        for seed in SEEDS:
            verdict = run_property(k, bug.expected_property, "fp32", max_examples=PROFILE_EXAMPLES["ci"], seed=seed)
            assert verdict.status == "fail", f"{bug.name} was not rejected by {bug.expected_property} " \
                                             f"(seed {seed}): {verdict}"
            assert verdict.counterexample is not None and verdict.counterexample["case"]
    finally:
        k.close()


# the trigger of each bug as an input: family → (sizes, log-gate scale, initial state)
def _trigger(family, T=20, gate=1.0, seed=0):
    x = random_inputs(family, seed=seed, B=1, T=T, H=1, K=3, V=2, initial_state=True)
    init = x.pop("initial_state")
    for i in get_family(family).with_role("log_gate"):
        if i.name in x:
            x[i.name] = x[i.name] * gate
    return x, init


def _run(fn, x, init, **kw):
    """The kernel in float32 (where e^{88} overflows), chunk 16 (T = 20: the last chunk padded)."""
    t = {n: torch.tensor(v, dtype=torch.float32, requires_grad=True) for n, v in x.items()}
    s = {n: torch.tensor(v, dtype=torch.float32) for n, v in init.items()}
    o, S = fn(**t, initial_state=next(iter(s.values())) if len(s) == 1 else tuple(s.values()),
              output_final_state=True, chunk_size=16, **kw)
    return t, o, S


@pytest.mark.parametrize("bug", PLANTED, ids=lambda b: b.name)
def test_the_bug_is_real_and_the_bug_free_copy_agrees_with_the_spec(bug):
    strong = bug.expected_property == "gradients"
    x, init = _trigger(bug.family, gate=100.0 if strong else 1.0)
    ref = evaluate(bug.family, x, initial_state=init, engine="fp64")
    copy = MODULE.CORE_COPIES[bug.family]
    for fn, should_agree in ((copy, True), (bug.fn, False)):
        t, o, S = _run(fn, x, init)
        if strong:       # forward right, the gradient not
            assert np.allclose(o.detach().double().numpy(), ref.output, atol=1e-4, rtol=1e-4)
            grads = torch.autograd.grad(o.sum(), list(t.values()), allow_unused=True)
            finite = all(g is None or bool(torch.isfinite(g).all()) for g in grads)
            assert finite == should_agree, f"{fn.__name__}: finite gradients = {finite}"
        else:            # output and final state (a bug may show in the state alone)
            want = ref.final_state if isinstance(ref.final_state, dict) else {"S": ref.final_state}
            got = S if isinstance(S, tuple) else (S,)
            agrees = np.allclose(o.detach().double().numpy(), ref.output, atol=1e-4, rtol=1e-4) and all(
                np.allclose(g.detach().double().numpy(), w, atol=1e-4, rtol=1e-4) for g, w in zip(got, want.values()))
            assert agrees == should_agree, f"{fn.__name__}: agrees with the spec = {agrees}"
