"""The DAG certifier (lrnnspec/dag_certifier.py, lrnnspec/dag_strategies.py): every PyTorch form of
pLSTM passes every applicable property; every planted bug (tests/plstm/planted_dag.py) is rejected
by the property that names it; the strategies, conventions and budget behave as documented."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrnnspec import dag_certifier as dc
from lrnnspec.certifier import PropertyFailure
from lrnnspec.dag_strategies import DagCase, dag_case_from_json, dag_cases
from lrnnspec.impls import plstm as P
from lrnnspec.spec import chain, evaluate_dag, grid
from lrnnspec.spec.errors import SpecError
from lrnnspec.targets import load_module_file
from lrnnspec.tolerance import compare


def _planted():
    return load_module_file(os.path.join(os.path.dirname(__file__), "planted_dag.py"), "planted_dag_for_tests")


FORMS = {
    "recurrent": (P.recurrent, "native"),
    "parallel_dag": (P.parallel_dag, "native"),
    "parallel_1d": (P.parallel_1d, "chain"),
    "chunked_1d": (P.chunked_1d, "chain"),
    "parallel_2d": (P.parallel_2d, "grid"),
    "chunked_2d": (P.chunked_2d, "grid"),
}
NOT_APPLICABLE = {("final_state", f) for f in FORMS if f != "recurrent"} \
    | {("chunk", f) for f in FORMS if not f.startswith("chunked")}
EXAMPLES = 10


def _kernel(form):
    fn, convention = FORMS[form]
    return dc.DagKernel(fn, convention=convention)


@pytest.mark.parametrize("prop", dc.DAG_PROPERTIES)
@pytest.mark.parametrize("form", list(FORMS))
def test_impls_forms_pass_every_applicable_property(form, prop):
    k = _kernel(form)
    for seed in (0, 1):
        v = dc.run_dag_property(k, prop, "fp32", max_examples=EXAMPLES, seed=seed)
        if (prop, form) in NOT_APPLICABLE:
            assert v.status == "not_applicable", v
            continue
        where = (v.counterexample or {}).get("description")
        assert v.status == "pass", f"{form} {prop} seed {seed}: {v.reason}\n{where}"
        assert v.examples == EXAMPLES
        assert sum(v.worst["coverage"].values()) == EXAMPLES


@pytest.mark.parametrize("bug", [b.name for b in _planted().PLANTED])
def test_planted_bugs_are_rejected_by_their_property(bug):
    b = next(b for b in _planted().PLANTED if b.name == bug)
    k = dc.DagKernel(b.fn, convention=b.convention)
    v = dc.run_dag_property(k, b.expected_property, "fp32", max_examples=30, seed=0)
    assert v.status == "fail", f"{bug}: {b.expected_property} did not reject it ({v.reason})"
    cex = v.counterexample
    case = dag_case_from_json(cex["case"])
    assert case.describe() == cex["description"]
    # the shrunk reproducer fails again on its own, and is small
    with pytest.raises(PropertyFailure):
        dc.DAG_PROPERTY_FUNCTIONS[b.expected_property](k, case, "fp32")
    assert case.num_nodes <= 12, cex["description"]


def test_planted_bug_messages_name_the_defect():
    planted = {b.name: b for b in _planted().PLANTED}
    raster = dc.DagKernel(planted["raster_carry_2d"].fn, convention="grid")
    v = dc.run_dag_property(raster, "boundary", "fp32", max_examples=30, seed=0)
    assert "M[i=0]" in v.reason and "in-edge at port 0" in v.reason, v.reason
    # a leak across row ends is also a causality violation: (y−1, last) is no ancestor of (y, first)
    assert dc.run_dag_property(raster, "causality", "fp32", max_examples=30, seed=0).status == "fail"
    # the detached-gates form is exact forward: only its gradients are wrong
    detached = dc.DagKernel(planted["parallel_1d_detached_gates"].fn, convention="chain")
    assert dc.run_dag_property(detached, "forward", "fp32", max_examples=10, seed=0).status == "pass"
    g = dc.run_dag_property(detached, "gradients", "fp32", max_examples=30, seed=0)
    assert g.counterexample["detail"]["input"] in ("S", "T", "M"), g.reason
    # the write-order states are right on forward chains and right_down grids: the shrunk case is another cover
    order = dc.DagKernel(planted["recurrent_states_in_write_order"].fn, convention="native")
    v = dc.run_dag_property(order, "final_state", "fp32", max_examples=30, seed=0)
    case = dag_case_from_json(v.counterexample["case"])
    assert case.direction not in ("forward", "right_down"), v.counterexample["description"]
    assert "edge state error" in v.reason


# --- the error budget on a DAG ---------------------------------------------------------------------
def test_cone_budget_on_a_chain_is_the_sequence_rule():
    case = DagCase("plstm", "chain", (7,), "forward", {"B": 2, "H": 2, "K": 3, "V": 5},
                   {"q": "normal", "k": "normal", "v": "normal", "S": "sigmoid", "T": "tanh", "M": "sigmoid"},
                   {"mode": None}, 3)
    ref = dc.dag_reference(case, "fp32")
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
    ref = dc.dag_reference(case, "fp32")
    out = torch.tensor(ref.output)
    assert dc.check_output(out.float(), ref, case, "fp32")["worst_normalized"] <= 1
    bad = out.clone()
    bad[0, 4, 0, 1] *= 1 + 1e-4   # one element of the centre node, 1e-4 relative: ~1000 fp32 ulps
    with pytest.raises(PropertyFailure, match=r"node \(y=1, x=1\), head 0, value 1"):
        dc.check_output(bad, ref, case, "fp32")


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
    assert m["M"][:, 0].tolist() == [True, False, False, False]
    assert m["S"][:, 0].tolist() == [False, False, False, True]
    g = grid(2, 3, "right_up")                            # edges go right and up
    m = dc.missing_ports(g)
    assert m["M"].reshape(2, 3, 2)[:, 0, 0].all() and not m["M"].reshape(2, 3, 2)[:, 1:, 0].any()
    assert m["M"].reshape(2, 3, 2)[1, :, 1].all()        # the bottom row has no edge from below
    assert m["S"].reshape(2, 3, 2)[0, :, 1].all()        # the top row has no edge upwards


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
    with pytest.raises(SpecError, match="^convention:"):
        dc.DagKernel(P.parallel_1d, convention="native")   # no graph parameter
    with pytest.raises(SpecError, match="^convention:"):
        dc.DagKernel(P.parallel_1d)                        # 1-D or 2-D? cannot tell
    with pytest.raises(SpecError, match="^layouts:"):
        dc.DagKernel(P.parallel_2d, convention="grid", layouts=("chain",))
    with pytest.raises(SpecError, match="^family:"):
        dc.DagKernel(P.recurrent, family="gla")
    with pytest.raises(SpecError, match="^fn:"):
        dc.DagKernel(lambda graph, q, k: q, convention="native")
    k = dc.DagKernel(P.chunked_2d)
    assert k.convention == "grid" and k.caps.chunk == "chunk" and k.caps.direction
    assert dc.DagKernel(P.recurrent).caps.states == "return_states"
    with pytest.raises(SpecError, match="^prop:"):
        dc.run_dag_property(k, "varlen", "fp32", max_examples=1, seed=0)
    with pytest.raises(SpecError, match="^dtype:"):
        dc.run_dag_property(k, "forward", "fp8", max_examples=1, seed=0)
    with pytest.raises(SpecError, match="^max_examples:"):
        dc.run_dag_property(k, "forward", "fp32", max_examples=0, seed=0)


def test_a_crashing_kernel_fails_without_crashing_the_harness():
    def explodes(q, k, v, S, T, M, D=None, scale=None, direction="right_down"):
        if q.shape[1] * q.shape[2] > 4:
            raise RuntimeError("kernel launch failed")
        return P.parallel_2d(q, k, v, S, T, M, D, scale, direction)
    v = dc.run_dag_property(dc.DagKernel(explodes), "forward", "fp32", max_examples=20, seed=0)
    assert v.status == "fail" and "kernel launch failed" in v.reason
    assert dag_case_from_json(v.counterexample["case"]).num_nodes == 5   # shrunk to the smallest failing size


def test_evaluate_dag_output_in_layout_matches_the_flat_reference():
    case = DagCase("plstm", "grid", (2, 3), "left_down", {"B": 1, "H": 2, "K": 3, "V": 1},
                   {"q": "dyadic", "k": "dyadic", "v": "dyadic", "S": "dyadic", "T": "D_edge", "M": "dyadic",
                    "D": "dyadic"}, {"mode": "D"}, 9)
    ref = dc.dag_reference(case, "fp32")
    lay = evaluate_dag("plstm", case.arrays, graph=case.graph, mode="D").output
    np.testing.assert_array_equal(ref.output, lay.reshape(ref.output.shape))
