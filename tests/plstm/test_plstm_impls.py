"""The PyTorch forms of pLSTM (impls/plstm.py) equal the spec's recurrence: node-by-node recurrence,
gating-matrix (masked linear attention) form on any DAG, hierarchical and chunked forms on chains
and grids of odd sizes and every direction; their gradients equal the recurrence's autograd."""

import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from lrnnspec.impls import plstm as P
from lrnnspec.spec import Graph, chain, evaluate_dag, grid, random_dag_inputs
from lrnnspec.spec.graph import DIRECTIONS

TOL = 1e-12


def tensors(x, grad=False):
    return {k: torch.from_numpy(np.ascontiguousarray(v)).requires_grad_(grad) for k, v in x.items()}


def assert_close(got, want, tol=TOL):
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else got
    scale = max(1.0, float(np.max(np.abs(want))))
    assert np.max(np.abs(got - want)) <= tol * scale, f"max |Δ| = {np.max(np.abs(got - want)):.3e}"


@given(st.integers(1, 9), st.integers(1, 9), st.sampled_from(DIRECTIONS), st.sampled_from([1, 2, 4, 8]),
       st.integers(0, 2**16), st.sampled_from([None, "P", "D"]))
def test_2d_forms_equal_the_spec_recurrence(h, w, direction, chunk, seed, mode):
    g = grid(h, w, direction)
    x = random_dag_inputs("plstm", g, seed=seed, B=2, H=2, K=3, V=2, options={"mode": mode})
    want = evaluate_dag("plstm", x, graph=g, mode=mode).output
    t = tensors(x)
    flat = {k: v.reshape(2, h * w, *v.shape[3:]) for k, v in t.items()}
    assert_close(P.recurrent(g, **flat).reshape(want.shape), want)
    assert_close(P.parallel_dag(g, **flat).reshape(want.shape), want)
    assert_close(P.parallel_2d(**t, direction=direction), want)
    assert_close(P.chunked_2d(**t, direction=direction, chunk_size=chunk), want)


@given(st.integers(1, 40), st.sampled_from([1, 2, 4, 8]), st.integers(0, 2**16))
def test_1d_forms_equal_the_spec_recurrence(n, chunk, seed):
    g = chain(n)
    x = random_dag_inputs("plstm", g, seed=seed, B=2, H=2, K=3, V=2)
    want = evaluate_dag("plstm", x, graph=g).output
    t = tensors(x)
    for got in (P.recurrent(g, **t), P.parallel_dag(g, **t), P.parallel_1d(**t), P.chunked_1d(**t, chunk_size=chunk)):
        assert_close(got, want)


def test_recurrent_edge_states_equal_the_spec_final_state():
    g = grid(3, 5, "right_up")
    x = random_dag_inputs("plstm", g, seed=4, B=1, H=2, K=3, V=2, flat=True)
    out, C = P.recurrent(g, **tensors(x), return_states=True)
    res = evaluate_dag("plstm", x, graph=g)
    assert_close(out, res.output)
    assert_close(C, res.final_state)


@given(st.integers(1, 7), st.integers(0, 2**16))
def test_gating_matrix_on_random_dags_equals_the_recurrence(n, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    pairs = [(int(perm[a]), int(perm[b])) for a in range(n) for b in range(a + 1, n) if rng.uniform() < 0.5]
    g = Graph.from_edges(n, pairs)
    x = random_dag_inputs("plstm", g, seed=seed, B=1, H=2, K=2, V=2)
    assert_close(P.parallel_dag(g, **tensors(x)), evaluate_dag("plstm", x, graph=g).output)


def test_hierarchical_1d_gating_matrix_is_the_naive_product():
    # G[n, n'] = M^n (Π_{m=n'+1}^{n−1} T^m) S^{n'} (research/theorems.md §6.1, §10.8)
    n = 11
    x = random_dag_inputs("plstm", chain(n), seed=5, B=1, H=1, K=1, V=1)
    S, T, M = (x[k].reshape(n) for k in ("S", "T", "M"))
    naive = np.zeros((n, n))
    for t in range(n):
        for s in range(t):
            naive[t, s] = M[t] * np.prod(T[s + 1:t]) * S[s]
    G = P.gating_matrix_1d(*(torch.from_numpy(x[k]) for k in ("S", "T", "M")))[0, 0]
    assert_close(G, naive)


@pytest.mark.parametrize("form", ["parallel_2d", "chunked_2d"])
def test_2d_gradients_equal_the_recurrence_autograd(form):
    h, w = 3, 5
    g = grid(h, w, "left_down")
    x = random_dag_inputs("plstm", g, seed=6, B=1, H=2, K=3, V=2)
    a, b = tensors(x, grad=True), tensors(x, grad=True)
    ref = P.recurrent(g, **{k: v.reshape(1, h * w, *v.shape[3:]) for k, v in a.items()})
    kw = {"chunk_size": 2} if form == "chunked_2d" else {}
    out = getattr(P, form)(**b, direction="left_down", **kw)
    cot = torch.from_numpy(np.random.default_rng(0).standard_normal(out.shape))
    (ref.reshape(out.shape) * cot).sum().backward()
    (out * cot).sum().backward()
    for k in x:
        assert_close(b[k].grad, a[k].grad.numpy())


@pytest.mark.parametrize("form", ["parallel_1d", "chunked_1d"])
def test_1d_gradients_equal_the_recurrence_autograd(form):
    g = chain(9)
    x = random_dag_inputs("plstm", g, seed=7, B=2, H=1, K=2, V=3)
    a, b = tensors(x, grad=True), tensors(x, grad=True)
    ref = P.recurrent(g, **a)
    out = getattr(P, form)(**b, **({"chunk_size": 4} if form == "chunked_1d" else {}))
    (ref ** 2).sum().backward()
    (out ** 2).sum().backward()
    for k in x:
        assert_close(b[k].grad, a[k].grad.numpy())


@pytest.mark.parametrize("form,shape", [("parallel_2d", (2, 3)), ("chunked_2d", (2, 3)), ("parallel_1d", (5,)),
                                        ("chunked_1d", (5,))])
def test_gradcheck_on_tiny_shapes(form, shape):
    g = grid(*shape, "right_up") if len(shape) == 2 else chain(*shape)
    x = random_dag_inputs("plstm", g, seed=8, B=1, H=1, K=2, V=2)
    names = list(x)
    kw = {"direction": "right_up"} if len(shape) == 2 else {}
    if form.startswith("chunked"):
        kw["chunk_size"] = 2

    def f(*args):
        return getattr(P, form)(**dict(zip(names, args)), **kw)
    assert torch.autograd.gradcheck(f, tuple(tensors(x, grad=True).values()), fast_mode=True)


def test_bad_chunk_and_direction():
    x = tensors(random_dag_inputs("plstm", grid(2, 2), seed=0))
    with pytest.raises(ValueError, match="chunk"):
        P.chunked_2d(**x, chunk_size=3)
    with pytest.raises(ValueError, match="direction"):
        P.parallel_2d(**x, direction="up")


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_half_inputs_compute_in_float32_and_return_their_dtype(low):
    """fp16/bf16 inputs: every form computes in float32 (the mixed-precision contract of the impls),
    returns the output in the inputs' dtype and the edge states in float32."""
    g = grid(3, 4)
    x = {n: torch.from_numpy(v).to(low) for n, v in random_dag_inputs("plstm", g, seed=3, B=1, H=2, K=3, V=2).items()}
    x32 = {n: v.float() for n, v in x.items()}
    flat = lambda t: {n: v.reshape(1, 12, *v.shape[3:]) for n, v in t.items()}  # noqa: E731
    pairs = [(P.parallel_2d(**x), P.parallel_2d(**x32)), (P.chunked_2d(**x, chunk_size=2), P.chunked_2d(**x32, chunk_size=2)),
             (P.parallel_dag(g, **flat(x)), P.parallel_dag(g, **flat(x32))),
             (P.recurrent(g, **flat(x)), P.recurrent(g, **flat(x32)))]
    for got, want in pairs:
        assert got.dtype == low and torch.equal(got, want.to(low))
    out, C = P.recurrent(g, **flat(x), return_states=True)
    assert out.dtype == low and C.dtype == torch.float32


@pytest.mark.parametrize("levels", [0, 1, 2, 3])
def test_block_layout_is_the_hierarchical_merges_morton_order(levels):
    c = 1 << levels
    gates = torch.rand(1, c, c, 1, 2), torch.rand(1, c, c, 1, 2, 2), torch.rand(1, c, c, 1, 2)
    local = P._levels_2d(*gates, levels)[-1]
    ids = torch.arange(c * c).reshape(1, c, c, 1, 1)
    assert torch.equal(P._to_blocks(ids, c)[0, 0, 0, :, 0], local)
    grid_ids = torch.arange(2 * c * 3 * c * 2 * 5).reshape(1, 2 * c, 3 * c, 2, 5)
    assert torch.equal(P._from_blocks(P._to_blocks(grid_ids, c), 2, 3), grid_ids)
