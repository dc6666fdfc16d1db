"""Shared helpers for the spec tests."""

import numpy as np

from lrnnspec.spec import all_families, random_inputs

FAMILIES = [f.name for f in all_families(kind="sequence")]  # time-axis families (not DAG ones)
SMALL = dict(B=2, T=7, H=2, K=3, V=2, D=3, NS=2, n_h=2)


def draw(family, seed=0, initial_state=True, **sizes):
    """Random valid inputs and an initial state (an array for one-component states, else a dict)."""
    x = random_inputs(family, seed=seed, initial_state=initial_state, **{**SMALL, **sizes})
    init = x.pop("initial_state", None)
    if init is not None and len(init) == 1:
        init = next(iter(init.values()))
    return x, init


def states(final):
    return final if isinstance(final, dict) else {"S": final}


def assert_bitwise(a, b, what=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    assert same.all(), f"{what}: {int((~same).sum())} elements differ, max |Δ| = {np.nanmax(np.abs(a - b))!r}"


def assert_same_evaluation(r1, r2, what=""):
    assert_bitwise(r1.output, r2.output, f"{what} output")
    s1, s2 = states(r1.final_state), states(r2.final_state)
    for name in s1:
        assert_bitwise(s1[name], s2[name], f"{what} state {name}")
