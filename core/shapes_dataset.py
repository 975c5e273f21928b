"""The shapes dataset: 6,000 generated 64x64 colour images of circles, squares, triangles, stars and crosses.

It needs no files: a constant seed draws the same images, with OpenCV, every time.
"""

from functools import lru_cache

import numpy as np

from core.catalogue import CLASS_NAMES, DATA_SEED

SHAPES_PER_CLASS = 1200
SHAPE_OUTLINES = {  # unit polygons; each image scales, rotates and moves one
    "square": np.array([(1, 1), (1, -1), (-1, -1), (-1, 1)]) / np.sqrt(2),
    "triangle": np.array([(np.cos(a), np.sin(a)) for a in np.radians([90, 210, 330])]),
    "star": np.array([(r * np.cos(a), r * np.sin(a)) for r, a in zip([1, 0.45] * 5, np.radians(np.arange(90, 450, 36)))]),
    "cross": np.array([(0.3, 1), (0.3, 0.3), (1, 0.3), (1, -0.3), (0.3, -0.3), (0.3, -1),
                       (-0.3, -1), (-0.3, -0.3), (-1, -0.3), (-1, 0.3), (-0.3, 0.3), (-0.3, 1)]),
}


@lru_cache(maxsize=1)
def generate_shapes():
    """SHAPES_PER_CLASS images of each shape, always the same ones (a constant seed)."""
    rng = np.random.default_rng(DATA_SEED)
    kinds = CLASS_NAMES["shapes"]
    labels = np.arange(SHAPES_PER_CLASS * len(kinds)) % len(kinds)
    images = np.stack([_draw_shape(kinds[label], rng) for label in labels])
    images.flags.writeable = False
    return images, labels.astype(np.int64)


def _draw_shape(kind, rng, size=64):
    """One shape, filled or outlined, at a random place, size, angle and colour, on a noisy background."""
    import cv2

    background = rng.integers(0, 256, 3)
    colour = tuple(int(c) for c in (background + rng.integers(80, 176, 3)) % 256)  # far from the background
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = background
    radius = rng.uniform(0.15, 0.4) * size
    centre = rng.uniform(radius + 2, size - radius - 2, 2)
    thickness = -1 if rng.random() < 0.5 else int(rng.integers(2, 4))  # -1 fills the shape
    if kind == "circle":
        cv2.circle(canvas, tuple(int(v) for v in centre), int(radius), colour, thickness, cv2.LINE_AA)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        points = np.rint(SHAPE_OUTLINES[kind] @ rotation * radius + centre).astype(np.int32)
        if thickness < 0:
            cv2.fillPoly(canvas, [points], colour, cv2.LINE_AA)
        else:
            cv2.polylines(canvas, [points], True, colour, thickness, cv2.LINE_AA)
    noise = rng.integers(-20, 21, canvas.shape, dtype=np.int16)
    return np.clip(canvas + noise, 0, 255).astype(np.uint8)
