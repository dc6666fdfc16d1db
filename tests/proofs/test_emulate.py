"""Property: the fast step-wise emulator is bitwise the spec's emulate engine (uniform contracts)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from lrnnspec.proofs.construction import CONSTRUCTIONS
from lrnnspec.proofs.emulate import FAST_FORMATS, FastConstruction, FastLayer, to_format
from lrnnspec.proofs.models import REAL_KINDS, random_layer
from lrnnspec.spec import evaluate, get_format


@pytest.mark.parametrize("fmt", FAST_FORMATS)
def test_to_format_rounds_like_the_spec_format(fmt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000) * np.exp(rng.uniform(-30, 30, size=20000))
    x = x[np.abs(x) < get_format(fmt).largest]
    assert np.array_equal(to_format(x, fmt).astype(np.float64), get_format(fmt).round(x))


@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(REAL_KINDS), fmt=st.sampled_from(FAST_FORMATS))
def test_random_layer_steps_are_bitwise_the_spec_emulation(seed, kind, fmt):
    rng = np.random.default_rng(seed)
    layer = random_layer(kind, rng, n=int(rng.integers(1, 4)), tokens=3)
    fl = FastLayer(layer, fmt)
    toks = rng.integers(0, 3, size=(4, 5))
    fast, spec = fl.initial(4), layer.initial(4)
    for t in range(toks.shape[1]):
        fast = fl.step(fast, toks[:, t])
        spec = evaluate(layer.family, layer.inputs(toks[:, t]), engine=f"emulate:{fmt}", initial_state=spec,
                        **layer.options).final_state
        assert np.array_equal(fl.to_spec_state(fast), spec), f"step {t + 1}"


@pytest.mark.parametrize("name", ["modcount.reflections.m3", "groups.so3.A5", "modcount.binary.p3"])
def test_multi_layer_constructions_match_the_spec_step_by_step(name):
    con = CONSTRUCTIONS[name]()
    rng = np.random.default_rng(1)
    words = rng.integers(0, con.automaton.num_letters, size=(3, 8))
    for fmt in ("bf16", "fp16"):
        fc = FastConstruction(con, fmt)
        fast, spec = fc.initial(3), [layer.initial(3) for layer in con.layers]
        for t in range(words.shape[1]):
            fast, decoded = fc.step(fast, words[:, t])
            labels = []
            for i, layer in enumerate(con.layers):
                tok = con.tokens_for(i, words[:, t], labels)
                spec[i] = evaluate(layer.family, layer.inputs(tok), engine=f"emulate:{fmt}", initial_state=spec[i],
                                   **layer.options).final_state
                labels.append(layer.decode(spec[i]))
                assert np.array_equal(fc.layers[i].to_spec_state(fast[i]), spec[i])
            assert np.array_equal(decoded, con.read(labels))
