"""The lengths the harness draws reach the chunk boundaries where kernels' bugs live, and a failure
still shrinks to the smallest length that shows it."""

from __future__ import annotations

from hypothesis import find, given, settings

from lrnnspec.strategies import cases, chunk_boundaries, lengths, long_lengths, segments
from lrnnspec.strategies.sequence import long_tier

BOUNDARIES = {c * m + d for c in (16, 32, 64, 128) for m, d in ((1, -1), (1, 0), (1, 1), (2, -1), (2, 1), (3, 1))}


def _drawn(strategy, n: int = 400) -> list:
    seen = []

    @settings(max_examples=n, database=None, derandomize=True)
    @given(strategy)
    def collect(x):
        seen.append(x)

    collect()
    return seen


def test_lengths_reach_every_plausible_chunk_boundary_and_beyond_three_chunks():
    drawn = set(_drawn(lengths(None), 600))
    assert BOUNDARIES <= chunk_boundaries() and 4 * 128 + 3 in chunk_boundaries()
    assert BOUNDARIES <= drawn, sorted(BOUNDARIES - drawn)
    assert {0, 1, 2, 17, 31, 515} <= drawn


def test_a_kernels_own_chunk_adds_its_boundaries():
    assert {47, 48, 49, 95, 97, 145} <= chunk_boundaries(48)
    assert {95, 97, 145} <= set(_drawn(lengths(48), 600))


def test_declared_constraints_restrict_the_lengths():
    drawn = set(_drawn(lengths(None, allowed=lambda t: t % 64 == 0 and t > 0), 200))
    assert drawn and all(t % 64 == 0 and t > 0 for t in drawn) and {64, 128, 192, 384} <= drawn
    assert long_tier(1024, allowed=lambda t: t % 3 == 0) == [258, 513, 1026]   # moved up


def test_a_failure_shrinks_to_the_smallest_length_that_shows_it():
    # a bug beyond the first chunk of 64 is reported at T = 65, not at whatever length found it first
    assert find(lengths(None), lambda t: t > 64) == 65
    assert find(long_lengths(4096), lambda t: t > 600) == 1024


def test_varlen_segments_cross_chunk_boundaries_and_can_be_kept_non_empty():
    drawn = _drawn(segments(200, chunk_size=64), 300)
    crossing = [s for s in drawn if any(a < 64 < b or a < 128 < b for a, b in zip(s[:-1], s[1:]))]
    at_boundary = [s for s in drawn if any(c in (63, 64, 65, 127, 129) for c in s[1:-1])]
    assert crossing and at_boundary
    assert all(b > a for s in _drawn(segments(7, empty=False), 100) for a, b in zip(s[:-1], s[1:]))


def test_state_passing_splits_are_valid_and_often_unaligned_next_to_a_boundary():
    drawn = _drawn(cases("simple_gla", max_len=200, split=True, varlen=False).filter(lambda c: c.split), 150)
    splits = [(c.dims["T"], c.split) for c in drawn]
    assert all(0 < t < T for T, t in splits)
    assert any(t in (15, 17, 31, 33, 63, 65) for _, t in splits)
    both = _drawn(cases("simple_gla", max_len=300, split=True, varlen=False,
                        allowed_lengths=lambda t: t % 64 == 0 and t > 0), 60)
    assert all(c.split is None or (c.split % 64 == 0 and (c.dims["T"] - c.split) % 64 == 0) for c in both)


def test_the_long_tier_doubles_up_to_its_length_every_other_one_with_a_partial_last_chunk():
    assert long_tier(1024) == [256, 511, 1024]
    assert set(_drawn(long_lengths(4096), 60)) == {256, 511, 1024, 2047, 4096}


def test_the_sweep_runs_one_drawn_case_at_every_boundary_and_long_length():
    # Hypothesis left to draw T repeats a few lengths; the sweep guarantees each boundary once, with the
    # rest of the case drawn (not Hypothesis's simplest case) and a different draw at each length
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from lrnnspec.harness.kernel import Kernel

    k = Kernel("lrnnspec.impls.gla:chunk_gla", "gla", None, "cpu")
    try:
        phases = k.domain.phases("forward", 25)
        drawn = []
        for i, (strategy, n) in enumerate(phases[1:]):
            test = settings(max_examples=n, database=None, phases=[Phase.generate],
                            suppress_health_check=list(HealthCheck))(given(strategy)(lambda c: drawn.append(c)))
            seed(f"0/{i + 1}")(test)()
        lengths_run = [c.dims["T"] for c in drawn]
        assert lengths_run == k.domain.boundary_lengths() + long_tier(k.domain.long_len)
        assert {65, 129, 193, 515} <= set(lengths_run) and phases[0][1] == 13   # at least half drawn freely
        widths = {tuple(sorted((d, v) for d, v in c.dims.items() if d != "T")) for c in drawn}
        assert len(widths) > len(drawn) // 2 and sum(max(c.dims["K"], c.dims["V"]) > 1 for c in drawn) > len(drawn) // 2
    finally:
        k.close()
