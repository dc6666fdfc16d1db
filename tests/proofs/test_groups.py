"""Properties of the group constructions: swap factorizations and rotations as two reflections."""

import numpy as np
from hypothesis import given, strategies as st

from lrnnspec.proofs.groups import (alternating_group, as_swaps, compose, icosahedral_group,
                                    isomorphism_to_permutations, moved, octahedral_group, perm_matrix,
                                    symmetric_group)
from lrnnspec.proofs.linalg import gh, gh_product, rotation3, rotation_as_reflections, swap_key


@given(st.permutations(list(range(6))))
def test_permutation_matrix_is_a_product_of_at_most_moved_minus_one_swap_reflections(p):
    p = tuple(p)
    swaps = as_swaps(p)
    assert len(swaps) <= max(moved(p) - 1, 0)
    m = gh_product([(swap_key(i, j, 6), 2.0) for i, j in swaps]) if swaps else np.eye(6)
    assert np.allclose(m, perm_matrix(p), atol=1e-12)


@given(st.permutations(list(range(4))), st.permutations(list(range(4))))
def test_permutation_matrices_compose_like_the_group(p, q):
    assert np.array_equal(perm_matrix(compose(tuple(p), tuple(q))), perm_matrix(tuple(p)) @ perm_matrix(tuple(q)))


@given(st.lists(st.floats(-1, 1), min_size=3, max_size=3).filter(lambda a: np.linalg.norm(a) > 0.1),
       st.floats(0.01, 2 * np.pi - 0.01))
def test_every_rotation_is_two_reflections(axis, angle):
    u, v = rotation_as_reflections(axis, angle)
    assert np.allclose(gh(v, 2.0) @ gh(u, 2.0), rotation3(axis, angle), atol=1e-12)


def test_icosahedral_group_is_a5_and_cube_group_is_s4():
    a5, _ = icosahedral_group()
    assert a5.order == 60 and a5.element_orders() == {1: 1, 2: 15, 3: 20, 5: 24}
    assert isomorphism_to_permutations(a5, alternating_group(5)) is not None
    s4, _ = octahedral_group()
    assert s4.order == 24 and isomorphism_to_permutations(s4, symmetric_group(4)) is not None
    assert isomorphism_to_permutations(s4, alternating_group(4)) is None  # orders differ


@given(st.integers(0, 119), st.integers(0, 119), st.integers(0, 119))
def test_s5_table_is_associative(a, b, c):
    g = symmetric_group(5)
    assert g.table[g.table[a, b], c] == g.table[a, g.table[b, c]]
