"""Each class's connected-component level fitted out of fold. One global level suits no class set: a class
whose probabilities peak below it yields no component at all, while a level low enough for it merges
neighbouring particles of crowded classes into one blob. So the OOF tomograms are picked at a grid of levels
and each class keeps the level whose components reach the best F4 (at their best score threshold)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from particles import ParticleSet
from postprocess.thresholds import precision_recall_curve

LEVEL_COLUMN = "level"
"""Column of an OOF candidates table picked at several levels: the level each row's component was cut at."""


def _at_level(candidates: pd.DataFrame, level: float) -> pd.DataFrame:
    return candidates[candidates[LEVEL_COLUMN] == level].drop(columns=LEVEL_COLUMN)


def fit_component_levels(candidates: pd.DataFrame, ground_truth: pd.DataFrame, fallback: float,
                         tolerance: float = 0.0, *, particles: ParticleSet) -> dict[str, float]:
    """Class -> the level (of the ``level`` column) whose candidates reach the highest F4 at their best score
    threshold; a class no level finds gets ``fallback``. When several levels reach it (within ``tolerance``),
    the middle one of them: the plateau's ends are where a class starts to merge neighbours (low) or to miss
    faint particles (high), which new tomograms reach sooner than the OOF runs did."""
    if LEVEL_COLUMN not in candidates.columns:
        raise ValueError(f"candidates need a {LEVEL_COLUMN!r} column to fit component levels; "
                         f"have {list(candidates.columns)}")
    levels = sorted(float(v) for v in candidates[LEVEL_COLUMN].unique())
    tables = {level: _at_level(candidates, level) for level in levels}
    chosen = {}
    for name in particles.names:
        best = []
        for level in levels:
            curve = precision_recall_curve(tables[level], ground_truth, name, particles=particles)
            best.append(float(curve["f4"].max()) if len(curve) else 0.0)
        top = max(best, default=0.0)
        plateau = np.flatnonzero(np.asarray(best) >= top - tolerance - 1e-12)
        chosen[name] = levels[int(plateau[(len(plateau) - 1) // 2])] if top > 0 else fallback
    return chosen


def candidates_at_levels(candidates: pd.DataFrame, levels: Mapping[str, float]) -> pd.DataFrame:
    """The candidates of each class at its chosen level, without the level column: what the ensemble picks
    with those levels, so thresholds and the OOF CV are fitted on it."""
    chosen = candidates["particle_type"].map(levels).to_numpy(dtype=np.float64)
    keep = candidates[LEVEL_COLUMN].to_numpy(dtype=np.float64) == chosen
    return candidates[keep].drop(columns=LEVEL_COLUMN).reset_index(drop=True)
