"""2D detector targets: one box per particle on every slice its sphere crosses, and the 2.5D slice stacks
the detector sees.

A sphere of radius r centred at depth z0 cuts the slice at depth z in a disc of radius sqrt(r^2 - (z - z0)^2):
that disc's square box is the particle's target on that slice, so a slice near a particle's pole gets a small
box and the equator the full one, as the write-ups that detect slice by slice label them.
"""
from __future__ import annotations

import numpy as np

MIN_BOX_RADIUS: float = 1.0
"""Cross-sections narrower than this (voxels) get no box: a one-voxel cap is not something to detect."""


def cross_section_radius(radii: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Radius of each sphere's cut at depth offset ``dz`` from its centre (0 where the slice misses it)."""
    squared = np.asarray(radii, dtype=np.float64) ** 2 - np.asarray(dz, dtype=np.float64) ** 2
    return np.sqrt(np.clip(squared, 0.0, None))


def slice_boxes(centres_zyx: np.ndarray, radii: np.ndarray, labels: np.ndarray, z: float,
                shape_yx: tuple[int, int], min_radius: float = MIN_BOX_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Particles (centres in voxels ``[N, 3]`` z, y, x; radii in voxels; integer labels) -> the boxes of the
    slice at depth ``z``: ``[M, 4]`` as x1, y1, x2, y2 in pixels (clipped to the slice, boxes left with no area
    dropped) and their ``[M]`` labels."""
    centres = np.asarray(centres_zyx, dtype=np.float64).reshape(-1, 3)
    radii, labels = np.asarray(radii, dtype=np.float64).reshape(-1), np.asarray(labels).reshape(-1)
    if not len(centres) == len(radii) == len(labels):
        raise ValueError(f"{len(centres)} centres, {len(radii)} radii and {len(labels)} labels: one of each per particle")
    cut = cross_section_radius(radii, z - centres[:, 0])
    keep = cut >= min_radius
    y, x, half = centres[keep, 1], centres[keep, 2], cut[keep]
    height, width = shape_yx
    boxes = np.stack([np.clip(x - half, 0, width), np.clip(y - half, 0, height),
                      np.clip(x + half, 0, width), np.clip(y + half, 0, height)], axis=1).reshape(-1, 4)
    has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[has_area].astype(np.float32), labels[keep][has_area]


def stack_index(z: np.ndarray, half_depth: int, depth: int) -> np.ndarray:
    """``[len(z), 2k+1]`` slice indices of the 2.5D stacks of slices ``z``: ``z - k .. z + k``, mirrored at
    the volume's faces so the first and last slices get a full stack."""
    z = np.asarray(z, dtype=np.int64).reshape(-1)
    if len(z) and (z.min() < 0 or z.max() >= depth):
        raise ValueError(f"slices {z.min()}..{z.max()} reach outside a volume of depth {depth}")
    index = z[:, None] + np.arange(-half_depth, half_depth + 1)[None, :]
    period = max(2 * depth - 2, 1)
    index = np.abs(index) % period
    return np.where(index >= depth, period - index, index)


def slice_stack(volume: np.ndarray, z: int, half_depth: int) -> np.ndarray:
    """The 2.5D input of slice ``z``: ``[2k+1, H, W]`` (``stack_index``)."""
    return np.ascontiguousarray(volume[stack_index(np.array([z]), half_depth, volume.shape[0])[0]])
