"""Planted bugs in the chunk forms of the families added for the rest of the field (kda, gdn2, comba,
rwkv6, lightning_attn, hgrn, gated_oja_rule, based, rebased), for the certifier's meta-test
``test_planted_families.py``.

``PLANTED_FAMILIES``: kernels with the public signature of one of our chunk forms, each carrying ONE
realistic bug, with the certifier property that must reject it (``expected_property``; others may
fail too) and the smallest input that shows it (``trigger``). ``CORE_COPIES``: the same kernels with
the bug taken out (checked against the spec, so that each bug is the only difference).

How the bugs are planted, as in ``planted.py``: through :func:`lrnnspec.impls.driver.call` (argument
checks, GVA, varlen packing and padding are the correct shared code) with a small, unfactored chunk
core written the way a reference kernel is (a loop over chunks, every pairwise decay formed
explicitly: :func:`_erase_chunk_core`), broken in one place marked ``# BUG``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from lrnnspec.harness.sequence import PROPERTIES
from lrnnspec.impls import based as _based
from lrnnspec.impls import rebased as _rebased
from lrnnspec.impls import comba as _comba
from lrnnspec.impls import gdn2 as _gdn2
from lrnnspec.impls import kda as _kda
from lrnnspec.impls.chunks import causal_mask, from_chunks, masked_exp, to_chunks
from lrnnspec.impls.delta import unit_lower_inverse
from lrnnspec.impls.driver import Chunked, call
from lrnnspec.impls.gated_linear import scalar_gate_core

FILE = os.path.abspath(__file__)


@dataclass(frozen=True)
class FamilyBug:
    """One buggy kernel with the signature of ``derives_from`` (``module:function``)."""

    name: str
    family: str
    fn: Callable
    expected_property: str
    trigger: str
    derives_from: str
    convention: str = "fla"

    def __post_init__(self):
        if self.expected_property not in PROPERTIES:
            raise ValueError(f"{self.name}: unknown property {self.expected_property!r}")

    @property
    def target(self) -> str:
        """What the harness imports in the kernel's process: this file's function."""
        return f"{FILE}:{self.fn.__name__}"

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip()


# =====================================================================================================
# the erase-key delta recurrence, chunkwise, written as a reference kernel
# =====================================================================================================
def _erase_chunk_core(xs, state, p, size, exclusive=False, bug=None):
    """S' = Diag(e^{g_t}) S, u_t = w_t − Ŝ_tᵀ e_t (Ŝ_t = S', or S_{t−1} when ``exclusive``),
    S_t = S' + k_t u_tᵀ, o_t = scale·S_tᵀ q_t — chunk by chunk with every pairwise decay
    e^{G_t − G_s} [C, C, K] formed explicitly (no factorization), the UT transform by a triangular
    solve, the chunks in a Python loop. xs: q, k, e [N,T,H,K], w [N,T,H,V], g [N,T,H,K] or [N,T,H]."""
    q, k, e, w = (to_chunks(xs[n], size) for n in ("q", "k", "e", "w"))           # [N,H,NC,C,·]
    g = xs["g"] if xs["g"].dim() == 4 else xs["g"][..., None].expand(*xs["g"].shape, k.shape[-1])
    g = to_chunks(g, size)
    G = g.cumsum(-1) if bug == "cumsum_over_keys" else g.cumsum(-2)             # BUG (cumsum_over_keys)
    R = G - g if exclusive else G
    strict = causal_mask(size, q.device, strict=True)[..., None]                  # [C,C,1]
    incl = causal_mask(size, q.device)[..., None]
    d_er = R[..., :, None, :] - G[..., None, :, :]                                # [N,H,NC,C,C,K]
    d_qk = G[..., :, None, :] - G[..., None, :, :]
    if bug == "masked_after_exp":                                                 # BUG: exp before the mask
        decay_er = torch.exp(d_er).masked_fill(~strict, 0.0)
        decay_qk = torch.exp(d_qk).masked_fill(~incl, 0.0)
    else:
        decay_er, decay_qk = masked_exp(d_er, strict), masked_exp(d_qk, incl)
    A = torch.einsum("...tc,...sc,...tsc->...ts", e, k, decay_er)
    P = torch.einsum("...tc,...sc,...tsc->...ts", q * p.scale, k, decay_qk)
    inv = unit_lower_inverse(A)
    U0 = inv @ w
    W = inv @ e if bug == "undecayed_state_read" else inv @ (e * torch.exp(R))    # BUG (undecayed_state_read)
    S, outs = state["S"], []
    for c in range(q.shape[2]):
        U = U0[:, :, c] - W[:, :, c] @ S
        outs.append((q[:, :, c] * torch.exp(G[:, :, c]) * p.scale) @ S + P[:, :, c] @ U)
        last = G[:, :, c, -1:, :]                                                  # [N,H,1,K]
        S = S * torch.exp(last).transpose(-1, -2) + (k[:, :, c] * torch.exp(last - G[:, :, c])).transpose(-1, -2) @ U
    o = torch.stack(outs, dim=2) if outs else w.new_zeros(w.shape)
    return from_chunks(o), {"S": S}


def _chunked(prepare, **core_kw):
    return Chunked(prepare=prepare, core=lambda xs, state, p, size: _erase_chunk_core(xs, state, p, size, **core_kw))


# =====================================================================================================
# kda
# =====================================================================================================
def _run_kda(chunked, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, chunk_size):
    return call("chunk", "kda", chunked, dict(q=q, k=k, v=v, g=g, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


_KDA_COPY = _chunked(_kda._kda_inputs)
_KDA_CUMSUM_KEYS = _chunked(_kda._kda_inputs, bug="cumsum_over_keys")
_KDA_MASK_AFTER_EXP = _chunked(_kda._kda_inputs, bug="masked_after_exp")


def chunk_kda_copy(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                   use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The reference-style chunk kernel without a bug (the base of the kda bugs below)."""
    q, k = _kda.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return _run_kda(_KDA_COPY, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens, chunk_size)


def chunk_kda_cumsum_over_keys(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                               use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The key-channel gate's cumulative sum runs over the last axis — the key channels — instead of the
    chunk's time axis (``g.cumsum(-1)`` for ``g.cumsum(-2)`` on a [.., C, K] block: the axis a head-wise
    GDN gate [.., C] had). Every decay inside a chunk is wrong once T ≥ 2 or K ≥ 2 with nonzero gates."""
    q, k = _kda.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return _run_kda(_KDA_CUMSUM_KEYS, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens,
                chunk_size)


def chunk_kda_masked_after_exp(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                               use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The pairwise decays e^{G_t − G_s} are exponentiated for every pair and the non-causal ones
    masked afterwards (``exp(...).masked_fill(mask, 0)``, as fla-core 0.6.0's ``naive_chunk_kda`` does).
    The forward is right — the overflowed entries are replaced —, but the backward multiplies the zero
    cotangent of every masked entry by its inf: NaN gradients once a chunk's gates sum below ≈ −88
    (strong gates over a few steps of a chunk)."""
    q, k = _kda.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return _run_kda(_KDA_MASK_AFTER_EXP, q, k, v, g, beta, scale, initial_state, output_final_state, cu_seqlens,
                chunk_size)


# =====================================================================================================
# gdn2
# =====================================================================================================
def _run_gdn2(chunked, q, k, v, g, b, w, scale, initial_state, output_final_state, use_qk_l2norm_in_kernel,
              cu_seqlens, chunk_size):
    q, k = _gdn2.normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "gdn2", chunked, dict(q=q, k=k, v=v, g=g, b=b, w=w), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


_GDN2_COPY = _chunked(_gdn2._inputs)
_GDN2_UNDECAYED_READ = _chunked(_gdn2._inputs, bug="undecayed_state_read")


def chunk_gdn2_copy(q, k, v, g, b, w, scale=None, initial_state=None, output_final_state=False,
                    use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The reference-style chunk kernel without a bug (the base of the gdn2 bug below)."""
    return _run_gdn2(_GDN2_COPY, q, k, v, g, b, w, scale, initial_state, output_final_state,
                     use_qk_l2norm_in_kernel, cu_seqlens, chunk_size)


def chunk_gdn2_undecayed_state_read(q, k, v, g, b, w, scale=None, initial_state=None, output_final_state=False,
                                    use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The WY factor that reads the chunk's entering state drops the within-chunk decay:
    𝒲 = (I + A)⁻¹ (b ⊙ K) instead of (I + A)⁻¹ (e^{G} ⊙ b ⊙ K) (``k_g_b = k * b`` for
    ``k * g_cum.exp() * b``). Exact when the entering state is zero — the first chunk of a sequence
    without an initial state, so every test with T ≤ chunk_size and h0 = None passes —; wrong as soon
    as a chunk starts from a nonzero state under nonzero gates."""
    return _run_gdn2(_GDN2_UNDECAYED_READ, q, k, v, g, b, w, scale, initial_state, output_final_state,
                     use_qk_l2norm_in_kernel, cu_seqlens, chunk_size)


# =====================================================================================================
# comba
# =====================================================================================================
def _run_comba(chunked, q, k, v, p, g, beta, scale, initial_state, output_final_state, cu_seqlens, chunk_size):
    return call("chunk", "comba", chunked, dict(q=q, k=k, v=v, p=p, g=g, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


_COMBA_COPY = _chunked(_comba._inputs, exclusive=True)
_COMBA_READ_AFTER_DECAY = _chunked(_comba._inputs, exclusive=False)              # BUG: exclusive=True


def chunk_comba_copy(q, k, v, p, g, beta, scale=None, initial_state=None, output_final_state=False,
                     use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The reference-style chunk kernel without a bug (the base of the comba bug below)."""
    return _run_comba(_COMBA_COPY, q, k, v, p, g, beta, scale, initial_state, output_final_state, cu_seqlens,
                      chunk_size)


def chunk_comba_read_after_decay(q, k, v, p, g, beta, scale=None, initial_state=None, output_final_state=False,
                                 use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """The error reads the state after this step's decay, u_t = β_t (v_t − (e^{g_t} S_{t−1})ᵀ p_t) — the
    gated-delta-rule order, which fla-core 0.6.0's ``naive_recurrent_comba`` computes —, where Comba's
    kernels read S_{t−1}: the chunk's erase scores use G_t instead of G_{t−1}. Wrong whenever a gate is
    nonzero and the state is (T ≥ 2, or an initial state)."""
    return _run_comba(_COMBA_READ_AFTER_DECAY, q, k, v, p, g, beta, scale, initial_state, output_final_state,
                      cu_seqlens, chunk_size)


# =====================================================================================================
# rwkv6
# =====================================================================================================
def _rwkv6_chunk_core(xs, state, p, size, bug=None):
    """o_t = scale·[S_{t−1}ᵀ q_t + (q_tᵀ(u ⊙ k_t)) v_t], S_t = Diag(e^{w_t}) S_{t−1} + k_t v_tᵀ — chunk by
    chunk with every pairwise decay e^{G_{t−1} − G_s} [C, C, K] formed explicitly, the chunks in a Python
    loop. xs: q, k, w [N,T,H,K], v [N,T,H,V]; p.u [H,K]."""
    q, k, v, w = (to_chunks(xs[n], size) for n in ("q", "k", "v", "w"))           # [N,H,NC,C,·]
    q = q * p.scale
    G = w.cumsum(-2)
    R = G if bug == "inclusive_state_read" else G - w                             # BUG (inclusive_state_read)
    strict = causal_mask(size, q.device, strict=True)[..., None]
    A = torch.einsum("...tc,...sc,...tsc->...ts", q, k, masked_exp((G - w)[..., :, None, :] - G[..., None, :, :],
                                                                   strict))
    bonus = (q * p.u[None, :, None, None, :] * k).sum(-1, keepdim=True)
    S, outs = state["S"], []
    for c in range(q.shape[2]):
        outs.append((q[:, :, c] * torch.exp(R[:, :, c])) @ S + A[:, :, c] @ v[:, :, c] + bonus[:, :, c] * v[:, :, c])
        last = G[:, :, c, -1:, :]
        S = S * torch.exp(last).transpose(-1, -2) + (k[:, :, c] * torch.exp(last - G[:, :, c])).transpose(-1, -2) \
            @ v[:, :, c]
    o = torch.stack(outs, dim=2) if outs else v.new_zeros(v.shape)
    return from_chunks(o), {"S": S}


def _rwkv6_chunked(**core_kw):
    return Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "w")},
                   core=lambda xs, state, p, size: _rwkv6_chunk_core(xs, state, p, size, **core_kw))


_RWKV6_COPY = _rwkv6_chunked()
_RWKV6_INCLUSIVE_READ = _rwkv6_chunked(bug="inclusive_state_read")


def _run_rwkv6(chunked, q, k, v, w, u, scale, initial_state, output_final_state, cu_seqlens, chunk_size):
    return call("chunk", "rwkv6", chunked, dict(q=q, k=k, v=v, w=w, u=u), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size)


def chunk_rwkv6_copy(q, k, v, w, u, scale=None, initial_state=None, output_final_state=False, cu_seqlens=None,
                     chunk_size=64):
    """The reference-style chunk kernel without a bug (the base of the rwkv6 bug below)."""
    return _run_rwkv6(_RWKV6_COPY, q, k, v, w, u, scale, initial_state, output_final_state, cu_seqlens, chunk_size)


def chunk_rwkv6_inclusive_state_read(q, k, v, w, u, scale=None, initial_state=None, output_final_state=False,
                                     cu_seqlens=None, chunk_size=64):
    """The entering state is read through e^{G_t} (gla's inclusive decay, the state after this step's
    decay) instead of e^{G_{t−1}}: every token's read of the chunk's entering state is decayed once too
    often. Right within the first chunk without an initial state; wrong with nonzero gates once a state
    enters a chunk (an initial state, or T > chunk_size)."""
    return _run_rwkv6(_RWKV6_INCLUSIVE_READ, q, k, v, w, u, scale, initial_state, output_final_state, cu_seqlens,
                      chunk_size)


# =====================================================================================================
# lightning_attn
# =====================================================================================================
def _lightning_prepare(heads_from_one):
    def prepare(x, p):
        v = x["v"]
        H = v.shape[2]
        l, L = p.layer_idx or 0, p.num_layers or 1
        h = torch.arange(1, H + 1) if heads_from_one else torch.arange(H)            # BUG (heads_from_one)
        g = (-(8.0 / H) * (1.0 - l / L) * h).to(v.dtype)
        return {"q": x["q"], "k": x["k"], "v": v, "g": g.expand(*v.shape[:3])}
    return prepare


_LIGHTNING_COPY = Chunked(prepare=_lightning_prepare(False), core=scalar_gate_core)
_LIGHTNING_HEADS_FROM_ONE = Chunked(prepare=_lightning_prepare(True), core=scalar_gate_core)


def _run_lightning(chunked, q, k, v, layer_idx, num_layers, scale, initial_state, output_final_state, cu_seqlens,
                   chunk_size):
    return call("chunk", "lightning_attn", chunked, dict(q=q, k=k, v=v), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size,
                layer_idx=layer_idx, num_layers=num_layers)


def chunk_lightning_attn_copy(q, k, v, layer_idx=None, num_layers=None, scale=None, initial_state=None,
                              output_final_state=False, cu_seqlens=None, chunk_size=64):
    """The schedule computed in the compute dtype the way FLA writes it, −(8/H)(1 − l/L)·arange(H) (the
    base of the lightning bug below)."""
    return _run_lightning(_LIGHTNING_COPY, q, k, v, layer_idx, num_layers, scale, initial_state,
                          output_final_state, cu_seqlens, chunk_size)


def chunk_lightning_attn_heads_from_one(q, k, v, layer_idx=None, num_layers=None, scale=None, initial_state=None,
                                        output_final_state=False, cu_seqlens=None, chunk_size=64):
    """Heads numbered from 1 (h = 1..H, a paper's indexing) in the decay schedule: every head decays one
    slope 8(1 − l/L)/H too fast, head 0 included. Wrong whenever a state is carried (T ≥ 2 or an
    initial state) below the last layer."""
    return _run_lightning(_LIGHTNING_HEADS_FROM_ONE, q, k, v, layer_idx, num_layers, scale, initial_state,
                          output_final_state, cu_seqlens, chunk_size)


# =====================================================================================================
# hgrn
# =====================================================================================================
def _hgrn_chunk_core(xs, state, p, size, bug=None):
    """h_t = e^{g_t} ⊙ h_{t−1} + x_t chunk by chunk: the pairwise decays e^{G_t − G_s} [C, C, D] formed
    explicitly, the entering state carried in a Python loop. xs: x, g [N,T,D]."""
    n, length, dim = xs["x"].shape
    x, g = (xs[name].reshape(n, length // size, size, dim) for name in ("x", "g"))
    G = g.cumsum(-2)
    R = G - g if bug == "exclusive_state_read" else G                             # BUG (exclusive_state_read)
    W = masked_exp(G[..., :, None, :] - G[..., None, :, :], causal_mask(size, x.device)[..., None])
    intra = (W * x[..., None, :, :]).sum(-2)
    h, outs = state["h"], []
    for c in range(x.shape[1]):
        outs.append(intra[:, c] + torch.exp(R[:, c]) * h[:, None])
        h = torch.exp(G[:, c, -1]) * h + intra[:, c, -1]
    o = torch.stack(outs, dim=1) if outs else x.new_zeros(x.shape)
    return o.reshape(n, length, dim), {"h": h}


def _hgrn_chunked(**core_kw):
    return Chunked(prepare=lambda x, p: {"x": x["x"], "g": x["g"]},
                   core=lambda xs, state, p, size: _hgrn_chunk_core(xs, state, p, size, **core_kw))


_HGRN_COPY = _hgrn_chunked()
_HGRN_EXCLUSIVE_READ = _hgrn_chunked(bug="exclusive_state_read")


def _run_hgrn(chunked, x, g, initial_state, output_final_state, cu_seqlens, chunk_size):
    return call("chunk", "hgrn", chunked, dict(x=x, g=g), initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size, value_input="x")


def chunk_hgrn_copy(x, g, initial_state=None, output_final_state=False, cu_seqlens=None, chunk_size=64):
    """The reference-style chunk kernel without a bug (the base of the hgrn bug below)."""
    return _run_hgrn(_HGRN_COPY, x, g, initial_state, output_final_state, cu_seqlens, chunk_size)


def chunk_hgrn_exclusive_state_read(x, g, initial_state=None, output_final_state=False, cu_seqlens=None,
                                    chunk_size=64):
    """The entering state reaches o_t through e^{G_{t−1}} (an exclusive prefix, as for rwkv6's read)
    instead of e^{G_t}: the output misses one step's decay of the carried state, while the carried state
    itself stays right. Wrong with nonzero gates once a state enters a chunk (an initial state, or
    T > chunk_size); the final state is right."""
    return _run_hgrn(_HGRN_EXCLUSIVE_READ, x, g, initial_state, output_final_state, cu_seqlens, chunk_size)


# =====================================================================================================
# gated_oja_rule
# =====================================================================================================
def _oja_chunk_core(xs, state, p, size, bug=None):
    """The Oja rule on the transposed state X = Sᵀ, chunk by chunk, as a reference kernel: the erase-key
    core above (erase key β v, write key v, written value β k, gate gv) for the state, and the read-out
    o_t = scale·X_t q_t from every step's state rebuilt within the chunk, X_t = e^{G_t} ⊙ X₀ +
    Σ_{s≤t} (e^{G_t − G_s} ⊙ v_s) u_sᵀ (pairwise decays formed explicitly)."""
    q, k, v, gv, beta = (xs[n] for n in ("q", "k", "v", "gv", "beta"))
    qc, kc, vc, g = (to_chunks(t, size) for t in (q, k, v, gv))                     # [N,H,NC,C,·]
    bc = to_chunks(beta[..., None], size)
    G = g.cumsum(-2)
    strict = causal_mask(size, q.device, strict=True)[..., None]
    incl = causal_mask(size, q.device)[..., None]
    A = torch.einsum("...tc,...sc,...tsc->...ts", bc * vc, vc, masked_exp(G[..., :, None, :] - G[..., None, :, :],
                                                                            strict))
    inv = unit_lower_inverse(A)
    U0, W = inv @ (bc * kc), inv @ (bc * vc * torch.exp(G))
    X, outs = state["S"].transpose(-1, -2), []                                       # [N,H,V,K]
    decays = masked_exp(G[..., :, None, :] - G[..., None, :, :], incl)              # [N,H,NC,C,C,V]
    for c in range(qc.shape[2]):
        U = U0[:, :, c] - W[:, :, c] @ X                                             # [N,H,C,K]
        scores = qc[:, :, c] @ U.transpose(-1, -2) * p.scale                        # u_s·q_t
        if bug == "read_before_write":                                               # BUG: s < t only
            scores = scores.tril(-1)
        else:
            scores = scores.tril()
        intra = torch.einsum("...ts,...tsc,...sc->...tc", scores, decays[:, :, c], vc[:, :, c])
        outs.append(torch.exp(G[:, :, c]) * (qc[:, :, c] @ X.transpose(-1, -2)) * p.scale + intra)
        last = G[:, :, c, -1:, :]
        X = X * torch.exp(last).transpose(-1, -2) + (vc[:, :, c] * torch.exp(last - G[:, :, c])).transpose(-1, -2) @ U
    o = torch.stack(outs, dim=2) if outs else v.new_zeros((*v.shape[:1], v.shape[2], 0, size, v.shape[-1]))
    return from_chunks(o), {"S": X.transpose(-1, -2)}


def _oja_chunked(**core_kw):
    return Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "gv", "beta")},
                   core=lambda xs, state, p, size: _oja_chunk_core(xs, state, p, size, **core_kw))


_OJA_COPY = _oja_chunked()
_OJA_READ_BEFORE_WRITE = _oja_chunked(bug="read_before_write")


def _run_oja(chunked, q, k, v, gv, beta, scale, initial_state, output_final_state, cu_seqlens, chunk_size):
    return call("chunk", "gated_oja_rule", chunked, dict(q=q, k=k, v=v, gv=gv, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


def chunk_gated_oja_rule_copy(q, k, v, gv, beta, scale=None, initial_state=None, output_final_state=False,
                              use_q_l2norm=False, use_k_l2norm=False, cu_seqlens=None, chunk_size=64):
    """The reference-style chunk kernel without a bug (the base of the Oja bug below)."""
    return _run_oja(_OJA_COPY, q, k, v, gv, beta, scale, initial_state, output_final_state, cu_seqlens, chunk_size)


def chunk_gated_oja_rule_read_before_write(q, k, v, gv, beta, scale=None, initial_state=None,
                                           output_final_state=False, use_q_l2norm=False, use_k_l2norm=False,
                                           cu_seqlens=None, chunk_size=64):
    """The intra-chunk read-out masks the diagonal (s < t, a strictly causal mask copied from the UT
    system's): o_t misses this step's own write (u_t·q_t) v_t. Wrong on every input with β ≠ 0; the final
    state is right."""
    return _run_oja(_OJA_READ_BEFORE_WRITE, q, k, v, gv, beta, scale, initial_state, output_final_state,
                    cu_seqlens, chunk_size)


# =====================================================================================================
# based
# =====================================================================================================
def _based_padding_counted(x, p):
    """The chunk inputs with the step weight w dropped (w ≡ 1): padded steps count in the normalizer."""
    return {"q": x["q"], "k": x["k"], "v": x["v"], "w": torch.ones_like(x["v"][..., 0])}


_BASED_COPY = _based.CHUNKED
_BASED_PADDING_COUNTED = Chunked(prepare=_based_padding_counted, core=_based.based_core,
                                 pads={"w": 1.0})                                    # BUG: pads w with 1


def _run_based(chunked, q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens, chunk_size):
    return call("chunk", "based", chunked, dict(q=q, k=k, v=v), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size, use_norm=use_norm)


def chunk_based_copy(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False,
                     cu_seqlens=None, chunk_size=64):
    """The chunk kernel without a bug (the base of the based bug below)."""
    return _run_based(_BASED_COPY, q, k, v, scale, use_norm, initial_state, output_final_state, cu_seqlens,
                      chunk_size)


def chunk_based_padding_counted(q, k, v, scale=None, use_norm=True, initial_state=None, output_final_state=False,
                                cu_seqlens=None, chunk_size=64):
    """The padding of the last chunk (T not a multiple of chunk_size, or varlen segments packed to one length)
    counts in the normalizer's z0: the padded steps' k and v are 0, but each adds 1 to Σ 1. The outputs of
    real steps precede the padding and stay right; the final state's z0 (and every later read of it) is
    wrong. Wrong with use_norm and T % chunk_size ≠ 0."""
    return _run_based(_BASED_PADDING_COUNTED, q, k, v, scale, use_norm, initial_state, output_final_state,
                      cu_seqlens, chunk_size)


# =====================================================================================================
# rebased
# =====================================================================================================
def _rebased_unscaled_state_read(xs, state, p, size):
    """:func:`lrnnspec.impls.rebased.rebased_core` with the entering moments read by the unscaled query."""
    q, k, v = (to_chunks(xs[n], size) for n in ("q", "k", "v"))
    raw, q = q, q * p.scale
    a = q @ k.transpose(-1, -2)
    f = (a * a).masked_fill(~causal_mask(size, q.device), 0.0)
    kk = k[..., :, None] * k[..., None, :]
    ups = {"S2": torch.einsum("...cij,...cv->...ijv", kk, v)}
    if p.use_norm:
        ups["z2"] = kk.sum(-3)
    entering, final = {}, {}
    for name, up in ups.items():
        entering[name], final[name] = _based._prefix(state[name], up)
    o = torch.einsum("...ci,...cj,...ijv->...cv", raw, raw, entering["S2"]) + f @ v            # BUG: raw q
    if p.use_norm:
        den = torch.einsum("...ci,...cj,...ij->...c", raw, raw, entering["z2"])[..., None] + f.sum(-1, keepdim=True)
        o = o / (den + p.eps)
    return from_chunks(o), final


_REBASED_UNSCALED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v")}, core=_rebased_unscaled_state_read)


def chunk_rebased_unscaled_state_read(q, k, v, scale=None, use_norm=True, initial_state=None,
                                      output_final_state=False, cu_seqlens=None, chunk_size=64):
    """The entering moments are read with q instead of scale·q (the scale applied only to the intra-chunk
    scores): every read of the carried state is off by scale², its normalizer too. Wrong whenever a state
    enters a chunk (an initial state, or T > chunk_size) and scale ≠ 1 (with use_norm, also unless the
    numerator and normalizer happen to scale alike: a ratio mixing carried and in-chunk terms)."""
    return call("chunk", "rebased", _REBASED_UNSCALED, dict(q=q, k=k, v=v), scale=scale, initial_state=initial_state,
                output_final_state=output_final_state, cu_seqlens=cu_seqlens, chunk_size=chunk_size, use_norm=use_norm)


# =====================================================================================================
# the corpus
# =====================================================================================================
PLANTED_FAMILIES: list[FamilyBug] = [
    FamilyBug("kda.cumsum_over_keys", "kda", chunk_kda_cumsum_over_keys, "forward",
              "nonzero gates with T ≥ 2 or K ≥ 2", "lrnnspec.impls.kda:chunk_kda"),
    FamilyBug("kda.masked_after_exp", "kda", chunk_kda_masked_after_exp, "gradients",
              "strong gates: a chunk whose gates sum below ≈ −88 (e.g. g = −5 on 20 steps)",
              "lrnnspec.impls.kda:chunk_kda"),
    FamilyBug("gdn2.undecayed_state_read", "gdn2", chunk_gdn2_undecayed_state_read, "forward",
              "nonzero gates with an initial state, or T > chunk_size", "lrnnspec.impls.gdn2:chunk_gdn2"),
    FamilyBug("comba.read_after_decay", "comba", chunk_comba_read_after_decay, "forward",
              "nonzero gates and T ≥ 2 (or an initial state)", "lrnnspec.impls.comba:chunk_comba"),
    FamilyBug("rwkv6.inclusive_state_read", "rwkv6", chunk_rwkv6_inclusive_state_read, "forward",
              "nonzero gates with an initial state, or T > chunk_size", "lrnnspec.impls.rwkv6:chunk_rwkv6"),
    FamilyBug("lightning_attn.heads_from_one", "lightning_attn", chunk_lightning_attn_heads_from_one, "forward",
              "T ≥ 2 or an initial state", "lrnnspec.impls.lightning_attn:chunk_lightning_attn"),
    FamilyBug("hgrn.exclusive_state_read", "hgrn", chunk_hgrn_exclusive_state_read, "forward",
              "nonzero gates with an initial state, or T > chunk_size", "lrnnspec.impls.hgrn:chunk_hgrn"),
    FamilyBug("gated_oja_rule.read_before_write", "gated_oja_rule", chunk_gated_oja_rule_read_before_write,
              "forward", "any β ≠ 0", "lrnnspec.impls.gated_oja_rule:chunk_gated_oja_rule"),
    FamilyBug("based.padding_counted", "based", chunk_based_padding_counted, "final_state",
              "use_norm and T not a multiple of chunk_size", "lrnnspec.impls.based:chunk_based"),
    FamilyBug("rebased.unscaled_state_read", "rebased", chunk_rebased_unscaled_state_read, "forward",
              "an initial state or T > chunk_size, scale ≠ 1", "lrnnspec.impls.rebased:chunk_rebased"),
]

# family → the bug-free copies the bugs derive from
CORE_COPIES: dict[str, Callable] = {"kda": chunk_kda_copy, "gdn2": chunk_gdn2_copy, "comba": chunk_comba_copy,
                                    "rwkv6": chunk_rwkv6_copy, "lightning_attn": chunk_lightning_attn_copy,
                                    "hgrn": chunk_hgrn_copy, "gated_oja_rule": chunk_gated_oja_rule_copy,
                                    "based": chunk_based_copy, "rebased": _rebased.chunk_rebased}
