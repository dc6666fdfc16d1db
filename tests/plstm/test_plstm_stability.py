"""pLSTM stability numbers against their closed forms (proofs/plstm.py; arXiv 2506.11997 §4, App. D)."""

import math

import numpy as np
import pytest

from lrnnspec.proofs import plstm as checks
from lrnnspec.proofs.result import CHECKS


def test_unconstrained_transitions_count_lattice_paths_exactly():
    n = 12
    _, res = checks.response(n, n, np.ones((2, 2)), [1.0, 1.0], engine="exact")
    raw = res.raw["output"].reshape(n, n)
    for y in range(n):
        for x in range(n):
            if y or x:
                assert raw[y, x] == math.comb(x + y, x)   # integers, exactly
    assert int(raw[n - 1, n - 1]) == math.comb(2 * n - 2, n - 1)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
def test_p_mode_conserves_mass_peaks_at_alpha_and_decays_like_inverse_sqrt(alpha):
    n = 41
    T = np.array([[alpha, alpha], [1 - alpha, 1 - alpha]])
    G, _ = checks.response(n, n, T, [alpha, 1 - alpha], mode="P")
    for d in range(1, n):
        xs = np.arange(d + 1)
        line = G[d - xs, xs]
        assert abs(line.sum() - 1) <= 64 * d * 2.0**-53                        # mass conservation
        closed = [math.comb(d, int(x)) * alpha**x * (1 - alpha)**(d - x) for x in xs]
        assert np.max(np.abs(line - closed)) <= 64 * d * 2.0**-53             # the binomial law
        assert abs(np.argmax(line) / d - alpha) <= 1 / d                        # peak along Δx/Δ = α
        var = alpha * (1 - alpha) * d
        if d >= 10:                                                             # (2π α(1−α) Δ)^(−1/2)
            assert abs(line.max() * math.sqrt(2 * math.pi * var) - 1) <= 1 / var


def test_p_mode_decay_gamma_scales_each_anti_diagonal():
    a, gamma, n = 0.4, 0.8, 15
    G, _ = checks.response(n, n, gamma * np.array([[a, a], [1 - a, 1 - a]]), [a, 1 - a], mode="P")
    for d in range(1, n):
        assert abs(sum(G[d - x, x] for x in range(d + 1)) - gamma ** (d - 1)) <= 1e-14


def test_d_mode_gives_magnitude_exactly_one_in_the_quadrant():
    n = 10
    T = np.ones((2, 2))
    T[1, 0] = 0.0
    _, res = checks.response(n, n, T, [1.0, 1.0], engine="exact", mode="D")
    raw = res.raw["output"].reshape(n, n)
    assert all(raw[y, x] == 1 for y in range(n) for x in range(n) if y or x)


@pytest.mark.parametrize("name", ["plstm.unconstrained", "plstm.p_mode", "plstm.d_mode", "plstm.chain_lrnn"])
def test_registered_checks_verify(name):
    result = CHECKS[name]("dev")
    assert result.verdict == "verified", result.evidence
    assert result.source and result.hypothesis
