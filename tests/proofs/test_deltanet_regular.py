"""Every regular language with ungated DeltaNet [−1,1] (one factor per token, blocks of tokens): block
products of permutation–reset actions, every word decoded, and controls the verification must catch."""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from lrnnspec.proofs.construction import run_exhaustive, run_words
from lrnnspec.proofs.deltanet_regular import CascadeBlocks, compose, mod3_with_reset_dfa
from lrnnspec.proofs.regular_cascade import apply_action
from lrnnspec.proofs.regular_dfa import DFA, second_last_a_dfa
from lrnnspec.spec.errors import DomainError
from lrnnspec.strategies import dfas

ACTIONS = st.one_of(st.just(("id",)), st.integers(0, 3).map(lambda y: ("reset", y)),
                    st.permutations(range(4)).map(lambda p: ("perm", tuple(p))))


@given(ACTIONS, ACTIONS, st.integers(0, 3))
def test_composed_action_is_the_second_after_the_first(first, then, v):
    assert apply_action(compose(first, then), v) == apply_action(then, apply_action(first, v))


@settings(max_examples=15, deadline=None)
@given(dfas(max_states=4, max_letters=3))
def test_every_word_up_to_length_5_is_decoded_in_fp64(dfa):
    assume(dfa.minimize()[0].states > 1)
    con = CascadeBlocks(dfa).construction()
    assert run_exhaustive(con, "fp64", {1: 8, 2: 6, 3: 5}[dfa.letters])["ok"]


@settings(max_examples=5, deadline=None)
@given(dfas(max_states=4, max_letters=3), st.integers(0, 2 ** 32 - 1))
def test_long_random_words_are_decoded_in_bf16(dfa, seed):
    assume(dfa.minimize()[0].states > 1)
    con = CascadeBlocks(dfa).construction()
    words = np.random.default_rng(seed).integers(0, dfa.letters, size=(4, 80))
    assert run_words(con, "emulate:bf16", words)["ok"]


def test_every_token_is_one_householder_factor_and_each_block_product_fits_its_block():
    stack = CascadeBlocks(mod3_with_reset_dfa())
    assert stack.L == 4 and stack.cascade.components[0].width == 3
    for head in stack.heads:
        layer = head.layer
        assert layer.n_h == 1 and set(np.unique(layer.tokens["beta"])) <= {0.0, 1.0, 2.0}
        assert np.allclose(np.linalg.norm(layer.tokens["k"], axis=-1), 1.0)
        for i, act in enumerate(head.actions):   # the factors of an action, applied to every state
            for y in range(head.w):
                vec = [int(j == y) for j in range(head.w)]
                for tok in head.factors[i]:
                    vec = head._apply(tok, vec)
                assert vec.index(1) == apply_action(act, y) and sum(vec) == 1


def test_reading_the_current_coordinates_above_is_caught():
    stack = CascadeBlocks(second_last_a_dfa())
    assert stack.cascade.levels == 2
    previous = stack.upper_codes                   # row k + 1 is read: the step before x_{t−k}
    stack.upper_codes = lambda h, labels, n: np.concatenate([previous(h, labels, n)[:1], previous(h, labels, n)[:-1]])
    assert not run_exhaustive(stack.construction(), "fp64", 4)["ok"]


def test_a_block_product_applied_without_its_first_factor_is_caught():
    stack = CascadeBlocks(mod3_with_reset_dfa())
    stack.heads[0].factors[:, 0] = 0
    assert not run_exhaustive(stack.construction(), "fp64", 6)["ok"]


def test_a_one_state_language_is_refused_with_the_argument_named():
    with pytest.raises(DomainError, match="dfa"):
        CascadeBlocks(DFA(["a"], 1, 0, [0], [[0]]))
