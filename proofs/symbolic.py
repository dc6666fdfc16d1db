"""Symbolic identities behind the constructions and the chunkwise kernels, proved with sympy.

* ``symbolic.rotation_cube`` — ``R(2π/3)³ = I`` exactly (the mod-3 construction is exact).
* ``symbolic.two_reflections`` — ``H(n₁)H(n₂) = R(2(φ₁ − φ₂))`` for unit normals at angles φ₁, φ₂ in
  the plane (research/theorems.md §8(2)), and in 3-D ``H(v)H(u) = Rot(e₃, θ)`` for ``u = (cos α, sin α, 0)``,
  ``v = cos(θ/2)u + sin(θ/2)(e₃ × u)`` — general axes follow by conjugation with an orthogonal Q, since
  ``Q H(x) Qᵀ = H(Qx)`` [ours, standard].
* ``symbolic.wy`` — the WY representation (Yang et al. 2024, DeltaNet): ``(I − β_1 k_1 k_1ᵀ)⋯(I − β_r k_r k_rᵀ)
  = I − Σ_i w_i k_iᵀ`` with ``w_r = β_r (k_r − Σ_{i<r} w_i (k_iᵀ k_r))`` (FLA's right-multiplied order);
  checked in the transposed form ``G_r ⋯ G_1 = I − Σ_i k_i w_iᵀ`` (the order the recurrence applies
  them, factors symmetric) for r = 2, 3 and symbolic 3-D keys of any norm.
* ``symbolic.chunkwise`` — the chunkwise DeltaNet form (UT transform) equals the recurrence for
  symbolic keys, values, β and initial state, chunk sizes 2 and 3 (Yang et al. 2024, research/theorems.md
  §7, FLA convention ``S_t = S_{t−1}(I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ``, ``o_t = S_t q_t``):
  ``T = (I + strictLower(diag(β) K Kᵀ))^{−1} diag(β)``, ``W = T K``, ``U = T V``,
  ``S' = S + (U − W Sᵀ)ᵀ K``, ``O = Q Sᵀ + (Q Kᵀ ⊙ M)(U − W Sᵀ)``.
"""

from __future__ import annotations

import time

from .result import CheckResult, check


def _zero(expr) -> bool:
    import sympy as sp

    return all(sp.simplify(e) == 0 for e in expr)


def rotation_cube() -> bool:
    import sympy as sp

    r = sp.Matrix([[sp.cos(2 * sp.pi / 3), -sp.sin(2 * sp.pi / 3)], [sp.sin(2 * sp.pi / 3), sp.cos(2 * sp.pi / 3)]])
    return (r ** 3 - sp.eye(2)).applyfunc(sp.nsimplify) == sp.zeros(2, 2)


def _householder(n):
    import sympy as sp

    return sp.eye(n.shape[0]) - 2 * n * n.T


def two_reflections_2d() -> bool:
    import sympy as sp

    p1, p2 = sp.symbols("phi1 phi2", real=True)
    n1 = sp.Matrix([sp.cos(p1), sp.sin(p1)])
    n2 = sp.Matrix([sp.cos(p2), sp.sin(p2)])
    a = 2 * (p1 - p2)
    rot = sp.Matrix([[sp.cos(a), -sp.sin(a)], [sp.sin(a), sp.cos(a)]])
    return _zero(sp.expand_trig(sp.trigsimp(_householder(n1) * _householder(n2) - rot)))


def two_reflections_3d() -> bool:
    import sympy as sp

    al, th = sp.symbols("alpha theta", real=True)
    u = sp.Matrix([sp.cos(al), sp.sin(al), 0])
    e3 = sp.Matrix([0, 0, 1])
    v = sp.cos(th / 2) * u + sp.sin(th / 2) * e3.cross(u)
    rot = sp.Matrix([[sp.cos(th), -sp.sin(th), 0], [sp.sin(th), sp.cos(th), 0], [0, 0, 1]])
    diff = _householder(v) * _householder(u) - rot
    return all(sp.simplify(sp.expand_trig(sp.trigsimp(e))) == 0 for e in diff)


def wy_identity(r: int, d: int = 3) -> bool:
    import sympy as sp

    ks = [sp.Matrix(sp.symbols(f"k{i}_0:{d}", real=True)) for i in range(r)]
    bs = sp.symbols(f"b0:{r}", real=True)
    prod = sp.eye(d)
    for k, b in zip(ks, bs):
        prod = (sp.eye(d) - b * k * k.T) * prod  # later factors on the left
    # for this order the WY vectors run over the keys as applied: w_r uses the earlier ones
    ws = []
    for i in range(r):
        w = bs[i] * ks[i]
        for j in range(i):
            w -= bs[i] * (ks[j].T * ks[i])[0] * ws[j]
        ws.append(w)
    # product with the last factor on the left equals I − Σ_i (k_i-side) ... in transposed form:
    # (∏ G)ᵀ = G_1 ⋯ G_r = I − Σ_i w_i k_iᵀ  (symmetric factors), i.e. ∏ G = I − Σ_i k_i w_iᵀ
    wy = sp.eye(d) - sum((k * w.T for k, w in zip(ks, ws)), sp.zeros(d, d))
    return _zero((prod - wy).applyfunc(sp.expand))


def chunkwise_identity(C: int, dk: int = 2, dv: int = 2) -> bool:
    import sympy as sp

    K = sp.Matrix(C, dk, lambda i, j: sp.Symbol(f"k{i}_{j}", real=True))
    V = sp.Matrix(C, dv, lambda i, j: sp.Symbol(f"v{i}_{j}", real=True))
    Q = sp.Matrix(C, dk, lambda i, j: sp.Symbol(f"q{i}_{j}", real=True))
    beta = sp.symbols(f"b0:{C}", real=True)
    S0 = sp.Matrix(dv, dk, lambda i, j: sp.Symbol(f"s{i}_{j}", real=True))
    # recurrence (FLA convention)
    S = S0
    outs = []
    for t in range(C):
        k, v, q = K[t, :].T, V[t, :].T, Q[t, :].T
        S = S * (sp.eye(dk) - beta[t] * k * k.T) + beta[t] * v * k.T
        outs.append((S * q).T)
    O_rec = sp.Matrix.vstack(*outs)
    # chunkwise (UT transform)
    Bd = sp.diag(*beta)
    A = Bd * K * K.T
    strict = sp.Matrix(C, C, lambda i, j: A[i, j] if i > j else 0)
    T = (sp.eye(C) + strict).inv() * Bd
    W, U = T * K, T * V
    M = sp.Matrix(C, C, lambda i, j: 1 if i >= j else 0)
    Unew = U - W * S0.T
    S_chunk = S0 + Unew.T * K
    O_chunk = Q * S0.T + (Q * K.T).multiply_elementwise(M) * Unew
    return _zero((S_chunk - S).applyfunc(sp.expand)) and _zero((O_chunk - O_rec).applyfunc(sp.expand))


def _sym_check(name, result, source, hypothesis, fn):
    @check(name)
    def run(profile: str) -> CheckResult:
        start = time.perf_counter()
        parts = fn()
        ok = all(parts.values())
        return CheckResult(name, result, source, hypothesis, "verified" if ok else "failed",
                           {"identities": parts, "method": "sympy: the difference simplifies to 0"},
                           time.perf_counter() - start)

    return run


_sym_check("symbolic.rotation_cube", "R(2π/3)³ = I exactly", "research/theorems.md §8(2)", "exact algebraic entries",
           lambda: {"R(2π/3)^3 = I": rotation_cube()})
_sym_check("symbolic.two_reflections", "Two reflections make a rotation by twice the angle between their normals",
           "research/theorems.md §8(2)-(3); [ours] 3-D form", "unit normals",
           lambda: {"2-D: H(n1)H(n2) = R(2(φ1 − φ2))": two_reflections_2d(),
                    "3-D: H(v)H(u) = Rot(e3, θ)": two_reflections_3d()})
_sym_check("symbolic.wy", "WY representation of a product of generalized Householder matrices",
           "Yang et al. 2024 (DeltaNet), research/theorems.md §7", "symbolic keys (any norm) and β",
           lambda: {f"r = {r}": wy_identity(r) for r in (2, 3)})
_sym_check("symbolic.chunkwise", "Chunkwise DeltaNet (UT transform) equals the recurrence",
           "Yang et al. 2024 (DeltaNet), research/theorems.md §7", "symbolic keys, values, queries, β, initial state",
           lambda: {f"chunk size {c}": chunkwise_identity(c) for c in (2, 3)})
