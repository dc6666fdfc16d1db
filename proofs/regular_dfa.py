"""Deterministic finite automata: the type, its validation, JSON I/O, runs, trimming, minimization.

File format (docs/DESIGN.md §5)::

    {"alphabet": ["a", "b"], "states": 3, "start": 0, "accept": [2],
     "delta": [[1, 0], [2, 0], [2, 2]]}

``delta[q][i]`` is the state reached from ``q`` on ``alphabet[i]``. States are ``0 .. states-1``.
Every rule broken raises :class:`DFAError` naming the field and the rule.

Minimization is Moore's partition refinement (Moore 1956; see Hopcroft, Motwani & Ullman,
*Introduction to Automata Theory*, §4.4): O(n² |Σ|) for n states, ample for the sizes the
proofs handle. Minimizing first keeps the cascade small and does not change the language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lrnnspec.errors import Picklable


class DFAError(Picklable, ValueError):
    """A malformed DFA: ``field`` names the offending field of the description."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@dataclass(frozen=True)
class DFA:
    """A complete DFA over the letters ``alphabet`` (validated on construction)."""

    alphabet: tuple[str, ...]
    states: int
    start: int
    accept: tuple[int, ...]
    delta: tuple[tuple[int, ...], ...]

    def __init__(self, alphabet: Sequence[str], states: int, start: int, accept: Sequence[int],
                 delta: Sequence[Sequence[int]]):
        if isinstance(alphabet, str) or not isinstance(alphabet, Sequence):
            raise DFAError("alphabet", f"must be a list of letters (strings), got {type(alphabet).__name__}")
        if len(alphabet) < 1:
            raise DFAError("alphabet", "must contain at least one letter")
        for i, a in enumerate(alphabet):
            if not isinstance(a, str) or not a:
                raise DFAError("alphabet", f"letters must be non-empty strings; alphabet[{i}] = {a!r}")
        dup = sorted({a for a in alphabet if list(alphabet).count(a) > 1})
        if dup:
            raise DFAError("alphabet", f"letters must be unique; repeated: {dup}")
        if not _is_int(states) or states < 1:
            raise DFAError("states", f"must be an integer ≥ 1 (the number of states), got {states!r}")
        if not _is_int(start) or not 0 <= start < states:
            raise DFAError("start", f"must be a state in 0..{states - 1}, got {start!r}")
        if isinstance(accept, str) or not isinstance(accept, Sequence):
            raise DFAError("accept", f"must be a list of states, got {type(accept).__name__}")
        for i, q in enumerate(accept):
            if not _is_int(q) or not 0 <= q < states:
                raise DFAError("accept", f"entries must be states in 0..{states - 1}; accept[{i}] = {q!r}")
        if len(set(int(q) for q in accept)) != len(accept):
            raise DFAError("accept", f"entries must be unique, got {list(accept)}")
        if isinstance(delta, str) or not isinstance(delta, Sequence) or len(delta) != states:
            n = len(delta) if isinstance(delta, Sequence) and not isinstance(delta, str) else type(delta).__name__
            raise DFAError("delta", f"must have one row per state: shape states × |alphabet| = "
                                    f"{states} × {len(alphabet)}, got {n} rows")
        for q, row in enumerate(delta):
            if isinstance(row, str) or not isinstance(row, Sequence) or len(row) != len(alphabet):
                got = len(row) if isinstance(row, Sequence) and not isinstance(row, str) else type(row).__name__
                raise DFAError("delta", f"row {q} must have one entry per letter (|alphabet| = {len(alphabet)}), "
                                        f"got {got}")
            for i, p in enumerate(row):
                if not _is_int(p) or not 0 <= p < states:
                    raise DFAError("delta", f"entries must be states in 0..{states - 1}; "
                                            f"delta[{q}][{i}] = {p!r}")
        object.__setattr__(self, "alphabet", tuple(alphabet))
        object.__setattr__(self, "states", int(states))
        object.__setattr__(self, "start", int(start))
        object.__setattr__(self, "accept", tuple(sorted(int(q) for q in accept)))
        object.__setattr__(self, "delta", tuple(tuple(int(p) for p in row) for row in delta))

    # --- I/O ----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Any) -> "DFA":
        if not isinstance(d, dict):
            raise DFAError("dfa", f"must be a JSON object with keys alphabet, states, start, accept, delta; "
                                  f"got {type(d).__name__}")
        keys = ("alphabet", "states", "start", "accept", "delta")
        missing = [k for k in keys if k not in d]
        if missing:
            raise DFAError(missing[0], f"is required (a DFA has the fields {', '.join(keys)})")
        extra = sorted(set(d) - set(keys))
        if extra:
            raise DFAError(extra[0], f"is not a DFA field (the fields are {', '.join(keys)})")
        return cls(**{k: d[k] for k in keys})

    def to_dict(self) -> dict[str, Any]:
        return {"alphabet": list(self.alphabet), "states": self.states, "start": self.start,
                "accept": list(self.accept), "delta": [list(r) for r in self.delta]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "DFA":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DFAError("dfa", f"is not valid JSON: {exc}") from exc
        except RecursionError:
            raise DFAError("dfa", "is nested too deeply to be a DFA") from None
        return cls.from_dict(d)

    # --- semantics ----------------------------------------------------------------------------
    @property
    def letters(self) -> int:
        return len(self.alphabet)

    @property
    def table(self) -> np.ndarray:
        """delta as an int array [states, letters]."""
        return np.asarray(self.delta, dtype=np.int64)

    def run(self, word: Sequence[int], state: int | None = None) -> int:
        """The state reached from ``state`` (default: start) on a word of letter indices."""
        q = self.start if state is None else state
        for a in word:
            q = self.delta[q][a]
        return q

    def accepts(self, word: Sequence[int]) -> bool:
        return self.run(word) in self.accept

    def word_indices(self, word: str | Sequence[str]) -> list[int]:
        """Letter indices of a word given as a sequence of letters (or a string of 1-char letters)."""
        pos = {a: i for i, a in enumerate(self.alphabet)}
        try:
            return [pos[a] for a in word]
        except KeyError as exc:
            raise DFAError("word", f"letter {exc.args[0]!r} is not in the alphabet {list(self.alphabet)}") from None

    def spell(self, word: Sequence[int]) -> str:
        sep = "" if all(len(a) == 1 for a in self.alphabet) else " "
        return sep.join(self.alphabet[int(a)] for a in word) or "ε"

    def reachable(self) -> list[int]:
        seen, todo = {self.start}, [self.start]
        while todo:
            q = todo.pop()
            for p in self.delta[q]:
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return sorted(seen)

    def minimize(self) -> tuple["DFA", list[int | None]]:
        """The minimal DFA of the same language and the map original state → minimal state
        (None for unreachable states). States are numbered in breadth-first order from start."""
        reach = self.reachable()
        block = {q: int(q in self.accept) for q in reach}
        while True:  # Moore: refine by (block, blocks of successors) until stable
            sig = {q: (block[q], *(block[p] for p in self.delta[q])) for q in reach}
            ids: dict[tuple, int] = {}
            new = {q: ids.setdefault(sig[q], len(ids)) for q in reach}
            if len(ids) == len(set(block.values())):
                break
            block = new
        order, todo, seen = [], [block[self.start]], {block[self.start]}
        rep = {}
        for q in reach:
            rep.setdefault(block[q], q)
        while todo:  # BFS renumbering
            b = todo.pop(0)
            order.append(b)
            for p in self.delta[rep[b]]:
                if block[p] not in seen:
                    seen.add(block[p])
                    todo.append(block[p])
        num = {b: i for i, b in enumerate(order)}
        delta = [[num[block[p]] for p in self.delta[rep[b]]] for b in order]
        accept = [num[b] for b in order if rep[b] in self.accept]
        m = DFA(self.alphabet, len(order), 0, accept, delta)
        return m, [num[block[q]] if q in block else None for q in range(self.states)]


def load_dfa(path: "str | Path") -> DFA:
    """Read a DFA JSON file (DESIGN.md §5). Raises :class:`DFAError` (field ``dfa`` for unreadable
    files or bad JSON, else the offending field)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DFAError("dfa", f"cannot read {str(p)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DFAError("dfa", f"{str(p)!r} is not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    return DFA.from_json(text)


def random_dfa(rng: np.random.Generator, states: int, letters: int, *, accept_prob: float = 0.5) -> DFA:
    """A uniformly random complete DFA (transition table, start 0, each state accepting w.p. accept_prob)."""
    delta = rng.integers(0, states, size=(states, letters)).tolist()
    accept = [q for q in range(states) if rng.random() < accept_prob]
    return DFA([chr(ord("a") + i) for i in range(letters)], states, 0, accept, delta)


# Classic examples used by the checks and tests.
def parity_dfa() -> DFA:
    """Words over {0,1} with an odd number of 1s (the Z2 word problem)."""
    return DFA(["0", "1"], 2, 0, [1], [[0, 1], [1, 0]])


def mod_dfa(m: int) -> DFA:
    """Words over {0,1} whose number of 1s is ≡ 0 (mod m)."""
    return DFA(["0", "1"], m, 0, [0], [[q, (q + 1) % m] for q in range(m)])


def contains_aa_dfa() -> DFA:
    """Words over {a,b} containing ``aa`` (star-free, aperiodic)."""
    return DFA(["a", "b"], 3, 0, [2], [[1, 0], [2, 0], [2, 2]])


def ab_star_dfa() -> DFA:
    """(ab)* (star-free; its minimal DFA has a sink)."""
    return DFA(["a", "b"], 3, 0, [0], [[1, 2], [2, 0], [2, 2]])


def second_last_a_dfa() -> DFA:
    """Σ* a Σ over {a,b}: the second-to-last letter is a (needs the previous letter: a delay)."""
    # states: last two letters (b b)=0, (b a)=1, (a b)=2, (a a)=3; accept if the second-last is a.
    return DFA(["a", "b"], 4, 0, [2, 3], [[1, 0], [3, 2], [1, 0], [3, 2]])
