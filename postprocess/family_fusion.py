"""Two model families' picks of the same tomograms voted into one set (the U-Nets' and the 2D detectors').

Within each run and class, a pick of family A and one of family B closer than ``fraction`` of the class radius
(mutual nearest neighbours) are one particle: fused score ``w * s_a + (1 - w) * s_b`` at the score-weighted
mean position. A pick only one family made keeps its own weighted score (the other family's vote is 0), so a
particle both families see outranks one only one of them sees. The weight ``w`` is chosen out of fold: for
each candidate weight, per-class thresholds are refitted on the fused OOF candidates and the weight whose
fitted picks score best wins.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from particles import ParticleSet
from postprocess.metric import score_picks
from postprocess.thresholds import apply_thresholds, fit_thresholds

MATCH_FRACTION: float = 0.5
"""Two families' picks closer than this fraction of the class radius are the same particle (the metric's own
hit distance, so a fused pick lands where either would have counted)."""
WEIGHT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Weights of family A tried out of fold (0 and 1: one family alone, so fusion can only be chosen on a win)."""
XYZ: list[str] = ["x", "y", "z"]


def mutual_nearest(a_xyz: np.ndarray, b_xyz: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i in A, j in B) that are each other's nearest neighbour within ``distance``."""
    if len(a_xyz) == 0 or len(b_xyz) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a_to_b = cKDTree(b_xyz).query(a_xyz, distance_upper_bound=distance)[1]
    b_to_a = cKDTree(a_xyz).query(b_xyz, distance_upper_bound=distance)[1]
    i = np.flatnonzero(a_to_b < len(b_xyz))
    j = a_to_b[i]
    mutual = b_to_a[j] == i
    return i[mutual], j[mutual]


def fuse_group(a: pd.DataFrame, b: pd.DataFrame, weight: float, distance: float) -> pd.DataFrame:
    """One run's picks of one class from both families -> the fused picks (``x, y, z, score``)."""
    a_xyz, b_xyz = a[XYZ].to_numpy(np.float64), b[XYZ].to_numpy(np.float64)
    sa, sb = weight * a["score"].to_numpy(np.float64), (1 - weight) * b["score"].to_numpy(np.float64)
    i, j = mutual_nearest(a_xyz, b_xyz, distance)
    both = sa[i] + sb[j]
    safe = np.where(both > 0, both, 1.0)
    centre = np.where((both > 0)[:, None], (a_xyz[i] * sa[i, None] + b_xyz[j] * sb[j, None]) / safe[:, None],
                      (a_xyz[i] + b_xyz[j]) / 2)
    only_a, only_b = np.setdiff1d(np.arange(len(a)), i), np.setdiff1d(np.arange(len(b)), j)
    xyz = np.concatenate([centre, a_xyz[only_a], b_xyz[only_b]])
    score = np.concatenate([both, sa[only_a], sb[only_b]])
    return pd.DataFrame({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], "score": score})


def fuse_picks(a: pd.DataFrame, b: pd.DataFrame, weight: float, *, particles: ParticleSet,
               fraction: float = MATCH_FRACTION) -> pd.DataFrame:
    """Candidates of family A and of family B (``experiment, particle_type, x, y, z`` in Å, ``score``) -> the
    fused candidates, same columns; picks whose fused score is 0 (the family weighted 0 alone) are dropped."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the fusion weight of the first family must be in [0, 1], got {weight}")
    fused = []
    for key, group in pd.concat([a.assign(_family=0), b.assign(_family=1)], ignore_index=True).groupby(
            ["experiment", "particle_type"], sort=True):
        run, name = key
        radius = particles.get(name).radius
        picks = fuse_group(group[group["_family"] == 0], group[group["_family"] == 1], weight, fraction * radius)
        fused.append(picks.assign(experiment=run, particle_type=name))
    columns = ["experiment", "particle_type", *XYZ, "score"]
    if not fused:
        return pd.DataFrame(columns=columns)
    table = pd.concat(fused, ignore_index=True)[columns]
    return table[table["score"] > 0].reset_index(drop=True)


def fuse_equally(tables: Sequence[pd.DataFrame], *, particles: ParticleSet,
                 fraction: float = MATCH_FRACTION) -> pd.DataFrame:
    """Several models' candidates voted with equal weights: the n-th table joins the vote of the first n - 1
    at weight 1/n, so every pick's score is the mean over models (0 for a model that missed it)."""
    if not tables:
        raise ValueError("fuse_equally needs at least one table of picks")
    fused = tables[0]
    for count, table in enumerate(tables[1:], start=1):
        fused = fuse_picks(fused, table, count / (count + 1), particles=particles, fraction=fraction)
    return fused


def fit_fusion_weight(a: pd.DataFrame, b: pd.DataFrame, truth: pd.DataFrame, *, particles: ParticleSet,
                      runs: Sequence[str], tolerance: float = 0.0,
                      weights: Sequence[float] = WEIGHT_GRID) -> tuple[float, dict[str, float], dict[float, float]]:
    """The weight of family A (and the thresholds fitted at it) whose fused OOF picks score best, with every
    weight's score. Ties go to one family alone (no fusion without a win), then to the first family."""
    results: dict[float, tuple[float, dict[str, float]]] = {}
    for weight in weights:
        fused = fuse_picks(a, b, weight, particles=particles)
        thresholds = fit_thresholds(fused, truth, tolerance=tolerance, particles=particles)
        picks = apply_thresholds(fused, thresholds, particles=particles)
        results[weight] = (score_picks(picks, truth, runs=list(runs), particles=particles).score, thresholds)
    best = max(weights, key=lambda w: (results[w][0], abs(w - 0.5), w))
    return best, results[best][1], {w: s for w, (s, _) in results.items()}
