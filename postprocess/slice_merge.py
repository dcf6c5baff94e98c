"""2D detections of every slice -> 3D particle centres.

A particle seen slice by slice leaves a column of detections of one class whose centres barely move in x and y
while z steps through its sphere. Detections are joined into tracks slice by slice: a track takes, on each next
slice, the detection nearest its running centre (score-weighted) if it lies within ``link_fraction`` of the
class radius in x, y and is not nearer another track (mutual nearest neighbours), and ends after ``max_gap``
slices without one. Tracks never join each other, so a crowd of detections cannot chain neighbouring particles
into one blob. A track's centre is the score-weighted mean of its detections, its score the mean of its best
``ceil(radius)`` detections (missing ones count 0): a particle is seen on about a radius' worth of slices on each
side of its equator, so one confident slice alone, a flicker, scores low. Two tracks of one class closer than
the class radius are one particle (two real ones cannot overlap): the lower-scoring one is dropped.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from postprocess.family_fusion import mutual_nearest

DETECTION_COLUMNS: tuple[str, ...] = ("particle_type", "z", "y", "x", "score")
"""A slice detection: its class, the slice's depth and the box centre (voxels), and the detector's score."""


def track_slices(zyx: np.ndarray, scores: np.ndarray, xy_distance: float, max_gap: int) -> np.ndarray:
    """Track label of each detection (``[N, 3]`` z, y, x; positive ``scores``), built slice by slice."""
    zyx = np.asarray(zyx, dtype=np.float64).reshape(-1, 3)
    labels = np.full(len(zyx), -1, dtype=np.int64)
    sums, weights, last = np.zeros((0, 2)), np.zeros(0), np.zeros(0)  # per track: weighted yx, weight, last z
    for z in np.unique(zyx[:, 0]):
        here = np.flatnonzero(zyx[:, 0] == z)
        active = np.flatnonzero(z - last <= max_gap)
        centres = sums[active] / weights[active, None]
        i, j = mutual_nearest(centres, zyx[here, 1:], xy_distance)
        tracks = active[i]
        labels[here[j]] = tracks
        new = np.setdiff1d(np.arange(len(here)), j)
        labels[here[new]] = len(weights) + np.arange(len(new))
        sums = np.concatenate([sums, np.zeros((len(new), 2))])
        weights, last = np.concatenate([weights, np.zeros(len(new))]), np.concatenate([last, np.zeros(len(new))])
        members = here[np.concatenate([j, new])]
        np.add.at(sums, labels[members], zyx[members, 1:] * scores[members, None])
        np.add.at(weights, labels[members], scores[members])
        last[labels[members]] = z
    return labels


def keep_apart(centres: np.ndarray, scores: np.ndarray, distance: float) -> np.ndarray:
    """Mask of the tracks kept when any two closer than ``distance`` are one particle (the better one stays)."""
    order = np.argsort(-scores, kind="stable")
    keep = np.ones(len(centres), dtype=bool)
    neighbours = cKDTree(centres).query_ball_point(centres, r=distance) if len(centres) else []
    for index in order:  # best first: a kept track drops its later (worse) neighbours
        if keep[index]:
            keep[[other for other in neighbours[index] if other != index]] = False
    return keep


def merge_class(detections: pd.DataFrame, radius: float, link_fraction: float, max_gap: int) -> pd.DataFrame:
    """One class's detections of one tomogram -> its particles (z, y, x in voxels, score, slices)."""
    zyx = detections[["z", "y", "x"]].to_numpy(np.float64)
    scores = detections["score"].to_numpy(np.float64)
    tracks = track_slices(zyx, scores, link_fraction * radius, max_gap)
    count = int(tracks.max()) + 1 if len(tracks) else 0
    weight = np.bincount(tracks, weights=scores, minlength=count)
    centre = np.stack([np.bincount(tracks, weights=scores * zyx[:, axis], minlength=count)
                       for axis in range(3)], axis=1) / weight[:, None]
    order = np.lexsort((-scores, tracks))  # by track, best score first within it
    first = np.searchsorted(tracks[order], np.arange(count))
    rank = np.arange(len(order)) - first[tracks[order]]
    top = max(1, math.ceil(radius))
    best = rank < top
    score = np.bincount(tracks[order][best], weights=scores[order][best], minlength=count) / top
    keep = keep_apart(centre, score, radius)
    return pd.DataFrame({"z": centre[keep, 0], "y": centre[keep, 1], "x": centre[keep, 2], "score": score[keep],
                         "slices": np.bincount(tracks, minlength=count)[keep]})


def merge_slice_detections(detections: pd.DataFrame, radii: Mapping[str, float], link_fraction: float = 0.5,
                           max_gap: int = 1) -> pd.DataFrame:
    """Every slice's detections of one tomogram (``DETECTION_COLUMNS``; z, y, x in voxels; ``radii`` in voxels
    by class) -> one row per particle: ``particle_type, z, y, x, score, slices`` (voxels), best score first."""
    missing = [c for c in DETECTION_COLUMNS if c not in detections.columns]
    if missing:
        raise ValueError(f"slice detections need columns {list(DETECTION_COLUMNS)}; missing {missing}")
    if not 0 < link_fraction:
        raise ValueError(f"link_fraction must be positive, got {link_fraction}")
    if max_gap < 1:
        raise ValueError(f"max_gap must be at least 1 slice, got {max_gap}")
    if (detections["score"] <= 0).any():
        raise ValueError("slice detections need positive scores (they weight the centres)")
    merged = []
    for name, group in detections.groupby("particle_type", sort=True):
        if name not in radii:
            raise ValueError(f"slice detections of {name!r}, which has no radius; classes: {sorted(radii)}")
        particles = merge_class(group, radii[name], link_fraction, max_gap)
        merged.append(particles.assign(particle_type=name))
    columns = ["particle_type", "z", "y", "x", "score", "slices"]
    if not merged:
        return pd.DataFrame(columns=columns)
    table = pd.concat(merged, ignore_index=True)[columns]
    return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
