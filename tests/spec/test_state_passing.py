"""State passing and varlen packing hold exactly (bit for bit) in the exact and fp64 engines."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.spec import evaluate, slice_time

from ._helpers import FAMILIES, assert_bitwise, draw, states


@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_state_passing_split_at_any_t(family, data):
    T = data.draw(st.integers(1, 8), label="T")
    t = data.draw(st.integers(0, T), label="split")
    engine = data.draw(st.sampled_from(["exact", "fp64"]), label="engine")
    x, init = draw(family, seed=data.draw(st.integers(0, 2**16), label="seed"), T=T, K=2, V=2)
    whole = evaluate(family, x, initial_state=init, engine=engine)
    first = evaluate(family, slice_time(family, x, 0, t), initial_state=init, engine=engine)
    carried = first.raw["state"] if engine == "exact" else first.final_state  # exact: carry the mpf state
    second = evaluate(family, slice_time(family, x, t, T), initial_state=carried, engine=engine)
    assert_bitwise(np.concatenate([first.output, second.output], axis=1), whole.output, "output")
    for name, s in states(whole.final_state).items():
        assert_bitwise(states(second.final_state)[name], s, f"state {name}")


@pytest.mark.parametrize("family", FAMILIES)
@given(data=st.data())
def test_varlen_equals_per_sequence(family, data):
    lengths = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4), label="lengths")
    engine = data.draw(st.sampled_from(["exact", "fp64"]), label="engine")
    T, N = sum(lengths), len(lengths)
    x, _ = draw(family, seed=data.draw(st.integers(0, 2**16), label="seed"), B=1, T=T, K=2, V=2,
                initial_state=False)
    _, init = draw(family, seed=1, B=N, T=1, K=2, V=2)
    cu = np.cumsum([0, *lengths]).astype(np.int64)
    packed = evaluate(family, x, initial_state=init, cu_seqlens=cu, engine=engine)
    pick = (lambda s, i: s[i:i + 1]) if not isinstance(init, dict) else (lambda s, i: {k: v[i:i + 1] for k, v in s.items()})
    outs = []
    for i in range(N):
        one = evaluate(family, slice_time(family, x, int(cu[i]), int(cu[i + 1])), initial_state=pick(init, i),
                       engine=engine)
        outs.append(one.output)
        for name, s in states(one.final_state).items():
            assert_bitwise(states(packed.final_state)[name][i:i + 1], s, f"sequence {i} state {name}")
    assert_bitwise(packed.output, np.concatenate(outs, axis=1), "output")


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_length_sequence_returns_the_initial_state(family):
    x, init = draw(family, T=0)
    res = evaluate(family, x, initial_state=init)
    assert res.output.shape[1] == 0
    for name, s in states(res.final_state).items():
        assert_bitwise(s, states(init)[name], name)
