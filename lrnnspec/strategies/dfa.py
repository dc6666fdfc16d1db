"""Random DFAs for ``lrnnspec prove regular`` and its tests."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def dfas(draw, max_states: int = 6, max_letters: int = 4):
    """Any DFA with 1..``max_states`` states over 1..``max_letters`` letters (a, b, …): random
    transitions, start and accepting set — the input of ``lrnnspec prove regular``. Shrinks to one
    state, one letter."""
    from lrnnspec.proofs.regular_dfa import DFA

    n = draw(st.integers(1, max_states))
    m = draw(st.integers(1, max_letters))
    delta = draw(st.lists(st.lists(st.integers(0, n - 1), min_size=m, max_size=m), min_size=n, max_size=n))
    accept = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    return DFA([chr(97 + i) for i in range(m)], n, draw(st.integers(0, n - 1)), accept, delta)
