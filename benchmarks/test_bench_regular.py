"""Speed of the regular-language compiler (issue: proofs, item 5): every DFA with ≤ 6 states and
≤ 4 letters must compile and verify at L = 10 in under a minute.

Run with ``pytest benchmarks/test_bench_regular.py --benchmark-only``. The DFAs are the hardest
(most cascade levels) of 300 random 6-state, 4-letter DFAs drawn with seed 1, the one with the
most distinct fp64 configurations we met, and mod 3.
``test_prove_regular_L10`` times the whole default ``prove_regular`` (all variants and engines);
``test_all_words_fp64_L10`` only the exhaustive fp64 run of the main variant (1,398,101 words);
``test_all_words_unmerged_L6`` the literal one-row-per-word evaluation (no configuration
merging), whose words/s extrapolate the unmerged cost.
"""

import numpy as np
import pytest

from lrnnspec.proofs.regular import prove_regular
from lrnnspec.proofs.regular_cascade import decompose
from lrnnspec.proofs.regular_dfa import DFA, mod_dfa, random_dfa
from lrnnspec.proofs.regular_lrnn import compile_cascade
from lrnnspec.proofs.regular_run import run_words


def _hardest(k=2):
    rng = np.random.default_rng(1)
    cands = []
    for _ in range(300):
        d = random_dfa(rng, 6, 4)
        c = decompose(d.minimize()[0])
        cands.append((-c.levels, -sum(x.width for x in c.components), d.to_json(), d))
    cands.sort(key=lambda r: r[:3])
    return [r[3] for r in cands[:k]]


# the DFA with the most distinct fp64 configurations we met (41,292 spec rows at L = 10)
MANY_ROWS = DFA.from_json('{"alphabet": ["a", "b", "c", "d"], "states": 6, "start": 0, "accept": [0, 2, 3], '
                          '"delta": [[1, 4, 3, 2], [2, 3, 3, 2], [4, 0, 4, 0], [2, 5, 1, 4], [4, 0, 2, 1], [0, 2, 4, 5]]}')
CASES = {f"hard{i}": d for i, d in enumerate(_hardest())} | {"many_rows": MANY_ROWS, "mod3": mod_dfa(3)}


@pytest.mark.parametrize("name", list(CASES))
def test_prove_regular_L10(benchmark, name):
    res = benchmark.pedantic(prove_regular, args=(CASES[name],), kwargs=dict(max_length=10), rounds=1, iterations=1)
    assert res.ok
    assert res.seconds < 60.0, res.render()
    benchmark.extra_info.update(layers=res.variants[0].summary["layers"], seconds=res.seconds,
                                words=res.words_checked())


@pytest.mark.parametrize("name", list(CASES))
def test_all_words_fp64_L10(benchmark, name):
    dfa = CASES[name]
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), delay="registers")
    st = benchmark.pedantic(run_words, args=(net, dfa, minimal, smap, 10), rounds=1, iterations=1)
    assert st.ok and st.words == sum(dfa.letters ** i for i in range(11))
    benchmark.extra_info.update(words_per_second=st.words / st.seconds, spec_rows=st.rows)


@pytest.mark.parametrize("name", list(CASES))
def test_all_words_unmerged_L6(benchmark, name):
    dfa = CASES[name]
    minimal, smap = dfa.minimize()
    net = compile_cascade(decompose(minimal), delay="registers")
    st = benchmark.pedantic(run_words, args=(net, dfa, minimal, smap, 6), kwargs=dict(merge=False),
                            rounds=1, iterations=1)
    assert st.ok
    benchmark.extra_info.update(words_per_second=st.words / st.seconds)
