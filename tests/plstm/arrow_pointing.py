"""The arrow-pointing extrapolation task (Pöppel et al., arXiv 2506.11997, §5.1; research/theorems.md
§6.3): does the arrow point at the filled circle? A deterministic per-index generator — sample i of
a split depends only on (seed, i), so any index is drawn in O(1) without the ones before it.

Parameters (as in the paper's configuration): white RGB canvas of ``size``×``size`` (192 for
training, 384 for the extrapolation test); circle radius r ~ U[15, 30]; arrow length ~ U[15, 30),
line width an integer in [2, 4); boundary padding 30 (arrow tail and circle centre lie in the inner
window [30, size − 30)); the circle centre is offset from the arrow tail by at least 2r in x and in y
(offsets drawn in [2r, inner − 2r] and wrapped around the inner window, so both the direct and the
wrapped distance are ≥ 2r); label positive with probability 0.5. The direction φ is drawn so that the
ray from the tail along the arrow hits the disk of radius r/1.2 (positive) or misses the disk of
radius 1.2·r (negative) — a margin of factor 1.2 on either side of the true circle. The arrow is a
segment tail → tip plus two head strokes of length/3 at ±0.5 rad from the reversed direction.
Our own implementation of that description (no code copied).

Splits (seeds of the paper's configuration): train 100 000 at 192 (seed 43); val 5 120 at 192
(100042) and at 384 (100043); test 10 240 at 192 (200042) and at 384 (200043).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RADIUS = (15.0, 30.0)
LENGTH = (15.0, 30.0)
WIDTH = (2, 4)            # integer in [2, 4)
PADDING = 30
INTERSECTION_FACTOR = 1.2
POSITIVE_RATIO = 0.5
HEAD_ANGLE = 0.5          # radians, each head stroke from the reversed direction
SPLITS = {
    "train": (192, 43, 100_000),
    "val": (192, 100_042, 5_120),
    "val_ext": (384, 100_043, 5_120),
    "test": (192, 200_042, 10_240),
    "test_ext": (384, 200_043, 10_240),
}


@dataclass(frozen=True)
class ArrowSample:
    image: np.ndarray            # [size, size, 3] uint8, white background, black shapes
    label: int                   # 1: the arrow points at the circle
    center: tuple[float, float]  # circle centre (x, y); x = column, y = row
    radius: float
    tail: tuple[float, float]
    tip: tuple[float, float]
    angle: float                 # φ: direction tail → tip
    length: float
    width: int


def _segment_mask(X, Y, p, q, half_width):
    """Pixels whose centre lies within ``half_width`` of the segment p–q."""
    px, py = p
    dx, dy = q[0] - px, q[1] - py
    L2 = dx * dx + dy * dy
    t = np.clip(((X - px) * dx + (Y - py) * dy) / L2, 0.0, 1.0) if L2 > 0 else np.zeros_like(X)
    return (X - px - t * dx) ** 2 + (Y - py - t * dy) ** 2 <= half_width ** 2


class ArrowPointing:
    """``ds[i]`` → :class:`ArrowSample`; ``len(ds)`` = ``length``. ``size`` ≥ 2·(padding + 60) + 1
    so the circle offsets can respect the 2r rule."""

    def __init__(self, size: int = 192, seed: int = 43, length: int = 100_000):
        if not isinstance(size, int) or size < 2 * PADDING + 4 * int(RADIUS[1]) + 1:
            raise ValueError(f"size: must be an integer ≥ {2 * PADDING + 4 * int(RADIUS[1]) + 1} (padding "
                             f"{PADDING} each side, offsets ≥ 2r with r ≤ {RADIUS[1]:g}), got {size!r}")
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"length: must be an integer ≥ 0, got {length!r}")
        self.size, self.seed, self.length = size, seed, length

    @classmethod
    def split(cls, name: str) -> "ArrowPointing":
        if name not in SPLITS:
            raise ValueError(f"name: must be one of {tuple(SPLITS)}, got {name!r}")
        size, seed, length = SPLITS[name]
        return cls(size, seed, length)

    def __len__(self) -> int:
        return self.length

    def params(self, index: int) -> dict:
        """The geometry of sample ``index`` (no image)."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.length:
            raise IndexError(f"index: must be an integer in [0, {self.length}), got {index!r}")
        rng = np.random.default_rng([self.seed, int(index)])
        inner = self.size - 2 * PADDING
        r = rng.uniform(*RADIUS)
        length = rng.uniform(*LENGTH)
        width = int(rng.integers(*WIDTH))
        tail = rng.uniform(PADDING, self.size - PADDING, 2)
        offset = rng.uniform(2 * r, inner - 2 * r, 2)
        center = PADDING + np.mod(tail - PADDING + offset, inner)
        label = int(rng.uniform() < POSITIVE_RATIO)
        to_c = center - tail
        dist = float(np.hypot(*to_c))
        theta = math.atan2(to_c[1], to_c[0])
        if label:
            half = math.asin(min(1.0, r / INTERSECTION_FACTOR / dist))
            phi = theta + rng.uniform(-half, half)
        else:
            half = math.asin(min(1.0, r * INTERSECTION_FACTOR / dist))
            phi = theta + rng.choice([-1.0, 1.0]) * rng.uniform(half, math.pi)
        phi = math.atan2(math.sin(phi), math.cos(phi))
        tip = tail + length * np.array([math.cos(phi), math.sin(phi)])
        return {"label": label, "center": (float(center[0]), float(center[1])), "radius": float(r),
                "tail": (float(tail[0]), float(tail[1])), "tip": (float(tip[0]), float(tip[1])),
                "angle": phi, "length": float(length), "width": width}

    def __getitem__(self, index: int) -> ArrowSample:
        p = self.params(index)
        n = self.size
        Y, X = np.mgrid[0:n, 0:n].astype(np.float64) + 0.5  # pixel centres
        cx, cy = p["center"]
        ink = (X - cx) ** 2 + (Y - cy) ** 2 <= p["radius"] ** 2
        hw = p["width"] / 2
        ink |= _segment_mask(X, Y, p["tail"], p["tip"], hw)
        back = p["angle"] + math.pi
        for s in (-1.0, 1.0):
            a = back + s * HEAD_ANGLE
            end = (p["tip"][0] + p["length"] / 3 * math.cos(a), p["tip"][1] + p["length"] / 3 * math.sin(a))
            ink |= _segment_mask(X, Y, p["tip"], end, hw)
        image = np.full((n, n, 3), 255, dtype=np.uint8)
        image[ink] = 0
        return ArrowSample(image=image, **p)
