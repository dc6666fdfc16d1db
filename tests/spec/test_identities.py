"""Identities across families and exact algebraic facts, checked on the exact engine."""

import mpmath
import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.spec import evaluate, mappings

from ._helpers import assert_bitwise, assert_same_evaluation, draw


def exact(family, x, init=None, **opts):
    return evaluate(family, x, initial_state=init, engine="exact", **opts)


@pytest.mark.parametrize("family", ["simple_gla", "gla", "retention"])
def test_unit_gates_give_linear_attention(family):
    x, init = draw(family, seed=21)
    if family == "retention":
        x["gamma"] = np.ones(x["v"].shape[2])
    else:
        x["g"] = np.zeros_like(x["g"])
    target, y, opts = mappings.ungated(family, x)
    assert_same_evaluation(exact(family, x, init), exact(target, y, init, **opts), family)


def test_gated_delta_rule_with_zero_gate_is_delta_rule():
    x, init = draw("gated_delta_rule", seed=22)
    x["g"] = np.zeros_like(x["g"])
    plain = {n: x[n] for n in ("q", "k", "v", "beta")}
    assert_same_evaluation(exact("gated_delta_rule", x, init), exact("delta_rule", plain, init))


def test_delta_product_with_one_householder_is_gated_delta_rule():
    x, init = draw("gated_delta_rule", seed=23)
    target, y, opts = mappings.gated_delta_rule_to_delta_product(**x)
    assert_same_evaluation(exact("gated_delta_rule", x, init), exact(target, y, init, **opts))


def test_kda_with_a_gate_constant_over_keys_is_gated_delta_rule():
    # the same operations on the same values, a row decay e^{g} that happens to be equal on every row
    x, init = draw("gated_delta_rule", seed=29, H=1, HV=2)
    target, y, opts = mappings.gated_delta_rule_to_kda(**x)
    assert_same_evaluation(exact("gated_delta_rule", x, init), exact(target, y, init, **opts), "kda")


def _within_bounds(r1, r2):
    assert np.all(np.abs(r1.output - r2.output) <= r1.output_bound + r2.output_bound)
    assert np.all(np.abs(r1.final_state - r2.final_state) <= r1.final_state_bound + r2.final_state_bound)


def test_comba_with_its_own_keys_and_no_decay_is_delta_rule():
    x, init = draw("comba", seed=32)
    x["p"], x["g"] = x["k"].copy(), np.zeros_like(x["g"])
    plain = {n: x[n] for n in ("q", "k", "v", "beta")}
    assert_same_evaluation(exact("comba", x, init), exact("delta_rule", plain, init), "comba")


def test_comba_is_dplr_with_its_read_key_as_the_low_rank_vector():
    # dyadic β, k, p, v keep the mapping's β·k exact; the gates are the same numbers on both sides
    rng = np.random.default_rng(33)
    B, T, H, K, V = 1, 8, 2, 4, 3
    k = rng.choice([-0.5, 0.5], (B, T, H, K))
    x = {"q": rng.standard_normal((B, T, H, K)), "k": k, "v": rng.integers(-16, 16, (B, T, H, V)) / 8,
         "p": k * rng.integers(0, 5, (B, T, H, 1)) / 4, "g": -rng.uniform(0, 1, (B, T, H)),
         "beta": rng.integers(0, 9, (B, T, H)) / 4}
    init = rng.standard_normal((B, H, K, V))
    target, y, opts = mappings.comba_to_dplr(**x)
    _within_bounds(exact("comba", x, init), exact(target, y, init, **opts))


def test_rwkv6_is_gla_on_two_steps_per_token():
    # equal in real arithmetic; the mapped key (1 − e^{w} u) k is rounded once to float64, so the two exact
    # evaluations agree within their bounds plus a few float64 ulps of the terms' magnitude
    x, init = draw("rwkv6", seed=34, T=9)
    target, y, opts = mappings.rwkv6_to_gla(**x)
    a, b = exact("rwkv6", x, init), exact(target, y, init, **opts)
    mag = 1e-14 * max(1.0, float(np.max(np.abs(a.output))), float(np.max(np.abs(a.final_state))))
    assert np.all(np.abs(a.output - b.output[:, 0::2]) <= a.output_bound + b.output_bound[:, 0::2] + mag)
    assert np.all(np.abs(a.final_state - b.final_state) <= a.final_state_bound + b.final_state_bound + mag)
    # and with no bonus and no decay the second key is k itself: bitwise the same operations' values
    x["u"], x["w"] = np.zeros_like(x["u"]), np.zeros_like(x["w"])
    target, y, opts = mappings.rwkv6_to_gla(**x)
    b = exact(target, y, init, **opts)
    assert np.array_equal(exact("rwkv6", x, init).final_state, b.final_state)


@pytest.mark.parametrize("layer", [(0, 1), (5, 12), (12, 12)])
def test_lightning_attn_is_simple_gla_with_the_layers_head_decays(layer):
    x, init = draw("lightning_attn", seed=35, H=3)
    opts = dict(layer_idx=layer[0], num_layers=layer[1])
    target, y, o = mappings.lightning_attn_to_simple_gla(**x, **opts)
    assert_same_evaluation(exact("lightning_attn", x, init, **opts), exact(target, y, init, **o), "lightning_attn")


def test_hgrn_is_gla_with_one_channel_per_head():
    x, init = draw("hgrn", seed=36, D=4)
    target, y, opts = mappings.hgrn_to_gla(**x)
    a, b = exact("hgrn", x, init), exact(target, y, init[:, :, None, None], **opts)
    assert_bitwise(a.output, b.output[..., 0], "hgrn output")
    assert_bitwise(a.final_state, b.final_state[..., 0, 0], "hgrn state")


def test_gated_oja_rule_transposed_is_kda():
    # the same operations on the transposed state: r = Σ_v S'·v is kda's Σ_k X'·k
    x, init = draw("gated_oja_rule", seed=37, H=2, HV=2, K=3, V=4)
    target, y, opts = mappings.gated_oja_rule_to_kda(**x)
    a, b = exact("gated_oja_rule", x, init), exact(target, y, np.swapaxes(init, -1, -2), **opts)
    assert np.all(np.abs(a.final_state - np.swapaxes(b.final_state, -1, -2))
                  <= a.final_state_bound + np.swapaxes(b.final_state_bound, -1, -2))


@pytest.mark.parametrize("p_times_alpha", [False, True])
def test_momentum_delta_rule_without_momentum_is_comba(p_times_alpha):
    # μ = e^{−10⁶} (an exact engine's number ≈ 10^{−434294}: far below every bound; float64's e^{−10⁶} is 0);
    # with p_times_alpha the mapped read key α·p is rounded once to float64 (a few ulps of slack)
    x, init = draw("momentum_delta_rule", seed=38, H=2, K=3, V=2)
    x["log_mu"], x["eta"] = np.full_like(x["log_mu"], -1e6), np.ones_like(x["eta"])
    target, y, opts = mappings.momentum_delta_rule_to_comba(
        **{n: x[n] for n in ("q", "k", "v", "log_alpha", "p", "beta")}, use_p_times_alpha=p_times_alpha)
    a = exact("momentum_delta_rule", x, {"S": init["S"], "M": np.zeros_like(init["M"])},
              use_p_times_alpha=p_times_alpha)
    b = exact(target, y, init["S"], require_unit_keys=False, **opts)
    slack = 1e-14 * max(1.0, float(np.max(np.abs(a.output)))) if p_times_alpha else 0.0
    assert np.all(np.abs(a.output - b.output) <= a.output_bound + b.output_bound + slack)
    assert np.all(np.abs(a.final_state["S"] - b.final_state) <= a.final_state_bound["S"] + b.final_state_bound + slack)


def test_precond_kda_with_no_preconditioning_range_is_kda():
    # x = 1: m = exp(−log(1)·σ) = exp(−0·σ) = 1 exactly; k ⊙ 1 = k, and β(k ⊙ m)(v − S'ᵀk) equals kda's
    # k (β(v − S'ᵀk))ᵀ within the two evaluations' bounds
    x, init = draw("precond_kda", seed=39)
    target, y, opts = mappings.precond_kda_to_kda(**{n: x[n] for n in ("q", "k", "v", "g", "beta")})
    a = evaluate("precond_kda", x, initial_state={"S": init["S"], "A": np.abs(init["A"])}, engine="exact",
                 **{"x": 1.0})
    b = exact(target, y, init["S"], **opts)
    assert np.all(np.abs(a.output - b.output) <= a.output_bound + b.output_bound)
    assert np.all(np.abs(a.final_state["S"] - b.final_state) <= a.final_state_bound["S"] + b.final_state_bound)


@pytest.mark.parametrize("use_norm", [True, False])
def test_based_is_linear_attention_on_taylor_features(use_norm):
    # K = 4 (scale ½) and dyadic q, k: the features are exact in float64
    rng = np.random.default_rng(40)
    x = {"q": rng.integers(-8, 9, (1, 9, 2, 4)) / 8, "k": rng.integers(-8, 9, (1, 9, 2, 4)) / 8,
         "v": rng.standard_normal((1, 9, 2, 3))}
    target, y, opts = mappings.based_to_linear_attention(**x, use_norm=use_norm)
    a, b = exact("based", x, use_norm=use_norm), exact(target, y, **opts)
    assert np.all(np.abs(a.output - b.output) <= a.output_bound + b.output_bound)


@pytest.mark.parametrize("use_norm", [True, False])
def test_rebased_is_linear_attention_on_quadratic_features(use_norm):
    rng = np.random.default_rng(41)
    x = {"q": rng.integers(-8, 9, (1, 9, 2, 4)) / 8, "k": rng.integers(-8, 9, (1, 9, 2, 4)) / 8,
         "v": rng.standard_normal((1, 9, 2, 3))}
    target, y, opts = mappings.rebased_to_linear_attention(**x, use_norm=use_norm)
    a, b = exact("rebased", x, use_norm=use_norm), exact(target, y, **opts)
    assert np.all(np.abs(a.output - b.output) <= a.output_bound + b.output_bound)


def _mesa_draw(seed, T):
    # β ∈ {0, ¼, ½, 1}: the mapped keys β·k are exact in float64
    x, init = draw("mesa_net", seed=seed, T=T, B=1, H=2, K=3, V=2)
    x["beta"] = np.random.default_rng(seed).choice([0.0, 0.25, 0.5, 1.0], x["beta"].shape)
    return x, init


def test_mesa_net_states_are_simple_gla_scans():
    x, init = _mesa_draw(45, 7)
    a = exact("mesa_net", x, init)
    for name, (target, y, opts) in zip(("h_kk", "h_kv"), mappings.mesa_net_states_to_simple_gla(
            **{n: x[n] for n in ("q", "k", "v", "g", "beta")})):
        b = exact(target, y, init[name], **opts)
        assert np.all(np.abs(a.final_state[name] - b.final_state) <= a.final_state_bound[name] + b.final_state_bound)


def test_mesa_net_read_out_is_the_direct_solve():
    # o_t = H^kv_tᵀ (H^kk_t + Diag(λ))⁻¹ q_t against mpmath's LU solve (partial pivoting) at 256 bits, the
    # states of step t from the exact evaluation of the prefix x[:, :t + 1]
    x, init = _mesa_draw(46, 5)
    full = exact("mesa_net", x, init)
    K = x["q"].shape[-1]
    for t in range(5):
        prefix = exact("mesa_net", {n: (a[:, :t + 1] if a.ndim == 4 or n in ("g", "beta") else a)
                                    for n, a in x.items()}, init)
        with mpmath.workprec(256):
            for h in range(2):
                Hkk, Hkv = prefix.raw["state"]["h_kk"][0, h], prefix.raw["state"]["h_kv"][0, h]
                A = mpmath.matrix([[Hkk[i, j] + (mpmath.mpf(x["lamb"][h, i]) if i == j else 0) for j in range(K)]
                                   for i in range(K)])
                qs = mpmath.lu_solve(A, mpmath.matrix([mpmath.mpf(c) for c in x["q"][0, t, h]]))
                for c in range(2):
                    want = mpmath.fsum(Hkv[i, c] * qs[i] for i in range(K))
                    assert abs(mpmath.mpf(full.output[0, t, h, c]) - want) <= full.output_bound[0, t, h, c]


def test_log_linear_attn_with_unit_level_weights_is_simple_gla():
    x, _ = draw("log_linear_attn", seed=48, T=11, B=2, H=1, HV=2, K=3, V=2, NS=5, initial_state=False)
    x["level_scales"] = np.ones_like(x["level_scales"])            # levels 0 … 4 ⊇ bit_length(10) = 4
    target, y, opts = mappings.log_linear_attn_to_simple_gla(**{n: x[n] for n in ("q", "k", "v", "g")})
    a, b = exact("log_linear_attn", x), exact(target, y, **opts)
    assert np.all(np.abs(a.output - b.output) <= a.output_bound + b.output_bound)


@pytest.mark.parametrize("levels", [2, 4])
def test_log_linear_attn_is_the_fenwick_level_sum(levels):
    # o_t = Σ_{s≤t} (q_t·k_s) e^{G_t − G_s} λ_t^{(ℓ)} v_s with ℓ = bit_length(t ⊕ s) (0 past the last level),
    # summed directly at 256 bits, against the recurrence's exact evaluation; varlen: positions per segment
    x, _ = draw("log_linear_attn", seed=49 + levels, T=13, B=1, H=1, HV=2, K=3, V=2, NS=levels, initial_state=False)
    cu = [0, 6, 6, 13]
    got = evaluate("log_linear_attn", x, engine="exact", cu_seqlens=np.array(cu), scale=0.5)
    q, k = (np.repeat(x[n], 2, axis=2) for n in ("q", "k"))
    mp = np.vectorize(mpmath.mpf, otypes=[object])
    with mpmath.workprec(256):
        for start, end in zip(cu[:-1], cu[1:]):
            for t in range(start, end):
                for h in range(2):
                    for c in range(2):
                        want = mpmath.mpf(0)
                        for s in range(start, t + 1):
                            ell = ((t - start) ^ (s - start)).bit_length()
                            if ell >= levels:
                                continue
                            G = mpmath.fsum(mp(x["g"][0, s + 1:t + 1, h]))
                            score = mpmath.fsum(a * b for a, b in zip(mp(q[0, t, h]), mp(k[0, s, h])))
                            want += 0.5 * score * mpmath.exp(G) * mp(x["level_scales"][0, t, h, ell]) * mp(x["v"][0, s, h, c])
                        assert abs(mpmath.mpf(got.output[0, t, h, c]) - want) <= got.output_bound[0, t, h, c]


def test_gsa_with_one_slot_is_simple_gla():
    x, init = draw("gsa", seed=51, T=9, B=2, H=2, K=3, V=2, NS=1)
    target, y, opts = mappings.gsa_one_slot_to_simple_gla(**x)
    a, b = exact("gsa", x, init), exact(target, y, init["h_v"], **opts)      # h_v [N,H,1,V]: simple_gla's S, K = 1
    assert_bitwise(a.output, b.output, "gsa output")
    assert_bitwise(a.final_state["h_v"], b.final_state, "gsa h_v")


def test_gdn2_with_both_gates_equal_to_beta_is_kda():
    # β(v − S'ᵀk) against β·v − S'ᵀ(β·k): equal in exact arithmetic, within the two evaluations' bounds
    x, init = draw("kda", seed=30)
    target, y, opts = mappings.kda_to_gdn2(**x)
    _within_bounds(exact("kda", x, init), exact(target, y, init, **opts))


def test_dplr_with_delta_parameters_is_delta_rule():
    # dyadic inputs (unit keys (±½, ±½, ±½, ±½), β ∈ {0, ¼, …, 2}, v ∈ ⅛ℤ) keep the mapping's β·k, β·v exact
    rng = np.random.default_rng(24)
    B, T, H, K, V = 1, 8, 2, 4, 3
    x = {"q": rng.standard_normal((B, T, H, K)), "k": rng.choice([-0.5, 0.5], (B, T, H, K)),
         "v": rng.integers(-16, 16, (B, T, H, V)) / 8, "beta": rng.integers(0, 9, (B, T, H)) / 4}
    init = rng.standard_normal((B, H, K, V))
    target, y, opts = mappings.delta_rule_to_dplr(**x)
    _within_bounds(exact("delta_rule", x, init), exact(target, y, init, **opts))


def test_mamba2_is_simple_gla_under_its_mapping():
    # dyadic inputs make the mapping's products Δ·x and Δ·A exact in float64
    rng = np.random.default_rng(25)
    B, T, G, HV, K, P = 1, 6, 1, 2, 3, 2
    x = {"x": rng.integers(-8, 8, (B, T, HV, P)) / 8, "dt": rng.integers(0, 8, (B, T, HV)) / 16,
         "A": -rng.integers(1, 8, HV) / 4, "B": rng.integers(-8, 8, (B, T, G, K)) / 8,
         "C": rng.integers(-8, 8, (B, T, G, K)) / 8}
    init = rng.standard_normal((B, HV, K, P))
    target, y, opts = mappings.mamba2_to_simple_gla(**x)
    _within_bounds(exact("mamba2", x, init), exact(target, y, init, **opts))


def test_hgrn2_mapping_matches_an_independent_hgrn2_recurrence():
    rng = np.random.default_rng(26)
    B, T, H, K, V = 1, 5, 2, 3, 2
    q, f, i = rng.standard_normal((B, T, H, K)), rng.standard_normal((B, T, H, K)), rng.standard_normal((B, T, H, V))
    target, y, opts = mappings.hgrn2_to_gla(q, f, i)
    got = evaluate(target, y, engine="fp64", scale=1.0)
    h = np.zeros((B, H, K, V))
    for t in range(T):
        forget = 1 / (1 + np.exp(-f[:, t]))
        h = forget[..., None] * h + (1 - forget)[..., None] * i[:, t, :, None, :]
        np.testing.assert_allclose(got.output[:, t], np.einsum("bhkv,bhk->bhv", h, q[:, t]), rtol=1e-12, atol=1e-14)


def test_rwkv7_mapping_matches_an_independent_rwkv7_recurrence():
    # RWKV-7 in its own [V, K] state layout: S ← S·Diag(e^w) + (S a) bᵀ + v kᵀ, o = S r
    rng = np.random.default_rng(27)
    B, T, H, K = 1, 6, 2, 4
    r, k, v = (rng.standard_normal((B, T, H, K)) for _ in range(3))
    w = -np.exp(rng.standard_normal((B, T, H, K)) - 1)
    kappa = rng.standard_normal((B, T, H, K))
    kappa /= np.linalg.norm(kappa, axis=-1, keepdims=True)
    iclr = rng.uniform(0, 1, (B, T, H, K))
    target, y, opts = mappings.rwkv7_to_dplr(r, w, k, v, kappa, iclr)
    got = evaluate(target, y, engine="fp64", **opts)
    S = np.zeros((B, H, K, K))  # [V, K]
    for t in range(T):
        a, b = -kappa[:, t], kappa[:, t] * iclr[:, t]
        sa = np.einsum("bhvk,bhk->bhv", S, a)
        S = S * np.exp(w[:, t])[:, :, None, :] + sa[..., None] * b[:, :, None, :] + v[:, t, :, :, None] * k[:, t, :, None, :]
        np.testing.assert_allclose(got.output[:, t], np.einsum("bhvk,bhk->bhv", S, r[:, t]), rtol=1e-12, atol=1e-13)


def test_beta_one_on_a_basis_key_overwrites_that_row_exactly():
    rng = np.random.default_rng(28)
    K, V, i = 4, 3, 2
    x = {"q": rng.standard_normal((1, 1, 1, K)), "k": np.eye(K)[i].reshape(1, 1, 1, K),
         "v": rng.standard_normal((1, 1, 1, V)), "beta": np.ones((1, 1, 1))}
    init = rng.standard_normal((1, 1, K, V))
    res = exact("delta_rule", x, init)
    assert np.array_equal(res.final_state[0, 0, i], x["v"][0, 0, 0])
    others = [j for j in range(K) if j != i]
    assert np.array_equal(res.final_state[0, 0, others], init[0, 0, others])


DYADIC_UNIT_VECTORS = [np.array(a, float) / d for a, d in
                       (((1, 1, 1, 1, 0), 2), ((2, 0, 0, 0, 0), 2), ((3, 2, 1, 1, 1), 4), ((7, 3, 2, 1, 1), 8))]


@given(st.sampled_from(DYADIC_UNIT_VECTORS), st.permutations(range(5)), st.lists(st.sampled_from([-1, 1]), min_size=5,
       max_size=5), st.integers(0, 2**32 - 1))
def test_beta_two_twice_with_the_same_unit_key_restores_the_state(unit, perm, signs, seed):
    # (I − 2kkᵀ)² = I and (I − 2kkᵀ)k = −k, so two reflections with the same (k, v) restore S.
    # Keys are exactly unit (dyadic), so the exact engine must restore the state bit for bit.
    rng = np.random.default_rng(seed)
    K, V = 5, 2
    k = unit[list(perm)] * np.array(signs)
    v = rng.standard_normal(V)
    x = {"q": rng.standard_normal((1, 2, 1, K)), "k": np.broadcast_to(k, (1, 2, 1, K)).copy(),
         "v": np.broadcast_to(v, (1, 2, 1, V)).copy(), "beta": np.full((1, 2, 1), 2.0)}
    init = rng.standard_normal((1, 1, K, V))
    res = exact("delta_rule", x, init)
    assert np.array_equal(res.final_state, init)
    with mpmath.workprec(256):
        assert all(r == mpmath.mpf(float(i)) for r, i in zip(res.raw["state"]["S"].reshape(-1), init.reshape(-1)))


def test_mamba_negative_eigenvalue_range_reaches_minus_one():
    # a = 2·exp(Δ·A) − 1 with Δ·A very negative gives a ≈ −1: the state flips sign every step.
    x = {"u": np.zeros((1, 4, 1)), "delta": np.ones((1, 4, 1)), "A": np.full((1, 1), -1000.0),
         "B": np.zeros((1, 4, 1)), "C": np.ones((1, 4, 1))}
    res = exact("mamba", x, np.ones((1, 1, 1)), eigenvalue_range="[-1,1]")
    np.testing.assert_array_equal(np.sign(res.output[0, :, 0]), [-1, 1, -1, 1])


def test_mlstm_stabilized_equals_the_papers_unstabilized_mlstm():
    # xLSTM (Beck et al. 2024): C_t = f_t C + i_t k vᵀ, n_t = f_t n + i_t k, h = Cᵀq̃ / max(|nᵀq̃|, 1),
    # with f_t = sigmoid(f̃), i_t = exp(ĩ); the stabilizer must not change h (eps = 0).
    x, _ = draw("mlstm", seed=31, T=10, K=4, V=3, initial_state=False)
    got = evaluate("mlstm", x, engine="fp64", eps=0.0)
    q = x["q"] * 4 ** -0.5
    C = np.zeros((2, 2, 4, 3))
    n = np.zeros((2, 2, 4))
    for t in range(10):
        f = 1 / (1 + np.exp(-x["f"][:, t]))
        i = np.exp(x["i"][:, t])
        C = f[..., None, None] * C + i[..., None, None] * x["k"][:, t, :, :, None] * x["v"][:, t, :, None, :]
        n = f[..., None] * n + i[..., None] * x["k"][:, t]
        den = np.maximum(np.abs(np.einsum("bhk,bhk->bh", n, q[:, t])), 1.0)
        want = np.einsum("bhkv,bhk->bhv", C, q[:, t]) / den[..., None]
        np.testing.assert_allclose(got.output[:, t], want, rtol=1e-12, atol=1e-14)


def test_linear_attention_normalizer():
    x, _ = draw("linear_attention", seed=32, T=6, K=3, V=2, initial_state=False)
    got = evaluate("linear_attention", x, engine="exact", normalize=True, normalize_eps=1e-10)
    q = x["q"] * 3 ** -0.5
    S = np.cumsum(x["k"][..., :, None] * x["v"][..., None, :], axis=1)
    z = np.cumsum(x["k"], axis=1)
    want = np.einsum("bthkv,bthk->bthv", S, q) / (np.einsum("bthk,bthk->bth", z, q) + 1e-10)[..., None]
    np.testing.assert_allclose(got.output, want, rtol=1e-10)
    assert set(got.final_state) == {"S", "z"}
    np.testing.assert_allclose(got.final_state["z"], z[:, -1], rtol=1e-14)
