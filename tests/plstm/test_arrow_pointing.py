"""The arrow-pointing generator: deterministic per index, the paper's parameter ranges, and labels
that agree with an independent geometric computation (ray–disk intersection by the quadratic formula
and the rendered pixels)."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from .arrow_pointing import PADDING, SPLITS, ArrowPointing


def ray_hits_disk(p, phi, c, r):
    """Independent check: does {p + t·u, t ≥ 0} meet the disk |z − c| ≤ r? Solve |p + t u − c|² = r²."""
    u = np.array([math.cos(phi), math.sin(phi)])
    f = np.asarray(p) - np.asarray(c)
    b = float(f @ u)
    disc = b * b - (float(f @ f) - r * r)
    return disc >= 0 and (-b + math.sqrt(disc)) >= 0


@given(st.sampled_from(list(SPLITS)), st.integers(0, 5119))
def test_label_agrees_with_ray_disk_intersection(split, index):
    ds = ArrowPointing.split(split)
    p = ds.params(index)
    hits = ray_hits_disk(p["tail"], p["angle"], p["center"], p["radius"])
    assert hits == bool(p["label"])
    # with margin: a positive hits the shrunk disk r/1.2, a negative misses the grown disk 1.2·r
    if p["label"]:
        assert ray_hits_disk(p["tail"], p["angle"], p["center"], p["radius"] / 1.2 * (1 + 1e-9))
    else:
        assert not ray_hits_disk(p["tail"], p["angle"], p["center"], p["radius"] * 1.2 * (1 - 1e-9))


@given(st.sampled_from([192, 384]), st.integers(0, 10**6))
def test_parameters_lie_in_the_papers_ranges(size, index):
    ds = ArrowPointing(size=size, seed=1, length=10**6 + 1)
    p = ds.params(index)
    assert 15 <= p["radius"] <= 30 and 15 <= p["length"] < 30 and p["width"] in (2, 3)
    for z in (*p["tail"], *p["center"]):
        assert PADDING <= z < size - PADDING
    inner = size - 2 * PADDING
    for axis in range(2):
        d = abs(p["center"][axis] - p["tail"][axis])
        assert min(d, inner - d) >= 2 * p["radius"] - 1e-9
    assert math.isclose(math.dist(p["tail"], p["tip"]), p["length"])


def test_per_index_determinism_and_split_independence():
    ds = ArrowPointing.split("test_ext")
    a, b = ds[17], ArrowPointing.split("test_ext")[17]
    assert np.array_equal(a.image, b.image) and a.label == b.label
    assert ds.params(17) != ArrowPointing.split("test").params(17)
    assert a.image.shape == (384, 384, 3) and a.image.dtype == np.uint8
    assert ArrowPointing.split("train")[0].image.shape == (192, 192, 3)
    assert len(ArrowPointing.split("train")) == 100_000


@pytest.mark.parametrize("index", range(6))
def test_rendered_pixels_match_the_geometry(index):
    s = ArrowPointing.split("val")[index]
    ink = s.image[..., 0] == 0
    assert set(np.unique(s.image)) <= {0, 255}
    ys, xs = np.nonzero(ink)
    near = (xs + 0.5 - s.center[0]) ** 2 + (ys + 0.5 - s.center[1]) ** 2 <= s.radius ** 2
    # the disk's pixels: centroid within half a pixel of the centre, area ≈ π r²
    cx, cy = xs[near].mean() + 0.5, ys[near].mean() + 0.5
    assert abs(cx - s.center[0]) < 0.5 and abs(cy - s.center[1]) < 0.5
    assert abs(near.sum() / (math.pi * s.radius ** 2) - 1) < 0.05
    # the arrow: the remaining ink lies near the segment tail → tip or the head strokes, and the
    # principal axis of the shaft points along ±φ
    arrow = np.stack([xs[~near] + 0.5, ys[~near] + 0.5], axis=1)
    assert len(arrow) > 0
    assert np.min(np.hypot(*(arrow - np.array(s.tip)).T)) <= s.width
    centred = arrow - arrow.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    assert abs(abs(axis @ [math.cos(s.angle), math.sin(s.angle)]) - 1) < 0.05


def test_labels_are_balanced():
    ds = ArrowPointing.split("val_ext")
    assert abs(np.mean([ds.params(i)["label"] for i in range(2000)]) - 0.5) < 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        ArrowPointing(size=100)
    with pytest.raises(IndexError, match="index"):
        ArrowPointing.split("val").params(5120)
    with pytest.raises(ValueError, match="name"):
        ArrowPointing.split("nope")
