"""Running a compiled LRNN stack through ``lrnnspec.spec`` and comparing it with the DFA.

Two drivers, both calling ``lrnnspec.spec.evaluate("delta_product", ...)`` once per layer per step:

``run_words`` — every word up to length L, breadth-first with prefix sharing: the frontier of
  words of length d carries each layer's state; its children (one per letter) are one T = 1 step
  from it (``initial_state`` = the parent's state, ``final_state`` = the child's). With
  ``merge=True`` (default) children whose complete configuration — every layer's state, bit for
  bit (exact engine: the exact mpmath values), and the DFA state — coincide are merged into one row
  that carries their number of words and one representative word. This is sound because the spec
  is a function of (state, inputs) row by row (batch rows are independent sequences), so merged
  words have identical futures; every word is still accounted for (the counts sum to |Σ|^d at
  depth d). ``merge=False`` evaluates one row per word, depth-first in chunks of ``cap`` rows.
``run_sequences`` — given words (e.g. long random ones), each layer runs over the whole sequence
  in one evaluation (T = word length); the per-step state is read from the outputs o_t = S_tᵀ q_t
  (scale 1) with q = e_j on replica j of each word, i.e. it uses the spec's read-after-update.

Decoding: :meth:`CompiledLRNN.decode` (argmax, and for memory heads the marker ½). A row is correct
iff the decoded DFA state equals the DFA's, acceptance agrees with the *original* DFA, and the
deviation from the ideal state pattern is below the decoder's margin (⅛ for memory layers, ½ for
one-hot layers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..spec import evaluate
from .regular_dfa import DFA
from .regular_lrnn import CompiledLRNN, Layer, unique_rows

MAX_EXAMPLES = 5


@dataclass
class RunStats:
    engine: str
    mode: str
    words: int = 0  # words checked (with multiplicity)
    rows: int = 0  # spec rows evaluated (per layer)
    max_length: int = 0
    state_disagreements: int = 0
    accept_disagreements: int = 0
    margin_violations: int = 0
    max_deviation: float = 0.0  # max |S − e_argmax| seen
    max_exact_bound: float | None = None  # exact engine: max error bound on the returned states
    examples: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.words > 0 and not (self.state_disagreements or self.accept_disagreements or self.margin_violations)

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["ok"] = self.ok
        return d


class _Frontier:
    def __init__(self, states, q_orig, count, words):
        self.states = states  # per layer: [N, H, K, 1] (float64, or object for the exact engine)
        self.q_orig = q_orig  # [N] state of the original DFA
        self.count = count  # [N] words represented
        self.words = words  # [N, depth] representative word

    def __len__(self):
        return len(self.q_orig)

    def take(self, idx):
        return _Frontier([s[idx] for s in self.states], self.q_orig[idx], self.count[idx], self.words[idx])


class _Checker:
    """Compares decoded rows with the DFAs and accumulates statistics."""

    def __init__(self, net: CompiledLRNN, dfa: DFA, minimal: DFA, state_map: list, stats: RunStats):
        self.net, self.dfa, self.minimal, self.state_map, self.stats = net, dfa, minimal, state_map, stats
        self.accept = np.zeros(dfa.states, dtype=bool)
        self.accept[list(dfa.accept)] = True
        self.map = np.array([-1 if s is None else s for s in state_map], dtype=np.int64)
        self.min_accept = np.zeros(minimal.states, dtype=bool)
        self.min_accept[list(minimal.accept)] = True

    def check(self, decoded, deviation, q_orig, count, words_fn, bound=None):
        st = self.stats
        want_state = self.map[q_orig]
        got_state = self.net.dfa_state(decoded)
        if got_state is None:  # one-state DFA: no layer; the constant decoder
            got_state = np.zeros_like(want_state)
        got_accept = self.min_accept[got_state]
        want_accept = self.accept[q_orig]
        bad_state = got_state != want_state
        bad_accept = got_accept != want_accept
        bad_margin = deviation >= self.net.margin
        st.words += int(count.sum())
        st.state_disagreements += int(count[bad_state].sum())
        st.accept_disagreements += int(count[bad_accept].sum())
        st.margin_violations += int(count[bad_margin].sum())
        if len(deviation):
            st.max_deviation = max(st.max_deviation, float(deviation.max()))
        if bound is not None:
            st.max_exact_bound = max(st.max_exact_bound or 0.0, bound)
        bad = np.flatnonzero(bad_state | bad_accept | bad_margin)
        for i in bad[:MAX_EXAMPLES - len(st.examples)]:
            st.examples.append({"word": self.dfa.spell(words_fn(i)), "dfa_state": int(q_orig[i]),
                                "minimal_state": int(want_state[i]), "lrnn_state": int(got_state[i]),
                                "dfa_accepts": bool(want_accept[i]), "lrnn_accepts": bool(got_accept[i]),
                                "deviation": float(deviation[i]), "words_like_this": int(count[i])})


def _evaluate_layer(net: CompiledLRNN, layer: Layer, params: dict, init, engine: str):
    ev = evaluate("delta_product", params, engine=engine, initial_state=init, **net.spec_options())
    cont = ev.raw["state"]["S"] if engine.startswith("exact") else ev.final_state
    bound = float(np.max(ev.final_state_bound)) if ev.final_state_bound is not None and ev.final_state_bound.size else None
    return ev.final_state, cont, bound


def run_words(net: CompiledLRNN, dfa: DFA, minimal: DFA, state_map: list, max_length: int, *,
              engine: str = "fp64", merge: bool = True, cap: int = 1 << 16) -> RunStats:
    """Every word of length ≤ max_length (see the module docstring)."""
    t0 = time.perf_counter()
    stats = RunStats(engine=engine, mode="all words" + (" (merged configurations)" if merge else ""),
                     max_length=max_length)
    checker = _Checker(net, dfa, minimal, state_map, stats)
    m = dfa.letters
    init = net.initial_state(1)
    # counts are exact Python integers (object arrays): |Σ|^d overflows int64 from d = 63 on two letters
    letter_type = np.uint8 if m <= 256 else np.int64
    root = _Frontier(init, np.array([dfa.start]), np.array([1], dtype=object), np.zeros((1, 0), dtype=letter_type))
    dec0 = [net.decode(layer, S, np.zeros((1, layer.H), dtype=np.int64)) for layer, S in zip(net.layers, init)]
    dev0 = np.max([d[2] for d in dec0], axis=0) if dec0 else np.zeros(1)
    checker.check([d[0] for d in dec0], dev0, root.q_orig, root.count, lambda i: [])
    table = np.asarray(dfa.delta, dtype=np.int64)

    def step(fr: _Frontier) -> _Frontier:
        N = len(fr)
        parent = np.repeat(np.arange(N), m)
        letters = np.tile(np.arange(m), N)
        decoded, previous, devs, states, bound = [], [], [], [], None
        for layer, S in zip(net.layers, fr.states):
            act = net.head_actions(layer, letters, decoded, previous)
            params = net.parameters(layer, act)
            out, cont, b = _evaluate_layer(net, layer, params, S[parent], engine)
            vals, prev, dev = net.decode(layer, out, act)
            decoded.append(vals)
            previous.append(prev)
            devs.append(dev)
            states.append(cont)
            if b is not None:
                bound = max(bound or 0.0, b)
        stats.rows += N * m
        q = table[fr.q_orig[parent], letters]
        words = np.concatenate([fr.words[parent], letters[:, None].astype(fr.words.dtype)], axis=1)
        child = _Frontier(states, q, fr.count[parent], words)
        dev = np.max(devs, axis=0) if devs else np.zeros(N * m)
        checker.check(decoded, dev, q, child.count, lambda i: words[i], bound)
        return child

    # depth-first over (frontier, depth) with an explicit stack: no recursion limit on max_length
    per = max(1, cap // m)
    stack = [(root, 0)]
    while stack:
        fr, depth = stack.pop()
        if depth == max_length:
            continue
        child = step(fr)
        if merge:
            child = _merge(child)
        parts = [child.take(slice(s, s + per)) for s in range(0, len(child), per)] if len(child) > per else [child]
        stack.extend((part, depth + 1) for part in reversed(parts))
    stats.seconds = time.perf_counter() - t0
    return stats


def _merge(fr: _Frontier) -> _Frontier:
    """Merge rows with bitwise-identical configurations (states of every layer and DFA state)."""
    N = len(fr)
    if N == 0:
        return fr
    if any(s.dtype == object for s in fr.states):
        keys: dict = {}
        first, inv = [], np.empty(N, dtype=np.int64)
        for i in range(N):
            key = (int(fr.q_orig[i]),) + tuple(tuple(s[i].reshape(-1)) for s in fr.states)
            if key not in keys:
                keys[key] = len(first)
                first.append(i)
            inv[i] = keys[key]
        first = np.asarray(first, dtype=np.int64)
    else:
        cols = [fr.q_orig[:, None].astype(np.int64)] + [np.ascontiguousarray(s, dtype=np.float64).reshape(N, -1).view(np.int64)
                                                        for s in fr.states]
        _, first, inv = unique_rows(np.concatenate(cols, axis=1))
    count = np.zeros(len(first), dtype=object)          # exact integers (see run_words)
    for i, c in zip(inv.tolist(), fr.count.tolist()):
        count[i] += c
    # representative: the first word (in frontier order) of each class
    order = np.argsort(first, kind="stable")
    merged = fr.take(first[order])
    merged.count = count[order]
    return merged


def run_sequences(net: CompiledLRNN, dfa: DFA, minimal: DFA, state_map: list, words: np.ndarray, *,
                  engine: str = "fp64", chunk: int = 16) -> RunStats:
    """The given words [N, T] (letter indices), each layer over the whole sequence at once; every
    prefix of every word is checked."""
    t0 = time.perf_counter()
    words = np.asarray(words, dtype=np.int64)
    N, T = words.shape
    stats = RunStats(engine=engine, mode=f"{N} words of length {T}", max_length=T)
    checker = _Checker(net, dfa, minimal, state_map, stats)
    table = np.asarray(dfa.delta, dtype=np.int64)
    q = np.empty((N, T), dtype=np.int64)
    cur = np.full(N, dfa.start)
    for t in range(T):
        cur = table[cur, words[:, t]]
        q[:, t] = cur
    for s in range(0, N, chunk):
        w = words[s:s + chunk]
        n = len(w)
        letters = w.reshape(-1)
        decoded, previous, devs = [], [], []
        for layer, S0 in zip(net.layers, net.initial_state(n)):
            act = net.head_actions(layer, letters, decoded, previous)
            p = net.parameters(layer, act)  # rows n·T
            K, V, H, n_h = layer.K, layer.V, layer.H, layer.n_h
            rep = lambda a: np.repeat(a, K, axis=0)  # noqa: E731 - K replicas per word
            params = {"k": rep(p["k"].reshape(n, T * n_h, H, K)),
                      "v": rep(p["v"].reshape(n, T * n_h, H, V)),
                      "beta": rep(p["beta"].reshape(n, T * n_h, H))}
            if "g" in p:
                params["g"] = rep(p["g"].reshape(n, T, H))
            qry = np.zeros((n * K, T, H, K))
            for j in range(K):
                qry[j::K, :, :, j] = 1.0
            params["q"] = qry
            ev = evaluate("delta_product", params, engine=engine, initial_state=rep(S0), **net.spec_options())
            o = np.asarray(ev.output, dtype=np.float64)  # [n·K, T, H, V]: row j of S per replica j
            S = o.reshape(n, K, T, H, V).transpose(0, 2, 3, 1, 4).reshape(n * T, H, K, V)
            vals, prev, dev = net.decode(layer, S, act)
            decoded.append(vals)
            previous.append(prev)
            devs.append(dev)
            stats.rows += n * K
        dev = np.max(devs, axis=0) if devs else np.zeros(n * T)
        qq = q[s:s + chunk].reshape(-1)
        checker.check(decoded, dev, qq, np.ones(n * T, dtype=np.int64),
                      lambda i, w=w: w[i // T, :i % T + 1])
    stats.seconds = time.perf_counter() - t0
    return stats
