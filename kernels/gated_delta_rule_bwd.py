"""Backward of the chunkwise (gated) delta rule in Triton (forward: :mod:`.gated_delta_rule`).

Per chunk (notation of the forward: Ā = (I + A)⁻¹, U = Ā (β ⊙ R), R = V − Kₑ S₀, Kₑ = e^{G} ⊙ K,
K̃ = e^{G_C − G} ⊙ K, Q̃ = e^{G_q} ⊙ Q, P = (Q Kᵀ) ⊙ Γ_q causal), given dO and dS_C, the
cotangent of the state *leaving* the chunk:

    dU   = scale · Pᵀ dO + K̃ dS_C                         (O and S_C read U)
    dS₀  = scale · Q̃ᵀ dO + e^{G_C} dS_C − Wᵀ dU             (the reverse state recurrence)
    dY   = Āᵀ dU,  dR = β ⊙ dY                              (U = Ā Y, Y = β ⊙ R)
    dV   = dR,     dKₑ = −dR S₀ᵀ,    dβ = Σ_v dY ⊙ R + Σ_s dA ⊙ (KKᵀ ⊙ Γ)
    dA   = −(dY Uᵀ) ⊙ strict-lower                          (d(I + A)⁻¹: −Āᵀ dU Uᵀ)
    dK   = e^{G} ⊙ dKₑ + (D + Dᵀ) K + dPᵀ Q + e^{G_C − G} ⊙ (U dS_Cᵀ),  D = dA ⊙ β ⊙ Γ,
           dP = scale · (dO Uᵀ) ⊙ Γ_q causal
    dQ   = dP K + scale · e^{G_q} ⊙ (dO S₀ᵀ)
    dG   = Σ_k Kₑ ⊙ dKₑ + rows − cols of (dA ⊙ β ⊙ KKᵀ ⊙ Γ) − cols of (dP ⊙ QKᵀ) [+ rows, at p_r]
           + Σ_k Q̃ ⊙ (scale dO S₀ᵀ) [at p_r] − Σ_k K̃ ⊙ dK̃ + (Σ K̃ ⊙ dK̃ + e^{G_C} ⟨S₀, dS_C⟩) [at C − 1]
    dg   = reverse cumulative sum of dG inside the chunk.

Kernels, all in the compute dtype with ieee ``tl.dot``:

* ``_bwd_du_kernel``     grid (NC, N·H): dU_loc = scale · Pᵀ dO (chunk-parallel part of dU);
* ``_bwd_state_kernel``  grid (N·H,): the reverse scan over chunks; stores dS_C of every chunk
  [N,H,NC,K,V], completes dU in place and returns dS₀ of the first chunk (the initial state's gradient);
* ``_bwd_local_kernel``  grid (NC, N·H): every local gradient (dq, dk, dv, dβ, dg) from the saved
  Ā, U and entering states S₀, and the stored dS_C, dU; the value axis in blocks of
  ``LOCAL_VALUE_BLOCK`` columns (the sums over it accumulated), so no [K, V] tile is held whole.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from .gated_delta_rule import (SCAN_STAGES, _blocks, _check_op_args, causal_scores, check_device, chunk_gates,
                               lanes, load_mat, load_rows, load_steps, readout_gates, store_mat, store_rows)

# value columns per step of the local kernel's loop: holding S₀ and dS_C whole ([K, V] each, beside the
# [C, K] and [C, C] tiles) kept Triton from finishing the compilation for sm_90 at K = V = 128 (> 15 min)
LOCAL_VALUE_BLOCK = 32


@triton.jit
def _bwd_du_kernel(q_ptr, k_ptr, g_ptr, do_ptr, du_ptr, scale, T, H, K, V,
                   CHUNK: tl.constexpr, EVERY: tl.constexpr, HAS_G: tl.constexpr,
                   BC: tl.constexpr, BQ: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    c = tl.program_id(0)
    nh = tl.program_id(1).to(tl.int64)
    n, h = nh // H, nh % H
    CQ: tl.constexpr = CHUNK // EVERY
    t0 = c * CHUNK
    rows, mr, rq, mq, pos, ck, mk, cv, mv = lanes(K, V, CHUNK, EVERY, BC, BQ, BK, BV)
    q = load_rows(q_ptr, n, c * CQ, h, T // EVERY, H, K, rq, mq, ck, mk)
    do = load_rows(do_ptr, n, c * CQ, h, T // EVERY, H, V, rq, mq, cv, mv)
    k = load_rows(k_ptr, n, t0, h, T, H, K, rows, mr, ck, mk)
    sc, _ = causal_scores(q, k, g_ptr, n, t0, h, T, H, rows, mr, pos, mq, CHUNK, EVERY, HAS_G)
    du = tl.dot(tl.trans(sc), do, input_precision="ieee") * scale
    store_mat(du_ptr, du, (nh * T + t0) * V, rows, mr, cv, mv, V)


@triton.jit
def _bwd_state_kernel(q_ptr, k_ptr, g_ptr, w_ptr, do_ptr, du_ptr, dsf_ptr, dhs_ptr, ds0_ptr, scale, T, H, K, V, NC,
                      CHUNK: tl.constexpr, EVERY: tl.constexpr, HAS_G: tl.constexpr,
                      BC: tl.constexpr, BQ: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    nh = tl.program_id(0).to(tl.int64)
    n, h = nh // H, nh % H
    CQ: tl.constexpr = CHUNK // EVERY
    rows, mr, rq, mq, pos, ck, mk, cv, mv = lanes(K, V, CHUNK, EVERY, BC, BQ, BK, BV)
    dS = load_mat(dsf_ptr, nh * K * V, ck, mk, cv, mv, V)
    for i in range(NC):
        c = NC - 1 - i
        t0 = c * CHUNK
        store_mat(dhs_ptr, dS, (nh * NC + c) * K * V, ck, mk, cv, mv, V)
        k = load_rows(k_ptr, n, t0, h, T, H, K, rows, mr, ck, mk)
        q = load_rows(q_ptr, n, c * CQ, h, T // EVERY, H, K, rq, mq, ck, mk)
        do = load_rows(do_ptr, n, c * CQ, h, T // EVERY, H, V, rq, mq, cv, mv)
        w = load_mat(w_ptr, (nh * T + t0) * K, rows, mr, ck, mk, K)
        du = load_mat(du_ptr, (nh * T + t0) * V, rows, mr, cv, mv, V)
        if HAS_G:
            G, Gl = chunk_gates(g_ptr, n, t0, h, T, H, rows, mr, CHUNK)
            Gq = readout_gates(G, rows, pos, EVERY)
            k = k * tl.exp(Gl - G)[:, None]
            q = q * tl.exp(Gq)[:, None]
            carry = dS * tl.exp(Gl)
        else:
            carry = dS
        du = du + tl.dot(k, dS, input_precision="ieee")
        store_mat(du_ptr, du, (nh * T + t0) * V, rows, mr, cv, mv, V)
        dS = carry + tl.dot(tl.trans(q), do, input_precision="ieee") * scale \
            - tl.dot(tl.trans(w), du, input_precision="ieee")
    store_mat(ds0_ptr, dS, nh * K * V, ck, mk, cv, mv, V)


@triton.jit
def _bwd_local_kernel(q_ptr, k_ptr, v_ptr, beta_ptr, g_ptr, ai_ptr, u_ptr, hs_ptr, do_ptr, du_ptr, dhs_ptr,
                      dq_ptr, dk_ptr, dv_ptr, dbeta_ptr, dg_ptr, scale, T, H, K, V, NC,
                      CHUNK: tl.constexpr, EVERY: tl.constexpr, HAS_G: tl.constexpr,
                      BC: tl.constexpr, BQ: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, VB: tl.constexpr):
    c = tl.program_id(0)
    nh = tl.program_id(1).to(tl.int64)
    n, h = nh // H, nh % H
    CQ: tl.constexpr = CHUNK // EVERY
    t0 = c * CHUNK
    rows, mr, rq, mq, pos, ck, mk, cv, mv = lanes(K, V, CHUNK, EVERY, BC, BQ, BK, BV)
    q = load_rows(q_ptr, n, c * CQ, h, T // EVERY, H, K, rq, mq, ck, mk)
    k = load_rows(k_ptr, n, t0, h, T, H, K, rows, mr, ck, mk)
    b = load_steps(beta_ptr, n, t0, h, T, H, rows, mr)
    ai = load_mat(ai_ptr, (nh * T + t0) * CHUNK, rows, mr, rows, mr, CHUNK)
    strict = rows[:, None] > rows[None, :]
    causal = (rows[None, :] <= pos[:, None]) & mq[:, None]
    if HAS_G:
        G, Gl = chunk_gates(g_ptr, n, t0, h, T, H, rows, mr, CHUNK)
        eG = tl.exp(G)
        ke = k * eG[:, None]
    else:
        ke = k
    # every product that sums over the value axis, accumulated over blocks of VB value columns (the whole
    # [K, V] tiles S₀ and dS_C are never held at once: at K = V = 128 they made the kernel uncompilable)
    dke = tl.zeros([BC, BK], dtype=k.dtype)        # −dR S₀ᵀ
    dqs = tl.zeros([BQ, BK], dtype=k.dtype)        # dO S₀ᵀ
    dkt = tl.zeros([BC, BK], dtype=k.dtype)        # U dS_Cᵀ
    dyu = tl.zeros([BC, BC], dtype=k.dtype)        # dY Uᵀ
    dou = tl.zeros([BQ, BC], dtype=k.dtype)        # dO Uᵀ
    dyr = tl.zeros([BC], dtype=k.dtype)            # Σ_v dY ⊙ R
    sds = tl.zeros([BK], dtype=k.dtype)            # ⟨S₀, dS_C⟩ by rows
    for v0 in range(0, V, VB):
        cb = v0 + tl.arange(0, VB)
        mb = cb < V
        do = load_rows(do_ptr, n, c * CQ, h, T // EVERY, H, V, rq, mq, cb, mb)
        v = load_rows(v_ptr, n, t0, h, T, H, V, rows, mr, cb, mb)
        u = load_mat(u_ptr, (nh * T + t0) * V, rows, mr, cb, mb, V)
        du = load_mat(du_ptr, (nh * T + t0) * V, rows, mr, cb, mb, V)
        s0 = load_mat(hs_ptr, (nh * NC + c) * K * V, ck, mk, cb, mb, V)
        dsc = load_mat(dhs_ptr, (nh * NC + c) * K * V, ck, mk, cb, mb, V)
        # the UT transform: U = Ā (β ⊙ (V − Kₑ S₀))
        dy = tl.dot(tl.trans(ai), du, input_precision="ieee")
        dr = dy * b[:, None]
        r = v - tl.dot(ke, s0, input_precision="ieee")
        dke -= tl.dot(dr, tl.trans(s0), input_precision="ieee")
        dyu += tl.dot(dy, tl.trans(u), input_precision="ieee")
        dyr += tl.sum(dy * r, 1)
        # the read-out O = scale · (Q̃ S₀ + (QKᵀ ⊙ Γ_q) U) and the state passed on S_C = e^{G_C} S₀ + K̃ᵀ U
        dou += tl.dot(do, tl.trans(u), input_precision="ieee")
        dqs += tl.dot(do, tl.trans(s0), input_precision="ieee")
        dkt += tl.dot(u, tl.trans(dsc), input_precision="ieee")
        sds += tl.sum(s0 * dsc, 1)
        store_rows(dv_ptr, dr, n, t0, h, T, H, V, rows, mr, cb, mb)
    kk = tl.dot(k, tl.trans(k), input_precision="ieee")
    qk = tl.dot(q, tl.trans(k), input_precision="ieee")
    if HAS_G:
        Gq = readout_gates(G, rows, pos, EVERY)
        gam = tl.where(strict, tl.exp(tl.minimum(G[:, None] - G[None, :], 0.0)), 0.0)
        gam_q = tl.where(causal, tl.exp(tl.minimum(Gq[:, None] - G[None, :], 0.0)), 0.0)
        kt = k * tl.exp(Gl - G)[:, None]
        eq = tl.exp(Gq)
    else:
        gam = tl.where(strict, 1.0, 0.0).to(k.dtype)
        gam_q = tl.where(causal, 1.0, 0.0).to(k.dtype)
    da = tl.where(strict, -dyu, 0.0)
    pa = kk * gam                                                            # A = β ⊙ pa (strict)
    db = dyr + tl.sum(da * pa, 1)
    dkk = da * b[:, None] * gam
    dk = tl.dot(dkk, k, input_precision="ieee") + tl.dot(tl.trans(dkk), k, input_precision="ieee")
    dp = dou * scale * gam_q
    dq_state = dqs * scale
    dk += tl.dot(tl.trans(dp), q, input_precision="ieee")
    if HAS_G:
        dq = tl.dot(dp, k, input_precision="ieee") + dq_state * eq[:, None]
        dk += dke * eG[:, None] + dkt * tl.exp(Gl - G)[:, None]
        dgam = da * b[:, None] * pa                                         # ∂/∂Γ ⊙ Γ of the A path
        dgam_q = dp * qk                                                    # ... of the read-out
        dgq = tl.sum(dgam_q, 1) + tl.sum(dq_state * q, 1) * eq
        dG = tl.sum(ke * dke, 1) + tl.sum(dgam, 1) - tl.sum(dgam, 0) - tl.sum(dgam_q, 0)
        if EVERY == 1:
            dG += dgq
        else:
            dG += tl.sum(tl.where(rows[:, None] == pos[None, :], dgq[None, :], 0.0), 1)
        e = tl.sum(kt * dkt, 1)
        dGl = tl.sum(e, 0) + tl.exp(Gl) * tl.sum(sds, 0)
        dG = tl.where(mr, dG - e, 0.0) + tl.where(rows == CHUNK - 1, dGl, 0.0)
        dg = tl.cumsum(dG, 0, reverse=True)
        tl.store(dg_ptr + (n * T + t0 + rows) * H + h, dg, mask=mr)
    else:
        dq = tl.dot(dp, k, input_precision="ieee") + dq_state
        dk += dke + dkt
    store_rows(dq_ptr, dq, n, c * CQ, h, T // EVERY, H, K, rq, mq, ck, mk)
    store_rows(dk_ptr, dk, n, t0, h, T, H, K, rows, mr, ck, mk)
    tl.store(dbeta_ptr + (n * T + t0 + rows) * H + h, db, mask=mr)


def chunk_bwd(q, k, v, g, beta, ai, w, u, hs, do, dsf, scale: float, chunk_size: int, every: int = 1):
    """Launch the backward kernels; returns (dq, dk, dv, dg (empty when g is None), dbeta, d initial state)."""
    dt, dev = v.dtype, v.device
    N, T, H, K, V, NC = _check_op_args(q, k, v, g, beta, dsf.to(dt), chunk_size, every)
    q, k, v, beta, do, dsf = (t.contiguous() for t in (q, k, v, beta, do.to(dt), dsf.to(dt)))
    g = None if g is None else g.contiguous()
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    dbeta = torch.zeros_like(beta)
    dg = torch.zeros_like(g) if g is not None else v.new_zeros((0,))
    if N * H == 0 or NC == 0:
        return dq, dk, dv, dg, dbeta, dsf.clone()
    check_device(v)
    blk, BQ = _blocks(K, V, chunk_size, every)
    has_g = g is not None
    gp = g if has_g else beta
    du = torch.zeros((N, H, T, V), dtype=dt, device=dev)
    dhs = torch.zeros((N, H, NC, K, V), dtype=dt, device=dev)
    ds0 = torch.zeros((N, H, K, V), dtype=dt, device=dev)
    meta = dict(CHUNK=chunk_size, EVERY=every, HAS_G=has_g, BQ=BQ, **blk)
    _bwd_du_kernel[(NC, N * H)](q, k, gp, do, du, float(scale), T, H, K, V, **meta)
    _bwd_state_kernel[(N * H,)](q, k, gp, w, do, du, dsf, dhs, ds0, float(scale), T, H, K, V, NC,
                                num_stages=SCAN_STAGES, **meta)
    _bwd_local_kernel[(NC, N * H)](q, k, v, beta, gp, ai, u, hs, do, du, dhs, dq, dk, dv, dbeta,
                                   dg if has_g else dbeta, float(scale), T, H, K, V, NC,
                                   VB=min(LOCAL_VALUE_BLOCK, blk["BV"]), **meta)
    return dq, dk, dv, dg, dbeta, ds0


@torch.library.custom_op("lrnnspec::gated_delta_chunk_bwd", mutates_args=())
def gated_delta_chunk_bwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: Optional[torch.Tensor],
                          beta: torch.Tensor, ai: torch.Tensor, w: torch.Tensor, u: torch.Tensor, hs: torch.Tensor,
                          do: torch.Tensor, dsf: torch.Tensor, scale: float, chunk_size: int,
                          every: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                   torch.Tensor, torch.Tensor]:
    """Gradients (dq, dk, dv, dg, dbeta, d initial state) of the chunk op given dO and the final-state
    cotangent dS_final; dg is an empty tensor when g is None."""
    return chunk_bwd(q, k, v, g, beta, ai, w, u, hs, do, dsf, scale, chunk_size, every)


@gated_delta_chunk_bwd.register_fake
def _(q, k, v, g, beta, ai, w, u, hs, do, dsf, scale, chunk_size, every=1):
    dg = torch.empty_like(g) if g is not None else v.new_empty((0,))
    return (torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), dg, torch.empty_like(beta),
            torch.empty_like(dsf))
