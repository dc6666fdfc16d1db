"""A construction: explicit parameters of spec families that implement an automaton.

Grazzi et al. 2025 (§2, "implements"): an LRNN implements an automaton ``(Σ, Q, q_0, δ)`` when a decoder
``g`` of the reachable states satisfies ``g(H_t) = δ(q_0, x_1 ⋯ x_t)`` on every word. Here a
construction is

* ``automaton`` — the transition table ``δ[q, a]`` and ``q_0``;
* ``layers`` — each one spec family (``delta_rule``, ``delta_product``, ``mamba`` ...) with a finite
  *token table*: token id ↦ the family's per-step inputs (keys, β, values / Δ, u, B, C). The
  construction is nothing but these numbers, so it runs through :func:`lrnnspec.spec.evaluate` on
  every engine;
* ``route(i, letters, labels)`` — the token each layer reads: a function of the input letter and the
  decoded labels of the layers below at the same step (a finite lookup, the "MLP" between layers);
* ``levels`` (optional) — the layer each entry of ``layers`` belongs to, when several entries are
  heads of one layer: an entry sees only the labels of entries at lower levels (the others are
  passed as ``None``), so the depth a construction claims is enforced, not asserted;
* each layer's ``decode`` (state ↦ small integer label) and the construction's ``readout`` (labels of
  all layers ↦ automaton state).

:func:`run_exhaustive` runs every word up to a length by prefix sharing (all words of length d are
the states of depth d − 1 extended by one step, batched on the B axis); :func:`run_random` runs long
random words. Both compare the decoded state with the automaton at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from lrnnspec.spec import evaluate
from lrnnspec.spec.errors import DomainError, ShapeError

from .linalg import gh_product

DELTA_FAMILIES = ("delta_rule", "delta_product")
DIAGONAL_FAMILIES = ("mamba",)


@dataclass(frozen=True)
class Automaton:
    table: np.ndarray  # [Q, Σ] next state
    q0: int = 0
    names: tuple = ()  # optional names of the states
    output: np.ndarray | None = None  # [Q] the label a construction must decode in each state (default: q)

    def __post_init__(self):
        t = np.asarray(self.table)
        if t.ndim != 2 or t.size == 0 or t.min() < 0 or t.max() >= t.shape[0]:
            raise ShapeError("table", f"must be a [Q, Σ] array of states in [0, Q), got shape {t.shape}")
        if not 0 <= self.q0 < t.shape[0]:
            raise DomainError("q0", f"must be a state in [0, {t.shape[0]}), got {self.q0}")
        if self.output is not None and np.asarray(self.output).shape != (t.shape[0],):
            raise ShapeError("output", f"must give one label per state ({t.shape[0]}), got shape "
                                       f"{np.asarray(self.output).shape}")

    def expected(self, q: np.ndarray) -> np.ndarray:
        """The labels a construction must decode in states ``q``."""
        return q if self.output is None else np.asarray(self.output)[q]

    @property
    def num_letters(self) -> int:
        return int(np.asarray(self.table).shape[1])

    def run(self, words: np.ndarray) -> np.ndarray:
        """Prefix states [N, T] of words [N, T]."""
        q = np.full(words.shape[0], self.q0, dtype=np.int64)
        out = np.empty(words.shape, dtype=np.int64)
        for t in range(words.shape[1]):
            q = self.table[q, words[:, t]]
            out[:, t] = q
        return out


def counter(m: int) -> Automaton:
    """Counting ones modulo ``m`` over {0, 1}: ``(1^m)*`` is its language of state 0 (parity: m = 2)."""
    if not isinstance(m, int) or m < 2:
        raise DomainError("m", f"must be an integer ≥ 2, got {m!r}")
    q = np.arange(m)
    return Automaton(np.stack([q, (q + 1) % m], axis=1))


def adder(m: int) -> Automaton:
    """``Σ x_i mod m`` over the letters 0..m−1 (the Z_m word problem)."""
    if not isinstance(m, int) or m < 2:
        raise DomainError("m", f"must be an integer ≥ 2, got {m!r}")
    q = np.arange(m)
    return Automaton((q[:, None] + q[None, :]) % m)


@dataclass
class Layer:
    """One layer: a spec family and a finite table of per-token inputs.

    Delta families (state ``S`` [N, 1, K, V]): ``tokens = {"k": [n_tok, n_h, K], "beta": [n_tok, n_h],
    "v": [n_tok, n_h, V]}``; micro-step j of token t is the GH factor ``I − β k kᵀ`` plus ``β k vᵀ``.
    ``mamba`` (state ``h`` [N, D, NS]): ``tokens = {"delta": [n_tok, D], "u": [n_tok, D],
    "B": [n_tok, NS], "C": [n_tok, NS]}`` and ``static = {"A": [D, NS]}``.

    ``exact`` (optional): the transition each token *means*, ``{token: matrix}`` — a sympy matrix
    (algebraic numbers), or a float matrix of a group representation whose defect the check bounds —
    derived from the construction's algebra, not from its float parameters; :func:`verify` compares
    ``transition(token)`` with it (:mod:`exactness`), so a parameter that drifts from it fails.
    """

    family: str
    tokens: dict[str, np.ndarray]
    h0: np.ndarray  # one sequence's initial state (the family's state shape without N)
    decode: Callable[[np.ndarray], np.ndarray]  # float64 states [N, ...] -> int labels [N]
    options: dict[str, Any] = field(default_factory=dict)
    static: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    exact: dict | None = None

    def __post_init__(self):
        if self.family not in DELTA_FAMILIES + DIAGONAL_FAMILIES:
            raise DomainError("family", f"constructions use {DELTA_FAMILIES + DIAGONAL_FAMILIES}, got {self.family!r}")
        self.tokens = {k: np.asarray(v, dtype=np.float64) for k, v in self.tokens.items()}
        self.h0 = np.asarray(self.h0, dtype=np.float64)
        need = ("k", "beta", "v") if self.family in DELTA_FAMILIES else ("delta", "u", "B", "C")
        missing = [n for n in need if n not in self.tokens]
        if missing:
            raise ShapeError("tokens", f"family {self.family!r} needs token tables {need}; missing {missing}")
        sizes = {v.shape[0] for v in self.tokens.values()}
        if len(sizes) != 1:
            raise ShapeError("tokens", f"every table needs the same number of tokens, got sizes {sorted(sizes)}")
        if self.family == "delta_rule" and self.tokens["k"].shape[1] != 1:
            raise ShapeError("tokens", "delta_rule has one GH factor per token (n_h = 1); use delta_product")

    @property
    def num_tokens(self) -> int:
        return next(iter(self.tokens.values())).shape[0]

    @property
    def n_h(self) -> int:
        return self.tokens["k"].shape[1] if self.family in DELTA_FAMILIES else 1

    def initial(self, n: int) -> np.ndarray:
        return np.repeat(self.h0[None], n, axis=0)

    def inputs(self, tok: np.ndarray) -> dict[str, np.ndarray]:
        """The family's inputs for one step (T = 1) of ``len(tok)`` sequences."""
        tok = np.asarray(tok, dtype=np.int64)
        n = tok.shape[0]
        t = self.tokens
        if self.family in DELTA_FAMILIES:
            k = t["k"][tok]  # [N, n_h, K]
            return {"q": np.zeros((n, 1, 1, k.shape[-1])), "k": k[:, :, None, :],
                    "v": t["v"][tok][:, :, None, :], "beta": t["beta"][tok][:, :, None]}
        return {"u": t["u"][tok][:, None], "delta": t["delta"][tok][:, None], "B": t["B"][tok][:, None],
                "C": t["C"][tok][:, None], **self.static}

    def transition(self, tok: int) -> np.ndarray:
        """``A(tok)``: the exact (float64) transition matrix acting on the state.
        Delta families: ``G_{n_h} ⋯ G_1`` on the K axis. ``mamba``: diag(a) over (D, NS) with
        ``a = exp(Δ·A)`` or ``2·exp(Δ·A) − 1``."""
        t = self.tokens
        if self.family in DELTA_FAMILIES:
            return gh_product(zip(t["k"][tok], t["beta"][tok]))
        a = np.exp(t["delta"][tok][:, None] * self.static["A"])
        if self.options.get("eigenvalue_range") == "[-1,1]":
            a = 2 * a - 1
        return np.diag(a.reshape(-1))


@dataclass
class Construction:
    name: str
    automaton: Automaton
    layers: list[Layer]
    route: Callable[[int, np.ndarray, list[np.ndarray]], np.ndarray] | None = None
    readout: Callable[[list[np.ndarray]], np.ndarray] | None = None
    description: str = ""
    levels: tuple[int, ...] | None = None  # default: entry i is layer i + 1

    def __post_init__(self):
        if self.levels is not None:
            lv = tuple(self.levels)
            if len(lv) != len(self.layers) or lv[0] != 1 or any(b - a not in (0, 1) for a, b in zip(lv, lv[1:])):
                raise DomainError("levels", f"must give each of the {len(self.layers)} layers a level, starting at 1 "
                                            f"and non-decreasing in steps of at most 1, got {self.levels}")

    @property
    def depth(self) -> int:
        """Number of layers (heads of one layer count once)."""
        return len(self.layers) if self.levels is None else max(self.levels)

    def visible(self, i: int, labels: list[np.ndarray]) -> list:
        """The labels entry ``i`` may read: those of lower levels; ``None`` for the rest."""
        if self.levels is None:
            return labels
        return [lab if self.levels[j] < self.levels[i] else None for j, lab in enumerate(labels)]

    def tokens_for(self, i: int, letters: np.ndarray, labels: list[np.ndarray]) -> np.ndarray:
        """Layer i's tokens, from the letters and the labels of the layers it may read."""
        return letters if self.route is None else self.route(i, letters, self.visible(i, labels))

    def read(self, labels: list[np.ndarray]) -> np.ndarray:
        return labels[-1] if self.readout is None else self.readout(labels)


# --- running through the spec engines ---------------------------------------------------------
def _step(con: Construction, engine: str, states: list, letters: np.ndarray):
    exact = engine.startswith("exact")
    labels, new = [], []
    for i, layer in enumerate(con.layers):
        tok = con.tokens_for(i, letters, labels)
        res = evaluate(layer.family, layer.inputs(tok), engine=engine, initial_state=states[i], **layer.options)
        new.append(next(iter(res.raw["state"].values())) if exact else res.final_state)
        labels.append(np.asarray(layer.decode(np.asarray(res.final_state, dtype=np.float64))))
    return new, labels


def _word_of(index: int, depth: int, base: int) -> list[int]:
    digits = []
    for _ in range(depth):
        digits.append(index % base)
        index //= base
    return digits[::-1]


def run_exhaustive(con: Construction, engine: str, max_length: int) -> dict:
    """Every word of length 1..max_length through ``engine``; the decoded state is compared with the
    automaton after every step. Returns counts and the first (shortest) wrong word, if any."""
    a = con.automaton.num_letters
    states = [layer.initial(1) for layer in con.layers]
    q = np.array([con.automaton.q0])
    words = 0
    for depth in range(1, max_length + 1):
        n = q.shape[0]
        states = [np.repeat(s, a, axis=0) for s in states]
        letters = np.tile(np.arange(a), n)
        q = con.automaton.table[np.repeat(q, a), letters]
        states, labels = _step(con, engine, states, letters)
        words += q.shape[0]
        want = con.automaton.expected(q)
        wrong = np.flatnonzero(con.read(labels) != want)
        if wrong.size:
            w = int(wrong[0])
            return {"engine": engine, "max_length": max_length, "words": words, "ok": False,
                    "first_failure": {"length": depth, "word": _word_of(w, depth, a),
                                      "expected": int(want[w]), "decoded": int(con.read(labels)[w])}}
    return {"engine": engine, "max_length": max_length, "words": words, "ok": True}


def random_letters(con: Construction, rng: np.random.Generator, n: int, length: int,
                   letters: list[int] | None = None) -> np.ndarray:
    pool = np.arange(con.automaton.num_letters) if letters is None else np.asarray(letters)
    return pool[rng.integers(0, len(pool), size=(n, length))]


def run_words(con: Construction, engine: str, words: np.ndarray) -> dict:
    """Given words [N, T] through ``engine``; the first step at which any word decodes wrong."""
    words = np.asarray(words, dtype=np.int64)
    expected = con.automaton.expected(con.automaton.run(words))
    states = [layer.initial(words.shape[0]) for layer in con.layers]
    for t in range(words.shape[1]):
        states, labels = _step(con, engine, states, words[:, t])
        wrong = np.flatnonzero(con.read(labels) != expected[:, t])
        if wrong.size:
            return {"engine": engine, "words": int(words.shape[0]), "length": int(words.shape[1]), "ok": False,
                    "first_failure": {"step": t + 1, "word_index": int(wrong[0])}}
    return {"engine": engine, "words": int(words.shape[0]), "length": int(words.shape[1]), "ok": True}


def exhaustive_length(alphabet: int, budget: int, cap: int = 12) -> int:
    """The largest L ≤ cap with Σ_{d ≤ L} alphabet^d ≤ budget (at least 1)."""
    total, length = 0, 0
    while length < cap:
        total += alphabet ** (length + 1)
        if total > budget:
            break
        length += 1
    return max(length, 1)


def nearest(codebook: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Decoder: index of the nearest codeword (Euclidean) to each flattened state; −1 (no state) for a
    state with an infinite or NaN entry, so an overflow always counts as a wrong decode."""
    book = np.asarray(codebook, dtype=np.float64).reshape(len(codebook), -1)

    def decode(states: np.ndarray) -> np.ndarray:
        flat = np.asarray(states, dtype=np.float64).reshape(states.shape[0], -1)
        with np.errstate(over="ignore", invalid="ignore"):
            d = ((flat[:, None, :] - book[None, :, :]) ** 2).sum(-1)
        out = np.argmin(np.where(np.isnan(d), np.inf, d), axis=1)
        return np.where(np.all(np.isfinite(flat), axis=1), out, -1)

    return decode


def hypothesis_report(con: Construction, eigen_range: tuple[float, float] = (-1.0, 1.0)) -> dict:
    """The checkable hypothesis of a construction: every GH factor has a unit key and β in range,
    every transition has spectral norm ≤ 1 and its spectrum in the unit disc; records the spectra."""
    out = {"layers": []}
    ok = True
    for layer in con.layers:
        norms, spectra = [], []
        for tok in range(layer.num_tokens):
            a = layer.transition(tok)  # gh() validates ‖k‖ = 1 and β ∈ [0, 2]
            norms.append(float(np.linalg.norm(a, 2)))
            spectra.append(np.linalg.eigvals(a))
        if layer.family in DELTA_FAMILIES:
            betas = layer.tokens["beta"]
            lo, hi = 1 - betas.max(), 1 - betas.min()
            ok &= bool(lo >= eigen_range[0] - 1e-12 and hi <= eigen_range[1] + 1e-12)
        max_norm = max(norms)
        ok &= max_norm <= 1 + 1e-9
        ev = np.concatenate(spectra)
        out["layers"].append({"family": layer.family, "n_h": layer.n_h, "max_norm": round(max_norm, 12),
                              "negative_real_eigenvalue": bool(np.any((np.abs(ev.imag) < 1e-9) & (ev.real < -1e-9))),
                              "complex_eigenvalue": bool(np.any(np.abs(ev.imag) > 1e-9))})
    out["ok"] = bool(ok)
    return out


# --- registry of constructions (the horizon study and the report iterate over it) -------------
CONSTRUCTIONS: dict[str, Callable[[], Construction]] = {}


def construction(name: str):
    """Decorator registering a zero-argument factory of a :class:`Construction` under ``name``."""

    def deco(fn):
        if name in CONSTRUCTIONS:
            raise ValueError(f"construction {name!r} registered twice")
        CONSTRUCTIONS[name] = fn
        return fn

    return deco
