"""The data generators against hand-computed examples and independent evaluators."""

import numpy as np
import pytest

from lrnnspec.proofs.groups import alternating_group, symmetric_group
from lrnnspec.spec.errors import DomainError, OptionError
from lrnnspec.training.tasks import (DIGIT0, EQUALS, IGNORE, MINUS, PAD, PLUS, TASKS, TIMES, batch, evaluate_expression,
                                     get_task, scaled_accuracy)

OPS = {PLUS: "+", MINUS: "-", TIMES: "*"}


@pytest.mark.parametrize("digits, ops, value", [
    ([3, 2, 4, 1], [PLUS, TIMES, MINUS], 0),   # 3 + 2*4 − 1 = 10
    ([4, 4, 4], [TIMES, TIMES], 4),            # 64
    ([1, 2, 3], [MINUS, TIMES], 0),            # 1 − 6 = −5
    ([2, 3], [MINUS], 4),                      # −1
    ([0, 3, 4], [TIMES, PLUS], 4),             # 0*3 + 4
    ([3], [], 3),
])
def test_modarith_value_respects_precedence_hand_examples(digits, ops, value):
    assert evaluate_expression(digits, ops) == value


def test_modarith_batch_labels_equal_pythons_own_evaluation():
    x, y = batch(get_task("modarith"), np.random.default_rng(3), 64, 4, 20)
    for row, lab in zip(x, y):
        L = int((row != PAD).sum())
        assert L % 2 == 0 and row[L - 1] == EQUALS and (lab[:L - 1] == IGNORE).all()
        expr = "".join(str(t - DIGIT0) if t >= DIGIT0 else OPS[t] for t in row[:L - 1])
        assert lab[L - 1] == eval(expr) % 5, expr  # noqa: S307 - digits and + − * only


def test_parity_labels_count_the_one_bits_hand_example_and_random():
    x, y = batch(get_task("parity"), np.random.default_rng(0), 32, 1, 12)
    for row, lab in zip(x, y):
        L = int((row != PAD).sum())
        assert lab[L - 1] == (row[:L] == 2).sum() % 2 and (lab[:L - 1] == IGNORE).all()
    xp, yp = batch(get_task("parity"), np.random.default_rng(0), 32, 1, 12, targets="prefix")
    assert (xp == x).all()
    for row, lab in zip(xp, yp):
        L = int((row != PAD).sum())
        assert list(lab[:L]) == list(np.cumsum(row[:L] == 2) % 2)
    # hand example: bits 1 0 1 1 → prefix parities 1 1 0 1
    from lrnnspec.training.tasks import parity_batch

    class Fixed:
        def integers(self, lo, hi, size):
            return np.array([[1, 0, 1, 1]])

    xs, ys = parity_batch(Fixed(), np.array([4]), prefix=True)
    assert xs.tolist() == [[2, 1, 2, 2]] and ys.tolist() == [[1, 1, 0, 1]]


@pytest.mark.parametrize("name, group", [("S3", symmetric_group(3)), ("S4", symmetric_group(4)),
                                         ("A5", alternating_group(5)), ("S5", symmetric_group(5))])
def test_word_problem_tables_equal_the_proofs_groups(name, group):
    assert np.array_equal(TASKS[name].table, group.table)  # same element order, identity first


def test_s3_prefix_products_hand_example():
    task = get_task("S3")
    elems = list(symmetric_group(3).elements)
    a, b = elems.index((1, 0, 2)), elems.index((0, 2, 1))      # (0 1), then (1 2)
    q = task.table[task.table[0, a], b]
    assert elems[q] == (2, 0, 1)                                # (1 2)∘(0 1) by hand
    x, y = batch(task, np.random.default_rng(1), 16, 8, 8)
    for row, lab in zip(x, y):
        acc = 0
        for t, g in enumerate(row):
            acc = task.table[acc, g]
            assert lab[t] == acc


def test_scaled_accuracy_is_one_when_perfect_and_zero_at_chance():
    assert scaled_accuracy(1.0, 0.5) == 1.0 and scaled_accuracy(0.5, 0.5) == 0.0
    assert scaled_accuracy(0.2, 0.2) == 0.0 and scaled_accuracy(0.6, 0.2) == pytest.approx(0.5)


@pytest.mark.parametrize("task, kwargs, error, match", [
    ("modarith", dict(min_len=4, max_len=9), DomainError, "max_len: must be even"),
    ("modarith", dict(min_len=4, max_len=8, targets="prefix"), OptionError, "targets"),
    ("parity", dict(min_len=0, max_len=8), DomainError, "min_len"),
    ("parity", dict(min_len=9, max_len=8), DomainError, "min_len: must be ≤ max_len"),
    ("parity", dict(min_len=2, max_len=8, targets="all"), OptionError, "targets"),
])
def test_bad_generator_arguments_are_named(task, kwargs, error, match):
    with pytest.raises(error, match=match):
        batch(get_task(task), np.random.default_rng(0), 4, **kwargs)


def test_unknown_task_is_named():
    with pytest.raises(OptionError, match="task: must be one of"):
        get_task("S6")
