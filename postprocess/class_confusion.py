"""Where the false picks sit: how many of each class's false picks lie on a true particle of another class
(a right location, the wrong class), the failure independent per-class channels make and per-class thresholds
cannot fix."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from particles import HIT_RADIUS_FRACTION, ParticleSet


def _near(xyz: np.ndarray, truth: pd.DataFrame, name: str, particles: ParticleSet) -> np.ndarray:
    """Which of the points ``xyz`` lie within the hit radius of a true particle of class ``name``."""
    refs = truth.loc[truth["particle_type"] == name, ["x", "y", "z"]].to_numpy(dtype=np.float64)
    if not len(refs) or not len(xyz):
        return np.zeros(len(xyz), dtype=bool)
    distance, _ = cKDTree(refs).query(xyz, k=1)
    return distance <= HIT_RADIUS_FRACTION * particles.get(name).radius


def cross_class_false_picks(picks: pd.DataFrame, truth: pd.DataFrame, *, particles: ParticleSet) -> pd.DataFrame:
    """Per class: its picks, those on no particle of their own class ("off"), and of those, the ones within the
    hit radius of a true particle of another class ("on other"), with the other class they sit on most. Runs
    are matched by ``experiment``; a pick on its own class's particle counts as on target even when another
    pick took that particle first (the metric counts such a duplicate as a false positive)."""
    rows = []
    for name in particles.names:
        mine = picks[picks["particle_type"] == name]
        off_total, on_other, by_other = 0, 0, {}
        for run, run_picks in mine.groupby("experiment"):
            xyz = run_picks[["x", "y", "z"]].to_numpy(dtype=np.float64)
            run_truth = truth[truth["experiment"] == run]
            off = ~_near(xyz, run_truth, name, particles)
            off_total += int(off.sum())
            claimed = np.zeros(len(xyz), dtype=bool)
            for other in particles.names:
                if other == name:
                    continue
                hits = off & ~claimed & _near(xyz, run_truth, other, particles)
                by_other[other] = by_other.get(other, 0) + int(hits.sum())
                claimed |= hits
            on_other += int(claimed.sum())
        worst = max(by_other, key=by_other.get) if by_other and max(by_other.values()) else ""
        rows.append({"particle_type": name, "picks": len(mine), "off": off_total, "on_other": on_other,
                     "mostly_on": worst, "mostly_on_count": by_other.get(worst, 0) if worst else 0})
    return pd.DataFrame(rows).set_index("particle_type")
