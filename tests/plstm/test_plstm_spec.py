"""The plstm spec family: engines agree (exact bound, fp64, bit-exact emulation), graphs validate,
gates of the wrong shape and mode violations are rejected naming the argument."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.spec import (
    DomainError, Graph, GraphError, OptionError, ShapeError, SpecError, all_families, chain, evaluate, evaluate_dag,
    grid, random_dag_inputs,
)
from lrnnspec.spec.graph import DIRECTIONS

U64 = 2.0 ** -53


def graphs():
    """Chains, grids of every direction (odd sizes included) and small random DAGs."""
    chains = st.integers(1, 9).map(chain)
    grids = st.builds(grid, st.integers(1, 5), st.integers(1, 5), st.sampled_from(DIRECTIONS))

    @st.composite
    def dags(draw):
        n = draw(st.integers(1, 7))
        pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=12))
        perm = draw(st.permutations(range(n)))  # random node ids, edges along a hidden order
        edges = [(perm[min(a, b)], perm[max(a, b)]) for a, b in pairs if a != b]
        return Graph.from_edges(n, edges)
    return st.one_of(chains, grids, dags())


@given(graphs(), st.integers(0, 2**16))
def test_fp64_agrees_with_exact_within_bound_plus_fp64_roundoff(g, seed):
    x = random_dag_inputs("plstm", g, seed=seed, B=1, H=2, K=3, V=2)
    exact = evaluate_dag("plstm", x, graph=g, engine="exact", prec=64)
    fast = evaluate_dag("plstm", x, graph=g, engine="fp64")
    # first-order forward error of fp64: every output is a sum over ≤ P nodes' paths of products of
    # ≤ P gates, each op rounding ≤ u64: |ŷ − y| ≤ 16·(P + K)·u64·M, M = largest magnitude
    mag = max(1.0, float(np.max(np.abs(exact.output))), float(np.max(np.abs(exact.final_state), initial=0.0)))
    allowance = 16 * (g.num_nodes + 3) * U64 * mag
    for got, want, bound in ((fast.output, exact.output, exact.output_bound),
                             (fast.final_state, exact.final_state, exact.final_state_bound)):
        assert np.all(np.abs(got - want) <= bound + allowance)
    assert exact.max_bound < 1e-12 * mag


def test_exact_bound_holds_against_much_higher_precision():
    import mpmath
    g = grid(3, 4)
    x = random_dag_inputs("plstm", g, seed=3, B=1, H=1, K=2, V=2)
    low = evaluate_dag("plstm", x, graph=g, engine="exact", prec=64)
    truth = evaluate_dag("plstm", x, graph=g, engine="exact", prec=512)
    with mpmath.workprec(1024):
        for h, lo, r in zip(low.raw["output"].reshape(-1), low.raw["output_lo"].reshape(-1),
                            truth.raw["output"].reshape(-1)):
            assert abs(h - r) <= abs(h - lo)


def native_float32_grid(x, h, w):
    """The right/down grid written directly in float32 (numpy rounds each op to nearest even), in the
    spec's order: y = M0·(C0ᵀqs) [+ M1·(C1ᵀqs)] + (D·(qs·k))·v with left-to-right dot products;
    C_out[o] = T[o,0]·C0 [+ T[o,1]·C1] + S[o]·(k⊗v)."""
    f = np.float32
    q, k, v, S, T, M, D = (np.asarray(x[n], f)[0] for n in ("q", "k", "v", "S", "T", "M", "D"))
    K = q.shape[-1]
    scale = f(K ** -0.5)

    def dot(a, b):  # Σ_last a·b left to right, [H,...]
        acc = a[..., 0] * b[..., 0]
        for i in range(1, a.shape[-1]):
            acc = acc + a[..., i] * b[..., i]
        return acc
    right, down = {}, {}
    out = np.zeros(v.shape, f)
    for yy in range(h):
        for xx in range(w):
            qs = q[yy, xx] * scale
            inc = [(0, right.get((yy, xx - 1))), (1, down.get((yy - 1, xx)))]
            inc = [(i, C) for i, C in inc if C is not None]
            y = None
            for i, C in inc:
                r = dot(np.swapaxes(C, -1, -2), qs[:, None, :])  # Σ_k C[k,v] qs[k]
                term = M[yy, xx, :, i, None] * r
                y = term if y is None else y + term
            direct = (D[yy, xx] * dot(qs, k[yy, xx]))[:, None] * v[yy, xx]
            out[yy, xx] = direct if y is None else y + direct
            kv = k[yy, xx][:, :, None] * v[yy, xx][:, None, :]
            for o, store, ok in ((0, right, xx + 1 < w), (1, down, yy + 1 < h)):
                if not ok:
                    continue
                acc = None
                for i, C in inc:
                    term = T[yy, xx, :, o, i, None, None] * C
                    acc = term if acc is None else acc + term
                src = S[yy, xx, :, o, None, None] * kv
                store[(yy, xx)] = src if acc is None else acc + src
    return out.astype(np.float64)


def test_emulated_fp32_is_bitwise_a_native_float32_loop_on_a_small_grid():
    h, w = 3, 4
    g = grid(h, w)
    x = random_dag_inputs("plstm", g, seed=7, B=1, H=2, K=5, V=3)
    x = {n: a.astype(np.float32).astype(np.float64) for n, a in x.items()}
    got = evaluate_dag("plstm", x, graph=g, engine="emulate:fp32").output[0]
    want = native_float32_grid(x, h, w)
    assert np.array_equal(got, want), f"max |Δ| {np.max(np.abs(got - want))}"
    fp64 = evaluate_dag("plstm", x, graph=g, engine="fp64").output[0]
    assert not np.array_equal(got, fp64)  # it does round


def test_emulate_fp64_is_bitwise_fp64_sequential():
    g = grid(3, 3, "left_up")
    x = random_dag_inputs("plstm", g, seed=8, B=2, H=2, K=3, V=2)
    a = evaluate_dag("plstm", x, graph=g, engine="emulate:fp64")
    b = evaluate_dag("plstm", x, graph=g, engine="fp64:sequential")
    assert np.array_equal(a.output, b.output) and np.array_equal(a.final_state, b.final_state)


def test_layouts_flat_and_grid_agree_and_evaluate_routes_to_the_dag_driver():
    g = grid(3, 5)
    x = random_dag_inputs("plstm", g, seed=1)
    flat = random_dag_inputs("plstm", g, seed=1, flat=True)
    a = evaluate("plstm", x, graph=g)
    b = evaluate_dag("plstm", flat, graph=g)
    assert a.output.shape == (1, 3, 5, 2, 8) and b.output.shape == (1, 15, 2, 8)
    assert np.array_equal(a.output.reshape(b.output.shape), b.output)
    assert a.final_state.shape == (1, g.num_edges, 2, 8, 8)


def test_unit_source_on_a_chain_is_the_product_of_transitions():
    # G[n, 0] = M^n Π_{0<m<n} T^m S^0 (eq. 7, 1-D)
    n = 6
    T = np.array([0.5, -0.75, 0.25, 2.0, -1.0, 0.5])
    M = np.array([0.0, 1.0, 2.0, 1.0, 0.5, 1.0])
    x = {"q": np.ones((1, n, 1, 1)), "k": np.eye(1, n).reshape(1, n, 1, 1), "v": np.eye(1, n).reshape(1, n, 1, 1),
         "S": np.full((1, n, 1, 1), 3.0), "T": T.reshape(1, n, 1, 1, 1), "M": M.reshape(1, n, 1, 1)}
    out = evaluate_dag("plstm", x, graph=chain(n), engine="exact", scale=1.0).output[0, :, 0, 0]
    want = [0.0] + [M[j] * np.prod(T[1:j]) * 3.0 for j in range(1, n)]
    assert np.array_equal(out, want)


def test_family_is_listed_and_generic_helpers_filter_by_kind():
    names = [f.name for f in all_families()]
    assert "plstm" in names
    assert "plstm" not in [f.name for f in all_families(kind="sequence")]
    assert [f.name for f in all_families(kind="dag")] == ["plstm"]


# --- errors --------------------------------------------------------------------------------------------
def test_cycle_is_rejected_naming_the_cycle():
    with pytest.raises(GraphError, match=r"cycle 1 → 3 → 2 → 1") as info:
        Graph.from_edges(5, [(0, 1), (1, 3), (3, 2), (2, 1), (3, 4)])
    assert info.value.argument == "edges"
    with pytest.raises(GraphError, match=r"cycle 2 → 2"):
        Graph.from_edges(3, [(0, 2), (2, 2)])


@pytest.mark.parametrize("args,argument", [
    ((0, []), "num_nodes"), ((2, [(0, 2)]), "edges"), ((3, [(0, 0, 1, 0), (0, 0, 2, 0)]), "edges"),
    ((2, [(0, 1, 2)]), "edges"),
])
def test_bad_graphs_are_rejected(args, argument):
    with pytest.raises(GraphError) as info:
        Graph.from_edges(*args)
    assert info.value.argument == argument


@pytest.mark.parametrize("make,argument", [(lambda: grid(0, 3), "h"), (lambda: grid(2, 2, "up"), "direction"),
                                           (lambda: chain(0), "n")])
def test_bad_constructors(make, argument):
    with pytest.raises(GraphError) as info:
        make()
    assert info.value.argument == argument


def _x(g, **kw):
    return random_dag_inputs("plstm", g, seed=0, B=1, H=2, K=3, V=2, **kw)


@pytest.mark.parametrize("name,mutate,argument", [
    ("T-ports", lambda x: x.update(T=x["T"][..., :1]), "T"),          # a grid has 2 in-ports
    ("S-ports", lambda x: x.update(S=x["S"][..., None]), "S"),
    ("M-heads", lambda x: x.update(M=x["M"][:, :, :, :1]), "M"),      # H = 1 vs 2
    ("v-nodes", lambda x: x.update(v=x["v"][:, :2]), "v"),            # node axes not the layout
    ("q-K", lambda x: x.update(k=x["k"][..., :2]), "k"),
    ("nan", lambda x: x["T"].__setitem__((0, 0, 0, 0, 0, 0), np.nan), "T"),
    ("unknown", lambda x: x.update(W=np.zeros(1)), "W"),
    ("missing", lambda x: x.pop("M"), "M"),
])
def test_wrong_shapes_are_rejected_naming_the_argument(name, mutate, argument):
    g = grid(3, 4)
    x = _x(g)
    mutate(x)
    with pytest.raises(SpecError) as info:
        evaluate_dag("plstm", x, graph=g)
    assert info.value.argument == argument and str(info.value).startswith(f"{argument}: ")


def test_missing_graph_initial_state_and_cu_seqlens_are_rejected():
    g = chain(4)
    x = _x(g)
    for kwargs, argument in (({}, "graph"), ({"graph": g, "initial_state": np.zeros(1)}, "initial_state"),
                             ({"graph": g, "cu_seqlens": np.array([0, 4])}, "cu_seqlens")):
        with pytest.raises(SpecError) as info:
            evaluate("plstm", x, **kwargs)
        assert info.value.argument == argument


def test_p_mode_rejects_column_sums_above_one_and_accepts_the_critical_form():
    g = grid(3, 3)
    x = _x(g, options={"mode": "P"})
    evaluate_dag("plstm", x, graph=g, mode="P")
    a = 0.3
    x["T"] = np.broadcast_to(np.array([[a, a], [1 - a, 1 - a]]), x["T"].shape).copy()
    evaluate_dag("plstm", x, graph=g, mode="P")  # column sums exactly 1 (up to rounding of 1 − a)
    x["T"][0, 1, 1, 1, 0, 1] = 0.8               # node (1,1), head 1: column 1 sums to 1.5
    with pytest.raises(DomainError, match=r"mode 'P'.*node 4 \(batch 0, head 1\), in-port 1") as info:
        evaluate_dag("plstm", x, graph=g, mode="P")
    assert info.value.argument == "T"
    evaluate_dag("plstm", x, graph=g)  # no mode declared: accepted
    # entries of ports a node does not have are never read, nor checked
    y = _x(g, options={"mode": "P"})
    y["T"][0, 0, 0, :, :, 0] = 5.0   # node (0,0) has no incoming edges
    evaluate_dag("plstm", y, graph=g, mode="P")


def test_d_mode_needs_a_multitree_and_unit_bounded_transitions():
    g = grid(3, 3)
    x = _x(g, options={"mode": "D"})
    evaluate_dag("plstm", x, graph=g, mode="D")
    bad = {**x, "T": x["T"].copy()}
    bad["T"][0, 1, 1, 0, 1, 0] = 0.5     # re-open one turn at node (1,1): two paths join
    with pytest.raises(DomainError, match="multitree") as info:
        evaluate_dag("plstm", bad, graph=g, mode="D")
    assert info.value.argument == "T"
    big = {**x, "T": x["T"].copy()}
    big["T"][0, 1, 1, 0, 0, 0] = 1.5
    with pytest.raises(DomainError, match=r"\|T\[o, i\]\| ≤ 1"):
        evaluate_dag("plstm", big, graph=g, mode="D")
    with pytest.raises(OptionError) as info:
        evaluate_dag("plstm", x, graph=g, mode="Q")
    assert info.value.argument == "mode"


def test_line_graph_multitree_detection():
    g = grid(4, 4)
    act = np.ones((16, 2, 2), bool)
    assert not g.line_graph_is_multitree(act)[0]
    act[:, 0, 1] = False                  # the other turn zero also gives a multitree
    assert g.line_graph_is_multitree(act)[0]
    assert chain(5).line_graph_is_multitree()[0]


def test_shape_error_message_names_the_layout():
    g = grid(2, 3)
    x = _x(g)
    x["q"] = x["q"].reshape(1, 3, 2, 2, 3)
    with pytest.raises(ShapeError, match=r"\[B,2,3,H,K\] or \[B,6,H,K\]"):
        evaluate_dag("plstm", x, graph=g)
