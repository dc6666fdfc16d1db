"""emulate:<fmt> is bit-exact against independent low-precision loops written with the native types."""

import ml_dtypes
import numpy as np
import pytest

from lrnnspec.spec import evaluate

from ._helpers import assert_bitwise, draw

NATIVE = {"fp32": np.float32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16}


def native_gated_delta_rule(x, init, dtype):
    """Gated DeltaNet written directly in ``dtype`` (numpy / ml_dtypes round every op to nearest even):
    d = exp(g) (float64 exp, then rounded), S' = d·S, r = Σ_k S'·k left to right, u = β(v − r),
    S = S' + k⊗u, o = Σ_k S·(q·scale)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v, g, beta = (c(x[n]) for n in ("q", "k", "v", "g", "beta"))
    B, T, H, K = q.shape
    scale = c(K ** -0.5)
    S = c(init)
    out = np.zeros(v.shape, dtype)
    for t in range(T):
        d = c(np.exp(g[:, t].astype(np.float64)))
        S = d[:, :, None, None] * S
        kt = k[:, t]
        r = S[:, :, 0, :] * kt[:, :, 0, None]
        for i in range(1, K):
            r = r + S[:, :, i, :] * kt[:, :, i, None]
        u = beta[:, t, :, None] * (v[:, t] - r)
        S = S + kt[:, :, :, None] * u[:, :, None, :]
        qs = q[:, t] * scale
        o = S[:, :, 0, :] * qs[:, :, 0, None]
        for i in range(1, K):
            o = o + S[:, :, i, :] * qs[:, :, i, None]
        out[:, t] = o
    return out.astype(np.float64), S.astype(np.float64)


@pytest.mark.parametrize("fmt", NATIVE)
def test_emulate_matches_native_low_precision_loop_bitwise(fmt):
    x, init = draw("gated_delta_rule", seed=11, T=12, K=5, V=3)
    want_o, want_s = native_gated_delta_rule(x, init, NATIVE[fmt])
    got = evaluate("gated_delta_rule", x, initial_state=init, engine=f"emulate:{fmt}")
    assert_bitwise(got.output, want_o, f"{fmt} output")
    assert_bitwise(got.final_state, want_s, f"{fmt} state")


def test_mixed_contract_differs_from_uniform_where_the_state_format_matters():
    x, init = draw("linear_attention", seed=12, T=64, K=4, V=4)
    exact = evaluate("linear_attention", x, initial_state=init, engine="exact")
    mixed = evaluate("linear_attention", x, initial_state=init, engine="emulate:mixed-bf16")
    uniform = evaluate("linear_attention", x, initial_state=init, engine="emulate:bf16")
    err_mixed = np.max(np.abs(mixed.final_state - exact.final_state))
    err_uniform = np.max(np.abs(uniform.final_state - exact.final_state))
    assert err_mixed < err_uniform  # fp32 state accumulation beats bf16 accumulation
    # mixed rounds inputs and outputs to bf16, state stays fp32-representable
    assert np.all(np.asarray(mixed.final_state, np.float32) == mixed.final_state)
    assert np.all(mixed.output.astype(ml_dtypes.bfloat16).astype(np.float64) == mixed.output)


def test_tf32_rounds_only_dot_operands():
    x, init = draw("delta_rule", seed=13, T=5, K=4, V=4)
    fp32 = evaluate("delta_rule", x, initial_state=init, engine="emulate:fp32")
    tf32 = evaluate("delta_rule", x, initial_state=init, engine="emulate:tf32")
    assert np.any(fp32.output != tf32.output)
    assert np.all(np.asarray(tf32.final_state, np.float32) == tf32.final_state)
