"""Connected-component picking: the centroid of each blob of voxels above a level, the alternative to NMS
that segmentation-style solutions (sphere masks, Dice losses) use."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from choices import ComponentScore, check_choice
from particles import ParticleSet, index_to_angstrom

CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
"""26-connectivity: voxels touching at a corner belong to one component (as cc3d's default)."""


def component_centroids(heatmap: np.ndarray, level: float, mass_scale: float | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """One class's ``[D, H, W]`` probabilities -> centroids ``[N, 3]`` (z, y, x, probability-weighted) and
    scores ``[N]`` of the connected components of ``heatmap >= level``, best first. The score is the peak
    probability, or with ``mass_scale`` the component's mass m (its summed probability) as m / (m + mass_scale):
    graded where peaks saturate at 1 (a Dice-trained network's do), and in [0, 1) like a probability."""
    labels, count = ndimage.label(heatmap >= level, structure=CONNECTIVITY)
    if not count:
        return np.zeros((0, 3)), np.zeros(0)
    index = np.arange(1, count + 1)
    centroids = np.asarray(ndimage.center_of_mass(heatmap, labels, index), dtype=np.float64).reshape(-1, 3)
    if mass_scale is None:
        scores = np.asarray(ndimage.maximum(heatmap, labels, index), dtype=np.float64)
    else:
        mass = np.asarray(ndimage.sum(heatmap, labels, index), dtype=np.float64)
        scores = mass / (mass + mass_scale)
    order = np.argsort(-scores, kind="stable")
    return centroids[order], scores[order]


def pick_components(probs: torch.Tensor, run: str, level: float | Mapping[str, float], *, spacing: float,
                    output_stride: int = 1, max_per_class: int | None = None,
                    particles: ParticleSet, score: str = "peak") -> pd.DataFrame:
    """``[C, D, H, W]`` probabilities -> picks table (experiment, particle_type, x, y, z in Å, score): one pick
    per connected component of each class above ``level`` (one for all, or class -> level), at its centroid,
    scored by its peak probability (so per-class thresholds fitted on scores keep whole components or drop
    them), or with ``score`` "mass" by its mass against the volume of a class's sphere on the output grid
    (``component_centroids``)."""
    check_choice(score, ComponentScore, "component score")
    if probs.ndim != 4 or probs.shape[0] != particles.num_classes:
        raise ValueError(f"run {run}: probs must be [{particles.num_classes}, D, H, W]; got {tuple(probs.shape)}")
    levels = dict(level) if isinstance(level, Mapping) else {n: level for n in particles.names}
    missing = [n for n in particles.names if n not in levels]
    if missing:
        raise ValueError(f"component levels missing for classes {missing}")
    bad = {n: v for n, v in levels.items() if not 0 < v < 1}
    if bad:
        raise ValueError(f"component level must be in (0, 1); got {bad if isinstance(level, Mapping) else level}")
    maps = probs.float().cpu().numpy()
    frames = []
    for p in particles.particles:
        scale = (p.radius_voxels(spacing) / output_stride) ** 3 if score == "mass" else None
        zyx, scores = component_centroids(maps[p.channel], levels[p.name], scale)
        if max_per_class is not None:
            zyx, scores = zyx[:max_per_class], scores[:max_per_class]
        xyz = index_to_angstrom(zyx * output_stride, spacing)
        frames.append(pd.DataFrame({"experiment": run, "particle_type": p.name, "x": xyz[:, 0], "y": xyz[:, 1],
                                    "z": xyz[:, 2], "score": scores}))
    return pd.concat(frames, ignore_index=True).astype({"experiment": object, "particle_type": object})
