"""The D_m construction with two DeltaNet [−1,1] layers: group tables, one reflection per token, and
negative controls the verification must catch."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.proofs.construction import run_exhaustive
from lrnnspec.proofs.dihedral import dihedral_construction, dihedral_group, matrix


@given(st.integers(3, 7), st.data())
def test_dihedral_table_matches_matrix_products(m, data):
    g = dihedral_group(m)
    q, a = data.draw(st.integers(0, g.order - 1)), data.draw(st.integers(0, g.order - 1))
    prod = matrix(m, g.elements[a]) @ matrix(m, g.elements[q])
    assert np.allclose(matrix(m, g.elements[g.table[q, a]]), prod, atol=1e-12)


@pytest.mark.parametrize("m", [3, 4, 6])
def test_every_token_is_one_generalized_householder_factor_with_beta_0_or_2(m):
    con = dihedral_construction(m)
    for layer in con.layers:
        assert layer.family == "delta_rule" and layer.n_h == 1
        assert set(np.unique(layer.tokens["beta"])) <= {0.0, 2.0}
        assert np.allclose(np.linalg.norm(layer.tokens["k"], axis=-1), 1.0)
        for tok in range(layer.num_tokens):  # real spectrum ±1: no single layer rotates
            assert np.allclose(np.abs(np.linalg.eigvals(layer.transition(tok))), 1.0)
            assert np.allclose(np.linalg.eigvals(layer.transition(tok)).imag, 0.0)


@pytest.mark.parametrize("m", [3, 4])
def test_construction_decodes_every_word_up_to_length_4_in_fp64(m):
    assert run_exhaustive(dihedral_construction(m), "fp64", 4)["ok"]


def test_readout_without_the_frame_flip_is_caught():
    con = dihedral_construction(3)
    broken = dataclasses.replace(con, readout=lambda labels: labels[1])
    res = run_exhaustive(broken, "fp64", 3)
    assert not res["ok"] and res["first_failure"]["length"] == 1


def test_layer_two_without_the_parity_layer_is_caught():
    con = dihedral_construction(3)
    broken = dataclasses.replace(con, route=lambda i, letters, labels: (
        np.zeros_like(letters) if i == 0 else 2 * letters))  # c_t ≡ 0: the rotations are mis-applied
    assert not run_exhaustive(broken, "fp64", 3)["ok"]
