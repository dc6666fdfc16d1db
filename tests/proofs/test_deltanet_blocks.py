"""The block constructions (A5 and S4 in two DeltaNet [−1,1] layers, S5 in three): the factorizations,
one factor per token, every word decoded, the claimed depth enforced, and controls the check must catch."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lrnnspec.proofs.construction import run_exhaustive, run_words
from lrnnspec.proofs.deltanet_blocks import blocks_construction, s5_blocks, so3_blocks

SCHEDULES = {"A5": lambda: so3_blocks("A5"), "S4": lambda: so3_blocks("S4"), "S5": s5_blocks}


@pytest.mark.parametrize("which", sorted(SCHEDULES))
def test_each_elements_mirrors_multiply_to_its_matrix_and_the_readout_completes_every_partial_product(which):
    sch = SCHEDULES[which]()
    main = sch.layers[-1]
    for g in range(sch.A):
        partial = np.eye(main.h0.shape[-1])
        for r, tok in enumerate(sch.factor[g]):
            partial = main.transition(tok) @ partial
            c = int(np.argmin([np.abs(m - partial).max() for m in sch.book]))
            assert sch.rest[g, r, c] == g                    # H(n_L)⋯H(n_{r+2}) · H(n_{r+1})⋯H(n_1) = g
        assert np.allclose(partial, sch.mats[g], atol=1e-12)


@pytest.mark.parametrize("which", sorted(SCHEDULES))
def test_every_token_is_one_householder_factor_with_real_spectrum(which):
    con = blocks_construction(which)
    for layer in con.layers:
        assert layer.family == "delta_rule" and layer.n_h == 1
        assert set(np.unique(layer.tokens["beta"])) <= {0.0, 0.75, 2.0}
        assert np.allclose(np.linalg.norm(layer.tokens["k"], axis=-1), 1.0)
        for tok in range(layer.num_tokens):
            ev = np.linalg.eigvals(layer.transition(tok))
            assert np.allclose(ev.imag, 0.0) and np.all(np.abs(ev) <= 1 + 1e-12)


def test_claimed_depths_are_two_and_three_layers():
    assert blocks_construction("A5").depth == blocks_construction("S4").depth == 2
    assert blocks_construction("S5").depth == 3


def test_a_head_cannot_read_a_label_of_its_own_layer():
    con = blocks_construction("A5")
    cheat = dataclasses.replace(con, route=lambda i, letters, labels: (
        labels[0] if i == 1 else con.route(i, letters, labels)))   # the delay head reads the parity head
    with pytest.raises(TypeError):
        run_exhaustive(cheat, "fp64", 1)


def test_s4_blocks_decode_every_word_up_to_length_3_in_fp64():
    res = run_exhaustive(blocks_construction("S4"), "fp64", 3)
    assert res["ok"] and res["words"] == 24 + 24 ** 2 + 24 ** 3


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(SCHEDULES)), st.data())
def test_random_words_decode_at_every_step_in_fp64_and_fp32(which, data):
    con = blocks_construction(which)
    words = np.array(data.draw(st.lists(st.lists(st.integers(0, con.automaton.num_letters - 1), min_size=13,
                                                 max_size=13), min_size=4, max_size=4)))
    for engine in ("fp64", "emulate:fp32"):
        assert run_words(con, engine, words)["ok"]


def test_block_factors_in_the_wrong_order_are_caught():
    sch = so3_blocks("A5")
    sch.factor = sch.factor[:, ::-1].copy()
    res = run_exhaustive(sch.construction("reversed"), "fp64", 2)
    assert not res["ok"] and res["first_failure"]["length"] == 2


def test_one_delay_head_reading_seven_letters_goes_wrong_in_bf16_but_not_fp32():
    sch = s5_blocks(phases=1)
    assert sch.depth_per_head == 7
    words = np.random.default_rng(1).integers(0, 120, size=(16, 40))
    con = sch.construction("one head")
    assert run_words(con, "emulate:fp32", words)["ok"]
    assert not run_words(con, "emulate:bf16", words)["ok"]
