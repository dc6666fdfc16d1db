"""Complex diagonal transitions: counting mod m in one layer, S3 in two (the matrix's complex-diagonal row).

**Setting** (Merrill, Petty & Sabharwal 2024, *The Illusion of State in State-Space Models*, Thm 4.4
and Cor. 4.7): diagonal SSMs with complex, input-dependent transitions ``h_t = λ(x_t) ⊙ h_{t−1} + b(x_t)``,
|λ| ≤ 1 (LRU, S4D/S5-style complex states). Their result is an *upper* bound — with log precision
such a stack is in TC⁰, so unless TC⁰ = NC¹ no fixed depth solves A5 or S5 (conditional; no
executable witness exists for a complexity-class separation). What complex diagonals *can* do:

* ``complexdiag.mod3`` — counting mod 3 in one layer: λ(1) = ω = e^{2πi/3}, λ(0) = 1, h₀ = 1; the state
  is ω^{#ones}, decoded as the nearest cube root of unity (research/theorems.md §9: "✓ 1, λ = e^{2πi/m}").
  A real diagonal cannot (Grazzi et al. 2025, Thm 2: period ≤ 2).
* ``complexdiag.S3`` — S3 ≅ D3 in two layers [ours; research/theorems.md §9, "✓ 2 layers via cascade"]:
  with D3 = {(j, f)}, (j, f)∘(j', f') = (j + (−1)^f j', f ⊕ f'), the prefix product g_t = x_t∘g_{t−1} has
  flip bit f_t = ⊕ f_{x_i} (layer 1: the real diagonal λ = −1 on reflections, h₀ = 1) and, with
  s_t = (−1)^{f_t}, ``w_t = ω^{s_t j_t}`` obeys ``w_t = ω^{s_t j_{x_t}} · w_{t−1}`` (because
  s_t(−1)^{f_{x_t}} = s_{t−1}): layer 2 is complex diagonal with λ a function of (x_t, f_t) — what it
  reads from layer 1. Decode j_t = s_t · log_ω(w_t).

No spec family has complex transitions, so this module evaluates them itself: ``exact`` — mpmath
at 256 bits on the float64 inputs (as the spec's exact engine treats inputs); ``fp32`` / ``bf16`` —
every real operation of the complex multiply-add rounded to the format. Verification: every word
up to a length and long random words; and the realized λ (complex128) equal the exact roots of unity
(sympy) within the float64 bound of :mod:`exactness` — so a drifted λ fails even where words pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np

from lrnnspec.spec import get_format

from .construction import Automaton, counter
from .deltanet_groups import dihedral_group
from .exactness import U64
from .result import CheckResult, check

SOURCE = ("Merrill, Petty & Sabharwal 2024 (The Illusion of State in SSMs), Thm 4.4 / Cor. 4.7 (complex diagonal "
          "SSMs are in TC⁰: no A5 / S5 unless TC⁰ = NC¹); constructions research/theorems.md §9 [D], checked here")
ENGINES = ("exact", "fp32", "bf16")
BUDGET = {"ci": (5, (16, 200)), "dev": (6, (32, 500)), "certify": (7, (64, 2000))}  # (max length, random words)


@dataclass
class ComplexLayer:
    """``h ← λ[tok] ⊙ h + b[tok]`` on h ∈ C^d; ``exact[tok]`` the intended λ (sympy) for the drift check."""

    lam: np.ndarray             # [n_tok, d] complex128
    b: np.ndarray               # [n_tok, d] complex128
    h0: np.ndarray              # [d] complex128
    decode: Callable            # states [N, d] (complex128) -> labels [N]
    exact: dict


@dataclass
class ComplexConstruction:
    name: str
    automaton: Automaton
    layers: list[ComplexLayer]
    route: Callable             # (i, letters, labels of the layers below) -> tokens of layer i
    readout: Callable           # labels of every layer -> automaton state
    description: str


def roots(m: int) -> np.ndarray:
    return np.exp(2j * np.pi * np.arange(m) / m)


def nearest_root(m: int) -> Callable:
    book = roots(m)

    def decode(h: np.ndarray) -> np.ndarray:
        z = np.asarray(h, dtype=np.complex128)[:, 0]
        return np.where(np.isfinite(z), np.argmin(np.abs(z[:, None] - book[None, :]), axis=1), -1)

    return decode


def _exact_root(k: int, m: int):
    import sympy as sp

    return sp.exp(2 * sp.pi * sp.I * sp.Rational(k % m, m))


def mod_construction(m: int = 3) -> ComplexConstruction:
    w = roots(m)[1]
    layer = ComplexLayer(np.array([[1.0 + 0j], [w]]), np.zeros((2, 1), complex), np.array([1.0 + 0j]),
                         nearest_root(m), {0: [_exact_root(0, m)], 1: [_exact_root(1, m)]})
    return ComplexConstruction(f"complexdiag.mod{m}", counter(m), [layer], lambda i, x, labels: x,
                               lambda labels: labels[-1], f"one complex diagonal layer: λ(1) = e^(2πi/{m}), λ(0) = 1")


def s3_construction() -> ComplexConstruction:
    group = dihedral_group(3)  # elements (j, f), identity first; table[q, a] = index of a ∘ q
    flips = np.array([f for _, f in group.elements])
    layer1 = ComplexLayer(np.array([[1.0 + 0j], [-1.0 + 0j]]), np.zeros((2, 1), complex), np.array([1.0 + 0j]),
                          lambda h: np.where(np.real(h[:, 0]) < 0, 1, 0), {0: [1], 1: [-1]})
    # layer 2 token 2x + f_t: λ = ω^(s_t j_x), s_t = (−1)^(f_t)
    powers = [(j * (1 - 2 * f_t)) % 3 for (j, _) in group.elements for f_t in (0, 1)]
    layer2 = ComplexLayer(roots(3)[powers][:, None], np.zeros((len(powers), 1), complex), np.array([1.0 + 0j]),
                          nearest_root(3), {t: [_exact_root(p, 3)] for t, p in enumerate(powers)})
    index = {e: i for i, e in enumerate(group.elements)}
    element = np.array([[index[((k * (1 - 2 * f)) % 3, f)] for f in (0, 1)] for k in range(3)])

    def route(i, x, labels):
        return flips[x] if i == 0 else 2 * x + labels[0]

    def readout(labels):
        k, f = labels[1], labels[0]
        return np.where(k >= 0, element[np.maximum(k, 0), f], -1)

    return ComplexConstruction("complexdiag.S3", Automaton(group.table), [layer1, layer2], route, readout,
                               "S3 ≅ D3 in two complex diagonal layers: layer 1 λ = −1 on reflections (flip bit f_t); "
                               "layer 2 λ = ω^((−1)^(f_t) j(x_t)), state ω^((−1)^(f_t) j_t)")


# --- evaluation ---------------------------------------------------------------------------------------
def _step(layer: ComplexLayer, h, tok: np.ndarray, engine: str):
    lam, b = layer.lam[tok], layer.b[tok]
    if engine == "exact":
        with mpmath.workprec(256):
            out = np.empty(h.shape, dtype=object)
            for idx in np.ndindex(h.shape):
                out[idx] = mpmath.mpc(lam[idx]) * h[idx] + mpmath.mpc(b[idx])
        return out
    r = get_format(engine).round
    a, c = r(lam.real), r(lam.imag)
    x, y = h.real, h.imag
    re = r(r(r(a * x) - r(c * y)) + r(b.real))
    im = r(r(r(a * y) + r(c * x)) + r(b.imag))
    return re + 1j * im


def _initial(layer: ComplexLayer, n: int, engine: str):
    if engine == "exact":
        out = np.empty((n, len(layer.h0)), dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = mpmath.mpc(layer.h0[idx[1]])
        return out
    r = get_format(engine).round
    h = r(layer.h0.real) + 1j * r(layer.h0.imag)
    return np.repeat(h[None], n, axis=0)


def run(con: ComplexConstruction, words: np.ndarray, engine: str) -> dict:
    """Words [N, T] through ``engine``; the first step at which any word decodes wrong."""
    expected = con.automaton.run(words)
    states = [_initial(layer, len(words), engine) for layer in con.layers]
    for t in range(words.shape[1]):
        labels = []
        for i, layer in enumerate(con.layers):
            states[i] = _step(layer, states[i], con.route(i, words[:, t], labels), engine)
            labels.append(np.asarray(layer.decode(np.asarray(states[i], dtype=np.complex128))))
        wrong = np.flatnonzero(con.readout(labels) != expected[:, t])
        if wrong.size:
            return {"engine": engine, "words": len(words), "length": int(words.shape[1]), "ok": False,
                    "first_failure": {"step": t + 1, "word": words[wrong[0], :t + 1].tolist()}}
    return {"engine": engine, "words": len(words), "length": int(words.shape[1]), "ok": True}


def all_words(letters: int, length: int) -> np.ndarray:
    return np.array(np.meshgrid(*[np.arange(letters)] * length, indexing="ij")).reshape(length, -1).T


def realized_vs_exact(con: ComplexConstruction) -> dict:
    """max |λ_realized − λ_exact| over every token of every layer (sympy at 60 digits) ≤ 16·u."""
    worst = 0.0
    with mpmath.workdps(60):
        for layer in con.layers:
            for tok, values in layer.exact.items():
                for i, v in enumerate(values):
                    import sympy as sp

                    e = complex(sp.N(sp.sympify(v), 60))
                    worst = max(worst, float(abs(mpmath.mpc(layer.lam[tok, i]) - mpmath.mpc(e.real, e.imag))))
    bound = 16 * U64
    return {"max |λ_realized − λ_exact|": worst, "bound": bound, "ok": worst <= bound}


def verify(con: ComplexConstruction, profile: str) -> dict:
    max_len, (n, length) = BUDGET.get(profile, BUDGET["ci"])
    letters = con.automaton.num_letters
    L = max(1, min(max_len, int(np.log(4000) / np.log(letters))))
    words = all_words(letters, L)
    rng = np.random.default_rng(0)
    long = rng.integers(0, letters, size=(n, length))
    runs = [run(con, words, "exact")] + [run(con, words, e) for e in ENGINES[1:]]
    runs += [run(con, long[:4, :min(length, 60)], "exact")] + [run(con, long, e) for e in ENGINES[1:]]
    drift = realized_vs_exact(con)
    ok = all(r["ok"] for r in runs) and drift["ok"]
    summary = "; ".join(f"{r['engine']} {r['words']}×{r['length']} {'✓' if r['ok'] else '✗ at step ' + str(r['first_failure']['step'])}"
                        for r in runs) + ("; λ = exact roots of unity ± float64 bound" if drift["ok"] else
                                          "; λ DRIFT from the exact roots of unity")
    return {"ok": bool(ok), "all words up to": L, "runs": runs, "realized vs exact": drift, "summary": summary}


def _complex_check(name: str, build, result: str, hypothesis: str):
    @check(name)
    def run_check(profile: str) -> CheckResult:
        start = time.perf_counter()
        con = build()
        ev = verify(con, profile)
        evidence = {"construction": con.description, **ev}
        return CheckResult(name, result, SOURCE, hypothesis, "verified" if ev["ok"] else "failed", evidence,
                           time.perf_counter() - start)

    return run_check


_complex_check("complexdiag.mod3", lambda: mod_construction(3), "Counting mod 3 with one complex diagonal layer",
               "λ(x) ∈ {1, e^(2πi/3)}: complex, |λ| = 1, diagonal")
_complex_check("complexdiag.S3", s3_construction, "S3 word problem with two complex diagonal layers (cascade Z2 ⋉ Z3)",
               "layer 1 λ ∈ {1, −1}; layer 2 λ ∈ {1, ω, ω²} chosen by (x_t, layer 1's label); |λ| = 1, diagonal")
