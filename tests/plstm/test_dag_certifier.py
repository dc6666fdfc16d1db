"""Certifying DAG families (lrnnspec/harness/dag.py, lrnnspec/strategies/dag.py): every PyTorch form of
pLSTM passes every applicable property; every planted bug (tests/plstm/planted_dag.py) is rejected
by the property that names it; the strategies, conventions and budget behave as documented. The
kernels run in their own worker processes, as under ``lrnnspec certify``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrnnspec.harness import dag as dc
from lrnnspec.harness.kernel import Kernel
from lrnnspec.harness.properties import property_function
from lrnnspec.harness.runner import run_property
from lrnnspec.harness.targets import load_module_file
from lrnnspec.harness.tolerance import compare
from lrnnspec.harness.verdicts import PropertyFailure
from lrnnspec.spec import chain, evaluate_dag, grid
from lrnnspec.spec.errors import SpecError
from lrnnspec.strategies import DagCase, dag_case_from_json, dag_cases

PLANTED_FILE = os.path.join(os.path.dirname(__file__), "planted_dag.py")


def _planted():
    return load_module_file(PLANTED_FILE, "planted_dag_for_tests")


FORMS = {"recurrent": "native", "parallel_dag": "native", "parallel_1d": "chain", "chunked_1d": "chain",
         "parallel_2d": "grid", "chunked_2d": "grid"}
UNSUPPORTED = {("final_state", f) for f in FORMS if f != "recurrent"} \
    | {("chunk_size", f) for f in FORMS if not f.startswith("chunked")}
EXAMPLES = 10


def _kernel(target: str, convention: str | None = None, **kw) -> Kernel:
    return Kernel(target, "plstm", convention, **kw)


@pytest.mark.parametrize("form", list(FORMS))
def test_impls_forms_pass_every_applicable_property(form):
    k = _kernel(f"lrnnspec.impls.plstm:{form}", FORMS[form])
    try:
        for prop in dc.PROPERTIES:
            for seed in (0, 1):
                v = run_property(k, prop, "fp32", max_examples=EXAMPLES, seed=seed)
                if (prop, form) in UNSUPPORTED:
                    assert v.status == "unsupported", v
                    continue
                if prop == "scope":             # judged once, on the negotiated scope
                    assert v.status == "pass", v
                    continue
                where = (v.counterexample or {}).get("description")
                assert v.status == "pass", f"{form} {prop} seed {seed}: {v.reason}\n{where}"
                assert v.examples == EXAMPLES
                assert sum(v.worst["coverage"].values()) == EXAMPLES
    finally:
        k.close()


@pytest.mark.parametrize("bug", [b.name for b in _planted().PLANTED])
def test_planted_bugs_are_rejected_by_their_property(bug):
    b = next(b for b in _planted().PLANTED if b.name == bug)
    k = _kernel(b.target, b.convention)
    try:
        v = run_property(k, b.expected_property, "fp32", max_examples=30, seed=0)
        assert v.status == "fail", f"{bug}: {b.expected_property} did not reject it ({v.reason})"
        cex = v.counterexample
        case = dag_case_from_json(cex["case"])
        assert case.describe() == cex["description"]
        # the shrunk reproducer fails again on its own, and is small
        with pytest.raises(PropertyFailure):
            property_function(k, b.expected_property)(k, case.rounded("fp32"), "fp32")
        assert case.num_nodes <= 12, cex["description"]
    finally:
        k.close()


def test_planted_bug_messages_name_the_defect():
    planted = {b.name: b for b in _planted().PLANTED}
    raster = _kernel(planted["raster_carry_2d"].target, "grid")
    try:
        v = run_property(raster, "boundary", "fp32", max_examples=30, seed=0)
        assert "M[i=0]" in v.reason and "without an edge at that port" in v.reason, v.reason
        # a leak across row ends is also a causality violation: (y−1, last) is no ancestor of (y, first)
        assert run_property(raster, "causality", "fp32", max_examples=30, seed=0).status == "fail"
    finally:
        raster.close()
    # the detached-gates form is exact forward: only its gradients are wrong
    detached = _kernel(planted["parallel_1d_detached_gates"].target, "chain")
    try:
        assert run_property(detached, "forward", "fp32", max_examples=10, seed=0).status == "pass"
        g = run_property(detached, "gradients", "fp32", max_examples=30, seed=0)
        assert g.counterexample["detail"]["input"] in ("S", "T", "M"), g.reason
    finally:
        detached.close()
    # the write-order states are right on forward chains and right_down grids: the shrunk case is another cover
    order = _kernel(planted["recurrent_states_in_write_order"].target, "native")
    try:
        v = run_property(order, "final_state", "fp32", max_examples=30, seed=0)
        case = dag_case_from_json(v.counterexample["case"])
        assert case.direction not in ("forward", "right_down"), v.counterexample["description"]
        assert "edge state error" in v.reason
    finally:
        order.close()


# --- the error budget on a DAG ---------------------------------------------------------------------
def test_cone_budget_on_a_chain_is_the_sequence_rule():
    case = DagCase("plstm", "chain", (7,), "forward", {"B": 2, "H": 2, "K": 3, "V": 5},
                   {"q": "normal", "k": "normal", "v": "normal", "S": "sigmoid", "T": "tanh", "M": "sigmoid"},
                   {"mode": None}, 3)
    ref = dc.dag_reference(case, "fp32", "fp32")
    got = ref.output + np.random.default_rng(0).standard_normal(ref.output.shape) * 1e-6
    r = dc._cone_ratios(got, ref.output, ref.emul_output, ref.mag_output, "fp32", ref.node_cones, (-1,))
    seq = compare(got, ref.output, ref.emul_output, "fp32", time_axis=1, row_axes=(-1,), magnitude=ref.mag_output)
    np.testing.assert_allclose(r, seq.r, rtol=1e-12)


def test_node_cones_on_a_grid_are_the_upstream_rectangles():
    g = grid(3, 4, "left_up")
    cones = dc.node_cones(g)
    for n in range(12):
        y, x = divmod(n, 4)
        want = {yy * 4 + xx for yy in range(y, 3) for xx in range(x, 4)}
        assert set(cones[n].tolist()) == want and cones[n][-1] == n
    edges = dc.edge_cones(g, cones)
    for e, (src, _, _, _) in enumerate(g.edges):
        assert edges[e][-1] == e and all(g.edges[f][0] in set(cones[src].tolist()) for f in edges[e])


def test_forward_rejects_a_small_error_at_one_node():
    case = DagCase("plstm", "grid", (3, 3), "right_down", {"B": 1, "H": 1, "K": 3, "V": 3},
                   {"q": "normal", "k": "normal", "v": "normal", "S": "sigmoid", "T": "P", "M": "sigmoid"},
                   {"mode": "P"}, 5)
    ref = dc.dag_reference(case, "fp32", "fp32")
    out = torch.tensor(ref.output)
    domain = dc.DagDomain.__new__(dc.DagDomain)      # the checks need no kernel
    assert domain.check_output(out.float(), ref, case, "fp32")["worst_normalized"] <= 1
    bad = out.clone()
    bad[0, 4, 0, 1] *= 1 + 1e-4   # one element of the centre node, 1e-4 relative: ~1000 fp32 ulps
    with pytest.raises(PropertyFailure, match=r"node \(y=1, x=1\), head 0, value 1"):
        domain.check_output(bad, ref, case, "fp32")


# --- strategies ------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, database=None)
@given(dag_cases(layouts=("chain", "grid", "dag"), chain_directions=("forward", "reverse"), chunks=(1, 2, 4)),
       st.sampled_from(["fp32", "fp16", "bf16"]))
def test_cases_are_valid_after_rounding_and_round_trip(case, dtype):
    r = case.rounded(dtype)
    res = r.reference()                                   # the spec accepts them: mode constraints survive
    assert res.output.shape == (case.dims["B"], *case.shape, case.dims["H"], case.dims["V"])
    back = dag_case_from_json(case.to_json())
    assert back.describe() == case.describe()
    assert all(np.array_equal(back.arrays[n], case.arrays[n]) for n in case.arrays)
    if case.layout == "grid":
        assert case.graph.layout == case.shape and case.graph.direction == case.direction


def test_boundary_masks_match_the_graph():
    m = dc.missing_ports(chain(4))
    assert m[("I",)][:, 0].tolist() == [True, False, False, False]
    assert m[("O",)][:, 0].tolist() == [False, False, False, True]
    g = grid(2, 3, "right_up")                            # edges go right and up
    m = dc.missing_ports(g)
    dead_in, dead_out = m[("I",)].reshape(2, 3, 2), m[("O",)].reshape(2, 3, 2)
    assert dead_in[:, 0, 0].all() and not dead_in[:, 1:, 0].any()
    assert dead_in[1, :, 1].all()        # the bottom row has no edge from below
    assert dead_out[0, :, 1].all()       # the top row has no edge upwards


def test_bad_arguments_are_named():
    with pytest.raises(SpecError, match="^family:"):
        dag_cases("gla")
    with pytest.raises(SpecError, match="^layouts:"):
        dag_cases(layouts=("ring",))
    with pytest.raises(SpecError, match="^directions:"):
        dag_cases(directions=("up",))
    with pytest.raises(SpecError, match="^max_nodes:"):
        dag_cases(max_nodes=0)
    with pytest.raises(SpecError, match="^options:"):
        dag_cases(options={"mode": "Q"})
    with pytest.raises(SpecError, match="^chunks:"):
        dag_cases(chunks=())
    with pytest.raises(SpecError, match="^dtype:"):
        DagCase("plstm", "chain", (2,), "forward", {"B": 1, "H": 1, "K": 1, "V": 1},
                {"q": "normal", "k": "normal", "v": "normal", "S": "one", "T": "ones", "M": "one"},
                {"mode": None}, 0).rounded("fp8")
    with pytest.raises(SpecError, match="^case:"):
        dag_case_from_json({"family": "plstm"})


def test_bad_kernels_and_arguments_are_named():
    """One worker process, reused: what the signature says is checked when the kernel is set up."""
    k = _kernel("lrnnspec.impls.plstm:chunked_2d")
    try:
        process = k.process
        assert k.convention == "grid" and k.domain.caps.chunk == "chunk_size" and k.domain.caps.direction
        with pytest.raises(SpecError, match="^layouts:"):
            _kernel("lrnnspec.impls.plstm:chunked_2d", "grid", process=process, layouts=("chain",))
        with pytest.raises(SpecError, match="^prop:"):
            run_property(k, "varlen", "fp32", max_examples=1, seed=0)
        with pytest.raises(SpecError, match="^dtype:"):
            run_property(k, "forward", "fp8", max_examples=1, seed=0)
        with pytest.raises(SpecError, match="^max_examples:"):
            run_property(k, "forward", "fp32", max_examples=0, seed=0)
    finally:
        k.close()
    with pytest.raises(SpecError, match="^convention:"):
        _kernel("lrnnspec.impls.plstm:parallel_1d")                # 1-D or 2-D? cannot tell
    with pytest.raises(SpecError, match="^fn:"):
        _kernel(f"{PLANTED_FILE}:takes_too_little", "native")
    with pytest.raises(SpecError, match="^family:"):
        Kernel("lrnnspec.impls.plstm:recurrent", "glaa")
    k = _kernel("lrnnspec.impls.plstm:recurrent")
    try:
        assert k.domain.caps.states == "return_states"
    finally:
        k.close()


def test_a_crashing_kernel_fails_without_crashing_the_harness():
    k = _kernel(f"{PLANTED_FILE}:explodes")
    try:
        v = run_property(k, "forward", "fp32", max_examples=20, seed=0)
    finally:
        k.close()
    assert v.status == "fail" and "kernel launch failed" in v.reason
    assert dag_case_from_json(v.counterexample["case"]).num_nodes == 5   # shrunk to the smallest failing size


def test_evaluate_dag_output_in_layout_matches_the_flat_reference():
    case = DagCase("plstm", "grid", (2, 3), "left_down", {"B": 1, "H": 2, "K": 3, "V": 1},
                   {"q": "dyadic", "k": "dyadic", "v": "dyadic", "S": "dyadic", "T": "D_edge", "M": "dyadic",
                    "D": "dyadic"}, {"mode": "D"}, 9)
    ref = dc.dag_reference(case, "fp32", "fp32")
    lay = evaluate_dag("plstm", case.arrays, graph=case.graph, mode="D").output
    np.testing.assert_array_equal(ref.output, lay.reshape(ref.output.shape))
