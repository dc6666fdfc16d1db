"""The state-tracking tasks of Grazzi et al. 2025 (§5.1, App. E.1–E.2) and Siems et al. 2025, as
seeded batch generators.

Each task maps a batch of token sequences ``x [B, T]`` (int64) to targets ``y [B, T]`` (int64,
``IGNORE`` where no prediction is scored). Sequences of one batch may differ in length; they are
right-padded with ``PAD`` = 0, which is harmless for causal models because every scored position
lies at or before the sequence's own end.

* ``parity`` — tokens 1, 2 are the bits 0, 1 (vocab 3: 0 = PAD, as in the xLSTM formal-language
  generator used by Grazzi et al.); the target is the number of 1-bits mod 2 — at the last token
  (``targets="last"``, the papers' protocol) or at every token (``targets="prefix"``: each prefix's
  parity, i.e. the Z2 word problem; the same task with one label per prefix).
* ``modarith`` — modular arithmetic without brackets, modulus 5 (Grazzi et al.'s generator): vocab
  10 — 0 PAD, 1 ``+``, 2 ``−``, 3 ``*``, 4 ``=``, 5..9 the digits 0..4. A sequence of length L
  (even, ≥ 2) is an expression of L − 1 alternating digits and operators followed by ``=``; the
  target, at ``=``, is its value mod 5 under the usual precedence (``*`` before ``+``/``−``).
  Example: ``3 + 2 * 4 − 1 =`` → 3 + 8 − 1 = 10 ≡ 0.
* ``S3``, ``S4``, ``A5``, ``S5`` — group word problems (Merrill et al. 2024; Siems et al. 2025):
  tokens are group elements drawn uniformly (vocab |G|, element 0 = the identity), targets at every
  position the prefix product ``x_t ∘ ⋯ ∘ x_1`` (x_1 acts first; permutations compose as
  ``(p∘q)[i] = p[q[i]]``).

Scaled accuracy (Grazzi et al. 2025, Table 3: 1 perfect, 0 random) is
``(acc − chance) / (1 − chance)``, chance = 1 / number of classes — the formula assumed in
research/theorems.md §2.9 (the papers' code does not print it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from lrnnspec.spec.errors import DomainError, OptionError

PAD = 0
IGNORE = -100
PLUS, MINUS, TIMES, EQUALS, DIGIT0 = 1, 2, 3, 4, 5
MODULUS = 5


@dataclass(frozen=True)
class Task:
    name: str
    vocab: int          # token ids 0 .. vocab − 1
    classes: int        # target ids 0 .. classes − 1
    every_step: bool    # targets at every position (word problems) or only at the last token
    min_len: int        # shortest sequence the task defines
    even_only: bool = False  # modarith: lengths must be even (expression of odd length + "=")
    table: np.ndarray | None = None  # word problems: table[q, a] = index of a ∘ q

    @property
    def chance(self) -> float:
        return 1.0 / self.classes

    def check_length(self, name: str, length: int) -> int:
        """Validate a sequence length for this task (raises :class:`DomainError` naming ``name``)."""
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < self.min_len:
            raise DomainError(name, f"must be an integer ≥ {self.min_len} for task {self.name!r}, got {length!r}")
        if self.even_only and length % 2:
            raise DomainError(name, f"must be even for task {self.name!r} (an expression of odd length followed "
                                    f"by '='), got {length}")
        return int(length)


def scaled_accuracy(acc: float, chance: float) -> float:
    """``(acc − chance) / (1 − chance)``: 1.0 perfect, 0.0 chance level (negative below it)."""
    return (acc - chance) / (1.0 - chance)


# --- groups -------------------------------------------------------------------------------------
def _sign(p: tuple) -> int:
    inversions = sum(1 for i in range(len(p)) for j in range(i + 1, len(p)) if p[i] > p[j])
    return -1 if inversions % 2 else 1


def permutation_group(n: int, even_only: bool = False) -> tuple[list[tuple], np.ndarray]:
    """The elements of S_n (or A_n) with the identity first, and ``table[q, a]`` = index of a ∘ q."""
    ident = tuple(range(n))
    elems = [ident] + [p for p in itertools.permutations(range(n)) if p != ident and (not even_only or _sign(p) == 1)]
    index = {p: i for i, p in enumerate(elems)}
    table = np.array([[index[tuple(a[i] for i in q)] for a in elems] for q in elems], dtype=np.int64)
    return elems, table


def _group_task(name: str, n: int, even_only: bool) -> Task:
    elems, table = permutation_group(n, even_only)
    return Task(name, len(elems), len(elems), True, 1, table=table)


TASKS: dict[str, Task] = {
    "parity": Task("parity", 3, 2, False, 1),
    "modarith": Task("modarith", DIGIT0 + MODULUS, MODULUS, False, 2, even_only=True),
    "S3": _group_task("S3", 3, False),
    "S4": _group_task("S4", 4, False),
    "A5": _group_task("A5", 5, True),
    "S5": _group_task("S5", 5, False),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise OptionError("task", f"must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name]


# --- generators -----------------------------------------------------------------------------------
def parity_batch(rng: np.random.Generator, lengths: np.ndarray, prefix: bool = False) -> tuple[np.ndarray, np.ndarray]:
    T = int(lengths.max())
    bits = rng.integers(0, 2, size=(len(lengths), T))
    pos = np.arange(T)[None, :]
    live = pos < lengths[:, None]
    x = np.where(live, bits + 1, PAD)
    running = np.cumsum(bits * live, axis=1) % 2
    if prefix:
        return x.astype(np.int64), np.where(live, running, IGNORE).astype(np.int64)
    y = np.full(x.shape, IGNORE, dtype=np.int64)
    rows = np.arange(len(lengths))
    y[rows, lengths - 1] = running[rows, lengths - 1]
    return x.astype(np.int64), y


def evaluate_expression(digits: list[int], ops: list[int]) -> int:
    """Value mod 5 of ``d_0 op_1 d_1 ⋯ op_n d_n`` with ``*`` before ``+``/``−`` (ops as token ids)."""
    if len(ops) != len(digits) - 1:
        raise DomainError("ops", f"must have one operator fewer than digits, got {len(ops)} and {len(digits)}")
    total, term, sign = 0, digits[0], 1
    for op, d in zip(ops, digits[1:]):
        if op == TIMES:
            term = term * d
        else:
            total += sign * term
            term, sign = d, (1 if op == PLUS else -1)
    return (total + sign * term) % MODULUS


def modarith_batch(rng: np.random.Generator, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    T = int(lengths.max())
    x = np.full((len(lengths), T), PAD, dtype=np.int64)
    y = np.full((len(lengths), T), IGNORE, dtype=np.int64)
    for b, L in enumerate(lengths):
        n = L // 2  # digits; n − 1 operators; then "="
        digits = rng.integers(0, MODULUS, size=n)
        ops = rng.integers(PLUS, TIMES + 1, size=n - 1)
        x[b, 0:L - 1:2] = DIGIT0 + digits
        x[b, 1:L - 1:2] = ops
        x[b, L - 1] = EQUALS
        y[b, L - 1] = evaluate_expression(digits.tolist(), ops.tolist())
    return x, y


def word_problem_batch(task: Task, rng: np.random.Generator, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    T = int(lengths.max())
    x = rng.integers(0, task.vocab, size=(len(lengths), T))
    y = np.empty_like(x)
    q = np.zeros(len(lengths), dtype=np.int64)
    for t in range(T):
        q = task.table[q, x[:, t]]
        y[:, t] = q
    live = np.arange(T)[None, :] < lengths[:, None]
    return np.where(live, x, PAD).astype(np.int64), np.where(live, y, IGNORE).astype(np.int64)


TARGETS = ("last", "prefix")


def batch(task: Task, rng: np.random.Generator, size: int, min_len: int, max_len: int,
          targets: str = "last") -> tuple[np.ndarray, np.ndarray]:
    """``size`` sequences with lengths uniform in [min_len, max_len] (even lengths only for modarith);
    returns ``(x, y)`` as int64 arrays [size, max length drawn]. ``targets``: ``"last"`` scores the
    last token only, ``"prefix"`` every token (parity; word problems always score every token)."""
    if targets not in TARGETS:
        raise OptionError("targets", f"must be one of {TARGETS}, got {targets!r}")
    if targets == "prefix" and task.name == "modarith":
        raise OptionError("targets", "modarith scores only its label (the value after '='); use 'last'")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise DomainError("size", f"must be a positive integer, got {size!r}")
    task.check_length("min_len", min_len)
    task.check_length("max_len", max_len)
    if min_len > max_len:
        raise DomainError("min_len", f"must be ≤ max_len = {max_len}, got {min_len}")
    if task.even_only:
        lengths = 2 * rng.integers(min_len // 2, max_len // 2 + 1, size=size)
    else:
        lengths = rng.integers(min_len, max_len + 1, size=size)
    if task.name == "parity":
        return parity_batch(rng, lengths, prefix=targets == "prefix")
    if task.name == "modarith":
        return modarith_batch(rng, lengths)
    return word_problem_batch(task, rng, lengths)
