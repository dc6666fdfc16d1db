"""Published equivalences between families, as input transformations (NumPy, float64).

Each function returns ``(family_name, inputs, options)`` ready for :func:`lrnnspec.spec.evaluate`,
so an identity is checked by evaluating both sides (``tests/spec/test_identities.py``).
"""

from __future__ import annotations

import numpy as np


def _f(x):
    return np.asarray(x, dtype=np.float64)


def hgrn2_to_gla(q, f, i):
    """HGRN2 (Qin et al. 2024) as gla: g = logsigmoid(f), k = 1 − e^{g}, v = i (q as the layer
    passes it, after its activation). Shapes: q, f [B,T,H,K]; i [B,T,H,V]."""
    g = -np.logaddexp(0.0, -_f(f))
    return "gla", {"q": _f(q), "k": -np.expm1(g), "v": _f(i), "g": g}, {}


def rwkv7_to_dplr(r, w, k, v, kappa, iclr):
    """RWKV-7 as dplr: q = r, gk = w (log decay), a = −κ̂, b = κ̂ ⊙ iclr, scale = 1 (chunk_rwkv7's
    default). ``kappa`` must be unit-norm over its last axis."""
    kappa = _f(kappa)
    return "dplr", {"q": _f(r), "k": _f(k), "v": _f(v), "a": -kappa, "b": kappa * _f(iclr), "gk": _f(w)}, \
        {"scale": 1.0}


def mamba2_to_simple_gla(x, dt, A, B, C):
    """SSD as simple_gla: q = C, k = B, v = Δ·x, g = Δ·A, scale = 1 (no D, z, dt_bias, softplus)."""
    dt = _f(dt)
    return "simple_gla", {"q": _f(C), "k": _f(B), "v": dt[..., None] * _f(x), "g": dt * _f(A)}, {"scale": 1.0}


def delta_rule_to_dplr(q, k, v, beta, scale=None):
    """DeltaNet as dplr: a = −β k, b = k, v ← β v, gk = 0 (no GVA: H = HV)."""
    k, beta = _f(k), _f(beta)[..., None]
    return "dplr", {"q": _f(q), "k": k, "v": beta * _f(v), "a": -beta * k, "b": k, "gk": np.zeros_like(k)}, \
        {"scale": scale}


def gated_delta_rule_to_delta_product(q, k, v, g, beta, scale=None):
    """Gated DeltaNet as DeltaProduct with n_h = 1 micro-step per token."""
    return "delta_product", {"q": q, "k": k, "v": v, "g": g, "beta": beta}, {"scale": scale}


def gated_delta_rule_to_kda(q, k, v, g, beta, scale=None):
    """Gated DeltaNet as KDA: the head-wise gate g [B,T,HV] repeated over the K key channels."""
    g = _f(g)
    return "kda", {"q": _f(q), "k": _f(k), "v": _f(v), "g": np.repeat(g[..., None], np.shape(k)[-1], axis=-1),
                   "beta": _f(beta)}, {"scale": scale}


def kda_to_gdn2(q, k, v, g, beta, scale=None):
    """KDA as GDN-2: erase gate b = β over the K key channels, write gate w = β over the V value channels
    (GDN-2 has one head count: v with as many heads as q and k)."""
    q, k, v, beta = _f(q), _f(k), _f(v), _f(beta)
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"kda_to_gdn2: GDN-2 has no grouped value heads; v has {v.shape[2]} heads, k {k.shape[2]}")
    return "gdn2", {"q": q, "k": k, "v": v, "g": _f(g), "b": np.repeat(beta[..., None], k.shape[-1], axis=-1),
                    "w": np.repeat(beta[..., None], v.shape[-1], axis=-1)}, {"scale": scale}


def comba_to_dplr(q, k, v, p, g, beta, scale=None):
    """Comba as dplr: its error read −β k (pᵀ S_{t−1}) is DPLR's low-rank term on the pre-decay state with
    a = p, b = −β k; the write β k vᵀ is k ← β k; gk = g over the K key channels (dplr has no grouped value
    heads: v with as many heads as q and k)."""
    k, v, beta = _f(k), _f(v), _f(beta)[..., None]
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"comba_to_dplr: dplr has no grouped value heads; v has {v.shape[2]} heads, k {k.shape[2]}")
    return "dplr", {"q": _f(q), "k": beta * k, "v": v, "a": _f(p), "b": -beta * k,
                    "gk": np.repeat(_f(g)[..., None], k.shape[-1], axis=-1)}, {"scale": scale}


def _interleave(even, odd):
    """[B,T,...] and [B,T,...] → [B,2T,...] with even at steps 2t and odd at steps 2t + 1."""
    return np.stack([even, odd], axis=2).reshape(even.shape[0], 2 * even.shape[1], *even.shape[2:])


def rwkv6_to_gla(q, k, v, w, u, scale=None):
    """RWKV-6 as gla on twice the steps (rwkv6's output is gla's at the even steps 2t; the final states
    are equal). Token t becomes

    * step 2t: no decay, write (u ⊙ k_t) v_tᵀ, read by q_t: S_{t−1} + Diag(u) k_t v_tᵀ, rwkv6's read;
    * step 2t + 1: gate w_t, write ((1 − e^{w_t} ⊙ u) ⊙ k_t) v_tᵀ, read by 0: e^{w_t} ⊙ (S_{t−1} +
      (u ⊙ k_t) v_tᵀ) + (k_t − e^{w_t} ⊙ u ⊙ k_t) v_tᵀ = e^{w_t} ⊙ S_{t−1} + k_t v_tᵀ = S_t.

    An identity in real arithmetic; here the second key is rounded once to float64.
    Shapes: q, k, w [B,T,H,K]; v [B,T,H,V]; u [H,K]."""
    q, k, v, w, u = _f(q), _f(k), _f(v), _f(w), _f(u)
    return "gla", {"q": _interleave(q, np.zeros_like(q)), "k": _interleave(u * k, (1.0 - np.exp(w) * u) * k),
                   "v": _interleave(v, v), "g": _interleave(np.zeros_like(w), w)}, {"scale": scale}


def lightning_attn_to_simple_gla(q, k, v, g_gamma=None, layer_idx=None, num_layers=None, scale=None):
    """Lightning attention as simple_gla: g[b, t, h] = g_h, the head's fixed log decay (``g_gamma``, else the
    layer's schedule :func:`lrnnspec.spec.families.lightning_attn.log_decays`: the same float64 numbers)."""
    from .families.lightning_attn import log_decays

    q, k, v = _f(q), _f(k), _f(v)
    g = log_decays(q.shape[2], layer_idx, num_layers) if g_gamma is None else _f(g_gamma)
    return "simple_gla", {"q": q, "k": k, "v": v, "g": np.broadcast_to(g, q.shape[:3]).copy()}, {"scale": scale}


def hgrn_to_gla(x, g):
    """HGRN as gla: each of the D channels a head with one key and one value channel, q = k = 1, v = x,
    g as is, scale 1 (the state [N,D,1,1] is hgrn's h [N,D])."""
    x, g = _f(x), _f(g)
    ones = np.ones(x.shape + (1,))
    return "gla", {"q": ones, "k": ones, "v": x[..., None], "g": g[..., None]}, {"scale": 1.0}


def gated_oja_rule_to_kda(q, k, v, gv, beta, scale=None):
    """The gated Oja rule's transposed state as kda's: key v, value k, key-channel gate gv, the same β
    (kda's final state is the Oja state transposed, Sᵀ [N,HV,V,K]; pass the initial state transposed too).
    Oja's read-out S_tᵀq_t contracts the state's other axis, so kda's output is not Oja's; q is kept only to
    fill kda's query (any [B,T,H,V] works). One head count: k with as many heads as v."""
    k, v = _f(k), _f(v)
    if k.shape[2] != v.shape[2]:
        raise ValueError(f"gated_oja_rule_to_kda: k has {k.shape[2]} heads and v {v.shape[2]}; kda's key heads "
                         "would be v's: use one head count")
    return "kda", {"q": np.zeros(v.shape), "k": v, "v": k, "g": _f(gv), "beta": _f(beta)}, {"scale": scale}


def momentum_delta_rule_to_comba(q, k, v, log_alpha, p, beta, scale=None, use_p_times_alpha=False):
    """The momentum delta rule without momentum (μ = 0, η = 1) as comba: S_t = α_t S_{t−1} − β_t k_t
    (S_{t−1}ᵀp̂_t − v_t)ᵀ = (α_t I − β_t k_t p̂_tᵀ) S_{t−1} + β_t k_t v_tᵀ — comba with read key p̂ (p, or α·p)
    and head-wise gate g = log_alpha (its final state is the momentum rule's S)."""
    log_alpha, p = _f(log_alpha), _f(p)
    read = np.exp(log_alpha)[..., None] * p if use_p_times_alpha else p
    return "comba", {"q": _f(q), "k": _f(k), "v": _f(v), "p": read, "g": log_alpha, "beta": _f(beta)}, \
        {"scale": scale}


def precond_kda_to_kda(q, k, v, g, beta, scale=None):
    """precond_kda with x = 1 (the preconditioner m ≡ 1) as kda: the same q, k, v, g, β (the key moment A is
    kept but never read)."""
    return "kda", {"q": _f(q), "k": _f(k), "v": _f(v), "g": _f(g), "beta": _f(beta)}, {"scale": scale}


def _taylor_features(x, half):
    """[1, x, vec(x ⊗ x)] (× ½ on the last block when ``half``) over the last axis: [..., 1 + K + K²]."""
    outer = (x[..., :, None] * x[..., None, :]).reshape(*x.shape[:-1], -1)
    return np.concatenate([np.ones(x.shape[:-1] + (1,)), x, 0.5 * outer if half else outer], axis=-1)


def based_to_linear_attention(q, k, v, scale=None, use_norm=True, eps=1e-6):
    """Based as linear_attention on Taylor features: f(q̃·k) = φ_q(q̃)·φ(k) with φ(x) = [1, x, vec(x ⊗ x)] and
    φ_q(x) = [1, x, ½ vec(x ⊗ x)], q̃ = scale·q; linear_attention's scale 1, normalize = use_norm with its
    normalize_eps = eps. Feature dimension 1 + K + K²."""
    q, k = _f(q), _f(k)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return "linear_attention", {"q": _taylor_features(scale * q, True), "k": _taylor_features(k, False),
                                "v": _f(v)}, {"scale": 1.0, "normalize": use_norm, "normalize_eps": eps}


def rebased_to_linear_attention(q, k, v, scale=None, use_norm=True, eps=1e-6):
    """ReBased as linear_attention on quadratic features: (q̃·k)² = vec(q̃ ⊗ q̃)·vec(k ⊗ k), q̃ = scale·q;
    linear_attention's scale 1, normalize = use_norm with normalize_eps = eps. Feature dimension K²."""
    q, k = _f(q), _f(k)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q = scale * q
    square = lambda x: (x[..., :, None] * x[..., None, :]).reshape(*x.shape[:-1], -1)  # noqa: E731
    return "linear_attention", {"q": square(q), "k": square(k), "v": _f(v)}, \
        {"scale": 1.0, "normalize": use_norm, "normalize_eps": eps}


def mesa_net_states_to_simple_gla(q, k, v, g, beta):
    """Mesa-Net's two states as simple_gla scans with its decay g, keys β·k and scale 1: H^kk on values k,
    H^kv on values v (simple_gla's state S_t = e^{g_t}S_{t−1} + (β_t k_t) x_tᵀ). Returns the pair of
    ``(family, inputs, options)`` for (h_kk, h_kv), queries q (the read-out differs: Mesa-Net solves first,
    o_t = H^kv_tᵀ q*_t with q*_t = (H^kk_t + Diag(λ))⁻¹ q_t, i.e. simple_gla's read-out of H^kv at query q*)."""
    kb = _f(beta)[..., None] * _f(k)
    return tuple(("simple_gla", {"q": _f(q), "k": kb, "v": values, "g": _f(g)}, {"scale": 1.0})
                 for values in (_f(k), _f(v)))


def log_linear_attn_to_simple_gla(q, k, v, g, scale=1.0):
    """Log-linear attention with every level weight λ_t^{(ℓ)} = 1 on levels ℓ = 0 … bit_length(T − 1) (every
    bucket a sequence from position 0 reaches) as simple_gla: Σ_ℓ Σ_{s∈B_ℓ(t)} = Σ_{s≤t}, the same q, k, v, g
    and scale (log-linear attention's default scale is 1)."""
    return "simple_gla", {"q": _f(q), "k": _f(k), "v": _f(v), "g": _f(g)}, {"scale": scale}


def gsa_one_slot_to_simple_gla(q, k, v, s, g):
    """GSA with one slot (NS = 1) as simple_gla: the softmax of one logit is exactly 1, so o_t = H^vᵀ_t =
    Σ_{r≤t} e^{G_t − G_r} s_r v_r — simple_gla with a unit query (K = 1), keys s, decay g, scale 1 (q and k only
    feed the slot keys, which no longer matter)."""
    s = _f(s)
    return "simple_gla", {"q": np.ones(s.shape), "k": s, "v": _f(v), "g": _f(g)[..., 0]}, {"scale": 1.0}


def ungated(family: str, inputs: dict):
    """simple_gla / gla with every log-gate 0, or retention with γ = 1, as linear_attention."""
    if family not in ("simple_gla", "gla", "retention"):
        raise ValueError(f"ungated: family must be simple_gla, gla or retention, got {family!r}")
    return "linear_attention", {n: inputs[n] for n in ("q", "k", "v")}, {}
