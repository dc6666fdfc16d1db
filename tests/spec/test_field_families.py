"""The families added for the rest of the field (kda, gdn2, comba, rwkv6, lightning_attn, hgrn): their
one definition under emulation is bit-exact against independent loops written with the native
low-precision types, and their numerics hooks say what they claim.

(Engines agreeing, state passing and varlen packing are checked for every family by test_engines.py
and test_state_passing.py; the identities with older families by test_identities.py.)
"""

import ml_dtypes
import numpy as np
import pytest

from lrnnspec.spec import evaluate, get_family, mappings
from lrnnspec.spec.numerics import conditioning

from ._helpers import assert_bitwise, draw, states

NATIVE = {"fp32": np.float32, "bf16": ml_dtypes.bfloat16}


def _dot(S, x, dtype):
    """Σ_k S[..., k, :] · x[..., k] left to right, every product and partial sum rounded to ``dtype``."""
    acc = S[..., 0, :] * x[..., 0, None]
    for i in range(1, S.shape[-2]):
        acc = acc + S[..., i, :] * x[..., i, None]
    return acc


def native_kda(x, init, dtype):
    """KDA written directly in ``dtype``: d = exp(g) per key channel (float64 exp, then rounded),
    S' = d ⊙ S row-wise, r = Σ_k S'·k, u = β(v − r), S = S' + k⊗u, o = Σ_k S·(q·scale). q, k repeated
    to the value heads (GVA)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    group = x["v"].shape[2] // x["q"].shape[2]
    q, k = (c(np.repeat(x[n], group, axis=2)) for n in ("q", "k"))
    v, g, beta = (c(x[n]) for n in ("v", "g", "beta"))
    scale = c(q.shape[-1] ** -0.5)
    S, out = c(init), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        d = c(np.exp(g[:, t].astype(np.float64)))
        S = d[..., None] * S
        u = beta[:, t, :, None] * (v[:, t] - _dot(S, k[:, t], dtype))
        S = S + k[:, t, :, :, None] * u[:, :, None, :]
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), S.astype(np.float64)


def native_gdn2(x, init, dtype):
    """GDN-2 in ``dtype``: d = exp(g) per key channel, S' = d ⊙ S row-wise, r = Σ_k S'·(b·k),
    u = w·v − r, S = S' + k⊗u, o = Σ_k S·(q·scale)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v, g, b, w = (c(x[n]) for n in ("q", "k", "v", "g", "b", "w"))
    scale = c(q.shape[-1] ** -0.5)
    S, out = c(init), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        S = c(np.exp(g[:, t].astype(np.float64)))[..., None] * S
        u = w[:, t] * v[:, t] - _dot(S, b[:, t] * k[:, t], dtype)
        S = S + k[:, t, :, :, None] * u[:, :, None, :]
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), S.astype(np.float64)


def native_comba(x, init, dtype):
    """Comba in ``dtype``: r = Σ_k S·p on the state before the decay, u = β(v − r), d = exp(g),
    S = d·S + k⊗u, o = Σ_k S·(q·scale). q, k, p repeated to the value heads."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    group = x["v"].shape[2] // x["q"].shape[2]
    q, k, p = (c(np.repeat(x[n], group, axis=2)) for n in ("q", "k", "p"))
    v, g, beta = (c(x[n]) for n in ("v", "g", "beta"))
    scale = c(q.shape[-1] ** -0.5)
    S, out = c(init), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        u = beta[:, t, :, None] * (v[:, t] - _dot(S, p[:, t], dtype))
        S = c(np.exp(g[:, t].astype(np.float64)))[..., None, None] * S + k[:, t, :, :, None] * u[:, :, None, :]
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), S.astype(np.float64)


def native_rwkv6(x, init, dtype):
    """RWKV-6 in ``dtype``, the read before the update: q' = q·scale, b = Σ_k (q'·u)·k left to right,
    o = Σ_k S·q' + b·v; then d = exp(w) per key channel, S = d ⊙ S + k⊗v."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v, w, u = (c(x[n]) for n in ("q", "k", "v", "w", "u"))
    scale = c(q.shape[-1] ** -0.5)
    S, out = c(init), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        qs = q[:, t] * scale
        qu = qs * u
        b = qu[..., 0] * k[:, t, :, 0]
        for i in range(1, q.shape[-1]):
            b = b + qu[..., i] * k[:, t, :, i]
        out[:, t] = _dot(S, qs, dtype) + b[..., None] * v[:, t]
        S = c(np.exp(w[:, t].astype(np.float64)))[..., None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
    return out.astype(np.float64), S.astype(np.float64)


def native_lightning_attn(x, init, dtype):
    """Lightning attention in ``dtype`` (layer 0): g_h = −8h/H rounded to ``dtype`` (an input, as g_gamma),
    d_h = exp(g_h) (float64, then rounded), S = d·S + k⊗v, o = Σ_k S·(q·scale)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v = (c(x[n]) for n in ("q", "k", "v"))
    H = q.shape[2]
    d = c(np.exp(c(-8.0 * np.arange(H) / H).astype(np.float64)))
    scale = c(q.shape[-1] ** -0.5)
    S, out = c(init), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        S = d[:, None, None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), S.astype(np.float64)


def native_hgrn(x, init, dtype):
    """HGRN in ``dtype``: d = exp(g) (float64, then rounded), h = d·h + x, o = h."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    xs, g = c(x["x"]), c(x["g"])
    h, out = c(init), np.zeros(xs.shape, dtype)
    for t in range(xs.shape[1]):
        h = c(np.exp(g[:, t].astype(np.float64))) * h + xs[:, t]
        out[:, t] = h
    return out.astype(np.float64), h.astype(np.float64)


def native_gated_oja_rule(x, init, dtype):
    """The gated Oja rule in ``dtype``: d = exp(gv) per value column, S' = S·d, r = Σ_v S'·v (left to right),
    k' = β(k − r), S = S' + k'⊗v, o = Σ_k S·(q·scale). q, k repeated to the value heads."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    group = x["v"].shape[2] // x["q"].shape[2]
    q, k = (c(np.repeat(x[n], group, axis=2)) for n in ("q", "k"))
    v, gv, beta = (c(x[n]) for n in ("v", "gv", "beta"))
    scale = c(q.shape[-1] ** -0.5)
    S, out = c(init), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        S = S * c(np.exp(gv[:, t].astype(np.float64)))[:, :, None, :]
        r = S[..., 0] * v[:, t, :, None, 0]
        for j in range(1, v.shape[-1]):
            r = r + S[..., j] * v[:, t, :, None, j]
        kp = beta[:, t, :, None] * (k[:, t] - r)
        S = S + kp[..., :, None] * v[:, t, :, None, :]
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), S.astype(np.float64)


def native_momentum_delta_rule(x, init, dtype):
    """The momentum delta rule in ``dtype``: α = exp(log_alpha), w = Σ_k S·p − v, M = exp(log_mu)·M + (η·k)⊗w,
    S = α·S − β·M, o = Σ_k S·(q·scale) (p read as given)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v, p, la, lm, beta, eta = (c(x[n]) for n in ("q", "k", "v", "p", "log_alpha", "log_mu", "beta", "eta"))
    scale = c(q.shape[-1] ** -0.5)
    S, M, out = c(init["S"]), c(init["M"]), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        alpha = c(np.exp(la[:, t].astype(np.float64)))
        w = _dot(S, p[:, t], dtype) - v[:, t]
        M = c(np.exp(lm[:, t].astype(np.float64)))[..., None, None] * M + \
            (eta[:, t, :, None] * k[:, t])[..., :, None] * w[..., None, :]
        S = alpha[..., None, None] * S - beta[:, t, :, None, None] * M
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), {"S": S.astype(np.float64), "M": M.astype(np.float64)}


def native_precond_kda(x, init, dtype):
    """precond_kda in ``dtype``: A = exp(g_atk)·A + β_atk·(k·k), r = log(|A| + eps) − c, σ = r/(1 + |r|),
    m = exp(−log(x)·σ), S' = exp(g) ⊙ S row-wise, e = v − Σ_k S'·k, S = S' + (β·(k·m))⊗e, o = Σ_k S·(q·scale)
    (transcendentals in float64, then rounded; x, eps, c at their defaults)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    f = lambda a: c(a).astype(np.float64)  # noqa: E731
    q, k, v, g, ga, ba, beta = (c(x[n]) for n in ("q", "k", "v", "g", "g_atk", "beta_atk", "beta"))
    scale = c(q.shape[-1] ** -0.5)
    S, A, out = c(init["S"]), c(init["A"]), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        A = c(np.exp(f(ga[:, t])))[..., None] * A + ba[:, t, :, None] * (k[:, t] * k[:, t])
        r = c(np.log(f(np.abs(A) + c(1e-6)))) - c(-0.2)
        m = c(np.exp(f(c(-np.log(1.5)) * (r / (c(1.0) + np.abs(r))))))
        S = c(np.exp(f(g[:, t])))[..., None] * S
        e = v[:, t] - _dot(S, k[:, t], dtype)
        S = S + (beta[:, t, :, None] * (k[:, t] * m))[..., :, None] * e[..., None, :]
        out[:, t] = _dot(S, q[:, t] * scale, dtype)
    return out.astype(np.float64), {"S": S.astype(np.float64), "A": A.astype(np.float64)}


def native_based(x, init, dtype):
    """Based in ``dtype`` (use_norm): moments s0 + v, S1 + k⊗v, S2 + (k·k)·v, z0 + 1, z1 + k, z2 + k·k; the read
    n = (s0 + Σ_i S1[i]·q̃_i) + 0.5·Σ_i (Σ_j S2[i, j]·q̃_j)·q̃_i, d likewise, o = n / (d + eps), sums left to
    right."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v = (c(x[n]) for n in ("q", "k", "v"))
    scale, half, one, eps = c(q.shape[-1] ** -0.5), c(0.5), c(1.0), c(1e-6)
    m = {n: c(init[n]) for n in ("s0", "S1", "S2", "z0", "z1", "z2")}
    out = np.zeros(v.shape, dtype)

    def read(m0, m1, m2, qs):
        inner = m2[..., :, 0, :] * qs[..., None, 0, None]           # Σ_j m2[i, j]·q̃_j → [.., K, V]
        for j in range(1, qs.shape[-1]):
            inner = inner + m2[..., :, j, :] * qs[..., None, j, None]
        return (m0 + _dot(m1, qs, dtype)) + half * _dot(inner, qs, dtype)

    for t in range(q.shape[1]):
        kt, vt = k[:, t], v[:, t]
        kk = kt[..., :, None] * kt[..., None, :]
        m["s0"], m["S1"] = m["s0"] + vt, m["S1"] + kt[..., :, None] * vt[..., None, :]
        m["S2"] = m["S2"] + kk[..., None] * vt[..., None, None, :]
        m["z0"], m["z1"], m["z2"] = m["z0"] + one, m["z1"] + kt, m["z2"] + kk
        qs = q[:, t] * scale
        n = read(m["s0"], m["S1"], m["S2"], qs)
        d = read(m["z0"][..., None], m["z1"][..., None], m["z2"][..., None], qs)
        out[:, t] = n / (d + eps)
    return out.astype(np.float64), {n: a.astype(np.float64) for n, a in m.items()}


def native_rebased(x, init, dtype):
    """ReBased in ``dtype`` (use_norm): S2 + (k·k)·v, z2 + k·k; n = Σ_i (Σ_j S2[i, j]·q̃_j)·q̃_i left to right,
    d likewise from z2, o = n / (d + eps)."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v = (c(x[n]) for n in ("q", "k", "v"))
    scale, eps = c(q.shape[-1] ** -0.5), c(1e-6)
    S2, z2, out = c(init["S2"]), c(init["z2"]), np.zeros(v.shape, dtype)

    def read(m2, qs):
        inner = m2[..., :, 0, :] * qs[..., None, 0, None]
        for j in range(1, qs.shape[-1]):
            inner = inner + m2[..., :, j, :] * qs[..., None, j, None]
        return _dot(inner, qs, dtype)

    for t in range(q.shape[1]):
        kk = k[:, t, ..., :, None] * k[:, t, ..., None, :]
        S2, z2 = S2 + kk[..., None] * v[:, t, ..., None, None, :], z2 + kk
        qs = q[:, t] * scale
        out[:, t] = read(S2, qs) / (read(z2[..., None], qs) + eps)
    return out.astype(np.float64), {"S2": S2.astype(np.float64), "z2": z2.astype(np.float64)}


def native_mesa_net(x, init, dtype):
    """Mesa-Net in ``dtype``: d = exp(g) (float64 exp, then rounded), kb = β·k, H^kk = d·H^kk + kb⊗k,
    H^kv = d·H^kv + kb⊗v; A = H^kk + λ·I; Gaussian elimination with partial pivoting (the first row of largest
    |A_ij|, i ≥ j, swapped with row j; m = A_ij / A_jj, row_i − m·row_j, b_i − m·b_j), back substitution
    x_i = (b_i − Σ_{l>i} U_il·x_l) / U_ii; o = Σ_k H^kv·x."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v, g, beta, lamb = (c(x[n]) for n in ("q", "k", "v", "g", "beta", "lamb"))
    K = q.shape[-1]
    Hkk, Hkv, out = c(init["h_kk"]), c(init["h_kv"]), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        d = c(np.exp(g[:, t].astype(np.float64)))[..., None, None]
        kb = beta[:, t, :, None] * k[:, t]
        Hkk = d * Hkk + kb[..., :, None] * k[:, t, :, None, :]
        Hkv = d * Hkv + kb[..., :, None] * v[:, t, :, None, :]
        A = Hkk + lamb[:, :, None] * c(np.eye(K))
        rows, b = [A[..., i, :] for i in range(K)], [q[:, t, :, i] for i in range(K)]
        for j in range(K - 1):
            piv = j + np.argmax(np.stack([np.abs(rows[i][..., j].astype(np.float64)) for i in range(j, K)]), axis=0)
            for i in range(j + 1, K):
                sel = piv == i
                rows[j], rows[i] = np.where(sel[..., None], rows[i], rows[j]), np.where(sel[..., None], rows[j], rows[i])
                b[j], b[i] = np.where(sel, b[i], b[j]), np.where(sel, b[j], b[i])
            for i in range(j + 1, K):
                m = rows[i][..., j] / rows[j][..., j]
                rows[i] = rows[i] - m[..., None] * rows[j]
                b[i] = b[i] - m * b[j]
        xs = [None] * K
        for i in reversed(range(K)):
            s = b[i]
            for l in range(i + 1, K):
                s = s - rows[i][..., l] * xs[l]
            xs[i] = s / rows[i][..., i]
        out[:, t] = _dot(Hkv, np.stack(xs, axis=-1), dtype)
    return out.astype(np.float64), {"h_kk": Hkk.astype(np.float64), "h_kv": Hkv.astype(np.float64)}


def native_log_linear_attn(x, init, dtype):
    """Log-linear attention in ``dtype`` (scale 1): at position p, j = trailing zeros of p (∞ at 0), target =
    min(j + 1, L); D_ℓ = exp(g)·S_ℓ; M = D_0 + … + D_target; levels past the target keep D_ℓ, the target
    takes M, those below it 0, level 0 takes k⊗v; o = Σ_ℓ λ_ℓ·(Σ_k S_ℓ·q), ℓ ascending. q, k repeated to the
    value heads."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    group = x["v"].shape[2] // x["q"].shape[2]
    q, k = (c(np.repeat(x[n], group, axis=2)) for n in ("q", "k"))
    v, g, lam = (c(x[n]) for n in ("v", "g", "level_scales"))
    S, pos = c(init["levels"]), init["position"].astype(np.int64)
    L, out = S.shape[2], np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        D = c(np.exp(g[:, t].astype(np.float64)))[..., None, None, None] * S
        S = np.zeros_like(S)
        for n, h in np.ndindex(*pos.shape):
            p = int(pos[n, h])
            target = L if p == 0 else min(L, (p & -p).bit_length())
            if target < L:
                merged = D[n, h, 0]
                for ell in range(1, target + 1):
                    merged = merged + D[n, h, ell]
                S[n, h, target] = merged
            S[n, h, target + 1:] = D[n, h, target + 1:]
            S[n, h, 0] = k[n, t, h, :, None] * v[n, t, h, None, :]
        pos = pos + 1
        o = lam[:, t, :, 0, None] * _dot(S[:, :, 0], q[:, t], dtype)
        for ell in range(1, L):
            o = o + lam[:, t, :, ell, None] * _dot(S[:, :, ell], q[:, t], dtype)
        out[:, t] = o
    return out.astype(np.float64), {"levels": S.astype(np.float64), "position": pos.astype(np.float64)}


def native_gsa(x, init, dtype):
    """GSA in ``dtype``: d = exp(g) per slot, h_k = h_k·d + k⊗s, h_v = d·h_v + s⊗v; z = Σ_k h_k·(q·scale);
    m = max z; e = exp(z − m) (float64 exp, then rounded); a = e / (e_0 + e_1 + …); o = Σ_slots h_v·a."""
    c = lambda a: np.asarray(a).astype(dtype)  # noqa: E731
    q, k, v, sl, g = (c(x[n]) for n in ("q", "k", "v", "s", "g"))
    scale = c(q.shape[-1] ** -0.5)
    hk, hv, out = c(init["h_k"]), c(init["h_v"]), np.zeros(v.shape, dtype)
    for t in range(q.shape[1]):
        d = c(np.exp(g[:, t].astype(np.float64)))
        hk = hk * d[..., None, :] + k[:, t, :, :, None] * sl[:, t, :, None, :]
        hv = d[..., :, None] * hv + sl[:, t, :, :, None] * v[:, t, :, None, :]
        z = _dot(hk, q[:, t] * scale, dtype)
        e = c(np.exp((z - np.max(z, axis=-1, keepdims=True)).astype(np.float64)))
        total = e[..., 0]
        for i in range(1, e.shape[-1]):
            total = total + e[..., i]
        out[:, t] = _dot(hv, e / total[..., None], dtype)
    return out.astype(np.float64), {"h_k": hk.astype(np.float64), "h_v": hv.astype(np.float64)}


NATIVE_LOOPS = {"kda": native_kda, "gdn2": native_gdn2, "comba": native_comba, "rwkv6": native_rwkv6,
                "lightning_attn": native_lightning_attn, "hgrn": native_hgrn,
                "gated_oja_rule": native_gated_oja_rule, "momentum_delta_rule": native_momentum_delta_rule,
                "precond_kda": native_precond_kda, "based": native_based,
                "rebased": native_rebased, "mesa_net": native_mesa_net,
                "log_linear_attn": native_log_linear_attn, "gsa": native_gsa}


@pytest.mark.parametrize("fmt", NATIVE)
@pytest.mark.parametrize("family", NATIVE_LOOPS)
def test_emulate_matches_a_native_low_precision_loop_bitwise(family, fmt):
    x, init = draw(family, seed=41, T=9, H=3 if family == "lightning_attn" else 1,
                   HV=1 if family in ("gdn2", "rwkv6") else 2, K=4, V=3, NS=3)
    want_o, want_s = NATIVE_LOOPS[family](x, init, NATIVE[fmt])
    got = evaluate(family, x, initial_state=init, engine=f"emulate:{fmt}")
    assert_bitwise(got.output, want_o, f"{family} {fmt} output")
    for name, s in states(want_s).items():
        assert_bitwise(states(got.final_state)[name], s, f"{family} {fmt} state {name}")


def test_comba_draws_keep_the_transition_a_contraction():
    # sample: p = c·k, so e^g I − β k pᵀ is symmetric with eigenvalues e^g and e^g − βc, all in [−1, 1]
    x, _ = draw("comba", seed=44, B=2, T=30, H=1, HV=2, K=3, initial_state=False)
    for b, t, hv in np.ndindex(2, 30, 2):
        k, p = x["k"][b, t, 0], x["p"][b, t, 0]
        M = np.exp(x["g"][b, t, hv]) * np.eye(3) - x["beta"][b, t, hv] * np.outer(k, p)
        assert np.allclose(M, M.T) and np.max(np.abs(np.linalg.eigvalsh(M))) <= 1 + 1e-12


def test_kda_conditioning_with_a_head_wise_gate_is_the_gated_delta_rules():
    # the general erase-key hook and ut_conditioning compute the same κ when the gate is constant over keys
    x, _ = draw("gated_delta_rule", seed=42, B=1, T=70, H=1, HV=2, K=3, initial_state=False)
    x["k"] = np.repeat(x["k"][:, :1], 70, axis=1) + 1e-3 * x["k"]      # near-parallel keys: κ well above 1
    x["k"] /= np.linalg.norm(x["k"], axis=-1, keepdims=True)
    _, y, _ = mappings.gated_delta_rule_to_kda(**x)
    dims, segments = {"T": 70}, [0, 5, 70]
    want = conditioning("gated_delta_rule", x, dims, segments)
    got = conditioning("kda", y, dims, segments)
    assert got.shape == want.shape == (1, 70, 2, 1)
    assert np.max(want) > 2.0
    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("family", ["kda", "gdn2", "comba", "gated_oja_rule"])
def test_conditioning_is_at_least_one_and_non_decreasing_in_each_sequence(family):
    x, _ = draw(family, seed=43, B=2, T=20, initial_state=False)
    kappa = conditioning(get_family(family), x, {"T": 20}, None)
    assert kappa.shape == (2, 20, x["v"].shape[2], 1)
    assert np.all(kappa >= 1.0) and np.all(np.diff(kappa, axis=1) >= 0)


@pytest.mark.parametrize("fmt", NATIVE)
def test_mesa_net_pivoting_emulation_matches_the_native_loop(fmt, monkeypatch):
    # an indefinite, non-symmetric initial H^kk (outside the gram role, as a kernel may be handed): the solve
    # swaps rows, and the swaps are exact
    import lrnnspec.spec.families.mesa_net as mesa

    swaps, swap = [], mesa._swap
    monkeypatch.setattr(mesa, "_swap", lambda *a: swaps.append(1) or swap(*a))
    x, init = draw("mesa_net", seed=47, T=6, B=2, H=2, K=4, V=3)
    init["h_kk"] = np.random.default_rng(47).standard_normal(init["h_kk"].shape)
    want_o, want_s = native_mesa_net(x, init, NATIVE[fmt])
    got = evaluate("mesa_net", x, initial_state=init, engine=f"emulate:{fmt}")
    assert swaps, "no row was swapped: the case does not exercise pivoting"
    assert_bitwise(got.output, want_o, f"mesa_net {fmt} output")
    for name, s in want_s.items():
        assert_bitwise(got.final_state[name], s, f"mesa_net {fmt} state {name}")


def test_mesa_net_shadow_bounds_the_output_and_grows_with_the_conditioning():
    # |o| = |H^kvᵀx| ≤ H̄^kvᵀ|x| ≤ shadow; with λ → 0 and T < K (H^kk rank-deficient) the solve's amplification
    # |A⁻¹|(Ā|x| + |q|) ~ κ|x| enters the floor
    fam = get_family("mesa_net")
    x, init = draw("mesa_net", seed=52, T=2, B=1, H=2, K=4, V=3, initial_state=False)
    absx = {n: (a if n in ("g", "beta", "lamb") else np.abs(a)) for n, a in x.items()}
    ratios = []
    for lam in (1.0, 1e-4):
        x["lamb"] = absx["lamb"] = np.full_like(x["lamb"], lam)
        out = evaluate("mesa_net", x).output
        floor = fam.shadow(x, absx, None, None, {}, None, out)
        assert floor.shape == out.shape and np.all(floor >= np.abs(out) * (1 - 1e-12))
        ratios.append(np.max(floor) / np.max(np.abs(out)))
    assert ratios[1] > 100 * ratios[0]
