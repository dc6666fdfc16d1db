"""mesa_net (MesaNet, von Oswald et al. 2025) — two decayed second-moment states and a linear solve at the
read-out (the exact solve is the spec):

    H^{kk}_t = e^{g_t} H^{kk}_{t−1} + β_t k_t k_tᵀ        [K, K]
    H^{kv}_t = e^{g_t} H^{kv}_{t−1} + β_t k_t v_tᵀ        [K, V]
    q*_t = (H^{kk}_t + Diag(λ))⁻¹ q_t,   o_t = H^{kv}_tᵀ q*_t   (no scale)

Shapes: q, k [B,T,H,K]; v [B,T,H,V]; g [B,T,H] ≤ 0; beta [B,T,H] ∈ [0, 1]; lamb [H,K] > 0; states
h_kk [N,H,K,K], h_kv [N,H,K,V]; output [B,T,H,V] (FLA's ``chunk_mesa_net`` and ``naive_mesa_net_exact``; FLA's
docstring says lamb is [B,T,H], its code asserts [H,K]; its kernels also require V = K, the spec does not).

The solve. With β ≥ 0, λ > 0 and a positive semidefinite H^{kk}_0 (every state reachable from zero) the
matrix A_t = H^{kk}_t + Diag(λ) is symmetric positive definite. The definition solves A_t q* = q_t by
Gaussian elimination with partial pivoting on the whole matrix (LAPACK getrf's row choice, as
``torch.linalg.solve`` in FLA's exact reference), then back substitution, rounded after every operation in
the engine's arithmetic — so every engine (exact with its bound, fp64, emulate under a contract, the torch
form) evaluates the same solve. In exact arithmetic it is A⁻¹q whatever the pivots; partial pivoting keeps
it backward stable for any nonsingular A, so an arbitrary (non-symmetric, indefinite) initial H^{kk}_0 —
which a kernel may be handed, and the strategies draw — is solved as FLA's exact reference solves it.
A gram state is symmetric positive semidefinite in the family's own domain (state role ``gram``).

FLA's kernels solve it by conjugate gradient with ``max_CG_iteration`` steps — an approximation of this
spec, whose error depends on the iteration count and on κ(A) (and which presumes A SPD).
Eigenvalues: the states decay by e^{g} ∈ [0, 1]; the read-out is not linear in the state.
"""

import numpy as np

from ..errors import DomainError
from ..family import LOG_GATE, NONNEGATIVE, Domain, Family, Input, StateComponent, register

BETA = Domain(0.0, 1.0, "a write strength in [0, 1]")


def _swap(ar, rows, b, j, piv):
    """Move row ``j + piv`` to position j and row j to its place, per element of the leading axes (``piv``
    an integer array), exactly: masks of 0 and 1 multiply, and each sum has one nonzero term."""
    n = len(rows)
    masks = [ar.asarray((piv == i - j).astype(np.float64)) for i in range(j, n)]
    pivot_row = ar.mul(masks[0][..., None], rows[j])
    pivot_b = ar.mul(masks[0], b[j])
    for i in range(j + 1, n):
        pivot_row = ar.add(pivot_row, ar.mul(masks[i - j][..., None], rows[i]))
        pivot_b = ar.add(pivot_b, ar.mul(masks[i - j], b[i]))
    for i in range(j + 1, n):
        keep = ar.sub(ar.const(1.0), masks[i - j])
        rows[i] = ar.add(ar.mul(keep[..., None], rows[i]), ar.mul(masks[i - j][..., None], rows[j]))
        b[i] = ar.add(ar.mul(keep, b[i]), ar.mul(masks[i - j], b[j]))
    rows[j], b[j] = pivot_row, pivot_b


def solve(ar, A, q):
    """x = A⁻¹ q for a nonsingular A [..., K, K] and q [..., K], by Gaussian elimination with partial pivoting
    (LAPACK getrf's rule, as ``torch.linalg.solve``): for j = 0…K−1, the row i ≥ j of largest |A[i, j]| (the
    first on ties) is swapped into place — per element of the leading axes —, then for i = j+1…K−1:
    m = A[i, j] / A[j, j]; row_i ← row_i − m·row_j (every column, each product and difference rounded);
    b_i ← b_i − m·b_j. Then, for i = K−1…0: x_i = (b_i − Σ_{l>i} U[i, l]·x_l) / U[i, i], the sum taken
    l = i+1, i+2, … left to right. Returns a list of K arrays [...] (x_0 … x_{K−1})."""
    K = A.shape[-1]
    rows = [A[..., i, :] for i in range(K)]
    b = [q[..., i] for i in range(K)]
    for j in range(K - 1):
        mags = np.stack([np.abs(ar.to_float(rows[i][..., j])) for i in range(j, K)])
        piv = np.argmax(mags, axis=0)
        if np.any(piv != 0):
            _swap(ar, rows, b, j, piv)
        for i in range(j + 1, K):
            m = ar.div(rows[i][..., j], rows[j][..., j])
            rows[i] = ar.sub(rows[i], ar.mul(m[..., None], rows[j]))
            b[i] = ar.sub(b[i], ar.mul(m, b[j]))
    x = [None] * K
    for i in reversed(range(K)):
        s = b[i]
        for l in range(i + 1, K):
            s = ar.sub(s, ar.mul(rows[i][..., l], x[l]))
        x[i] = ar.div(s, rows[i][..., i])
    return x


def solve_read(ar, A, q, Hkv):
    """o = Hkvᵀ (A⁻¹ q) = Σ_i x_i · Hkv[i, :] (a dot over the key axis, as every family's read-out)."""
    x = solve(ar, A, q)
    # x as one array [..., K] (no stack primitive): Σ_i x_i·e_i, exact (products by 0 and 1, adds of 0)
    eye = ar.asarray(np.eye(len(x)))
    xs = ar.mul(x[0][..., None], eye[0])
    for i in range(1, len(x)):
        xs = ar.add(xs, ar.mul(x[i][..., None], eye[i]))
    return ar.dot(Hkv, xs[..., :, None], axis=-2)


def step(ar, s, x, p):
    d = ar.exp(x["g"])[..., None, None]
    kb = ar.mul(x["beta"][..., None], x["k"])
    return {"h_kk": ar.state(ar.add(ar.mul(d, s["h_kk"]), ar.outer(kb, x["k"]))),
            "h_kv": ar.state(ar.add(ar.mul(d, s["h_kv"]), ar.outer(kb, x["v"])))}


def system(ar, h_kk, lamb):
    """A = H^{kk} + Diag(λ): λ added on the diagonal (one rounding there; the off-diagonal adds 0, exactly)."""
    K = h_kk.shape[-1]
    return ar.add(h_kk, ar.mul(lamb[..., :, None], ar.asarray(np.eye(K))))


def readout(ar, s, x, p):
    return solve_read(ar, system(ar, s["h_kk"], p.lamb), x["q"], s["h_kv"])


def check(inputs, options):
    lamb = inputs["lamb"]
    if np.any(lamb <= 0):
        idx = tuple(int(i) for i in np.argwhere(lamb <= 0)[0])
        raise DomainError("lamb", f"every element must be > 0 (H^kk + Diag(λ) must be positive definite); "
                                  f"lamb[{', '.join(map(str, idx))}] = {lamb[idx]!r}")


def sample_regularized(rng, arrays, dims):
    """λ ∈ [0.25, 1.25), FLA's layer's range (softplus(·) + 0.25): a solve whose condition number stays
    moderate when H^{kk} is rank-deficient (T < K, strong decays) — the regime a CG kernel is built for."""
    return {"lamb": 0.25 + rng.uniform(0.0, 1.0, arrays["lamb"].shape)} if "lamb" in arrays else {}


def shadow(arrays, abs_arrays, state, abs_state, options, cu_seqlens, output):
    """The solve's magnitude floor, from first-order perturbation theory (Higham §7.2): rounding the
    states by u relative to their magnitudes H̄ (the recurrence on |inputs|) and the solve by a backward
    stable method moves x = A⁻¹q by |δx| ≲ u·|A⁻¹|(Ā|x| + |q|), Ā = H̄^{kk} + Diag(λ), and the read by
    |δo| ≲ u·(|H^{kv}|ᵀ|δx|/u + H̄^{kv}ᵀ|x|). Returns |H^{kv}|ᵀ|A⁻¹|(Ā|x| + |q|) + H̄^{kv}ᵀ|x| per output
    element, the per-step states recomputed in float64."""
    g, beta, lamb = (np.asarray(arrays[n], dtype=np.float64) for n in ("g", "beta", "lamb"))
    q, k, v = (np.asarray(arrays[n], dtype=np.float64) for n in ("q", "k", "v"))
    aq, ak, av = (np.asarray(abs_arrays[n], dtype=np.float64) for n in ("q", "k", "v"))
    B, T, H, K = q.shape
    bounds = [(b, 0, T) for b in range(B)] if cu_seqlens is None else \
        [(0, int(s), int(e)) for s, e in zip(cu_seqlens[:-1], cu_seqlens[1:])]
    out = np.zeros(output.shape)
    eye = np.eye(K)
    for n, (b, start, end) in enumerate(bounds):
        if state is None:
            hkk, hkv = np.zeros((H, K, K)), np.zeros((H, K, v.shape[-1]))
            akk, akv = hkk.copy(), hkv.copy()
        else:
            hkk, hkv = np.asarray(state["h_kk"][n], float), np.asarray(state["h_kv"][n], float)
            akk, akv = np.asarray(abs_state["h_kk"][n], float), np.asarray(abs_state["h_kv"][n], float)
        for t in range(start, end):
            d = np.exp(g[b, t])[:, None, None]
            kb, akb = beta[b, t, :, None] * k[b, t], beta[b, t, :, None] * ak[b, t]
            hkk = d * hkk + kb[:, :, None] * k[b, t][:, None, :]
            hkv = d * hkv + kb[:, :, None] * v[b, t][:, None, :]
            akk = d * akk + akb[:, :, None] * ak[b, t][:, None, :]
            akv = d * akv + akb[:, :, None] * av[b, t][:, None, :]
            A = hkk + lamb[:, :, None] * eye
            with np.errstate(all="ignore"):
                inv = np.abs(np.linalg.pinv(A))
                x = np.abs(np.einsum("hij,hj->hi", np.linalg.pinv(A), q[b, t]))
                dx = np.einsum("hij,hj->hi", inv, np.einsum("hij,hj->hi", akk + lamb[:, :, None] * eye, x) + aq[b, t])
                out[b, t] = np.einsum("hkv,hk->hv", np.abs(hkv), dx) + np.einsum("hkv,hk->hv", akv, x)
    return np.nan_to_num(out, nan=0.0, posinf=np.finfo(float).max)


FAMILY = register(Family(
    name="mesa_net",
    recurrence="H^kk_t = e^{g_t}H^kk_{t-1} + β_t k_t k_tᵀ;  H^kv_t = e^{g_t}H^kv_{t-1} + β_t k_t v_tᵀ;  "
               "o_t = H^kv_tᵀ (H^kk_t + Diag(λ))⁻¹ q_t",
    inputs=(Input("q", ("B", "T", "H", "K"), doc="queries", role="query"),
            Input("k", ("B", "T", "H", "K"), doc="keys", role="key"),
            Input("v", ("B", "T", "H", "V"), doc="values", role="value"),
            Input("g", ("B", "T", "H"), LOG_GATE, doc="head-wise log decay of both states", role="log_gate"),
            Input("beta", ("B", "T", "H"), BETA, doc="writing strength", role="write_gate"),
            Input("lamb", ("H", "K"), NONNEGATIVE, doc="the solve's diagonal regularizer λ (> 0)", role="regularizer")),
    state=(StateComponent("h_kk", ("N", "H", "K", "K"), "decayed Σ β k kᵀ (positive semidefinite when reached "
                                                        "from zero)", role="gram"),
           StateComponent("h_kv", ("N", "H", "K", "V"), "decayed Σ β k vᵀ")),
    output_dims=("B", "T", "H", "V"),
    step=step, readout=readout, check=check, sample=sample_regularized, shadow=shadow,
    eigenvalues="the states decay by e^g ∈ [0, 1]; the read-out solves with them (not a linear read)",
    flops=lambda d: d["B"] * d["T"] * d["H"] * (4.0 * d["K"] * (d["K"] + d["V"]) + 2.0 * d["K"] ** 3 / 3.0
                                                + 2.0 * d["K"] ** 2 + 2.0 * d["K"] * d["V"]),
    source="von Oswald et al. 2025 (MesaNet); FLA chunk_mesa_net / naive_mesa_net_exact",
    rounding="d = exp(g); kb = β·k; H^kk ← d·H^kk + kb⊗k, H^kv ← d·H^kv + kb⊗v (states); A = H^kk + λ·I; "
             "Gaussian elimination with partial pivoting (row of largest |A_ij|, i ≥ j, swapped in exactly; "
             "m = A_ij / A_jj; row_i ← row_i − m·row_j; b_i ← b_i − m·b_j), "
             "back substitution x_i = (b_i − Σ_{l>i} U_il·x_l) / U_ii (l ascending); x = Σ_i x_i·e_i; "
             "o = Σ_k H^kv·x",
))
