"""The compiled LRNN: transitions are products of generalized Householder matrices (β ∈ [0,2],
unit keys, ‖·‖₂ ≤ 1), and the stack accepts exactly the DFA's language on every word up to a
bounded length, for Hypothesis-drawn DFAs, in every variant."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lrnnspec.proofs.regular_cascade import decompose
from lrnnspec.proofs.regular_dfa import mod_dfa, second_last_a_dfa
from lrnnspec.proofs.regular_lrnn import (HALF_LOG_GATE, RESET_LOG_GATE, CompiledLRNN, cascade_actions,
                                          certify_transitions, compile_cascade, swaps)
from lrnnspec.proofs.regular_run import run_sequences, run_words
from lrnnspec.spec import NonFiniteError, evaluate
from lrnnspec.strategies import dfas

VARIANTS = [dict(gated=g, keys=k, delay=d) for d in ("registers", "memory") for g in (False, True)
            for k in ("unit", "dyadic")]


def _length(dfa):
    return {1: 7, 2: 5, 3: 3, 4: 3}[dfa.letters]


@given(dfas(), st.sampled_from(VARIANTS))
def test_lrnn_accepts_exactly_the_language(dfa, variant):
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), **variant)
    stats = run_words(net, dfa, minimal, smap, _length(dfa))
    assert stats.words == sum(dfa.letters ** i for i in range(_length(dfa) + 1))
    assert stats.ok, stats.examples
    for cert in certify_transitions(net):
        assert cert.ok, cert
        assert all(0.0 <= b <= 2.0 for b in cert.betas) and 0.0 <= cert.gate <= 1.0
        assert cert.float_norm <= 1.0 + 1e-12


@settings(max_examples=5)
@given(dfas(max_states=4, max_letters=3), st.integers(0, 2 ** 32 - 1), st.sampled_from(["registers", "memory"]))
def test_sequence_mode_agrees_on_random_words(dfa, seed, delay):
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), delay=delay)
    words = np.random.default_rng(seed).integers(0, dfa.letters, size=(3, 40))
    stats = run_sequences(net, dfa, minimal, smap, words)
    assert stats.ok and stats.words == 120, stats.examples


def test_swaps_realise_every_permutation_of_four():
    from itertools import permutations

    for perm in permutations(range(4)):
        M = np.eye(4)
        for i, j in swaps(perm):
            u = np.zeros(4)
            u[i], u[j] = 1 / math.sqrt(2), -1 / math.sqrt(2)
            M = (np.eye(4) - 2 * np.outer(u, u)) @ M
        want = np.zeros((4, 4))
        want[list(perm), range(4)] = 1.0
        assert np.allclose(M, want, atol=1e-15)
        assert len(swaps(perm)) == 4 - len({frozenset(c) for c in _cycles(perm)})


def _cycles(perm):
    seen, out = set(), []
    for s in range(len(perm)):
        if s not in seen:
            c, x = [], s
            while x not in c:
                c.append(x)
                x = perm[x]
            seen.update(c)
            out.append(c)
    return out


def test_householders_per_token_on_examples():
    casc = decompose(mod_dfa(3))
    assert compile_cascade(casc).householders_per_token == [2]
    casc = decompose(second_last_a_dfa())
    reg = compile_cascade(casc, delay="registers")
    gated = compile_cascade(casc, delay="registers", gated=True)
    mem = compile_cascade(casc, delay="memory")
    assert [layer.kind for layer in reg.layers] == ["clock", "level", "registers", "level"]
    assert len(mem.layers) == casc.levels == 2
    assert max(gated.householders_per_token) == 1  # every reset is the gate + one write
    assert all(set(c.betas) <= {0.5, 1.0} for c in certify_transitions(mem))  # aperiodic: eigenvalues in [0,1]


def test_naive_wiring_is_caught():
    dfa = second_last_a_dfa()
    minimal, smap = dfa.minimize()
    stats = run_words(compile_cascade(decompose(minimal), delay="none"), dfa, minimal, smap, 4)
    assert not stats.ok and stats.state_disagreements > 0 and stats.examples


def test_bf16_dyadic_is_bitwise_one_hot_and_exact_engine_agrees():
    dfa = mod_dfa(3)
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), keys="dyadic", gated=True)
    st16 = run_words(net, dfa, minimal, smap, 8, engine="emulate:bf16")
    assert st16.ok and st16.max_deviation == 0.0
    ex = run_words(net, dfa, minimal, smap, 3, engine="exact")
    assert ex.ok and ex.max_exact_bound is not None and ex.max_exact_bound < 1e-15


def test_gate_constants_and_the_spec_on_minus_infinity():
    assert np.exp(RESET_LOG_GATE) == 0.0 and np.exp(np.float32(RESET_LOG_GATE)) == 0.0
    assert np.exp(HALF_LOG_GATE) == 0.5
    x = dict(q=np.zeros((1, 1, 1, 2)), k=np.array([[[[1.0, 0.0]]]]), v=np.zeros((1, 1, 1, 1)),
             beta=np.zeros((1, 1, 1)), g=np.full((1, 1, 1), -np.inf))
    # spec friction (reported): g = −∞ (decay exactly 0) is rejected as non-finite, hence g = −10⁴
    with pytest.raises(NonFiniteError):
        evaluate("delta_product", x)
    x["g"] = np.full((1, 1, 1), RESET_LOG_GATE)
    ev = evaluate("delta_product", x, initial_state=np.ones((1, 1, 2, 1)))
    assert np.all(ev.final_state == 0.0)


def _reset_only(casc) -> bool:
    return all(a[0] != "perm" for acts in cascade_actions(casc).values() for a in acts)


@settings(max_examples=25)
@given(dfas(max_states=5, max_letters=3), st.sampled_from(["fp64", "emulate:bf16"]))
def test_deltanet_with_one_factor_per_token_accepts_every_aperiodic_language(dfa, engine):
    minimal, smap = dfa.minimize()
    casc = decompose(minimal)
    assume(_reset_only(casc))
    net = compile_cascade(casc, delay="fading")
    assert net.householders_per_token == [1] * len(net.layers)
    stats = run_words(net, dfa, minimal, smap, min(_length(dfa), 4), engine=engine)
    assert stats.ok, stats.examples
    certs = certify_transitions(net)
    assert all(c.ok and set(c.betas) <= {0.75} for c in certs)  # eigenvalues {¼, 1}: DeltaNet [0,1]


def test_deltanet_rows_agree_on_long_random_words():
    dfa = second_last_a_dfa()
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), delay="fading")
    words = np.random.default_rng(0).integers(0, 2, size=(4, 60))
    stats = run_sequences(net, dfa, minimal, smap, words)
    assert stats.ok and stats.words == 240, stats.examples


def test_fading_delay_refuses_a_permutation_component_and_a_gate():
    casc = decompose(mod_dfa(2).minimize()[0])
    with pytest.raises(ValueError, match="delay: 'fading' compiles reset-only"):
        compile_cascade(casc, delay="fading")
    with pytest.raises(ValueError, match="gated"):
        compile_cascade(decompose(second_last_a_dfa().minimize()[0]), delay="fading", gated=True)


def test_fading_decoder_without_the_previous_row_is_caught():
    """Reading the *current* rows of the levels above (the naive wiring) fails on Σ*aΣ: the fading
    delay is what makes the single-factor stack correct."""
    dfa = second_last_a_dfa()
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), delay="fading")
    assert run_words(net, dfa, minimal, smap, 4).ok
    # same layers and rows; the levels below read the updated rows as if they were the previous ones
    net.head_actions = lambda layer, letters, decoded, previous=None: CompiledLRNN.head_actions(
        net, layer, letters, decoded, decoded)
    assert not run_words(net, dfa, minimal, smap, 4).ok
