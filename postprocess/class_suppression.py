"""One particle, one class: drop a pick when a higher-scoring pick of another class sits on the same spot.

Independent sigmoid channels and per-class NMS let one particle (a ribosome, a thyroglobulin) also peak in
the channels of other classes. Two real particles cannot overlap: their centres lie at least about the sum
of their radii apart. So picks of different classes closer than ``fraction x (r_a + r_b)`` are taken as
one particle and only the highest score survives.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from particles import ParticleSet
from postprocess.calibration import Calibration
from postprocess.thresholds import apply_thresholds, fit_thresholds

DEFAULT_FRACTION: float = 0.5
"""Conflict distance as a fraction of the sum of the two class radii (touching particles are ~1.0 apart)."""


def suppress_across_classes(picks: pd.DataFrame, fraction: float = DEFAULT_FRACTION,
                            min_scores: Mapping[str, float] | None = None,
                            *, particles: ParticleSet) -> pd.DataFrame:
    """Picks (with ``score``) of one or more runs -> the picks no higher-scoring pick of another class of the
    same run conflicts with. ``fraction`` 0 keeps everything. Row order is kept.

    ``min_scores`` (class -> score, e.g. the class thresholds): only picks reaching their class's value
    may suppress others, so a channel that is weakly high everywhere cannot wipe out confident picks.
    Picks of unscored classes (weight 0: beta-amylase) never suppress: their threshold, fitted for a class
    that costs nothing, lets through thousands of picks.
    """
    if fraction < 0:
        raise ValueError(f"class suppression fraction must be >= 0, got {fraction}")
    if fraction == 0 or len(picks) < 2:
        return picks
    if "score" not in picks.columns:
        raise ValueError(f"class suppression needs a 'score' column; have {list(picks.columns)}")
    keep = np.ones(len(picks), dtype=bool)
    radii = picks["particle_type"].map(lambda n: particles.get(n).radius).to_numpy(dtype=np.float64)
    floor = picks["particle_type"].map(lambda n: -np.inf if min_scores is None else min_scores[n]).to_numpy()
    scored = picks["particle_type"].map(lambda n: particles.get(n).weight > 0).to_numpy(dtype=bool)
    strong = (picks["score"].to_numpy(dtype=np.float64) >= floor) & scored
    for _, rows in picks.groupby("experiment", sort=False).indices.items():
        keep[rows] = _keep_one_run(picks[["x", "y", "z"]].to_numpy(dtype=np.float64)[rows],
                                   picks["particle_type"].to_numpy()[rows], radii[rows],
                                   picks["score"].to_numpy(dtype=np.float64)[rows], strong[rows], fraction)
    return picks[keep]


def _keep_one_run(xyz: np.ndarray, names: np.ndarray, radii: np.ndarray, scores: np.ndarray, strong: np.ndarray,
                  fraction: float) -> np.ndarray:
    """Greedy over picks by descending score: a pick survives unless a surviving strong pick of another class
    conflicts."""
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(fraction * 2 * radii.max(), output_type="ndarray")  # candidate conflicts [m, 2]
    if not len(pairs):
        return np.ones(len(xyz), dtype=bool)
    a, b = pairs[:, 0], pairs[:, 1]
    close = np.linalg.norm(xyz[a] - xyz[b], axis=1) < fraction * (radii[a] + radii[b])
    real = close & (names[a] != names[b])
    a, b = a[real], b[real]
    neighbours: list[list[int]] = [[] for _ in range(len(xyz))]
    for i, j in zip(a.tolist(), b.tolist()):  # loop over conflicting pairs (a few per particle), not voxels
        neighbours[i].append(j)
        neighbours[j].append(i)
    keep = np.ones(len(xyz), dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        if keep[i] and strong[i]:
            for j in neighbours[i]:
                if scores[j] < scores[i] or (scores[j] == scores[i] and j > i):
                    keep[j] = False
    return keep


def select_picks(candidates: pd.DataFrame, thresholds: Mapping[str, float], fraction: float,
                 *, particles: ParticleSet, calibration: Calibration | None = None) -> pd.DataFrame:
    """The final picks: candidates compete across classes (those reaching their threshold suppress), then
    each class keeps the candidates reaching its threshold. With ``calibration`` (class_decision calibrated)
    the scores are calibrated first and every candidate competes (one class per location, ``fraction`` 0
    meaning DEFAULT_FRACTION); thresholds are then on the calibrated scores."""
    if calibration is not None:
        decided = decide_classes(candidates, fraction, calibration, particles=particles)
        return apply_thresholds(decided, thresholds, particles=particles)
    return apply_thresholds(suppress_across_classes(candidates, fraction, thresholds, particles=particles), thresholds,
                            particles=particles)


def decide_classes(candidates: pd.DataFrame, fraction: float, calibration: Calibration, *,
                   particles: ParticleSet) -> pd.DataFrame:
    """Calibrated candidates, one class per location: where candidates of different classes overlap (within
    ``fraction`` x the sum of their radii), the most probable survives; with a competing calibration every
    candidate stays, its probability weighed against its strongest rival's (``postprocess.competition``)."""
    calibrated = calibration.apply(candidates)
    if calibration.competition is not None:  # competing: rivals lower the probability, nothing is dropped
        return calibrated
    return suppress_across_classes(calibrated, fraction or DEFAULT_FRACTION, None, particles=particles)


def fit_thresholds_suppressed(candidates: pd.DataFrame, ground_truth: pd.DataFrame, fraction: float,
                              tolerance: float = 0.0, rule: str = "plateau",
                              *, particles: ParticleSet,
                              calibration: Calibration | None = None) -> tuple[dict[str, float], pd.DataFrame]:
    """Thresholds for picks that compete across classes: fit without competition, let the picks above those
    thresholds suppress their weaker neighbours of other classes, fit again on what remains. Returns the
    thresholds and the suppressed candidates; ``fraction`` 0 is plain ``fit_thresholds``. With
    ``calibration``: the classes are decided first on calibrated scores (``decide_classes``), then fitted."""
    if calibration is not None:
        decided = decide_classes(candidates, fraction, calibration, particles=particles)
        return fit_thresholds(decided, ground_truth, tolerance=tolerance, rule=rule, particles=particles), decided
    first = fit_thresholds(candidates, ground_truth, tolerance=tolerance, rule=rule, particles=particles)
    if fraction == 0:
        return first, candidates
    remaining = suppress_across_classes(candidates, fraction, first, particles=particles)
    return fit_thresholds(remaining, ground_truth, tolerance=tolerance, rule=rule, particles=particles), remaining
