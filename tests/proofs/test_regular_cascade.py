"""The holonomy cascade simulates the DFA: a homomorphism from the reachable cascade states onto
the DFA states, checked exhaustively, for Hypothesis-drawn DFAs up to 6 states × 4 letters."""

from hypothesis import given
from hypothesis import strategies as st

from lrnnspec.proofs.regular_cascade import apply_action, decompose, verify_cascade
from lrnnspec.proofs.regular_dfa import contains_aa_dfa, mod_dfa, parity_dfa, second_last_a_dfa
from lrnnspec.strategies import dfas


@given(dfas())
def test_cascade_is_a_homomorphism_onto_the_dfa(dfa):
    casc = decompose(dfa)
    chk = verify_cascade(casc)
    assert chk.ok, chk.errors
    assert chk.all_actions_perm_or_reset
    # onto: every state is the decoding of its encoding, and the check covered them all
    assert {casc.decode(casc.encode(q)) for q in range(dfa.states)} == set(range(dfa.states))
    # worst-case bounds of the module docstring
    assert len(casc.components) <= 2 ** dfa.states - dfa.states - 1 or dfa.states == 1
    for c in casc.components:
        assert 2 <= c.width


@given(dfas(), st.data())
def test_random_words_through_the_cascade(dfa, data):
    """Independent of verify_cascade: run the cascade step by step on a word and decode."""
    casc = decompose(dfa)
    word = data.draw(st.lists(st.integers(0, dfa.letters - 1), max_size=30))
    x = casc.encode(dfa.start)
    q = dfa.start
    for a in word:
        # each component's action depends only on the letter and the coordinates of lower levels
        for i, c in enumerate(casc.components):
            scrambled = tuple(v if casc.components[j].level < c.level else (v + 1) % casc.components[j].width
                              for j, v in enumerate(x))
            assert casc.action(i, a, x) == casc.action(i, a, scrambled)
        x = casc.step(x, a)
        q = dfa.delta[q][a]
        assert casc.decode(x) == q


def test_groups_give_one_permutation_component():
    for dfa, width in ((parity_dfa(), 2), (mod_dfa(3), 3), (mod_dfa(5), 5)):
        casc = decompose(dfa)
        assert [c.width for c in casc.components] == [width]
        acts = {casc.action(0, a, (0,)) for a in range(dfa.letters)}
        assert all(a[0] in ("id", "perm") for a in acts)


def test_aperiodic_components_are_reset_only():
    for dfa in (contains_aa_dfa(), second_last_a_dfa()):
        casc = decompose(dfa)
        chk = verify_cascade(casc)
        assert chk.ok
        from lrnnspec.proofs.regular_lrnn import cascade_actions

        for acts in cascade_actions(casc).values():
            assert all(a[0] in ("id", "reset") for a in acts), acts


def test_verification_detects_a_wrong_decoding():
    """The check can fail: corrupt one component's reset target and it must notice."""
    casc = decompose(contains_aa_dfa())
    good = verify_cascade(casc)
    assert good.ok
    orig = casc._action

    def broken(i, a, x):
        act = orig(i, a, x)
        return ("reset", 1 - act[1]) if act[0] == "reset" and i == len(casc.components) - 1 else act

    casc._memo.clear()
    casc._action = broken
    assert not verify_cascade(casc).ok
    assert apply_action(("perm", (1, 0)), 0) == 1
