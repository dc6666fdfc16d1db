"""The diagonal linear scan h_t = a_t ⊙ h_{t−1} + b_t, chunked, and Mamba's S6 built on it.

**Scan.** Pairs (a_t, b_t) compose associatively, (a₂, b₂)∘(a₁, b₁) = (a₂a₁, a₂b₁ + b₂), with
no division and no logarithm, so every method below is exact in real arithmetic for any real a
(negative — S6's eigenvalue_range "[-1,1]" — and zero included). Over chunks of L steps
(a, b [N, NC·L, *S]; S the state's shape):

* ``"two_level"``: (i) per chunk, the composed pair (P_c, s_c) = (Π_t a_t, h_L from 0) by L
  sequential steps, each vectorized over all N·NC chunks; (ii) the entering states
  h⁽ᶜ⁾ = P_{c−1} h⁽ᶜ⁻¹⁾ + s_{c−1}, NC steps on [N, *S]; (iii) the L steps again from h⁽ᶜ⁾,
  writing h over b. Work 3 multiply-adds per element, ~5 passes over memory, 3L + 2NC torch calls.
* ``"doubling"``: Hillis–Steele within each chunk — log₂L levels of
  (a_t, b_t) ← (a_t a_{t−2ʲ}, a_t b_{t−2ʲ} + b_t) over all chunks at once — then the same carry
  and a fix-up h_t = b_t + A_t h⁽ᶜ⁾ (A_t the in-chunk prefix product). Few torch calls, but
  log₂L out-of-place passes over both a and b.

**S6** (:func:`selective_scan_core`) is one autograd function, so no graph of T steps is built:
forward a = e^{ΔA} (or 2e^{ΔA} − 1), b = (Δu) ⊗ B, h = scan(a, b, h₀), y_t = Σ_n C_t[n] h_t[·, n];
backward the adjoint scan g_t = C_t ⊗ ∂y_t + a_{t+1} g_{t+1} (after the last step: ∂h_T), then
∂a_t = g_t ⊙ h_{t−1}, ∂b_t = g_t, ∂h₀ = a_1 ⊙ g_1 and the chain rule to Δ, A, B, C, u. Methods:
``"fused"`` (the default, :class:`_FusedS6`: the two-level scan in chunk-major layout, b and the
adjoint's drive formed slice by slice in cache-sized buffers, y and every gradient contracted
while the slice is in cache), ``"two_level"`` / ``"doubling"`` (:class:`_MaterializedS6`: a and b
built as [N,T,D,NS] tensors, then :func:`scan`).

**Choice, measured** (T = 4096, B = 1, D = 256, NS = 16, fp32, this repo's 2-core CPU; numbers
in :mod:`lrnnspec.impls.mamba`): "fused" is fastest: forward ≈ 2× "two_level" (whose [N,T,D,NS]
tensors above 32 MB are fresh mmap allocations, page-faulted on every call) and ~2.5× forward+
backward; "two_level" beats "doubling" by 2–3× (doubling's log₂L full passes cost more than the
loop's per-call overhead saves). S6's transition is diagonal per (d, n): a chunk offers no matmul,
the cost is memory traffic and exp, and the fused two-level scheme makes the fewest passes. A
log-space form (h_t = e^{G_t}(h₀ + Σ_{s≤t} e^{−G_s} b_s), G the in-chunk cumsum of ΔA) needs no
loop, but e^{−G_s} overflows once |Σ ΔA| > 88 within a chunk (float32) — routine for S6's Δ·A —
and does not exist for "[-1,1]" (a < 0 has no real logarithm); its stable variant (pairwise
e^{G_t − G_s}, [L, L, D, NS] per chunk) costs L× the memory: rejected.
Shapes: Δ, u [N,T,D]; A [D,NS]; B, C [N,T,NS]; h₀ [N,D,NS]; y [N,T,D]; T a multiple of L.
"""

from __future__ import annotations

import torch

METHODS = ("two_level", "doubling")          # of :func:`scan`
S6_METHODS = ("auto", "fused", "two_level", "doubling")  # of :func:`selective_scan_core`


# --- scans (no autograd; may overwrite b) ------------------------------------------------------------
def scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, size: int, method: str = "two_level",
         reverse: bool = False):
    """h_t = a_t ⊙ h_{t∓1} + b_t along axis 1 (forward: h_0 = h0; ``reverse``: from the end, h_{T+1} = h0).

    a, b [N, T, *S] (T a multiple of ``size``), h0 [N, *S]. Returns (h [N, T, *S] — b's storage
    for ``"two_level"`` —, h at the far end [N, *S])."""
    if a.shape[1] == 0:
        return b, h0.clone()
    if reverse:
        a, b = a.flip(1), b.flip(1)
        h, last = scan(a, b, h0, size, method)
        return h.flip(1), last
    if method == "two_level":
        return _two_level(a, b, h0, size)
    if method == "doubling":
        return _doubling(a, b, h0, size)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _carry(P, s, h0):
    """Entering states of every chunk from the composed pairs P, s [N, NC, *S]; and the final state."""
    entering = torch.empty_like(s)
    h = h0
    for E_c, s_c, P_c in zip(entering.unbind(1), s.unbind(1), P.unbind(1)):
        E_c.copy_(h)
        h = torch.addcmul(s_c, P_c, h)
    return entering, h


def _two_level(a, b, h0, size):
    n, t, *rest = a.shape
    nc = t // size
    a = a.reshape(n, nc, size, *rest)
    b = b.reshape(n, nc, size, *rest)
    s = b[:, :, 0].clone()
    P = a[:, :, 0].clone()
    for j in range(1, size):                       # (i) composed pair of each chunk
        torch.addcmul(b[:, :, j], a[:, :, j], s, out=s)
        P.mul_(a[:, :, j])
    entering, last = _carry(P, s, h0)              # (ii)
    b[:, :, 0].addcmul_(a[:, :, 0], entering)      # (iii) h over b
    for j in range(1, size):
        b[:, :, j].addcmul_(a[:, :, j], b[:, :, j - 1])
    return b.reshape(n, t, *rest), last


def _doubling(a, b, h0, size):
    n, t, *rest = a.shape
    nc = t // size
    A = a.reshape(n, nc, size, *rest)
    B = b.reshape(n, nc, size, *rest)
    step = 1
    while step < size:                             # Hillis–Steele: prefix pairs within each chunk
        B = torch.cat([B[:, :, :step], torch.addcmul(B[:, :, step:], A[:, :, step:], B[:, :, :-step])], dim=2)
        A = torch.cat([A[:, :, :step], A[:, :, step:] * A[:, :, :-step]], dim=2)
        step *= 2
    entering, last = _carry(A[:, :, -1], B[:, :, -1], h0)
    h = torch.addcmul(B, A, entering[:, :, None])
    return h.reshape(n, t, *rest), last


# --- S6 -------------------------------------------------------------------------------------------
def _decay(dt, A, signed):
    """a = e^{Δ A} [N,T,D,NS] (``signed``: 2e^{ΔA} − 1)."""
    a = torch.mul(dt[..., None], A).exp_()
    return a.mul_(2.0).sub_(1.0) if signed else a



def _chunk_major(x: torch.Tensor, size: int) -> torch.Tensor:
    """[N, NC·L, *r] → [L, N, NC, *r], contiguous: position j of every chunk is one block."""
    n, t, *rest = x.shape
    return x.reshape(n, t // size, size, *rest).movedim(2, 0).contiguous()


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_chunk_major`."""
    size, n, nc, *rest = x.shape
    return x.movedim(0, 2).reshape(n, nc * size, *rest)


class _FusedS6(torch.autograd.Function):
    """S6 by the two-level scan, one in-chunk position at a time over all chunks ("fused").

    Layout [L, N, NC, ...] (chunk-major), the state transposed to [NS, D] (D = 256 contiguous, so
    the outer products Δ_j ⊗ Aᵀ, B_j ⊗ (Δu)_j and the read-out vectorize along D): step j touches the
    contiguous slices [N, NC, NS, D] of all chunks, ~1 MB, in cache. No [N,T,D,NS] tensor is ever
    allocated in one piece: a_j and h_j are kept as L separate slices (a fresh 64 MB allocation
    costs as much as the arithmetic filling it, in page faults). Pass 1 forms a_j (Δ_j ⊗ Aᵀ → exp,
    kept for pass 2 and backward) and b_j = B_j ⊗ (Δu)_j (a reused buffer, recomputed rather than
    stored), and composes each chunk: s_c = its end state from 0, P_c = Π_j a_j (= e^{A Σ_j Δ_j}
    directly for "[0,1]"). The carry gives the entering states; pass 2 forms h_j (kept only when a
    gradient will be taken) and y_j = C_jᵀ h_j while h_j is in cache.

    Backward: the adjoint g_t = C_t ⊗ ∂y_t + a_{t+1} g_{t+1} (g after the last step = ∂h_T) by
    the same two passes in reverse order: σ_c = a chunk's local g at its first step, the carry
    r_{c−1} = P_c r_c + a_{0,c} σ_c (r = a_{0,c+1} g_{0,c+1}, what enters chunk c at its last
    step; r_{−1} = ∂h₀), then per step ∂(ΔA)_j = g_j ⊙ h_{j−1} ⊙ ∂a/∂(ΔA) (a, or a + 1 = 2e^{ΔA}
    for "[-1,1]") and the contractions giving ∂Δ, ∂A, ∂B, ∂C, ∂u — no exp in backward.
    """

    @staticmethod
    def forward(ctx, dt, A, Bm, Cm, u, h0, signed: bool, size: int, keep: bool):
        n, t, d = dt.shape
        nc, ns = t // size, A.shape[1]
        At = A.t().contiguous()                                # [NS, D]
        dt_, dtu_, B_, C_ = (_chunk_major(x, size) for x in (dt, dt * u, Bm, Cm))
        b = dt.new_empty((n, nc, ns, d))
        s = torch.zeros_like(b)
        P = torch.ones_like(b) if signed else torch.exp(dt_.sum(0)[..., None, :] * At)
        # per-position views made once (one unbind each), not by indexing at every step
        dts, dtus = dt_[..., None, :].unbind(0), dtu_[..., None, :].unbind(0)    # [N,NC,1,D]
        Bs, Cs = B_[..., None].unbind(0), C_.view(size, n * nc, 1, ns).unbind(0)
        a = []
        for j in range(size):                                  # pass 1: each chunk from 0
            a.append(torch.mul(dts[j], At).exp_())
            if signed:
                a[j].mul_(2.0).sub_(1.0)
                P.mul_(a[j])
            torch.mul(Bs[j], dtus[j], out=b)
            torch.addcmul(b, a[j], s, out=s)
        entering, last = _carry(P, s, h0.transpose(-1, -2))
        h = []
        y = dt.new_empty((size, n * nc, 1, d))
        ys, prev = y.unbind(0), entering
        for j in range(size):                                  # pass 2: from the entering states
            torch.mul(Bs[j], dtus[j], out=b)
            prev = torch.addcmul(b, a[j], prev)
            torch.bmm(Cs[j], prev.view(n * nc, ns, d), out=ys[j])
            if keep:
                h.append(prev)
        if keep:
            ctx.save_for_backward(dt_, dtu_, u, At, B_, C_, entering, P)
            ctx.a, ctx.h = a, h
        ctx.signed, ctx.size = signed, size
        return _time_major(y.view(size, n, nc, d)), last.transpose(-1, -2).contiguous()

    @staticmethod
    def backward(ctx, gy, glast):
        dt_, dtu_, u, At, B_, C_, entering, P = ctx.saved_tensors
        a, h, signed, size = ctx.a, ctx.h, ctx.signed, ctx.size
        gy_ = _chunk_major(gy, size)                           # [L,N,NC,D]
        bufs = (torch.empty_like(entering), torch.empty_like(entering))

        def drive(j, out):                                     # C_j ⊗ ∂y_j
            return torch.mul(C_[j][..., None], gy_[j][..., None, :], out=out)

        sigma = drive(size - 1, torch.empty_like(entering))    # pass 1: σ = local g, nothing carried in
        for j in range(size - 2, -1, -1):
            torch.addcmul(drive(j, bufs[0]), a[j + 1], sigma, out=sigma)
        incoming = torch.empty_like(sigma)                     # carry, last chunk first
        r = glast.transpose(-1, -2)
        for c in range(sigma.shape[1] - 1, -1, -1):
            incoming[:, c] = r
            r = torch.addcmul(a[0][:, c] * sigma[:, c], P[:, c], r)
        g_h0 = r.transpose(-1, -2)
        g_dt, g_dtu = torch.empty_like(dt_), torch.empty_like(dt_)
        g_B, g_C = torch.empty_like(B_), torch.empty_like(C_)
        gA, gx = torch.zeros_like(sigma), torch.empty_like(sigma)
        g = incoming
        for k, j in enumerate(range(size - 1, -1, -1)):        # pass 2
            gh = drive(j, bufs[k % 2])                         # the buffer not holding g_{j+1}
            g = gh.add_(g) if j == size - 1 else gh.addcmul_(a[j + 1], g)     # g_j
            torch.mul(g, entering if j == 0 else h[j - 1], out=gx)
            if signed:
                gx.addcmul_(gx, a[j])                          # ∂(ΔA)_j = g_j h_{j−1} (a_j + 1)
            else:
                gx.mul_(a[j])                                  # ∂(ΔA)_j = g_j h_{j−1} a_j
            g_dt[j] = torch.einsum("mckd,kd->mcd", gx, At)
            gA.addcmul_(gx, dt_[j][..., None, :])
            g_dtu[j] = torch.einsum("mckd,mck->mcd", g, B_[j])
            g_B[j] = torch.einsum("mckd,mcd->mck", g, dtu_[j])
            g_C[j] = torch.einsum("mckd,mcd->mck", h[j], gy_[j])
        g_dt, g_dtu, g_B, g_C = (_time_major(x) for x in (g_dt, g_dtu, g_B, g_C))
        return (g_dt + g_dtu * u, gA.sum((0, 1)).t(), g_B, g_C, g_dtu * _time_major(dt_), g_h0,
                None, None, None)


class _MaterializedS6(torch.autograd.Function):
    """S6 with a, b [N,T,D,NS] materialized, then :func:`scan` (methods "two_level" and "doubling")."""

    @staticmethod
    def forward(ctx, dt, A, Bm, Cm, u, h0, signed: bool, size: int, method: str):
        a = _decay(dt, A, signed)
        b = torch.mul((dt * u)[..., None], Bm[:, :, None, :])
        h, last = scan(a, b, h0, size, method)
        y = torch.einsum("ntdk,ntk->ntd", h, Cm)
        ctx.save_for_backward(dt, A, Bm, Cm, u, h0, h)
        ctx.signed, ctx.size, ctx.method = signed, size, method
        return y, last

    @staticmethod
    def backward(ctx, gy, glast):
        dt, A, Bm, Cm, u, h0, h = ctx.saved_tensors
        gy, glast = gy.contiguous(), glast.contiguous()
        signed, size, method = ctx.signed, ctx.size, ctx.method
        n, t, d = dt.shape
        if t == 0:
            return (dt.new_zeros(dt.shape), torch.zeros_like(A), torch.zeros_like(Bm), torch.zeros_like(Cm),
                    torch.zeros_like(u), glast.clone(), None, None, None)
        # adjoint scan: g_t = C_t ⊗ gy_t + a_{t+1} g_{t+1}, from g_{T+1} = ∂h_T with a_{T+1} = 1
        shifted = torch.cat([dt[:, 1:], dt.new_zeros((n, 1, d))], dim=1)
        g, _ = scan(_decay(shifted, A, signed), torch.mul(gy[..., None], Cm[:, :, None, :]), glast, size, method,
                    reverse=True)
        e = torch.mul(dt[..., None], A).exp_()                      # ∂a/∂(ΔA) = e (2e when signed)
        gx = g * e
        if signed:
            gx.mul_(2.0)
        gh0 = (gx[:, 0] * h0)                                        # ∂(ΔA)_1 = g_1 e_1 h_0 ...
        g_h0 = g[:, 0] * _decay(dt[:, :1], A, signed)[:, 0]          # ∂h₀ = a_1 g_1
        gx[:, 1:].mul_(h[:, :-1])
        gx[:, 0] = gh0
        g_dt = (gx * A).sum(-1)                                      # Σ_n gx A      [N,T,D]
        g_A = torch.einsum("ntdk,ntd->dk", gx, dt)
        g_dtu = torch.einsum("ntdk,ntk->ntd", g, Bm)                 # Σ_n g B       [N,T,D]
        g_B = torch.einsum("ntdk,ntd->ntk", g, dt * u)
        g_C = torch.einsum("ntdk,ntd->ntk", h, gy)
        g_dt = g_dt + g_dtu * u
        g_u = g_dtu * dt
        return g_dt, g_A, g_B, g_C, g_u, g_h0, None, None, None


def selective_scan_core(xs, state, p, size, method: str = "fused"):
    """Driver core: xs {dt (Δ after bias and softplus), u, B, C} [N,T,·]; state {h}; p.A, p.eigenvalue_range.

    ``method``: "fused" (default) — :class:`_FusedS6`, the fastest forward and forward+backward;
    "two_level" or "doubling" — a, b materialized, then :func:`scan` with that method; "auto" —
    "fused". The contiguous copies put the callers' channel-first tensors in time-major memory:
    a time slice of a, b must be contiguous blocks, or every scan step strides through memory."""
    signed = p.eigenvalue_range == "[-1,1]"
    args = [t.contiguous() for t in (xs["dt"], p.A, xs["B"], xs["C"], xs["u"], state["h"])]
    if xs["dt"].shape[1] == 0:
        return xs["u"].new_zeros(xs["u"].shape), {"h": state["h"]}
    if method in ("auto", "fused"):
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in args)
        y, last = _FusedS6.apply(*args, signed, size, grad)
    elif method not in METHODS:
        raise ValueError(f"method must be one of {S6_METHODS}, got {method!r}")  # internal: not user-facing
    else:
        y, last = _MaterializedS6.apply(*args, signed, size, method)
    return y, {"h": last}
