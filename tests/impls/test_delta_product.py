"""impls.delta_product (Gated DeltaProduct on the UT core with read-out every n_h micro-steps).

Properties: both forms equal the spec's fp64 evaluation in float64 (Hypothesis: n_h ∈ {1, 2, 3},
with and without g, β up to 2, strong and zero gates, varlen counted in tokens with empty and
length-1 segments, initial states, GVA); the chunk result does not depend on chunk_size (which
counts tokens); n_h = 1 is gated_delta_rule; float32 within tolerance; chunk gradients of every
input and the initial state equal float64 autograd of the recurrent form; num_householder is
validated against the interleaved length; bad arguments raise SpecError naming the argument.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrnnspec.impls import delta_product, gated_delta_rule
from lrnnspec.impls.driver import default_chunk_size
from lrnnspec.spec import random_inputs
from lrnnspec.spec.errors import SpecError
from lrnnspec.strategies import cases

from ._delta_common import CHUNK, assert_close, call, run_case, spec, vjp

FORMS = list(delta_product.FORMS)
FP64_TOL = 1e-12


def draw(**kw):
    return cases("delta_product", chunk_size=CHUNK, max_len=11, **kw)


@pytest.mark.parametrize("form", FORMS)
@given(data=st.data())
def test_every_form_equals_spec_fp64(form, data):
    case = data.draw(draw())
    ref = case.reference()
    _, o, S = run_case(case, form)
    assert_close("output", o, ref.output, FP64_TOL)
    assert_close("final state", S, ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state,
                 FP64_TOL)


def _inputs(T, n_h, gate=True, seed=0, HV=2, strong=False):
    x = random_inputs("delta_product", seed=seed, B=2, T=T, H=1, HV=HV, K=4, V=3, n_h=n_h, initial_state=True)
    init = x.pop("initial_state")["S"]
    rng = np.random.default_rng(seed)
    x["beta"] = rng.uniform(0.0, 2.0, x["beta"].shape)
    if not gate:
        x.pop("g", None)
    elif strong:
        x["g"] = np.where(rng.random(x["g"].shape) < 0.5, 0.0, -30.0)
    return {k: torch.tensor(v) for k, v in x.items()}, torch.tensor(init)


@pytest.mark.parametrize("n_h", [1, 2, 3])
@pytest.mark.parametrize("gate", [True, False])
def test_chunk_size_counts_tokens_and_changes_nothing(n_h, gate):
    x, init = _inputs(10, n_h, gate, seed=n_h, strong=True)
    want_o, want_S = spec("delta_product", x, init)
    for chunk in (1, 2, 3, 4, 10, 64):
        o, S = call("delta_product", "chunk", x, init, chunk=chunk)
        assert_close(f"output C={chunk}", o, want_o, FP64_TOL)
        assert_close(f"state C={chunk}", S, want_S, FP64_TOL)


def test_one_householder_step_is_gated_delta_rule():
    x, init = _inputs(9, 1, seed=4)
    o, S = call("delta_product", "chunk", x, init)
    o2, S2 = gated_delta_rule.chunk_gated_delta_rule(x["q"], x["k"], x["v"], x["g"], x["beta"], initial_state=init,
                                                     output_final_state=True, chunk_size=CHUNK)
    assert_close("output", o, o2.numpy(), 1e-13)
    assert_close("state", S, S2.numpy(), 1e-13)


@pytest.mark.parametrize("form", FORMS)
def test_varlen_counts_tokens(form):
    cu = [0, 0, 1, 1, 5, 9]
    x = random_inputs("delta_product", seed=2, B=1, T=9, H=1, HV=2, K=4, V=3, n_h=2)
    x = {k: torch.tensor(v) for k, v in x.items()}
    init = torch.randn(len(cu) - 1, 2, 4, 3, dtype=torch.float64)
    o, S = call("delta_product", form, x, init, cu_seqlens=cu)
    want_o, want_S = spec("delta_product", x, init, cu_seqlens=cu)
    assert_close("output", o, want_o, FP64_TOL)
    assert_close("state", S, want_S, FP64_TOL)


@given(data=st.data())
def test_float32_within_tolerance(data):
    case = data.draw(draw(max_batch=1, varlen=False)).rounded(torch.float32)
    ref = case.reference()
    _, o, S = run_case(case, "chunk", dtype=torch.float32)
    near_parallel = case.regimes.get("k") == "near_parallel"
    tol = 1e-4 * (30 if near_parallel else 1) * max(1, case.dims["T"] * case.dims["n_h"]) ** 0.5
    assert_close("output", o, ref.output, tol)
    assert_close("state", S, ref.final_state["S"] if isinstance(ref.final_state, dict) else ref.final_state, tol)


@given(data=st.data())
def test_gradients_equal_recurrent_fp64_autograd(data):
    case = data.draw(draw(max_batch=1))
    seed = case.seed % 1000
    want = vjp(*run_case(case, "recurrent", requires_grad=True), seed=seed)
    got = vjp(*run_case(case, "chunk", requires_grad=True), seed=seed)
    for name, g in want.items():
        assert_close(f"d/d{name}", got[name], g.numpy(), 1e-9)


def test_forms_share_fla_signature():
    params = [list(inspect.signature(fn).parameters) for fn in delta_product.FORMS.values()]
    assert params[0] == [p for p in params[1] if p != "chunk_size"]
    assert params[0][:6] == ["q", "k", "v", "g", "beta", "num_householder"]   # fla-core 0.6.0's order


def test_num_householder_validated():
    x, init = _inputs(5, 2)
    fn = delta_product.chunk_gated_delta_product
    args = (x["q"], x["k"], x["v"], x["g"], x["beta"])
    for bad in (3, 1, 0, -2, True, 2.0):
        with pytest.raises(SpecError) as err:
            fn(*args, bad)
        assert err.value.argument == "num_householder"
    with pytest.raises(SpecError) as err:   # cannot infer: 10 interleaved steps for 3 tokens
        fn(x["q"][:, :3], *args[1:])
    assert err.value.argument == "num_householder"
    o, S = fn(*args, initial_state=init, output_final_state=True, chunk_size=2)   # None: inferred n_h = 2
    want_o, want_S = spec("delta_product", x, init)
    assert_close("inferred n_h output", o, want_o, FP64_TOL)
    with pytest.raises(SpecError) as err:   # keyword call without beta
        fn(q=x["q"], k=x["k"], v=x["v"], num_householder=2)
    assert err.value.argument == "beta"
    with pytest.raises(SpecError) as err:   # v's interleaved length disagrees with k's
        fn(x["q"], x["k"], x["v"][:, :-1], x["g"], x["beta"], 2)
    assert err.value.argument == "v"
    with pytest.raises(SpecError) as err:
        fn(*args, 2, chunk_size=0)
    assert err.value.argument == "chunk_size"
    with pytest.raises(SpecError) as err:
        fn(*args, 2, use_qk_l2norm_in_kernel=None)
    assert err.value.argument == "use_qk_l2norm_in_kernel"


def test_default_chunk_size_is_64_micro_steps():
    assert inspect.signature(delta_product.chunk_gated_delta_product).parameters["chunk_size"].default is None
    assert [default_chunk_size(n) for n in (1, 2, 3, 64, 100)] == [64, 32, 21, 1, 1]
    x, init = _inputs(70, 3, seed=9)
    want_o, want_S = spec("delta_product", x, init)
    o, S = delta_product.chunk_gated_delta_product(x["q"], x["k"], x["v"], x["g"], x["beta"], 3, initial_state=init,
                                                   output_final_state=True)
    assert_close("output", o, want_o, FP64_TOL)
    assert_close("state", S, want_S, FP64_TOL)
