"""Triton chunkwise forward and backward of the gated linear recurrences (GLA and simple GLA).

Per (sequence n, head h), state S [K, V]; per step t with log gate γ_t ≤ 0 — a vector gk_t [K] (GLA,
``key_gate=True``) or a scalar g_t (simple GLA, broadcast over K):

    S_t = Diag(e^{γ_t}) S_{t−1} + k_t v_tᵀ,        o_t = scale · S_tᵀ q_t.

Chunks of C ∈ {16, 32, 64} steps; G_i = Σ_{j≤i} γ_j the chunk-local cumulative log gate (G_{C−1} the
chunk's total decay, every G ≤ 0 and non-increasing), h_c the state entering chunk c:

    o_i     = scale · (q_i ⊙ e^{G_i})ᵀ h_c + Σ_{j≤i} A_ij v_j,     A_ij = scale · Σ_k q_ik k_jk e^{G_ik − G_jk}
    h_{c+1} = Diag(e^{G_{C−1}}) h_c + Σ_j (k_j ⊙ e^{G_{C−1} − G_j}) v_jᵀ

Every exponent above is ≤ 0, so nothing overflows however strong the gates. For GLA the intra-chunk
scores cannot be one matmul with e^{±G} factors (e^{−G} overflows once a chunk decays by more than ~88);
they are formed on sub-chunks of BC = 16 rows: below the diagonal, block (a, b) with b < a factors
through R = G at the last row of sub-chunk a − 1, A_ab = (q_a ⊙ e^{G_a − R})(k_b ⊙ e^{R − G_b})ᵀ (both
factors ≤ 1); diagonal blocks are formed exactly, Σ_k over a [BC, BC, BK] tensor of e^{G_ik − G_jk}
with the upper triangle masked to −∞ before the exponential. For simple GLA the decay is a [C, C]
matrix e^{min(G_i − G_j, 0)}, masked to j ≤ i.

Backward, given dO and the final-state cotangent dS_T (dH_c = the gradient reaching the state *after*
chunk c, dH_{NC−1} = dS_T, dH_{c−1} = Diag(e^{G_{C−1}}) dH_c + scale · (q ⊙ e^{G})ᵀ dO_c, dS₀ = dH_{−1}):

    dA  = (dO vᵀ) masked to j ≤ i
    dv  = Aᵀ dO + (k ⊙ e^{G_{C−1} − G}) dH_c
    dq  = scale · [Σ_{j≤i} dA_ij k_j ⊙ e^{G_i − G_j} + e^{G_i} ⊙ (dO h_cᵀ)_i]
    dk  = scale · Σ_{i≥j} dA_ij q_i ⊙ e^{G_i − G_j} + e^{G_{C−1} − G_j} ⊙ (v dH_cᵀ)_j
    dγ_t = Σ_{s ≥ t} (q_s ⊙ dq_s − k_s ⊙ dk_s) + Σ_v (S_T ⊙ dS_T)[:, v]          (summed over K for simple GLA)

The gate identity: with Γ_t the global cumulative log gate, o and S_T depend on Γ only through
e^{Γ_t − Γ_s} (q on the + side, k on the − side) and e^{Γ_T} (S_T), so ∂L/∂Γ_t = q_t ⊙ dq_t −
k_t ⊙ dk_t + [t = T] Σ_v S_T ⊙ dS_T, and γ_t enters every Γ_s with s ≥ t (a reverse cumulative sum).

Kernels (grid; NH = N·H, NK / NV the K / V blocks, NC chunks, NSUB = C / 16 sub-chunks):

forward      ``_cumsum``       (NC, NH, NK)       G, chunk-local cumulative gate              → G [NH, T(, K)]
             ``_gla_intra``    (NC·NSUB, NH)      GLA: one row of sub-chunk blocks of A        → A [NH, T, C]
             ``_state_fwd``    (NK, NV, NH)       walks the chunks: h_c, final state            → h [NH, NC, K, V]
             ``_gla_output``   (NV, NC, NH)       o = A v + scale (q ⊙ e^G) h_c
             ``_simple_output``(NV, NC, NH)       simple GLA: A formed in registers, same o
backward     (G, A, h recomputed by the forward kernels: only the inputs are kept for backward)
             ``_state_bwd``    (NK, NV, NH)       reverse walk: dH_c, dS₀                       → dH [NH, NC, K, V]
             ``_gla_dv`` / ``_simple_dv`` (NV, NC, NH)
             ``_gla_dA``       (NC, NH)           GLA: dA = dO vᵀ masked                       → dA [NH, T, C]
             ``_gla_dqk``      (NK, NC·NSUB, NH)  GLA: dq, dk of one sub-chunk (same sub-chunk scheme as A)
             ``_simple_dqk``   (NK, NC, NH)       simple GLA: dq, dk
             ``_gate_grad``    (NK, NH) / (1, NH) reverse cumulative sum over the whole sequence → dγ

Shapes of the ops: q, k [N, T, H, K]; v [N, T, H, V]; g [N, T, H, K] (GLA) or [N, T, H] (simple GLA);
initial state [N, H, K, V]; T a multiple of ``chunk_size`` (the driver in :mod:`lrnnspec.impls.driver`
pads). All of one dtype, float32 or float64; every dot product, the state and all intermediates in that
dtype (``input_precision="ieee"``). K and V of any size: blocks are powers of two from 16 to 64 (to 32
for the key blocks of ``_gla_intra`` / ``_gla_dqk``, which form a [16, 16, BK] tensor; half of both in
float64), masked, looped or gridded over. No autotuning: one configuration (the interpreter has no driver
to tune with). The backward keeps only the op's inputs and recomputes G, A and the chunk states.

Caution when running under ``TRITON_INTERPRET=1``: the interpreter reads each kernel's source from this
file on its first call, so editing the file while a process is running can hand it mismatched source.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from lrnnspec.impls.driver import check_chunk_size
from lrnnspec.spec.errors import SpecError

CHUNK_SIZES = (16, 32, 64)
SUB = 16          # sub-chunk rows of the GLA intra-chunk scheme (and the smallest dot dimension)
MAX_BLOCK = 64    # K / V block of the matmul kernels
MAX_BLOCK_3D = 32  # K block of the kernels that form a [16, 16, BK] tensor


# --- tiles ----------------------------------------------------------------------------------------
@triton.jit
def _tile(ptr, n, t, h, T, H, D, cols):
    """x[n, t, h, cols] of a contiguous [N, T, H, D] tensor: a [len(t), len(cols)] tile, 0 for cols ≥ D."""
    return tl.load(ptr + ((n * T + t[:, None]) * H + h) * D + cols[None, :], mask=(cols < D)[None, :], other=0.0)


@triton.jit
def _store_tile(ptr, x, n, t, h, T, H, D, cols):
    tl.store(ptr + ((n * T + t[:, None]) * H + h) * D + cols[None, :], x, mask=(cols < D)[None, :])


@triton.jit
def _gate_tile(G_ptr, nh, t, T, K, kk):
    """The key-gate cumsum G[nh, t, kk] ([N·H, T, K], contiguous), 0 for kk ≥ K."""
    return tl.load(G_ptr + (nh * T + t[:, None]) * K + kk[None, :], mask=(kk < K)[None, :], other=0.0)


@triton.jit
def _store_gate_tile(ptr, x, nh, t, T, K, kk):
    tl.store(ptr + (nh * T + t[:, None]) * K + kk[None, :], x, mask=(kk < K)[None, :])


@triton.jit
def _state_tile(ptr, nh, c, NC, K, V, kk, vv):
    """Chunk c's state tile S_c[kk, vv] of a contiguous [N·H, NC, K, V] tensor, 0 outside."""
    mask = (kk < K)[:, None] & (vv < V)[None, :]
    return tl.load(ptr + (nh * NC + c) * K * V + kk[:, None] * V + vv[None, :], mask=mask, other=0.0)


# --- forward kernels ------------------------------------------------------------------------------
@triton.jit
def _cumsum(g_ptr, G_ptr, T, H, K, C: tl.constexpr, BK: tl.constexpr, GATE_K: tl.constexpr):
    c, nh, kb = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    t = c * C + tl.arange(0, C)
    if GATE_K:
        kk = kb * BK + tl.arange(0, BK)
        _store_gate_tile(G_ptr, tl.cumsum(_tile(g_ptr, n, t, h, T, H, K, kk), 0), nh, t, T, K, kk)
    else:
        x = tl.load(g_ptr + (n * T + t) * H + h)
        tl.store(G_ptr + nh * T + t, tl.cumsum(x, 0))


@triton.jit
def _gla_intra(q_ptr, k_ptr, G_ptr, A_ptr, scale_ptr, T, H, K, C: tl.constexpr, BC: tl.constexpr,
               BK: tl.constexpr, NSUB: tl.constexpr, DT: tl.constexpr):
    """Row block a of A for chunk c: blocks b < a through the reference R, the diagonal exactly,
    zeros above."""
    pid, nh = tl.program_id(0), tl.program_id(1)
    c, a = pid // NSUB, pid % NSUB
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    r = tl.arange(0, BC)
    ti = c * C + a * BC + r
    a_rows = A_ptr + (nh * T + ti[:, None]) * C + r[None, :]
    ref_row = c * C + a * BC - 1            # last row of sub-chunk a − 1 (used only when a > 0)
    for b in range(0, a):
        tj = c * C + b * BC + r
        acc = tl.zeros([BC, BC], dtype=DT)
        for kb in range(0, tl.cdiv(K, BK)):
            kk = kb * BK + tl.arange(0, BK)
            qa = _tile(q_ptr, n, ti, h, T, H, K, kk)
            Ga = _gate_tile(G_ptr, nh, ti, T, K, kk)
            R = tl.load(G_ptr + (nh * T + ref_row) * K + kk, mask=kk < K, other=0.0)
            kbv = _tile(k_ptr, n, tj, h, T, H, K, kk)
            Gb = _gate_tile(G_ptr, nh, tj, T, K, kk)
            qf = qa * tl.exp(Ga - R[None, :])
            kf = kbv * tl.exp(R[None, :] - Gb)
            acc += tl.dot(qf, tl.trans(kf), input_precision="ieee", out_dtype=DT)
        tl.store(a_rows + b * BC, acc * scale)
    causal = (r[:, None] >= r[None, :])[:, :, None]
    acc = tl.zeros([BC, BC], dtype=DT)
    for kb in range(0, tl.cdiv(K, BK)):
        kk = kb * BK + tl.arange(0, BK)
        qa = _tile(q_ptr, n, ti, h, T, H, K, kk)
        ka = _tile(k_ptr, n, ti, h, T, H, K, kk)
        Ga = _gate_tile(G_ptr, nh, ti, T, K, kk)
        E = tl.exp(tl.where(causal, Ga[:, None, :] - Ga[None, :, :], float("-inf")))
        acc += tl.sum(qa[:, None, :] * ka[None, :, :] * E, axis=2)
    tl.store(a_rows + a * BC, acc * scale)
    for b in range(a + 1, NSUB):
        tl.store(a_rows + b * BC, tl.zeros([BC, BC], dtype=DT))


@triton.jit
def _state_fwd(k_ptr, v_ptr, G_ptr, S0_ptr, h_ptr, ST_ptr, T, H, K, V, NC, C: tl.constexpr, BK: tl.constexpr,
               BV: tl.constexpr, GATE_K: tl.constexpr, DT: tl.constexpr):
    kb, vb, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    kk = kb * BK + tl.arange(0, BK)
    vv = vb * BV + tl.arange(0, BV)
    km, vm = kk < K, vv < V
    skv = kk[:, None] * V + vv[None, :]
    mkv = km[:, None] & vm[None, :]
    S = tl.load(S0_ptr + nh * K * V + skv, mask=mkv, other=0.0).to(DT)
    for c in range(0, NC):
        tl.store(h_ptr + (nh * NC + c) * K * V + skv, S, mask=mkv)
        t = c * C + tl.arange(0, C)
        kt = _tile(k_ptr, n, t, h, T, H, K, kk)
        vt = _tile(v_ptr, n, t, h, T, H, V, vv)
        if GATE_K:
            Gt = _gate_tile(G_ptr, nh, t, T, K, kk)
            Gl = tl.load(G_ptr + (nh * T + c * C + C - 1) * K + kk, mask=km, other=0.0)
            kd = kt * tl.exp(Gl[None, :] - Gt)
            S = S * tl.exp(Gl)[:, None]
        else:
            Gt = tl.load(G_ptr + nh * T + t)
            Gl = tl.load(G_ptr + nh * T + c * C + C - 1)
            kd = kt * tl.exp(Gl - Gt)[:, None]
            S = S * tl.exp(Gl)
        S += tl.dot(tl.trans(kd), vt, input_precision="ieee", out_dtype=DT)
    tl.store(ST_ptr + nh * K * V + skv, S, mask=mkv)


@triton.jit
def _gla_output(q_ptr, v_ptr, G_ptr, A_ptr, h_ptr, o_ptr, scale_ptr, T, H, K, V, NC, C: tl.constexpr,
                BK: tl.constexpr, BV: tl.constexpr, DT: tl.constexpr):
    vb, c, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    t = c * C + tl.arange(0, C)
    vv = vb * BV + tl.arange(0, BV)
    acc = tl.zeros([C, BV], dtype=DT)
    for kb in range(0, tl.cdiv(K, BK)):
        kk = kb * BK + tl.arange(0, BK)
        qt = _tile(q_ptr, n, t, h, T, H, K, kk)
        Gt = _gate_tile(G_ptr, nh, t, T, K, kk)
        hc = _state_tile(h_ptr, nh, c, NC, K, V, kk, vv)
        acc += tl.dot(qt * tl.exp(Gt), hc, input_precision="ieee", out_dtype=DT)
    Ac = tl.load(A_ptr + (nh * T + t[:, None]) * C + tl.arange(0, C)[None, :])
    vt = _tile(v_ptr, n, t, h, T, H, V, vv)
    acc = acc * scale + tl.dot(Ac, vt, input_precision="ieee", out_dtype=DT)
    _store_tile(o_ptr, acc, n, t, h, T, H, V, vv)


@triton.jit
def _scalar_decay(G, scale, C: tl.constexpr):
    """[C, C]: scale · e^{min(G_i − G_j, 0)} for j ≤ i, 0 above the diagonal."""
    r = tl.arange(0, C)
    d = tl.exp(tl.minimum(G[:, None] - G[None, :], 0.0))
    return tl.where(r[:, None] >= r[None, :], d * scale, 0.0)


@triton.jit
def _simple_output(q_ptr, k_ptr, v_ptr, G_ptr, h_ptr, o_ptr, scale_ptr, T, H, K, V, NC, C: tl.constexpr,
                   BK: tl.constexpr, BV: tl.constexpr, DT: tl.constexpr):
    vb, c, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    t = c * C + tl.arange(0, C)
    vv = vb * BV + tl.arange(0, BV)
    qk = tl.zeros([C, C], dtype=DT)
    qh = tl.zeros([C, BV], dtype=DT)
    for kb in range(0, tl.cdiv(K, BK)):
        kk = kb * BK + tl.arange(0, BK)
        qt = _tile(q_ptr, n, t, h, T, H, K, kk)
        kt = _tile(k_ptr, n, t, h, T, H, K, kk)
        hc = _state_tile(h_ptr, nh, c, NC, K, V, kk, vv)
        qk += tl.dot(qt, tl.trans(kt), input_precision="ieee", out_dtype=DT)
        qh += tl.dot(qt, hc, input_precision="ieee", out_dtype=DT)
    Gt = tl.load(G_ptr + nh * T + t)
    A = qk * _scalar_decay(Gt, scale, C)
    vt = _tile(v_ptr, n, t, h, T, H, V, vv)
    acc = tl.dot(A, vt, input_precision="ieee", out_dtype=DT) + (scale * tl.exp(Gt))[:, None] * qh
    _store_tile(o_ptr, acc, n, t, h, T, H, V, vv)


# --- backward kernels -----------------------------------------------------------------------------
@triton.jit
def _state_bwd(q_ptr, do_ptr, G_ptr, dST_ptr, dh_ptr, dS0_ptr, scale_ptr, T, H, K, V, NC, C: tl.constexpr,
               BK: tl.constexpr, BV: tl.constexpr, GATE_K: tl.constexpr, DT: tl.constexpr):
    kb, vb, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    kk = kb * BK + tl.arange(0, BK)
    vv = vb * BV + tl.arange(0, BV)
    km, vm = kk < K, vv < V
    skv = kk[:, None] * V + vv[None, :]
    mkv = km[:, None] & vm[None, :]
    D = tl.load(dST_ptr + nh * K * V + skv, mask=mkv, other=0.0).to(DT)
    for i in range(0, NC):
        c = NC - 1 - i
        tl.store(dh_ptr + (nh * NC + c) * K * V + skv, D, mask=mkv)
        t = c * C + tl.arange(0, C)
        qt = _tile(q_ptr, n, t, h, T, H, K, kk)
        dot_ = _tile(do_ptr, n, t, h, T, H, V, vv)
        if GATE_K:
            Gt = _gate_tile(G_ptr, nh, t, T, K, kk)
            Gl = tl.load(G_ptr + (nh * T + c * C + C - 1) * K + kk, mask=km, other=0.0)
            qg = qt * tl.exp(Gt)
            D = D * tl.exp(Gl)[:, None]
        else:
            Gt = tl.load(G_ptr + nh * T + t)
            Gl = tl.load(G_ptr + nh * T + c * C + C - 1)
            qg = qt * tl.exp(Gt)[:, None]
            D = D * tl.exp(Gl)
        D += scale * tl.dot(tl.trans(qg), dot_, input_precision="ieee", out_dtype=DT)
    tl.store(dS0_ptr + nh * K * V + skv, D, mask=mkv)


@triton.jit
def _gla_dv(k_ptr, G_ptr, A_ptr, do_ptr, dh_ptr, dv_ptr, T, H, K, V, NC, C: tl.constexpr, BK: tl.constexpr,
            BV: tl.constexpr, DT: tl.constexpr):
    vb, c, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    t = c * C + tl.arange(0, C)
    vv = vb * BV + tl.arange(0, BV)
    Ac = tl.load(A_ptr + (nh * T + t[:, None]) * C + tl.arange(0, C)[None, :])
    dot_ = _tile(do_ptr, n, t, h, T, H, V, vv)
    acc = tl.dot(tl.trans(Ac), dot_, input_precision="ieee", out_dtype=DT)
    for kb in range(0, tl.cdiv(K, BK)):
        kk = kb * BK + tl.arange(0, BK)
        km = kk < K
        kt = _tile(k_ptr, n, t, h, T, H, K, kk)
        Gt = _gate_tile(G_ptr, nh, t, T, K, kk)
        Gl = tl.load(G_ptr + (nh * T + c * C + C - 1) * K + kk, mask=km, other=0.0)
        dh = _state_tile(dh_ptr, nh, c, NC, K, V, kk, vv)
        acc += tl.dot(kt * tl.exp(Gl[None, :] - Gt), dh, input_precision="ieee", out_dtype=DT)
    _store_tile(dv_ptr, acc, n, t, h, T, H, V, vv)


@triton.jit
def _simple_dv(q_ptr, k_ptr, G_ptr, do_ptr, dh_ptr, dv_ptr, scale_ptr, T, H, K, V, NC, C: tl.constexpr,
               BK: tl.constexpr, BV: tl.constexpr, DT: tl.constexpr):
    vb, c, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    t = c * C + tl.arange(0, C)
    vv = vb * BV + tl.arange(0, BV)
    Gt = tl.load(G_ptr + nh * T + t)
    Gl = tl.load(G_ptr + nh * T + c * C + C - 1)
    kdec = tl.exp(Gl - Gt)[:, None]
    qk = tl.zeros([C, C], dtype=DT)
    acc = tl.zeros([C, BV], dtype=DT)
    for kb in range(0, tl.cdiv(K, BK)):
        kk = kb * BK + tl.arange(0, BK)
        qt = _tile(q_ptr, n, t, h, T, H, K, kk)
        kt = _tile(k_ptr, n, t, h, T, H, K, kk)
        dh = _state_tile(dh_ptr, nh, c, NC, K, V, kk, vv)
        qk += tl.dot(qt, tl.trans(kt), input_precision="ieee", out_dtype=DT)
        acc += tl.dot(kt * kdec, dh, input_precision="ieee", out_dtype=DT)
    A = qk * _scalar_decay(Gt, scale, C)
    dot_ = _tile(do_ptr, n, t, h, T, H, V, vv)
    acc += tl.dot(tl.trans(A), dot_, input_precision="ieee", out_dtype=DT)
    _store_tile(dv_ptr, acc, n, t, h, T, H, V, vv)


@triton.jit
def _gla_dA(v_ptr, do_ptr, dA_ptr, T, H, V, C: tl.constexpr, BV: tl.constexpr, DT: tl.constexpr):
    c, nh = tl.program_id(0), tl.program_id(1)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    r = tl.arange(0, C)
    t = c * C + r
    dA = tl.zeros([C, C], dtype=DT)
    for vb in range(0, tl.cdiv(V, BV)):
        vv = vb * BV + tl.arange(0, BV)
        dot_ = _tile(do_ptr, n, t, h, T, H, V, vv)
        vt = _tile(v_ptr, n, t, h, T, H, V, vv)
        dA += tl.dot(dot_, tl.trans(vt), input_precision="ieee", out_dtype=DT)
    tl.store(dA_ptr + (nh * T + t[:, None]) * C + r[None, :], tl.where(r[:, None] >= r[None, :], dA, 0.0))


@triton.jit
def _gla_dqk(q_ptr, k_ptr, v_ptr, G_ptr, h_ptr, do_ptr, dh_ptr, dA_ptr, dq_ptr, dk_ptr, dgam_ptr, scale_ptr,
             T, H, K, V, NC, C: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
             NSUB: tl.constexpr, DT: tl.constexpr):
    """dq, dk (and q ⊙ dq − k ⊙ dk) of sub-chunk a of chunk c, key block kb."""
    kb, pid, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    c, a = pid // NSUB, pid % NSUB
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    r = tl.arange(0, BC)
    ta = c * C + a * BC + r
    kk = kb * BK + tl.arange(0, BK)
    km = kk < K
    qa = _tile(q_ptr, n, ta, h, T, H, K, kk)
    ka = _tile(k_ptr, n, ta, h, T, H, K, kk)
    Ga = _gate_tile(G_ptr, nh, ta, T, K, kk)
    dA_rows = dA_ptr + (nh * T + ta[:, None]) * C + r[None, :]          # rows of sub-chunk a, + b·BC: block (a, b)
    # blocks (a, b), b < a: dq_a = e^{G_a − R} ⊙ Σ_b dA_ab (k_b ⊙ e^{R − G_b}), R the last row of sub-chunk a − 1
    R = tl.load(G_ptr + (nh * T + c * C + tl.maximum(a * BC - 1, 0)) * K + kk, mask=km, other=0.0)
    dq = tl.zeros([BC, BK], dtype=DT)
    for b in range(0, a):
        tb = c * C + b * BC + r
        kbv = _tile(k_ptr, n, tb, h, T, H, K, kk)
        Gb = _gate_tile(G_ptr, nh, tb, T, K, kk)
        dq += tl.dot(tl.load(dA_rows + b * BC), kbv * tl.exp(R[None, :] - Gb), input_precision="ieee", out_dtype=DT)
    dq = dq * tl.exp(Ga - R[None, :])
    # blocks (b, a), b > a: dk_a = e^{R' − G_a} ⊙ Σ_b dA_baᵀ (q_b ⊙ e^{G_b − R'}), R' the last row of sub-chunk a
    Rp = tl.load(G_ptr + (nh * T + c * C + a * BC + BC - 1) * K + kk, mask=km, other=0.0)
    dk = tl.zeros([BC, BK], dtype=DT)
    for b in range(a + 1, NSUB):
        tb = c * C + b * BC + r
        qb = _tile(q_ptr, n, tb, h, T, H, K, kk)
        Gb = _gate_tile(G_ptr, nh, tb, T, K, kk)
        dAba = tl.load(dA_ptr + (nh * T + tb[:, None]) * C + a * BC + r[None, :])
        dk += tl.dot(tl.trans(dAba), qb * tl.exp(Gb - Rp[None, :]), input_precision="ieee", out_dtype=DT)
    dk = dk * tl.exp(Rp[None, :] - Ga)
    # diagonal block, exactly: E[i, j, k] = e^{G_ik − G_jk} for j ≤ i, 0 above
    dAaa = tl.load(dA_rows + a * BC)
    E = tl.exp(tl.where((r[:, None] >= r[None, :])[:, :, None], Ga[:, None, :] - Ga[None, :, :], float("-inf")))
    W = dAaa[:, :, None] * E
    dq += tl.sum(W * ka[None, :, :], axis=1)
    dk += tl.sum(W * qa[:, None, :], axis=0)
    # through the states: dO h_cᵀ and v dH_cᵀ
    dqi = tl.zeros([BC, BK], dtype=DT)
    dki = tl.zeros([BC, BK], dtype=DT)
    for vb in range(0, tl.cdiv(V, BV)):
        vv = vb * BV + tl.arange(0, BV)
        dot_ = _tile(do_ptr, n, ta, h, T, H, V, vv)
        va = _tile(v_ptr, n, ta, h, T, H, V, vv)
        hc = _state_tile(h_ptr, nh, c, NC, K, V, kk, vv)
        dh = _state_tile(dh_ptr, nh, c, NC, K, V, kk, vv)
        dqi += tl.dot(dot_, tl.trans(hc), input_precision="ieee", out_dtype=DT)
        dki += tl.dot(va, tl.trans(dh), input_precision="ieee", out_dtype=DT)
    Gl = tl.load(G_ptr + (nh * T + c * C + C - 1) * K + kk, mask=km, other=0.0)
    dq = scale * (dq + tl.exp(Ga) * dqi)
    dk = scale * dk + tl.exp(Gl[None, :] - Ga) * dki
    _store_tile(dq_ptr, dq, n, ta, h, T, H, K, kk)
    _store_tile(dk_ptr, dk, n, ta, h, T, H, K, kk)
    _store_gate_tile(dgam_ptr, qa * dq - ka * dk, nh, ta, T, K, kk)


@triton.jit
def _simple_dqk(q_ptr, k_ptr, v_ptr, G_ptr, h_ptr, do_ptr, dh_ptr, dq_ptr, dk_ptr, dgam_ptr, scale_ptr,
                T, H, K, V, NC, C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, DT: tl.constexpr):
    kb, c, nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    scale = tl.load(scale_ptr)
    t = c * C + tl.arange(0, C)
    kk = kb * BK + tl.arange(0, BK)
    qt = _tile(q_ptr, n, t, h, T, H, K, kk)
    kt = _tile(k_ptr, n, t, h, T, H, K, kk)
    dA = tl.zeros([C, C], dtype=DT)
    dqi = tl.zeros([C, BK], dtype=DT)
    dki = tl.zeros([C, BK], dtype=DT)
    for vb in range(0, tl.cdiv(V, BV)):
        vv = vb * BV + tl.arange(0, BV)
        dot_ = _tile(do_ptr, n, t, h, T, H, V, vv)
        vt = _tile(v_ptr, n, t, h, T, H, V, vv)
        hc = _state_tile(h_ptr, nh, c, NC, K, V, kk, vv)
        dh = _state_tile(dh_ptr, nh, c, NC, K, V, kk, vv)
        dA += tl.dot(dot_, tl.trans(vt), input_precision="ieee", out_dtype=DT)
        dqi += tl.dot(dot_, tl.trans(hc), input_precision="ieee", out_dtype=DT)
        dki += tl.dot(vt, tl.trans(dh), input_precision="ieee", out_dtype=DT)
    Gt = tl.load(G_ptr + nh * T + t)
    Gl = tl.load(G_ptr + nh * T + c * C + C - 1)
    dA = dA * _scalar_decay(Gt, scale, C)
    dq = tl.dot(dA, kt, input_precision="ieee", out_dtype=DT) + (scale * tl.exp(Gt))[:, None] * dqi
    dk = tl.dot(tl.trans(dA), qt, input_precision="ieee", out_dtype=DT) + tl.exp(Gl - Gt)[:, None] * dki
    _store_tile(dq_ptr, dq, n, t, h, T, H, K, kk)
    _store_tile(dk_ptr, dk, n, t, h, T, H, K, kk)
    _store_gate_tile(dgam_ptr, qt * dq - kt * dk, nh, t, T, K, kk)


@triton.jit
def _gate_grad(dgam_ptr, ST_ptr, dST_ptr, dg_ptr, T, H, K, V, NC, C: tl.constexpr, BK: tl.constexpr,
               BV: tl.constexpr, GATE_K: tl.constexpr, DT: tl.constexpr):
    """dγ_t = Σ_{s≥t} dΓ_s + Σ_v S_T ⊙ dS_T, walking the chunks from the last; for the scalar gate
    (one program per head) dΓ and the final-state term are summed over K as well."""
    kb, nh = tl.program_id(0), tl.program_id(1)
    n, h = (nh // H).to(tl.int64), nh % H
    nh = nh.to(tl.int64)
    if GATE_K:
        kk = kb * BK + tl.arange(0, BK)
        km = kk < K
        fin = tl.zeros([BK], dtype=DT)
        for vb in range(0, tl.cdiv(V, BV)):
            vv = vb * BV + tl.arange(0, BV)
            st = nh * K * V + kk[:, None] * V + vv[None, :]
            mkv = km[:, None] & (vv < V)[None, :]
            fin += tl.sum(tl.load(ST_ptr + st, mask=mkv, other=0.0) * tl.load(dST_ptr + st, mask=mkv, other=0.0), 1)
        carry = fin
        for i in range(0, NC):
            t = (NC - 1 - i) * C + tl.arange(0, C)
            x = tl.load(dgam_ptr + (nh * T + t[:, None]) * K + kk[None, :], mask=km[None, :], other=0.0)
            tl.store(dg_ptr + ((n * T + t[:, None]) * H + h) * K + kk[None, :],
                     tl.cumsum(x, 0, reverse=True) + carry[None, :], mask=km[None, :])
            carry += tl.sum(x, 0)
    else:
        # tiles are summed element-wise inside the loops and reduced after them: a reduction accumulated
        # across loop iterations trips an assertion in Triton 3.6's thread-locality pass (sm_90)
        acc = tl.zeros([BK, BV], dtype=DT)
        for kb2 in range(0, tl.cdiv(K, BK)):
            kk = kb2 * BK + tl.arange(0, BK)
            km = kk < K
            for vb in range(0, tl.cdiv(V, BV)):
                vv = vb * BV + tl.arange(0, BV)
                st = nh * K * V + kk[:, None] * V + vv[None, :]
                mkv = km[:, None] & (vv < V)[None, :]
                acc += tl.load(ST_ptr + st, mask=mkv, other=0.0) * tl.load(dST_ptr + st, mask=mkv, other=0.0)
        carry = tl.sum(tl.sum(acc, 1), 0)
        for i in range(0, NC):
            t = (NC - 1 - i) * C + tl.arange(0, C)
            xs = tl.zeros([C, BK], dtype=DT)
            for kb2 in range(0, tl.cdiv(K, BK)):
                kk = kb2 * BK + tl.arange(0, BK)
                xs += tl.load(dgam_ptr + (nh * T + t[:, None]) * K + kk[None, :], mask=(kk < K)[None, :], other=0.0)
            x = tl.sum(xs, 1)
            tl.store(dg_ptr + (n * T + t) * H + h, tl.cumsum(x, 0, reverse=True) + carry)
            carry += tl.sum(x, 0)


# --- launchers ------------------------------------------------------------------------------------
_INTERPRETED = isinstance(_state_fwd, InterpretedFunction)   # TRITON_INTERPRET=1 when triton.jit ran


def _block(n: int, cap: int) -> int:
    """A power of two covering ``n``, at most ``cap``, at least 16 (the smallest ``tl.dot`` side)."""
    return max(16, min(cap, triton.next_power_of_2(n)))


def _check(q, k, v, g, S0, chunk_size, key_gate: bool):
    check_chunk_size(chunk_size, CHUNK_SIZES)
    named = dict(q=q, k=k, v=v, g=g, initial_state=S0)
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise SpecError(name, f"must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype != q.dtype:
            raise SpecError(name, f"must have q's dtype {q.dtype}, got {t.dtype}")
        if t.device != q.device:
            raise SpecError(name, f"must be on q's device {q.device}, got {t.device}")
    if q.dtype not in (torch.float32, torch.float64):
        raise SpecError("q", f"the Triton ops compute in float32 or float64, got {q.dtype} "
                             "(the public functions up-cast)")
    if q.dim() != 4:
        raise SpecError("q", f"must be [N, T, H, K], got shape {tuple(q.shape)}")
    N, T, H, K = q.shape
    V = v.shape[-1] if v.dim() == 4 else -1
    want = dict(k=(N, T, H, K), v=(N, T, H, V), g=(N, T, H, K) if key_gate else (N, T, H), initial_state=(N, H, K, V))
    for name, shape in want.items():
        if tuple(named[name].shape) != shape:
            raise SpecError(name, f"must have shape {shape}, got {tuple(named[name].shape)}")
    if T % chunk_size:
        raise SpecError("q", f"the op needs T a multiple of chunk_size={chunk_size}, got T={T} "
                             "(the public functions pad)")
    if q.device.type == "cpu" and not _INTERPRETED:
        raise SpecError("q", "tensors are on the CPU but the Triton kernels were compiled for a GPU: set "
                             "TRITON_INTERPRET=1 before triton is first imported to run them on the CPU")
    return N, T, H, K, V


class _Geometry:
    def __init__(self, q, v, chunk_size):
        self.N, self.T, self.H, self.K = q.shape
        self.V = v.shape[-1]
        self.C = chunk_size
        self.NC = self.T // chunk_size
        self.NH = self.N * self.H
        # float64 tiles take twice the registers / shared memory: half the blocks (at C = 64 and 64-wide
        # blocks, _simple_dqk in float64 would need 256 KiB of shared memory on sm_90)
        shrink = 1 if q.dtype == torch.float32 else 2
        self.BK, self.BV = _block(self.K, MAX_BLOCK // shrink), _block(self.V, MAX_BLOCK // shrink)
        self.BK3 = _block(self.K, MAX_BLOCK_3D // shrink)
        self.NK, self.NV = triton.cdiv(self.K, self.BK), triton.cdiv(self.V, self.BV)
        self.NK3 = triton.cdiv(self.K, self.BK3)
        self.NSUB = chunk_size // SUB
        self.DT = tl.float32 if q.dtype == torch.float32 else tl.float64


def _prologue(q, k, v, g, S0, scale, geo: _Geometry, key_gate: bool):
    """G (chunk-local cumulative gate), A (GLA only), entering states h and the final state."""
    N, T, H, K, V, C, NC, NH = geo.N, geo.T, geo.H, geo.K, geo.V, geo.C, geo.NC, geo.NH
    s = torch.full((1,), scale, dtype=q.dtype, device=q.device)
    G = q.new_empty((NH, T, K) if key_gate else (NH, T))
    _cumsum[(NC, NH, geo.NK if key_gate else 1)](g, G, T, H, K, C=C, BK=geo.BK, GATE_K=key_gate)
    A = None
    if key_gate:
        A = q.new_empty((NH, T, C))
        _gla_intra[(NC * geo.NSUB, NH)](q, k, G, A, s, T, H, K, C=C, BC=SUB, BK=geo.BK3, NSUB=geo.NSUB, DT=geo.DT)
    h = q.new_empty((NH, NC, K, V))
    ST = S0.new_empty((N, H, K, V))
    _state_fwd[(geo.NK, geo.NV, NH)](k, v, G, S0, h, ST, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV,
                                     GATE_K=key_gate, DT=geo.DT)
    return s, G, A, h, ST


def _contiguous(*ts):
    return tuple(t.contiguous() for t in ts)


def forward(q, k, v, g, initial_state, scale: float, chunk_size: int, key_gate: bool):
    """(o [N, T, H, V], final state [N, H, K, V]) — see the module docstring."""
    _check(q, k, v, g, initial_state, chunk_size, key_gate)
    q, k, v, g, S0 = _contiguous(q, k, v, g, initial_state)
    geo = _Geometry(q, v, chunk_size)
    o = v.new_empty(v.shape)
    if geo.NC == 0 or geo.NH == 0 or geo.K == 0 or geo.V == 0:
        return o.zero_(), S0.clone()
    s, G, A, h, ST = _prologue(q, k, v, g, S0, scale, geo, key_gate)
    T, H, K, V, C, NC, NH = geo.T, geo.H, geo.K, geo.V, geo.C, geo.NC, geo.NH
    if key_gate:
        _gla_output[(geo.NV, NC, NH)](q, v, G, A, h, o, s, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV, DT=geo.DT)
    else:
        _simple_output[(geo.NV, NC, NH)](q, k, v, G, h, o, s, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV, DT=geo.DT)
    return o, ST


def backward(q, k, v, g, initial_state, do, dST, scale: float, chunk_size: int, key_gate: bool):
    """(dq, dk, dv, dg, d initial_state) of ⟨dO, o⟩ + ⟨dS_T, S_T⟩ — see the module docstring."""
    _check(q, k, v, g, initial_state, chunk_size, key_gate)
    q, k, v, g, S0, do, dST = _contiguous(q, k, v, g, initial_state, do.to(q.dtype), dST.to(q.dtype))
    geo = _Geometry(q, v, chunk_size)
    if geo.NC == 0 or geo.NH == 0 or geo.K == 0 or geo.V == 0:
        dS0 = dST.clone() if geo.NC == 0 else torch.zeros_like(S0)
        return (torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v), torch.zeros_like(g), dS0)
    s, G, A, h, ST = _prologue(q, k, v, g, S0, scale, geo, key_gate)
    T, H, K, V, C, NC, NH = geo.T, geo.H, geo.K, geo.V, geo.C, geo.NC, geo.NH
    dh = q.new_empty((NH, NC, K, V))
    dS0 = S0.new_empty(S0.shape)
    _state_bwd[(geo.NK, geo.NV, NH)](q, do, G, dST, dh, dS0, s, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV,
                                     GATE_K=key_gate, DT=geo.DT)
    dq, dk, dv, dg = (t.new_empty(t.shape) for t in (q, k, v, g))
    dgam = q.new_empty((NH, T, K))
    if key_gate:
        _gla_dv[(geo.NV, NC, NH)](k, G, A, do, dh, dv, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV, DT=geo.DT)
        dA = q.new_empty((NH, T, C))
        _gla_dA[(NC, NH)](v, do, dA, T, H, V, C=C, BV=geo.BV, DT=geo.DT)
        _gla_dqk[(geo.NK3, NC * geo.NSUB, NH)](q, k, v, G, h, do, dh, dA, dq, dk, dgam, s, T, H, K, V, NC, C=C,
                                                BC=SUB, BK=geo.BK3, BV=geo.BV, NSUB=geo.NSUB, DT=geo.DT)
        _gate_grad[(geo.NK, NH)](dgam, ST, dST, dg, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV, GATE_K=True,
                                 DT=geo.DT)
    else:
        _simple_dv[(geo.NV, NC, NH)](q, k, G, do, dh, dv, s, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV, DT=geo.DT)
        _simple_dqk[(geo.NK, NC, NH)](q, k, v, G, h, do, dh, dq, dk, dgam, s, T, H, K, V, NC, C=C, BK=geo.BK,
                                      BV=geo.BV, DT=geo.DT)
        _gate_grad[(1, NH)](dgam, ST, dST, dg, T, H, K, V, NC, C=C, BK=geo.BK, BV=geo.BV, GATE_K=False, DT=geo.DT)
    return dq, dk, dv, dg, dS0


# --- torch.library registration -------------------------------------------------------------------
def _register(name: str, key_gate: bool):
    """Two custom ops, ``lrnnspec::{name}_chunk_fwd`` and ``lrnnspec::{name}_chunk_bwd``, with fake
    (meta) implementations, the backward op registered as the forward's autograd formula. The
    backward recomputes G, A and the chunk states from the saved inputs."""
    def fwd(q, k, v, g, initial_state, scale, chunk_size):
        return forward(q, k, v, g, initial_state, scale, chunk_size, key_gate)

    def bwd(q, k, v, g, initial_state, do, dfinal, scale, chunk_size):
        return backward(q, k, v, g, initial_state, do, dfinal, scale, chunk_size, key_gate)

    fwd.__name__, bwd.__name__ = f"{name}_chunk_fwd", f"{name}_chunk_bwd"
    fwd_op = torch.library.custom_op(
        f"lrnnspec::{name}_chunk_fwd", mutates_args=(),
        schema="(Tensor q, Tensor k, Tensor v, Tensor g, Tensor initial_state, float scale, int chunk_size)"
               " -> (Tensor, Tensor)")(fwd)
    bwd_op = torch.library.custom_op(
        f"lrnnspec::{name}_chunk_bwd", mutates_args=(),
        schema="(Tensor q, Tensor k, Tensor v, Tensor g, Tensor initial_state, Tensor do, Tensor dfinal, "
               "float scale, int chunk_size) -> (Tensor, Tensor, Tensor, Tensor, Tensor)")(bwd)

    @fwd_op.register_fake
    def _(q, k, v, g, initial_state, scale, chunk_size):
        return v.new_empty(v.shape), initial_state.new_empty(initial_state.shape)

    @bwd_op.register_fake
    def _(q, k, v, g, initial_state, do, dfinal, scale, chunk_size):
        return tuple(t.new_empty(t.shape) for t in (q, k, v, g, initial_state))

    def setup_context(ctx, inputs, output):
        q, k, v, g, initial_state, scale, chunk_size = inputs
        ctx.save_for_backward(q, k, v, g, initial_state)
        ctx.scale, ctx.chunk_size = scale, chunk_size

    def backward_formula(ctx, do, dfinal):
        q, k, v, g, initial_state = ctx.saved_tensors
        do = torch.zeros_like(v) if do is None else do
        dfinal = torch.zeros_like(initial_state) if dfinal is None else dfinal
        dq, dk, dv, dg, ds0 = bwd_op(q, k, v, g, initial_state, do, dfinal, ctx.scale, ctx.chunk_size)
        return dq, dk, dv, dg, ds0, None, None

    fwd_op.register_autograd(backward_formula, setup_context=setup_context)
    return fwd_op, bwd_op


gla_chunk_fwd, gla_chunk_bwd = _register("gla", key_gate=True)
simple_gla_chunk_fwd, simple_gla_chunk_bwd = _register("simple_gla", key_gate=False)
