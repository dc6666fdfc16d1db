"""Per-family numerics the certifier's tolerance and the benchmark read: defaults from the roles, and
the hooks families share.

* :func:`log_decay` — |log decay| per step [B, T, heads], for the exponent mass Λ = Σ_{s≤t} |log decay_s|
  (the family's ``log_decay`` hook, else the sum over inputs whose role has ``exponent`` — log-space
  gates, exponentiated preactivations —, per token, channel axes reduced by max);
* :func:`ut_conditioning` — the ``conditioning`` hook of the delta families;
* :func:`nominal_flops` — the ``flops`` hook, else 4 FLOPs per state element per token (one
  multiply-add to update it, one to read it out).
"""

from __future__ import annotations

import numpy as np

from .family import Family, get_family
from .roles import get_role


def log_decay(family: "str | Family", arrays: dict[str, np.ndarray], options: dict) -> np.ndarray | None:
    """Per-step |log decay| [B, T, heads] (or broadcastable), None for families without a decay in
    log space. Inputs on an interleaved micro-step axis (``T*n_h``) are per micro-step, not per
    token, and do not count."""
    fam = get_family(family)
    opts = {o.name: o.default for o in fam.options} | options
    if fam.log_decay is not None:
        return fam.log_decay(arrays, opts)
    total = None
    for inp in fam.inputs:
        if not get_role(inp.role).exponent or inp.name not in arrays or inp.dims[1:2] != ("T",):
            continue
        per = np.abs(arrays[inp.name])
        while per.ndim > 3:
            per = per.max(axis=-1)
        total = per if total is None else total + per
    return total


def nominal_flops(family: "str | Family", dims: dict[str, int]) -> float:
    """FLOPs of the recurrence itself per call at ``dims`` (the work any algorithm must do)."""
    fam = get_family(family)
    if fam.flops is not None:
        return float(fam.flops(dims))
    sizes = {**dims, "HV": dims.get("HV") or dims.get("H", 1)}
    state = max(int(np.prod([sizes[d] for d in c.dims[1:]])) for c in fam.state)
    return 4.0 * sizes["B"] * sizes["T"] * state


def conditioning(family: "str | Family", arrays: dict[str, np.ndarray], dims: dict[str, int],
                 segments) -> np.ndarray | None:
    """The family's ``conditioning`` hook on these inputs ([B, T, heads, 1], ≥ 1), or None."""
    fam = get_family(family)
    return None if fam.conditioning is None else fam.conditioning(fam, arrays, dims, segments)


def ut_conditioning(fam: Family, arrays: dict[str, np.ndarray], dims: dict[str, int], segments,
                    window: int = 64) -> np.ndarray:
    """The ``conditioning`` hook of the delta-rule families: κ(t) ≥ 1 per (batch, token, value
    head), shape [B, T, HV, 1], read from the roles — the unit key, the write strength β and the
    optional per-token log gate.

    Chunked delta-rule kernels solve L U = R with L = I + strict_lower(diag(β) Γ ⊙ K Kᵀ) over each
    chunk (the UT/WY transform; Γ_ts = e^{G_t − G_s} the decays). Forward substitution commits a
    relative error of the size u·cond(L) (Skeel: cond(L) = ‖ |L⁻¹| |L| ‖∞, Higham §8.2) which the
    sequential recurrence never sees: near-parallel keys with β near 2, or more micro-steps than
    key dimensions (DeltaProduct: 15 reflections in K = 3 gave ‖|L⁻¹|‖∞ = 17 and a correct chunk
    kernel at 18× the sequential error). Row t of the solution depends on the leading t × t block
    only, whose condition number is max_{s ≤ t} (|L⁻¹| |L| 1)_s: κ(t) is that running maximum over
    windows of ``window`` tokens (the kernel's chunk is unknown; 64 is FLA's) aligned to each
    sequence's start, continued across windows (rounding errors persist in the state)."""
    (keys,) = fam.unit_keys
    (strength,) = (i.name for i in fam.with_role("write_strength"))
    gates = [i.name for i in fam.with_role("log_gate") if i.dims[1:2] == ("T",) and i.name in arrays]
    k, beta = arrays[keys], arrays[strength]              # [B, T·n, H, K], [B, T·n, HV]
    T = dims["T"]
    batch, steps, heads = beta.shape
    n = steps // T if T else 1
    k = np.repeat(k, heads // k.shape[2], axis=2)
    log_gate = np.zeros_like(beta)
    for gate in gates:                                    # the token's gate acts at its first micro-step
        log_gate[:, ::n] += arrays[gate]
    kappa = np.ones((batch, T, heads))
    bounds = [(0, T)] if segments is None else list(zip(segments[:-1], segments[1:]))
    for b in range(batch):
        for start, end in bounds:
            for w0 in range(start, end, window):
                w1 = min(w0 + window, end)
                sl = slice(w0 * n, w1 * n)
                kw, bw, G = k[b, sl], beta[b, sl], np.cumsum(log_gate[b, sl], axis=0)   # [m,HV,K], [m,HV]
                gram = np.einsum("thk,shk->hts", kw, kw)
                decay = np.exp(np.minimum(G.T[:, :, None] - G.T[:, None, :], 0.0))
                L = np.eye(kw.shape[0]) + np.tril(bw.T[:, :, None] * decay * gram, -1)      # [HV, m, m]
                rows = np.sum(np.abs(np.linalg.inv(L)) @ np.abs(L), axis=-1)             # [HV, m]
                kappa[b, w0:w1] = rows.reshape(heads, w1 - w0, n).max(axis=-1).T
            kappa[b, start:end] = np.maximum.accumulate(kappa[b, start:end], axis=0)
    return kappa[..., None]


def erase_conditioning(rows: np.ndarray, cols: np.ndarray, log_gate: np.ndarray | None, T: int, segments,
                       exclusive: bool = False, window: int = 64) -> np.ndarray:
    """κ(t) ≥ 1 [B, T, HV, 1] of the triangular system of a chunked delta-type kernel whose erase key
    differs from its write key or whose decay is per key channel (KDA, GDN-2, Comba) — the
    generalization of :func:`ut_conditioning` (same windows, same running maximum).

    The recurrence S' = Diag(e^{g_t}) S_{t−1}, u_t = w_t − Ŝ_tᵀ e_t, S_t = S' + k_t u_tᵀ (Ŝ_t = S' — the
    read after the decay — or, ``exclusive``, S_{t−1}, the read before it) makes a chunk solve
    L U = R with L = I + strict_lower(A), A_ts = Σ_c e_tc k_sc e^{R_tc − G_sc} (s < t), G_t the
    chunk-local cumulative log gate and R_t = G_t (R_t = G_{t−1} when ``exclusive``). Every exponent
    is ≤ 0 for s < t.

    rows e [B, T, HV, K] (the erase key, its strength included); cols k [B, T, HV, K] (the write key);
    log_gate [B, T, HV, K], [B, T, HV] (one gate per head) or None (no decay)."""
    batch, _, heads, _ = rows.shape
    gate = np.zeros(rows.shape[:3] + (1,)) if log_gate is None else np.asarray(log_gate, dtype=np.float64)
    if gate.ndim == 3:
        gate = gate[..., None]
    kappa = np.ones((batch, T, heads))
    bounds = [(0, T)] if segments is None else list(zip(segments[:-1], segments[1:]))
    for b in range(batch):
        for start, end in bounds:
            for w0 in range(start, end, window):
                w1 = min(w0 + window, end)
                e, k, g = rows[b, w0:w1], cols[b, w0:w1], gate[b, w0:w1]             # [m, HV, K|1]
                G = np.cumsum(g, axis=0)
                R = G - g if exclusive else G
                expo = np.minimum(R[:, None] - G[None, :], 0.0)                         # [m, m, HV, K|1]
                A = np.einsum("thc,shc,tshc->hts", e, k, np.exp(expo) * np.ones_like(e[:1, None]))
                L = np.eye(w1 - w0) + np.tril(A, -1)                                     # [HV, m, m]
                rows_sum = np.sum(np.abs(np.linalg.inv(L)) @ np.abs(L), axis=-1)        # [HV, m]
                kappa[b, w0:w1] = rows_sum.T
            kappa[b, start:end] = np.maximum.accumulate(kappa[b, start:end], axis=0)
    return kappa[..., None]
