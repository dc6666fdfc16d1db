"""pLSTM stability (Pöppel et al., arXiv 2506.11997, §4 and App. D) and the 1-D chain as a diagonal
linear RNN — executable checks run by ``lrnnspec prove plstm``.

All numbers come from the spec family itself (:mod:`lrnnspec.spec.families.plstm`, evaluated node by
node on a grid by the spec engines) driven by one *unit source*: K = V = 1, q = 1 everywhere,
k = v = 1 at the origin (0, 0) and 0 elsewhere, D = 0, scale = 1, Marks M = 1 on both in-ports. The
output at node (y, x) is then the gating-matrix entry G[(y, x), origin] of eq. 7: the total signal
the origin's source delivers to (y, x) (Δx = x, Δy = y, Δ = Δx + Δy).

* ``plstm.unconstrained`` (App. D.1): all transitions 1, sources 1 → G = number of lattice paths
  = C(Δ, Δx), compared as exact integers (exact engine, raw 2·prec-bit values); grows ~ 4^Δ/√Δ.
* ``plstm.p_mode`` (§4.1, App. D.2): T = γ[[α, α], [1−α, 1−α]], S = (α, 1−α) → G = γ^(Δ−1)
  C(Δ, Δx) α^Δx (1−α)^Δy; at γ = 1 each anti-diagonal carries mass exactly 1 (|Σ − 1| ≤ 64·Δ·u64),
  the peak of anti-diagonal Δ sits at Δx/Δ within 1/Δ of α and has height (2π α(1−α) Δ)^(−1/2) up to
  a relative 1/(α(1−α)Δ) [ours: the local-limit correction of the binomial mode]; the slope of
  log(peak) against log Δ is −1/2 within 0.02.
* ``plstm.d_mode`` (§4.2): the turn T[1, 0] (horizontal in → vertical out) zero, every other
  transition 1: the line graph is a multitree (checked on the graph) and every node of the quadrant
  receives exactly 1 (exact engine); the spec accepts the gates with ``mode="D"`` and rejects the
  all-ones gates.
* ``plstm.chain_lrnn`` [ours]: on ``chain(n)`` with M = T, D = S the pLSTM is the diagonal linear
  RNN C_t = T_t C_{t−1} + S_t k_t v_tᵀ read after the update: equal to mamba with
  eigenvalue_range '[-1,1]' (tanh transitions in (−1, 1)) and to simple_gla (T ∈ (0, 1]); hence it
  inherits Grazzi et al. 2025's parity construction (T = −1 on letter 1 — reached by a float32 tanh,
  which rounds to −1 below −9.1) and the mod-3 obstruction of Thm 2 (real transitions; checked for
  mamba[−1,1] by ``modcount.real_spectrum``).
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from lrnnspec.spec import evaluate, grid
from lrnnspec.spec.dag import evaluate_dag
from lrnnspec.spec.errors import DomainError

from .result import CheckResult, check

SOURCE = "Pöppel et al. 2025, pLSTM (arXiv 2506.11997)"
# grid side per profile (Δ up to side − 1); the exact engine's grids are smaller
SIDES = {"dev": 33, "ci": 65, "certify": 129}
EXACT_SIDES = {"dev": 16, "ci": 24, "certify": 40}


def _side(profile: str, table: dict) -> int:
    if profile not in table:
        raise DomainError("profile", f"must be one of {tuple(table)}, got {profile!r}")
    return table[profile]


def unit_source_inputs(h: int, w: int, T, S0) -> dict:
    """Inputs of the unit-source experiment on an h×w grid (see the module docstring).
    ``T``: [2, 2] (same at every node) or [h, w, 2, 2]; ``S0``: the origin's sources [2]."""
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), (h, w, 2, 2))
    k = np.zeros((1, h, w, 1, 1))
    k[0, 0, 0] = 1.0
    S = np.zeros((1, h, w, 1, 2))
    S[0, 0, 0, 0] = S0
    return {"q": np.ones((1, h, w, 1, 1)), "k": k, "v": k.copy(), "S": S, "T": T[None, :, :, None].copy(),
            "M": np.ones((1, h, w, 1, 2)), "D": np.zeros((1, h, w, 1))}


def response(h: int, w: int, T, S0, engine: str = "fp64", **options):
    """G[(y, x), origin] for every node, [h, w] (and the evaluation)."""
    res = evaluate_dag("plstm", unit_source_inputs(h, w, T, S0), graph=grid(h, w), engine=engine, scale=1.0,
                       **options)
    return res.output[0, :, :, 0, 0], res


def _result(name, result, hypothesis, ok, evidence, t0, source=SOURCE):
    return CheckResult(name, result, source, hypothesis, "verified" if ok else "failed", evidence,
                       time.perf_counter() - t0)


@check("plstm.unconstrained")
def unconstrained(profile: str) -> CheckResult:
    t0 = time.perf_counter()
    n = _side(profile, EXACT_SIDES)
    _, res = response(n, n, np.ones((2, 2)), [1.0, 1.0], engine="exact", prec=128)
    raw = res.raw["output"].reshape(n, n)
    mismatches = [(y, x) for y in range(n) for x in range(n) if (y or x) and int(raw[y, x]) != math.comb(x + y, x)
                  or raw[y, x] != int(raw[y, x])]
    diag = [int(raw[d, d]) for d in range(n)]
    evidence = {"grid": f"{n}x{n}", "engine": "exact:mpmath (256-bit values compared as integers)",
                "nodes_checked": n * n - 1, "mismatches": mismatches[:5],
                "G_at_offset": {f"({d},{d})": diag[d] for d in (1, 5, 10, n - 1) if d < n},
                "growth_ratio_last": diag[-1] / diag[-2] if diag[-2] else None}
    return _result("plstm.unconstrained", "Unconstrained transitions (all 1) grow with the number of paths: "
                   "G[(Δy,Δx), 0] = C(Δx+Δy, Δx)", "T ≡ 1, S ≡ 1, M ≡ 1 on a right/down grid",
                   not mismatches, evidence, t0, SOURCE + ", App. D.1")


@check("plstm.p_mode")
def p_mode(profile: str) -> CheckResult:
    t0 = time.perf_counter()
    n = _side(profile, SIDES)
    alpha = 0.3
    T = np.array([[alpha, alpha], [1 - alpha, 1 - alpha]])
    G, _ = response(n, n, T, [alpha, 1 - alpha], mode="P")
    u = 2.0 ** -53
    rows, ok = [], True
    deltas = list(range(1, n))
    peaks = []
    for d in deltas:
        xs = np.arange(d + 1)
        line = G[d - xs, xs]                    # anti-diagonal Δ: (Δy, Δx) = (d − x, x)
        mass = float(line.sum())
        closed = np.array([math.comb(d, int(x)) * alpha ** x * (1 - alpha) ** (d - x) for x in xs])
        form_err = float(np.max(np.abs(line - closed)))
        xpk = int(np.argmax(line))
        peak = float(line[xpk])
        var = alpha * (1 - alpha) * d
        pred = (2 * math.pi * var) ** -0.5
        rel = abs(peak / pred - 1)
        good = (abs(mass - 1) <= 64 * d * u and form_err <= 64 * d * u and abs(xpk / d - alpha) <= 1 / d
                and (d < 10 or rel <= 1 / var))
        ok &= good
        peaks.append(peak)
        if d in (1, 2, 10, 20, 50, 100, 128) or d == deltas[-1] or not good:
            rows.append({"delta": d, "mass": mass, "peak_dx_over_delta": xpk / d, "peak": peak,
                         "predicted_peak": pred, "rel_err": rel, "tolerance": 1 / var, "max_err_vs_binomial": form_err})
    big = [d for d in deltas if d >= 10]
    slope = float(np.polyfit(np.log(big), np.log([peaks[d - 1] for d in big]), 1)[0])
    ok &= abs(slope + 0.5) <= 0.02
    # γ < 1: the anti-diagonal mass is γ^(Δ−1)
    gamma = 0.9
    Gg, _ = response(min(n, 33), min(n, 33), gamma * T, [alpha, 1 - alpha], mode="P")
    gam_err = max(abs(float(sum(Gg[d - x, x] for x in range(d + 1))) - gamma ** (d - 1))
                  for d in range(1, min(n, 33)))
    ok &= gam_err <= 1e-13
    evidence = {"grid": f"{n}x{n}", "alpha": alpha, "engine": "fp64", "anti_diagonals": rows,
                "loglog_slope_of_peak": slope, "gamma": gamma, "max_err_mass_gamma_pow": gam_err}
    return _result("plstm.p_mode", "P-mode (T = γ[[α,α],[1−α,1−α]]) conserves anti-diagonal mass at γ = 1, peaks at "
                   "Δx/Δ = α and decays like (2π α(1−α) Δ)^(−1/2)",
                   "column sums Σ_o |T[o,i]| = γ ≤ 1 (mode 'P' accepted by the spec)", ok, evidence, t0,
                   SOURCE + ", §4.1 eq. 8, App. D.2")


@check("plstm.d_mode")
def d_mode(profile: str) -> CheckResult:
    t0 = time.perf_counter()
    n = _side(profile, EXACT_SIDES)
    T = np.ones((2, 2))
    T[1, 0] = 0.0                               # turn horizontal-in → vertical-out
    g = grid(n, n)
    active = np.broadcast_to(T != 0, (n * n, 2, 2))
    multitree, _ = g.line_graph_is_multitree(active)
    full_multitree, pair = g.line_graph_is_multitree(np.ones((n * n, 2, 2), bool))
    G, res = response(n, n, T, [1.0, 1.0], engine="exact", prec=128, mode="D")
    raw = res.raw["output"].reshape(n, n)
    not_one = [(y, x) for y in range(n) for x in range(n) if (y or x) and raw[y, x] != 1]
    try:
        response(4, 4, np.ones((2, 2)), [1.0, 1.0], mode="D")
        rejected = False
    except DomainError:
        rejected = True
    ok = multitree and not full_multitree and not not_one and rejected
    evidence = {"grid": f"{n}x{n}", "engine": "exact:mpmath", "line_graph_multitree_with_turn_zero": multitree,
                "line_graph_multitree_all_turns": full_multitree, "two_paths_witness_edges": pair,
                "nodes_not_exactly_1": not_one[:5], "nodes_checked": n * n - 1,
                "all_ones_rejected_in_mode_D": rejected}
    return _result("plstm.d_mode", "D-mode (one turn transition zero): the line graph is a multitree and, at "
                   "criticality, every node of the quadrant receives magnitude exactly 1",
                   "T[1,0] = 0, other |T| = 1 (mode 'D' accepted by the spec)", ok, evidence, t0,
                   SOURCE + ", §4.2")


def chain_inputs(rng, B: int, n: int, K: int, V: int, T):
    """1-D pLSTM inputs (one head) with M = T and D = S; T [B, n]."""
    S = 1.0 / (1.0 + np.exp(-rng.standard_normal((B, n))))
    return {"q": rng.standard_normal((B, n, 1, K)), "k": rng.standard_normal((B, n, 1, K)),
            "v": rng.standard_normal((B, n, 1, V)), "S": S[..., None, None], "T": T[..., None, None, None],
            "M": T[..., None, None], "D": S[..., None]}


@check("plstm.chain_lrnn")
def chain_lrnn(profile: str) -> CheckResult:
    from lrnnspec.spec import chain
    from lrnnspec.spec.families.plstm import chain_as_mamba, chain_as_simple_gla

    t0 = time.perf_counter()
    n = {"dev": 16, "ci": 32, "certify": 64}[profile] if profile in SIDES else _side(profile, SIDES)
    rng = np.random.default_rng(0)
    B, K, V = 3, 4, 3
    ev: dict = {}
    # (a) equality with mamba[-1,1] (tanh transitions) and simple_gla (T ∈ (0, 1])
    worst = {}
    for target, T in (("mamba", np.tanh(rng.normal(0.0, 1.5, (B, n)))), ("simple_gla", rng.uniform(0.05, 1.0, (B, n)))):
        x = chain_inputs(rng, B, n, K, V, T)
        y = evaluate_dag("plstm", x, graph=chain(n)).output[:, :, 0]
        if target == "mamba":
            fam, inp, opts = chain_as_mamba(x["q"][:, :, 0], x["k"][:, :, 0], x["v"][:, :, 0], x["S"][..., 0, 0], T)
            z = evaluate(fam, inp, **opts).output
        else:
            fam, inp, opts = chain_as_simple_gla(x["q"], x["k"], x["v"], x["S"][..., 0], T[..., None])
            z = evaluate(fam, inp, **opts).output[:, :, 0]
        worst[target] = float(np.max(np.abs(y - z)) / max(1.0, np.max(np.abs(y))))
    ev["max_rel_diff_vs_mamba[-1,1]"] = worst["mamba"]
    ev["max_rel_diff_vs_simple_gla"] = worst["simple_gla"]
    ok = all(v <= 1e-12 for v in worst.values())
    # (b) parity: letter 1 → T = −1, S = 1; letter 0 → T = 1, S = 0; q = k = v = 1, scale 1
    L = {"dev": 8, "ci": 10, "certify": 12}.get(profile, 10)
    words = np.array(list(itertools.product([0, 1], repeat=L)), dtype=np.float64)
    T = 1.0 - 2.0 * words
    ones = np.ones((len(words), L, 1, 1))
    x = {"q": ones, "k": ones, "v": ones, "S": words[..., None, None], "T": T[..., None, None, None],
         "M": T[..., None, None], "D": words[..., None]}
    parity = np.cumsum(words, axis=1) % 2
    for engine in ("exact", "emulate:fp32", "emulate:bf16"):
        sub = {k_: v_[:64] for k_, v_ in x.items()} if engine == "exact" else x
        out = evaluate_dag("plstm", sub, graph=chain(L), engine=engine, scale=1.0).output[:, :, 0, 0]
        errors = int(np.sum(out != parity[:len(out)]))
        ev[f"parity_errors_{engine}"] = errors
        ok &= errors == 0
    ev["parity_words"] = f"all {len(words)} words of length {L} (exact engine: the first 64)"
    ev["float32_tanh(-10)"] = float(np.tanh(np.float32(-10.0)))
    ok &= ev["float32_tanh(-10)"] == -1.0
    ev["mod3"] = ("transitions are real scalars: every product has a real spectrum, so Grazzi et al. 2025 Thm 2 "
                  "applies (eventual period 1 or 2 on 1^k); the obstruction for mamba[-1,1], which the chain equals, "
                  "is witnessed by check modcount.real_spectrum")
    return _result("plstm.chain_lrnn", "1-D pLSTM is a diagonal linear RNN with transitions in (−1, 1): it equals "
                   "mamba[−1,1], realizes parity (T → −1), and cannot count mod 3",
                   "chain graph, M = T, D = S; scalar real transitions", ok, ev, t0,
                   SOURCE + " §3.1; Grazzi et al. 2025 Thms 1–2 [ours: the mapping]")
