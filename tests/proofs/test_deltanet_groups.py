"""The DeltaNet [−1,1] group constructions (D_m in two layers, S4 in four): group tables, one reflection
per token per layer, every word decoded, and negative controls the verification must catch."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.proofs.construction import run_exhaustive
from lrnnspec.proofs.deltanet_groups import dihedral_construction, dihedral_group, matrix, s4_construction


@given(st.integers(3, 7), st.data())
def test_dihedral_table_matches_matrix_products(m, data):
    g = dihedral_group(m)
    q, a = data.draw(st.integers(0, g.order - 1)), data.draw(st.integers(0, g.order - 1))
    prod = matrix(m, g.elements[a]) @ matrix(m, g.elements[q])
    assert np.allclose(matrix(m, g.elements[g.table[q, a]]), prod, atol=1e-12)


@pytest.mark.parametrize("build", [lambda: dihedral_construction(3), lambda: dihedral_construction(4),
                                   lambda: dihedral_construction(6), s4_construction])
def test_every_token_is_one_generalized_householder_factor_with_beta_0_or_2(build):
    con = build()
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


def test_s4_construction_decodes_every_word_up_to_length_3_in_fp64():
    res = run_exhaustive(s4_construction(), "fp64", 3)
    assert res["ok"] and res["words"] == 24 + 24 ** 2 + 24 ** 3


def test_s4_without_the_v4_layers_is_caught():
    con = s4_construction()
    broken = dataclasses.replace(con, route=lambda i, letters, labels: (
        con.route(i, letters, labels) if i < 2 else np.zeros_like(letters)))  # n_t ≡ e
    assert not run_exhaustive(broken, "fp64", 2)["ok"]
