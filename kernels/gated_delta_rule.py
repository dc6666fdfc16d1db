"""gated_delta_rule (Gated DeltaNet) in Triton: chunkwise UT (WY) forward and backward kernels.

Recurrence per (sequence, head), state S [K, V] (fp32; fp64 for fp64 inputs):

    S_t = (I − β_t k_t k_tᵀ) e^{g_t} S_{t−1} + β_t k_t v_tᵀ,        o_t = scale · S_tᵀ q_t

(g ≡ 0: DeltaNet, :mod:`.delta_rule`; read-out every n-th step: DeltaProduct, :mod:`.delta_product`).
Chunkwise, with C steps per chunk entering with S₀, G_t = Σ_{j≤t} g_j inside the chunk,
Γ_ts = e^{G_t − G_s} (s ≤ t, else 0) and the strictly lower A_ts = β_t Γ_ts (k_t·k_s) (s < t) —
the derivation is in :mod:`lrnnspec.impls.delta`, whose ``ut_core`` is the reference:

    Ā  = (I + A)⁻¹                                  [C, C]  blocked forward substitution (unit lower)
    W  = Ā (β ⊙ e^{G} ⊙ K),   U₀ = Ā (β ⊙ V)         [C, K], [C, V]
    U  = U₀ − W S₀                                   [C, V]  (= Ā (β ⊙ (V − e^{G} K S₀)))
    S_C = e^{G_C} S₀ + (e^{G_C − G} ⊙ K)ᵀ U
    O  = scale · [(e^{G_q} ⊙ Q) S₀ + ((Q Kᵀ) ⊙ Γ_q) U]

Every exponent is clamped to ≤ 0 before ``exp`` and the non-causal entries are then masked, so no
gate strength overflows; β ∈ [0, 2] needs nothing special (I + A is unit lower triangular).
With a read-out stride n (DeltaProduct), Q has C/n rows per chunk and row r reads the state after
step p_r = r·n + n − 1 of the chunk: G_q = G[p_r] and Γ_q[r, s] = e^{G[p_r] − G_s} (s ≤ p_r).

Kernels (Triton; under ``TRITON_INTERPRET=1`` on CPU), all in the compute dtype (fp32, or fp64 for
fp64 inputs), every ``tl.dot`` with ``input_precision="ieee"`` (no TF32):

* ``_fwd_prepare_kernel``  grid (NC, N·H): G, A, Ā (blocked forward substitution in registers:
  the 16-row diagonal blocks together in 15 masked ``tl.dot`` steps, then one step per block row), W, U₀;
  stores Ā [N,H,T,C], W [N,H,T,K] and U₀ into the U buffer [N,H,T,V];
* ``_fwd_state_kernel``    grid (N·H,): the only sequential part — loop over chunks: stores the
  entering state S_c [N,H,NC,K,V], U_c = U₀_c − W_c S_c (in place), S_{c+1}; stores the final state;
* ``_fwd_output_kernel``   grid (NC, N·H): O from S_c and U_c.

The backward (:mod:`.gated_delta_rule_bwd`) reuses Ā, W, U and the entering states.

Shapes of the op (dense, T a multiple of ``chunk_size``): q [N, T/n, H, K]; k [N, T, H, K];
v [N, T, H, V]; beta, g [N, T, H] (g optional); state [N, H, K, V]. Head dims need not be
powers of two (blocks are padded to a power of two ≥ 16 and masked). ``chunk_size`` ∈ {16, 32, 64}
for the public functions; the op takes any chunk that is a multiple of n (blocks are padded).

Public function: :func:`chunk_gated_delta_rule`, FLA's signature, through the shared driver of
:mod:`lrnnspec.impls.driver` (argument validation, GVA, varlen, any T, initial / final state) with
a :class:`~lrnnspec.impls.driver.Chunked` core that calls the Triton op ``lrnnspec::gated_delta_chunk_fwd``
(registered with ``torch.library``: fake kernel and autograd, so ``torch.compile`` and ``opcheck`` work).
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import triton
import triton.language as tl

from lrnnspec.impls.driver import Chunked, call, check_chunk_size
from lrnnspec.impls.delta_rule import normalize_qk
from lrnnspec.impls.registry import register_forms
from lrnnspec.spec.errors import SpecError

CONTRACTS = {"fp64": "fp64", "fp32": "fp32", "fp16": "mixed-fp16", "bf16": "mixed-bf16"}
"""Declared precision contracts (dtype → spec contract, recorded in the certificate): inputs in their
dtype, up-cast to fp32 (fp64 stays fp64); fp32 state; IEEE fp32 dot products (no TF32); the output
rounded to the input dtype."""

CHUNK_SIZES = (16, 32, 64)
# software-pipelining depth of the two chunk scans (forward state, backward state cotangent): they hold
# the [K, V] state, and Triton's default 3 stages of prefetched chunk tiles need 262 KB (forward) and
# 361 KB (backward) of shared memory at K = V = 128 in fp32 — over the H100's 227 KB; one stage: 64 / 160 KB
SCAN_STAGES = 1


def block(n: int, lo: int = 16) -> int:
    """The power-of-two block ≥ max(n, lo) that holds a dimension of size n (tl.dot needs ≥ 16)."""
    return max(lo, triton.next_power_of_2(max(int(n), 1)))


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_device(t: torch.Tensor) -> None:
    if t.device.type == "cpu" and not interpreting():
        raise RuntimeError("the lrnnspec Triton kernels got CPU tensors: run them on a GPU, or set "
                           "TRITON_INTERPRET=1 before importing triton to run them under the interpreter")


# --- shared device functions ---------------------------------------------------------------------
@triton.jit
def load_rows(ptr, n, t0, h, T, H, D, rows, mrows, cols, mcols):
    """Tile [rows, cols] of a contiguous [N, T, H, D] tensor at (n, t0 + rows, h, cols), 0 outside."""
    offs = ((n * T + t0 + rows)[:, None] * H + h) * D + cols[None, :]
    return tl.load(ptr + offs, mask=mrows[:, None] & mcols[None, :], other=0.0)


@triton.jit
def store_rows(ptr, x, n, t0, h, T, H, D, rows, mrows, cols, mcols):
    offs = ((n * T + t0 + rows)[:, None] * H + h) * D + cols[None, :]
    tl.store(ptr + offs, x, mask=mrows[:, None] & mcols[None, :])


@triton.jit
def load_steps(ptr, n, t0, h, T, H, rows, mrows):
    """Vector [rows] of a contiguous [N, T, H] tensor (β, g), 0 outside."""
    return tl.load(ptr + (n * T + t0 + rows) * H + h, mask=mrows, other=0.0)


@triton.jit
def load_mat(ptr, base, rows, mrows, cols, mcols, ld):
    """Tile of a row-major matrix with leading dimension ``ld`` starting at ``base``."""
    return tl.load(ptr + base + rows[:, None] * ld + cols[None, :], mask=mrows[:, None] & mcols[None, :], other=0.0)


@triton.jit
def store_mat(ptr, x, base, rows, mrows, cols, mcols, ld):
    tl.store(ptr + base + rows[:, None] * ld + cols[None, :], x, mask=mrows[:, None] & mcols[None, :])


@triton.jit
def chunk_gates(g_ptr, n, t0, h, T, H, rows, mrows, CHUNK: tl.constexpr):
    """(G [BC], G at the chunk's last step): the chunk-local cumulative log gate."""
    G = tl.cumsum(load_steps(g_ptr, n, t0, h, T, H, rows, mrows), 0)
    return G, tl.sum(tl.where(rows == CHUNK - 1, G, 0.0), 0)


@triton.jit
def readout_gates(G, rows, pos, EVERY: tl.constexpr):
    """G at the read-out steps p_r (an exact selection: one nonzero term per row)."""
    if EVERY == 1:
        return G
    else:
        return tl.sum(tl.where(rows[None, :] == pos[:, None], G[None, :], 0.0), 1)


@triton.jit
def lanes(K, V, CHUNK: tl.constexpr, EVERY: tl.constexpr, BC: tl.constexpr, BQ: tl.constexpr, BK: tl.constexpr,
          BV: tl.constexpr):
    """A chunk's index vectors and masks: its steps (rows), its read-out rows rq with read-out steps
    pos = rq·EVERY + EVERY − 1, key columns and value columns."""
    rows, rq = tl.arange(0, BC), tl.arange(0, BQ)
    ck, cv = tl.arange(0, BK), tl.arange(0, BV)
    return rows, rows < CHUNK, rq, rq < CHUNK // EVERY, rq * EVERY + EVERY - 1, ck, ck < K, cv, cv < V


@triton.jit
def causal_scores(q, k, g_ptr, n, t0, h, T, H, rows, mr, pos, mq, CHUNK: tl.constexpr, EVERY: tl.constexpr,
                  HAS_G: tl.constexpr):
    """(scores [BQ, BC], Gq): q kᵀ on the causal part — step j ≤ read-out step p_r — times e^{G_{p_r} − G_j}
    with gates, and the read-out gates Gq (zeros without gates)."""
    causal = (rows[None, :] <= pos[:, None]) & mq[:, None]
    qk = tl.dot(q, tl.trans(k), input_precision="ieee")
    if HAS_G:
        G, _ = chunk_gates(g_ptr, n, t0, h, T, H, rows, mr, CHUNK)
        Gq = readout_gates(G, rows, pos, EVERY)
        sc = tl.where(causal, qk * tl.exp(tl.minimum(Gq[:, None] - G[None, :], 0.0)), 0.0)
    else:
        Gq = tl.zeros_like(pos).to(tl.float32)
        sc = tl.where(causal, qk, 0.0)
    return sc, Gq


@triton.jit
def unit_lower_inverse(A, rows, cols, CHUNK: tl.constexpr, BT: tl.constexpr):
    """(I + A)⁻¹ for A strictly lower [BC, BC] (zero outside the chunk): blocked forward substitution
    with diagonal blocks of BT rows.

    1. The diagonal blocks D_bb, all at once: step i solves row i of every block,
       row r = e_r − Σ_{j<r} A[r, j] · row j, as one masked ``tl.dot`` (rows j < r of the block are
       final; the others are still identity rows and A[r, j ≥ r] = 0).
    2. The block rows b = 1, 2, …: X_b,<b = −D_bb⁻¹ Σ_{k<b} A_bk X_k,<b (earlier block rows final).
    Same arithmetic as row-by-row forward substitution, BT − 1 + BC/BT − 1 steps instead of C − 1."""
    eye = (rows[:, None] == cols[None, :]).to(A.dtype)
    same = (rows[:, None] // BT) == (cols[None, :] // BT)
    D = tl.where(same, A, 0.0)
    inv = eye
    for i in range(1, BT if CHUNK > BT else CHUNK):
        sel = (rows % BT) == i
        r = eye - tl.dot(tl.where(sel[:, None], D, 0.0), inv, input_precision="ieee")
        inv = tl.where(sel[:, None], r, inv)
    for b in range(1, (CHUNK + BT - 1) // BT):
        rb = (rows // BT) == b
        lower = rb[:, None] & ((cols // BT) < b)[None, :]
        y = tl.dot(tl.where(lower, A, 0.0), inv, input_precision="ieee")
        z = -tl.dot(tl.where(rb[:, None] & same, inv, 0.0), y, input_precision="ieee")
        inv = tl.where(lower, z, inv)
    return inv


# --- forward kernels -----------------------------------------------------------------------------
@triton.jit
def _fwd_prepare_kernel(k_ptr, v_ptr, beta_ptr, g_ptr, ai_ptr, w_ptr, u_ptr, T, H, K, V,
                        CHUNK: tl.constexpr, HAS_G: tl.constexpr,
                        BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    c = tl.program_id(0)
    nh = tl.program_id(1).to(tl.int64)
    n, h = nh // H, nh % H
    t0 = c * CHUNK
    rows, mr, _, _, _, ck, mk, cv, mv = lanes(K, V, CHUNK, 1, BC, BC, BK, BV)
    k = load_rows(k_ptr, n, t0, h, T, H, K, rows, mr, ck, mk)
    v = load_rows(v_ptr, n, t0, h, T, H, V, rows, mr, cv, mv)
    b = load_steps(beta_ptr, n, t0, h, T, H, rows, mr)
    strict = rows[:, None] > rows[None, :]
    kk = tl.dot(k, tl.trans(k), input_precision="ieee")
    if HAS_G:
        G, _ = chunk_gates(g_ptr, n, t0, h, T, H, rows, mr, CHUNK)
        gam = tl.exp(tl.minimum(G[:, None] - G[None, :], 0.0))
        A = tl.where(strict, kk * gam * b[:, None], 0.0)
        ke = k * tl.exp(G)[:, None]
    else:
        A = tl.where(strict, kk * b[:, None], 0.0)
        ke = k
    ai = unit_lower_inverse(A, rows, rows, CHUNK, 16)
    base = (nh * T + t0) * CHUNK
    store_mat(ai_ptr, ai, base, rows, mr, rows, mr, CHUNK)
    tb = ai * b[None, :]                                                     # (I + A)⁻¹ diag(β)
    w = tl.dot(tb, ke, input_precision="ieee")
    u0 = tl.dot(tb, v, input_precision="ieee")
    store_mat(w_ptr, w, (nh * T + t0) * K, rows, mr, ck, mk, K)
    store_mat(u_ptr, u0, (nh * T + t0) * V, rows, mr, cv, mv, V)


@triton.jit
def _fwd_state_kernel(k_ptr, g_ptr, w_ptr, u_ptr, s0_ptr, hs_ptr, sf_ptr, T, H, K, V, NC,
                      CHUNK: tl.constexpr, HAS_G: tl.constexpr,
                      BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    nh = tl.program_id(0).to(tl.int64)
    n, h = nh // H, nh % H
    rows, mr, _, _, _, ck, mk, cv, mv = lanes(K, V, CHUNK, 1, BC, BC, BK, BV)
    S = load_mat(s0_ptr, nh * K * V, ck, mk, cv, mv, V)
    for c in range(NC):
        t0 = c * CHUNK
        store_mat(hs_ptr, S, (nh * NC + c) * K * V, ck, mk, cv, mv, V)
        w = load_mat(w_ptr, (nh * T + t0) * K, rows, mr, ck, mk, K)
        u = load_mat(u_ptr, (nh * T + t0) * V, rows, mr, cv, mv, V)
        u = u - tl.dot(w, S, input_precision="ieee")
        store_mat(u_ptr, u, (nh * T + t0) * V, rows, mr, cv, mv, V)
        k = load_rows(k_ptr, n, t0, h, T, H, K, rows, mr, ck, mk)
        if HAS_G:
            G, Gl = chunk_gates(g_ptr, n, t0, h, T, H, rows, mr, CHUNK)
            kt = k * tl.exp(Gl - G)[:, None]
            S = S * tl.exp(Gl) + tl.dot(tl.trans(kt), u, input_precision="ieee")
        else:
            S = S + tl.dot(tl.trans(k), u, input_precision="ieee")
    store_mat(sf_ptr, S, nh * K * V, ck, mk, cv, mv, V)


@triton.jit
def _fwd_output_kernel(q_ptr, k_ptr, g_ptr, u_ptr, hs_ptr, o_ptr, scale, T, H, K, V, NC,
                       CHUNK: tl.constexpr, EVERY: tl.constexpr, HAS_G: tl.constexpr,
                       BC: tl.constexpr, BQ: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr):
    c = tl.program_id(0)
    nh = tl.program_id(1).to(tl.int64)
    n, h = nh // H, nh % H
    CQ: tl.constexpr = CHUNK // EVERY
    t0 = c * CHUNK
    rows, mr, rq, mq, pos, ck, mk, cv, mv = lanes(K, V, CHUNK, EVERY, BC, BQ, BK, BV)
    q = load_rows(q_ptr, n, c * CQ, h, T // EVERY, H, K, rq, mq, ck, mk)
    k = load_rows(k_ptr, n, t0, h, T, H, K, rows, mr, ck, mk)
    u = load_mat(u_ptr, (nh * T + t0) * V, rows, mr, cv, mv, V)
    S = load_mat(hs_ptr, (nh * NC + c) * K * V, ck, mk, cv, mv, V)
    sc, Gq = causal_scores(q, k, g_ptr, n, t0, h, T, H, rows, mr, pos, mq, CHUNK, EVERY, HAS_G)
    if HAS_G:
        q = q * tl.exp(Gq)[:, None]
    o = tl.dot(q, S, input_precision="ieee") + tl.dot(sc, u, input_precision="ieee")
    store_rows(o_ptr, o * scale, n, c * CQ, h, T // EVERY, H, V, rq, mq, cv, mv)


# --- launchers -------------------------------------------------------------------------------------
def _check_op_args(q, k, v, g, beta, state, chunk_size, every):
    """Shapes and dtypes of the dense op; returns (N, T, H, K, V, NC)."""
    for name, t in (("q", q), ("k", k), ("v", v), ("beta", beta), ("state", state), ("g", g)):
        if t is None and name == "g":
            continue
        if not isinstance(t, torch.Tensor):
            raise SpecError(name, f"must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in (torch.float32, torch.float64):
            raise SpecError(name, f"the op computes in float32 (or float64); got {t.dtype} (the public "
                                  f"functions up-cast)")
        if t.dtype != v.dtype:
            raise SpecError(name, f"must have v's dtype {v.dtype}, got {t.dtype}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise SpecError("every", f"must be a positive integer, got {every!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1 or chunk_size % every:
        raise SpecError("chunk_size", f"must be a positive multiple of every={every}, got {chunk_size!r}")
    if k.dim() != 4 or v.dim() != 4 or q.dim() != 4:
        raise SpecError("k", f"q, k, v must be [N, T, H, dim]; got {tuple(q.shape)}, {tuple(k.shape)}, "
                             f"{tuple(v.shape)}")
    N, T, H, K = k.shape
    V = v.shape[-1]
    if T % chunk_size:
        raise SpecError("chunk_size", f"T = {T} must be a multiple of chunk_size = {chunk_size}")
    if tuple(v.shape[:3]) != (N, T, H):
        raise SpecError("v", f"must be [{N}, {T}, {H}, V], got {tuple(v.shape)}")
    if tuple(q.shape) != (N, T // every, H, K):
        raise SpecError("q", f"must be [{N}, {T // every}, {H}, {K}], got {tuple(q.shape)}")
    for name, t in (("beta", beta), ("g", g)):
        if t is not None and tuple(t.shape) != (N, T, H):
            raise SpecError(name, f"must be [{N}, {T}, {H}], got {tuple(t.shape)}")
    if tuple(state.shape) != (N, H, K, V):
        raise SpecError("state", f"must be [{N}, {H}, {K}, {V}], got {tuple(state.shape)}")
    return N, T, H, K, V, T // chunk_size


def _blocks(K, V, chunk_size, every):
    return dict(BC=block(chunk_size), BK=block(K), BV=block(V)), block(chunk_size // every)


def chunk_fwd(q, k, v, g, beta, state, scale: float, chunk_size: int, every: int = 1):
    """Launch the forward kernels. Returns (o [N,T/n,H,V], final state [N,H,K,V], Ā [N,H,T,C],
    W [N,H,T,K], U [N,H,T,V], entering states [N,H,NC,K,V]) in v's dtype."""
    N, T, H, K, V, NC = _check_op_args(q, k, v, g, beta, state, chunk_size, every)
    q, k, v, beta, state = (t.contiguous() for t in (q, k, v, beta, state))
    g = None if g is None else g.contiguous()
    dt, dev = v.dtype, v.device
    o = torch.zeros((N, T // every, H, V), dtype=dt, device=dev)
    ai = torch.zeros((N, H, T, chunk_size), dtype=dt, device=dev)
    w = torch.zeros((N, H, T, K), dtype=dt, device=dev)
    u = torch.zeros((N, H, T, V), dtype=dt, device=dev)
    hs = torch.zeros((N, H, NC, K, V), dtype=dt, device=dev)
    sf = state.clone()
    if N * H == 0 or NC == 0:
        return o, sf, ai, w, u, hs
    check_device(v)
    blk, BQ = _blocks(K, V, chunk_size, every)
    has_g = g is not None
    gp = g if has_g else beta   # never read when HAS_G is False
    _fwd_prepare_kernel[(NC, N * H)](k, v, beta, gp, ai, w, u, T, H, K, V, CHUNK=chunk_size, HAS_G=has_g, **blk)
    _fwd_state_kernel[(N * H,)](k, gp, w, u, state, hs, sf, T, H, K, V, NC, CHUNK=chunk_size, HAS_G=has_g,
                                num_stages=SCAN_STAGES, **blk)
    _fwd_output_kernel[(NC, N * H)](q, k, gp, u, hs, o, float(scale), T, H, K, V, NC, CHUNK=chunk_size,
                                    EVERY=every, HAS_G=has_g, BQ=BQ, **blk)
    return o, sf, ai, w, u, hs


# --- torch.library registration ---------------------------------------------------------------------
@torch.library.custom_op("lrnnspec::gated_delta_chunk_fwd", mutates_args=())
def gated_delta_chunk_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: Optional[torch.Tensor],
                          beta: torch.Tensor, state: torch.Tensor, scale: float, chunk_size: int,
                          every: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                   torch.Tensor, torch.Tensor]:
    """Chunkwise (gated) delta rule, Triton. Returns (o, final state, Ā, W, U, entering states); the
    last four are saved for the backward and are not differentiable."""
    return chunk_fwd(q, k, v, g, beta, state, scale, chunk_size, every)


@gated_delta_chunk_fwd.register_fake
def _(q, k, v, g, beta, state, scale, chunk_size, every=1):
    N, T, H, K, V, NC = _check_op_args(q, k, v, g, beta, state, chunk_size, every)
    new = v.new_empty
    return (new((N, T // every, H, V)), new((N, H, K, V)), new((N, H, T, chunk_size)), new((N, H, T, K)),
            new((N, H, T, V)), new((N, H, NC, K, V)))


from .gated_delta_rule_bwd import gated_delta_chunk_bwd  # noqa: E402  (registers lrnnspec::gated_delta_chunk_bwd)


def _setup_context(ctx, inputs, output):
    q, k, v, g, beta, state, scale, chunk_size, every = inputs
    _, _, ai, w, u, hs = output
    ctx.mark_non_differentiable(ai, w, u, hs)
    ctx.save_for_backward(q, k, v, g, beta, ai, w, u, hs)
    ctx.scale, ctx.chunk_size, ctx.every, ctx.has_g = scale, chunk_size, every, g is not None


def _backward(ctx, do, dsf, *_):
    q, k, v, g, beta, ai, w, u, hs = ctx.saved_tensors
    if do is None:
        do = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=v.dtype, device=v.device)
    if dsf is None:
        dsf = torch.zeros((k.shape[0], k.shape[2], k.shape[3], v.shape[3]), dtype=v.dtype, device=v.device)
    dq, dk, dv, dg, dbeta, ds0 = gated_delta_chunk_bwd(q, k, v, g, beta, ai, w, u, hs, do, dsf, ctx.scale,
                                                       ctx.chunk_size, ctx.every)
    return dq, dk, dv, (dg if ctx.has_g else None), dbeta, ds0, None, None, None


torch.library.register_autograd("lrnnspec::gated_delta_chunk_fwd", _backward, setup_context=_setup_context)


def gated_delta_chunk(q, k, v, g, beta, state, scale: float, chunk_size: int, every: int = 1):
    """The differentiable dense core: (o [N,T/n,H,V], final state [N,H,K,V])."""
    o, sf, *_ = gated_delta_chunk_fwd(q, k, v, g, beta, state, float(scale), int(chunk_size), int(every))
    return o, sf


# --- public function (FLA's signature, the shared driver) ----------------------------------------
def delta_core(xs, state, p, size):
    """:class:`~lrnnspec.impls.driver.Chunked` core of delta_rule and gated_delta_rule (g optional)."""
    o, S = gated_delta_chunk(xs["q"], xs["k"], xs["v"], xs.get("g"), xs["beta"], state["S"], p.scale, size)
    return o, {"S": S}


CHUNKED = Chunked(prepare=lambda x, p: {n: x[n] for n in ("q", "k", "v", "beta", "g")}, core=delta_core)


def chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                           use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size=64):
    """FLA ``chunk_gated_delta_rule``: q, k [B,T,H,K] (k unit-norm, or ``use_qk_l2norm_in_kernel``);
    v [B,T,HV,V] (HV % H == 0); g [B,T,HV] ≤ 0; beta [B,T,HV] ∈ [0, 2]; initial_state [N,HV,K,V];
    ``chunk_size`` ∈ {16, 32, 64}. Returns (o [B,T,HV,V] in v's dtype, final state fp32 or None)."""
    check_chunk_size(chunk_size, CHUNK_SIZES)
    q, k = normalize_qk(q, k, use_qk_l2norm_in_kernel)
    return call("chunk", "gated_delta_rule", CHUNKED, dict(q=q, k=k, v=v, g=g, beta=beta), scale=scale,
                initial_state=initial_state, output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                chunk_size=chunk_size)


FORMS = register_forms("gated_delta_rule", {"chunk": chunk_gated_delta_rule}, contracts=CONTRACTS)
