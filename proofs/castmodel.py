"""Finite-precision witnesses on the input ``1^k``: the paper's cast model and step-wise rounding.

**Cast model** (Grazzi et al. 2025, App. A.4/B, after Merrill et al.): a finite set ``D`` (here the
finite values of fp16 / bf16 / fp32), ``cast(x)`` = the nearest element of ``D`` (ties to the smaller,
saturating at ±max), and the state on ``1^k``

    Ĥ_k = cast( Σ_{i<k} cast(A^i B) + cast(A^k H_0) )

with the powers computed exactly. :func:`cast_orbit` decides the *whole* infinite sequence for a
contraction ``A`` (‖A‖₂ ≤ 1) with real spectrum:

* the eigenspaces of ±1 are reducing (orthogonal, invariant complements) for a contraction, so
  ``A^i x = P₁x + (−1)^i P₋₁x + r_i`` with ``‖r_{i+1}‖ ≤ ‖r_i‖`` → 0;
* once ``‖r_i‖`` is below the distance of both limits ``P₁x ± P₋₁x`` to the nearest cast decision
  boundary, ``cast(A^i x)`` equals the cast of its 2-periodic limit *for every later i*;
* from there ``Σ cast(A^i B)`` grows by ``D = c̄₀ + c̄₁`` every two steps: coordinates with
  ``D = 0`` are constant on each parity class, the others saturate at ±max after an index computed
  in closed form.

This yields the eventual period (1 or 2) and the first index ``k̄`` from which ``Ĥ_k`` is periodic
— Lemma 1 of Grazzi et al. made executable. Values are mpmath numbers at ``PREC`` bits built from
the float64 parameters (exact inputs); a limit lying exactly on a decision boundary is reported as
``status = "tie"`` (Lemma 1 then needs the one-sided argument, which we do not decide).

**Step-wise rounding** (``H ← round(A H + B)`` at every step, what hardware does; *not* the model of
the theorems): a deterministic map on a finite set with a constant input, so the orbit is
eventually periodic. :func:`stepwise_orbit` finds the tail length and period exactly by remembering
every state (a fixed point ⇒ constant forever).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import numpy as np

from lrnnspec.spec import get_format
from lrnnspec.spec.errors import DomainError

from .construction import DELTA_FAMILIES, Layer

PREC = 256


# --- cast onto a format, the paper's way ------------------------------------------------------
def _succ(y: float, fmt) -> float:
    if y < 0:
        return -_pred(-y, fmt)
    if y == 0:
        return fmt.smallest_subnormal
    return y + float(fmt.ulp(y))


def _pred(y: float, fmt) -> float:
    if y <= 0:
        return -_succ(-y, fmt)
    m, _ = np.frexp(y)
    step = float(fmt.ulp(y))
    if m == 0.5 and y > 2.0 ** fmt.emin:  # y a power of two above the subnormal range
        step /= 2
    return y - step


def cast(x, fmt) -> float:
    """Nearest finite value of ``fmt`` to the real (mpf or float) ``x``; ties to the smaller;
    values beyond the largest finite value saturate to it."""
    fmt = get_format(fmt)
    x = mpmath.mpf(x)
    big = fmt.largest
    if x >= big:
        return big
    if x <= -big:
        return -big
    y0 = float(fmt.round(float(x)))
    if not np.isfinite(y0):
        y0 = float(np.copysign(big, y0))
    best, dist = None, None
    for y in (_pred(y0, fmt), y0, _succ(y0, fmt)):
        if abs(y) > big:
            continue
        d = abs(x - mpmath.mpf(y))
        if dist is None or d < dist or (d == dist and y < best):
            best, dist = y, d
    return best


def margin(x, fmt) -> mpmath.mpf:
    """Distance from ``x`` to the nearest decision boundary of :func:`cast` (0 on a tie)."""
    fmt = get_format(fmt)
    x = mpmath.mpf(x)
    y = cast(x, fmt)
    lo = -mpmath.inf if y == -fmt.largest else (mpmath.mpf(y) + mpmath.mpf(_pred(y, fmt))) / 2
    hi = mpmath.inf if y == fmt.largest else (mpmath.mpf(y) + mpmath.mpf(_succ(y, fmt))) / 2
    return min(x - lo, hi - x)


def _cast_all(m: np.ndarray, fmt) -> np.ndarray:
    return np.array([cast(v, fmt) for v in m.reshape(-1)], dtype=np.float64).reshape(m.shape)


# --- exact affine map of a layer on one token -------------------------------------------------
def _mp(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    for idx, v in np.ndenumerate(a):
        out[idx] = mpmath.mpf(float(v))
    return out


def exact_affine(layer: Layer, tok: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B, H0)`` of ``layer`` on token ``tok`` as mpmath object arrays, from its float64 parameters:
    delta families ``S ← A S + B`` on [K, V]; mamba ``h ← a ⊙ h + b`` flattened to [D·NS, 1]."""
    with mpmath.workprec(PREC):
        if layer.family in DELTA_FAMILIES:
            ks, betas, vs = (_mp(layer.tokens[n][tok]) for n in ("k", "beta", "v"))
            n = ks.shape[1]
            A = _mp(np.eye(n))
            B = _mp(np.zeros((n, vs.shape[1])))
            for k, beta, v in zip(ks, betas, vs):
                G = _mp(np.eye(n)) - beta * np.outer(k, k)
                A = G.dot(A)
                B = G.dot(B) + beta * np.outer(k, v)
            return A, B, _mp(layer.h0[0])
        d = _mp(layer.tokens["delta"][tok])
        a = np.array([[mpmath.exp(di * aj) for aj in row] for di, row in zip(d, _mp(layer.static["A"]))], dtype=object)
        if layer.options.get("eigenvalue_range") == "[-1,1]":
            a = 2 * a - 1
        u, Bv = _mp(layer.tokens["u"][tok]), _mp(layer.tokens["B"][tok])
        b = np.array([[di * ui * bj for bj in Bv] for di, ui in zip(d, u)], dtype=object)
        size = a.size
        A = np.empty((size, size), dtype=object)
        A.fill(mpmath.mpf(0))
        for i, v in enumerate(a.reshape(-1)):
            A[i, i] = v
        return A, b.reshape(size, 1), _mp(layer.h0).reshape(size, 1)


# --- the cast-model orbit ---------------------------------------------------------------------
@dataclass
class CastOrbit:
    fmt: str
    status: str  # "ok", "tie" (a limit on a decision boundary), "slow" (not stable within max_iter)
    period: int | None = None
    kbar: int | None = None  # Ĥ_k is periodic with `period` for every k ≥ kbar
    stable_terms_from: int | None = None  # every cast term equals its 2-periodic limit from here
    saturating: int = 0  # coordinates that grow and saturate at ±max
    eventual: list = field(default_factory=list)  # [E_even, E_odd] as nested lists

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _null_projector(M: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto ker(M) (M an mpmath object matrix), via the SVD at PREC bits."""
    n = M.shape[0]
    U, S, V = mpmath.svd_r(mpmath.matrix(M.tolist()), full_matrices=True)
    tol = mpmath.mpf(2) ** (-PREC // 2)
    P = _mp(np.zeros((n, n)))
    for i in range(n):
        s = S[i] if i < len(S) else mpmath.mpf(0)
        if abs(s) <= tol:
            row = np.array([V[i, j] for j in range(n)], dtype=object)
            P = P + np.outer(row, row)
    return P


def cast_orbit(A: np.ndarray, B: np.ndarray, ys: list[np.ndarray], fmt: str, max_iter: int = 20000) -> CastOrbit:
    """Decide ``Ĥ_k = cast(Σ_{i<k} cast(A^i B) + Σ_y cast(A^k y))`` for all k ≥ 0 (see module doc).
    ``A`` must be a contraction with real spectrum (checked in float64)."""
    fmt_obj = get_format(fmt)
    a64 = np.asarray(A, dtype=np.float64)
    if np.linalg.norm(a64, 2) > 1 + 1e-9:
        raise DomainError("A", f"must be a contraction (‖A‖₂ ≤ 1), got {np.linalg.norm(a64, 2):.6g}")
    if np.max(np.abs(np.linalg.eigvals(a64).imag)) > 1e-9:
        raise DomainError("A", "must have a real spectrum (Grazzi et al. Thm 2's hypothesis)")
    with mpmath.workprec(PREC):
        n = A.shape[0]
        I = _mp(np.eye(n))
        P1, Pm = _null_projector(A - I), _null_projector(A + I)
        vecs = [B] + list(ys)
        limits = [(P1.dot(x) + Pm.dot(x), P1.dot(x) - Pm.dot(x)) for x in vecs]
        margins = []
        for lim in limits:
            m = min(margin(v, fmt_obj) for L in lim for v in L.reshape(-1))
            if m == 0:
                return CastOrbit(fmt, "tie")
            margins.append(m)
        resid = [x - L[0] for x, L in zip(vecs, limits)]  # r_0 = x − P₁x − P₋₁x
        cur = list(vecs)
        terms_B, terms_y = [], []  # cast(A^i B) for i < K0; Σ_y cast(A^k y) for k ≤ K0 + 1
        stable = [None] * len(vecs)
        i = 0
        while True:
            terms_B.append(_cast_all(cur[0], fmt_obj))
            terms_y.append(sum((_cast_all(c, fmt_obj) for c in cur[1:]), np.zeros(B.shape)))
            for j, r in enumerate(resid):
                if stable[j] is None and mpmath.sqrt(sum(v * v for v in r.reshape(-1))) < margins[j]:
                    stable[j] = i
            if all(s is not None for s in stable) and i >= max(stable) + 1:
                break
            if i >= max_iter:
                return CastOrbit(fmt, "slow")
            cur = [A.dot(c) for c in cur]
            resid = [A.dot(r) for r in resid]
            i += 1
        K0 = max(stable)
    with mpmath.workprec(1200):  # exact sums of format values
        Bsum = _mp(np.zeros(B.shape))
        H = []  # Ĥ_k for k = 0 .. K0 + 1
        for k in range(K0 + 2):
            H.append(_cast_all(Bsum + _mp(terms_y[k]), fmt_obj))
            Bsum = Bsum + _mp(terms_B[k])
        cbar = [np.array(terms_B[K0 if K0 % 2 == p else K0 + 1]) for p in (0, 1)]
        Dmp = _mp(cbar[0]) + _mp(cbar[1])  # growth of the sum over two steps, exact
        # S_k for k = K0, K0+1 (exact), from the running sums
        S = {}
        acc = _mp(np.zeros(B.shape))
        for k in range(K0 + 2):
            S[k] = acc + _mp(terms_y[k])
            acc = acc + _mp(terms_B[k])
        big, top = fmt_obj.largest, mpmath.mpf(fmt_obj.largest) - mpmath.mpf(float(fmt_obj.ulp(fmt_obj.largest))) / 2
        E = [np.zeros(B.shape), np.zeros(B.shape)]
        start = np.zeros((2,) + B.shape, dtype=object)  # Python ints: saturation can take 10^38 steps
        saturating = 0
        for p in (0, 1):
            kp = K0 if K0 % 2 == p else K0 + 1
            for idx in np.ndindex(B.shape):
                d, s = Dmp[idx], S[kp][idx]
                if d == 0:
                    E[p][idx] = cast(s, fmt_obj)
                    last = -1
                    for k in range(p, kp + 1, 2):
                        if H[k][idx] != E[p][idx]:
                            last = k
                    start[p][idx] = last + 2 if last >= 0 else p
                else:
                    saturating += 1
                    sign = 1 if d > 0 else -1
                    E[p][idx] = sign * big
                    j = int(mpmath.floor((top - sign * s) / abs(d))) + 1
                    if j > 0:
                        start[p][idx] = kp + 2 * j
                    else:
                        last = -1
                        for k in range(p, kp + 1, 2):
                            if H[k][idx] != E[p][idx]:
                                last = k
                        start[p][idx] = last + 2 if last >= 0 else p
    period = 1 if np.array_equal(E[0], E[1]) else 2
    # Ĥ_j = E_{j mod 2} for all j ≥ k  ⟺  k ≥ s_p − 1 for both parities (s_p = first index of parity p)
    kbar = int(max(start[0].max() - 1, start[1].max() - 1, 0))
    return CastOrbit(fmt, "ok", period, kbar, K0, saturating // 2, [E[0].tolist(), E[1].tolist()])


# --- step-wise rounding -----------------------------------------------------------------------
@dataclass
class StepOrbit:
    fmt: str
    status: str  # "ok" or "cap" (no repetition within the cap)
    tail: int | None = None  # first index of the cycle (k̄)
    period: int | None = None
    steps: int = 0

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def stepwise_orbit(step, state: np.ndarray, fmt: str, cap: int) -> StepOrbit:
    """Iterate ``state ← step(state)`` (one sequence, a deterministic map of a finite set) until a
    state repeats: returns the tail length ``k̄`` (the orbit is periodic from step k̄) and the period."""
    seen = {state.tobytes(): 0}
    for k in range(1, cap + 1):
        state = step(state)
        key = state.tobytes()
        if key in seen:
            return StepOrbit(fmt, "ok", seen[key], k - seen[key], k)
        seen[key] = k
    return StepOrbit(fmt, "cap", steps=cap)


# --- the cast model for a stack: layers fed eventually constant inputs ----------------------------
def _label(state: np.ndarray) -> int:
    """The label a layer passes on: 1 if the first state coordinate is > 0 (:mod:`models`' decoder)."""
    return int(np.asarray(state, dtype=np.float64).reshape(-1)[0] > 0)


@dataclass
class LayerLabels:
    """The labels ``labels[t − 1]`` of one layer after t = 1 … len(labels) tokens, constant (= ``eventual``)
    for every t ≥ ``constant_from``; ``status`` "ok", or "tie" / "slow" when the cast orbit is undecided."""

    status: str
    labels: list[int] = field(default_factory=list)
    eventual: int | None = None
    constant_from: int | None = None
    kbar: int | None = None  # the layer's state is periodic (period ``period``) from this t on
    period: int | None = None


def eventual_labels(layer: Layer, tokens: list[int], constant: int, fmt: str, max_iter: int = 20000) -> LayerLabels:
    """Cast model of one layer fed ``tokens`` (x_1 … x_{s−1}) and then ``constant`` forever.

    The cast-model state after t tokens is ``Ĥ_t = cast( Σ_{i ≤ t} cast(A_{x_t}⋯A_{x_{i+1}} B_{x_i})
    + cast(A_{x_t}⋯A_{x_1} H_0) )`` — the one-token model of Grazzi et al. (App. A.4/B) with the
    exact products of the actual inputs [ours: the natural reading of their multi-layer induction].
    With ``s − 1 = len(tokens)`` and the terms ``y`` of Ĥ_{s−1}, every later state is
    ``Ĥ_{s−1+j} = cast(Σ_{m<j} cast(A_c^m B_c) + Σ_y cast(A_c^j y))``: :func:`cast_orbit` decides it for
    every j. The labels before its k̄ are computed term by term."""
    A = {t: exact_affine(layer, t) for t in set(tokens) | {constant}}
    fmt_obj = get_format(fmt)
    with mpmath.workprec(PREC):
        terms = [A[constant][2]]  # P_{t,0} H0, P_{t,1} B_{x_1}, …
        labels = []

        def state():
            with mpmath.workprec(1200):
                total = sum((_mp(_cast_all(v, fmt_obj)) for v in terms), _mp(np.zeros(terms[0].shape)))
                return _cast_all(total, fmt_obj)

        for x in tokens:
            terms = [A[x][0].dot(v) for v in terms] + [A[x][1]]
            labels.append(_label(state()))
        Ac, Bc, _ = A[constant]
        orbit = cast_orbit(Ac, Bc, list(terms), fmt, max_iter)
        if orbit.status != "ok":
            return LayerLabels(orbit.status, labels)
        s1 = len(tokens)
        with mpmath.workprec(1200):
            drive = _mp(np.zeros(Bc.shape))  # Σ_{m<j} cast(A_c^m B_c), exact
        power_B = Bc
        for _ in range(max(orbit.kbar, 1)):  # Ĥ_{s−1+j}, j = 1 … k̄ (periodic from there)
            terms = [Ac.dot(v) for v in terms]
            with mpmath.workprec(1200):
                drive = drive + _mp(_cast_all(power_B, fmt_obj))
                total = sum((_mp(_cast_all(v, fmt_obj)) for v in terms), drive)
            labels.append(_label(_cast_all(total, fmt_obj)))
            power_B = Ac.dot(power_B)
    tail = [_label(np.array(e)) for e in orbit.eventual]
    if orbit.period != 1 or tail[0] != tail[1]:
        return LayerLabels("ok", labels, None, None, s1 + orbit.kbar, orbit.period)
    eventual = tail[0]
    last = max((t for t, lab in enumerate(labels, 1) if lab != eventual), default=0)
    return LayerLabels("ok", labels, eventual, last + 1, s1 + orbit.kbar, orbit.period)


def stack_cast_labels(layers: list[Layer], fmt: str, token: int = 0) -> list[LayerLabels]:
    """The cast model of a stack on ``token^k``: layer 1 reads ``token`` at every step, layer ℓ + 1 reads
    layer ℓ's labels. Each layer's input is eventually constant (by induction), so
    :func:`eventual_labels` decides it; stops at the first undecided or non-constant layer."""
    out, tokens, constant = [], [], token
    for layer in layers:
        res = eventual_labels(layer, tokens, constant, fmt)
        out.append(res)
        if res.status != "ok" or res.eventual is None:
            break
        tokens, constant = res.labels[:res.constant_from - 1], res.eventual
    return out
