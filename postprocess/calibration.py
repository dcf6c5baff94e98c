"""Per-class score calibration fitted out of fold: a channel's raw score -> the probability that a candidate
there is a true particle of that class, so that scores of different channels mean the same and one particle
can be given the class whose channel is most sure of it (``class_decision: calibrated``).

The map is Platt scaling on the score's logit, ``p = sigmoid(a * logit(s) + b)`` with ``a >= 0`` (monotone),
fitted by maximum likelihood with a weak prior on ``a`` and ``b``: two numbers per class, stable on the few
true picks a hard class has in the OOF runs (an isotonic map overfits them). Pure functions of arrays and tables.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.spatial import cKDTree
from scipy.special import expit, logit

from particles import HIT_RADIUS_FRACTION, ParticleSet
from postprocess.competition import Competition, fit_competition
from runtime.bounded_reads import read_json

PRIOR_WEIGHT = 1e-2
"""Weight of the Gaussian prior on slope and intercept (per candidate-count): keeps a perfectly separated
class's slope finite."""
EPS = 1e-6
COMPETITION_KEY = "competition"
"""Where a calibration's competition weights are saved beside the classes' Platt maps."""


def platt(scores: np.ndarray, outcomes: np.ndarray) -> tuple[float, float]:
    """(slope >= 0, intercept) of ``sigmoid(a * logit(s) + b)`` fitted to ``outcomes`` by maximum likelihood."""
    z = logit(np.clip(np.asarray(scores, np.float64), EPS, 1 - EPS))
    y = np.asarray(outcomes, np.float64)
    if not len(z):
        return 0.0, float(logit(EPS))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params
        p = expit(a * z + b)
        nll = -np.sum(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        grad = np.array([np.sum((p - y) * z), np.sum(p - y)])
        penalty = PRIOR_WEIGHT * len(z) * 0.5 * (a * a + b * b) / 100.0
        return nll + penalty, grad + PRIOR_WEIGHT * len(z) * params / 100.0

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)])
    return float(result.x[0]), float(result.x[1])


def candidate_outcomes(candidates: pd.DataFrame, truth: pd.DataFrame, *, particles: ParticleSet) -> np.ndarray:
    """Whether each candidate is a true pick, as the metric would count it: per run and class, by decreasing
    score, a candidate takes the nearest true particle of its class within the hit radius that no stronger
    candidate took."""
    outcome = np.zeros(len(candidates), dtype=bool)
    positions = np.arange(len(candidates))
    for (run, name), rows in candidates.groupby(["experiment", "particle_type"], sort=False).indices.items():
        refs = truth.loc[(truth["experiment"] == run) & (truth["particle_type"] == name), ["x", "y", "z"]]
        if not len(refs):
            continue
        tree, radius = cKDTree(refs.to_numpy(np.float64)), HIT_RADIUS_FRACTION * particles.get(name).radius
        chosen = candidates.iloc[rows]
        points = chosen[["x", "y", "z"]].to_numpy(np.float64)
        taken: set[int] = set()
        for i in np.argsort(-chosen["score"].to_numpy(), kind="stable"):
            point = points[i]
            near = sorted(tree.query_ball_point(point, radius), key=lambda j: np.sum((tree.data[j] - point) ** 2))
            free = [j for j in near if j not in taken]
            if free:
                taken.add(free[0])
                outcome[positions[rows][i]] = True
    return outcome


@dataclass(frozen=True)
class Calibration:
    """Per class, the (slope, intercept) of its Platt map on the score's logit; with ``competition``
    (class_decision competing) each calibrated score is then weighed against its strongest rival's."""

    maps: Mapping[str, tuple[float, float]]
    competition: Competition | None = None

    def apply(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """The candidates with ``score`` calibrated (the channel's own in ``raw_score``)."""
        out = candidates.copy()
        out["raw_score"] = out["score"].astype(np.float64)
        raw = logit(np.clip(out["raw_score"].to_numpy(), EPS, 1 - EPS))
        calibrated = np.empty(len(out))
        for name, rows in out.groupby("particle_type", sort=False).indices.items():
            a, b = self.maps[name]
            calibrated[rows] = expit(a * raw[rows] + b)
        out["score"] = calibrated
        if self.competition is not None:
            out["score"] = self.competition.apply(out)
        return out

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {name: {"slope": a, "intercept": b} for name, (a, b) in self.maps.items()}
        return doc if self.competition is None else {**doc, COMPETITION_KEY: self.competition.to_json()}

    @classmethod
    def from_json(cls, doc: object, where: str, *, particles: ParticleSet) -> Calibration:
        """Read what ``to_json`` wrote; anything malformed is an error naming ``where``."""
        competition = None
        if isinstance(doc, dict) and COMPETITION_KEY in doc:
            doc = dict(doc)
            competition = Competition.from_json(doc.pop(COMPETITION_KEY), where, particles.names)
        if not isinstance(doc, dict) or set(doc) != set(particles.names):
            raise ValueError(f"{where}: calibration must map every class ({', '.join(particles.names)}) to a slope "
                             "and an intercept")
        maps = {}
        for name, entry in doc.items():
            a, b = (entry.get(k) if isinstance(entry, dict) else None for k in ("slope", "intercept"))
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in (a, b)) \
                    or a < 0:
                raise ValueError(f"{where}: calibration of {name!r} needs a finite slope >= 0 and intercept")
            maps[name] = (float(a), float(b))
        return cls(maps, competition)


def fit_calibration(candidates: pd.DataFrame, truth: pd.DataFrame, *, particles: ParticleSet,
                    competing: bool = False, fraction: float = 0.5) -> Calibration:
    """Each class's Platt map fitted to its OOF candidates' outcomes; ``competing``: then each class's weights
    against its strongest rival (within ``fraction`` of the radii's sum), fitted to the same outcomes."""
    outcome = candidate_outcomes(candidates, truth, particles=particles)
    maps = {}
    for name in particles.names:
        mine = (candidates["particle_type"] == name).to_numpy()
        maps[name] = platt(candidates.loc[mine, "score"].to_numpy(np.float64), outcome[mine])
    platt_only = Calibration(maps)
    if not competing:
        return platt_only
    radii = {p.name: p.radius for p in particles.particles}
    return Calibration(maps, fit_competition(platt_only.apply(candidates), outcome, radii, fraction))


def load_calibration(path: str | Path, *, particles: ParticleSet) -> Calibration | None:
    """The calibration saved with a thresholds file (class_decision calibrated), None when it has none."""
    doc = read_json(path, "thresholds file")
    entry = doc.get("calibration") if isinstance(doc, dict) else None
    return None if entry is None else Calibration.from_json(entry, f"thresholds file {path}", particles=particles)
