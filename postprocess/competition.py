"""Classes decided jointly without dropping anyone: each candidate's probability given its strongest rival.

One particle lights several channels. Keeping only the most probable class at a location (``calibrated``)
throws a true particle away whenever a wrong channel is more sure of it, and under F4 a missed particle costs
far more than a false pick. Here no candidate is removed: each class gets a small logistic model fitted out of
fold, ``p = sigmoid(w0 + w1 * logit(own) + w2 * logit(rival))`` (``w1 >= 0``, ``w2 <= 0``), where ``own`` is
the candidate's calibrated score and ``rival`` the highest calibrated score of another class's candidate on
the same spot (within ``fraction`` of the two radii's sum; a floor when there is none). A class that is often
a ghost of another learns a negative ``w2``; one that is not keeps ``w2`` near 0. Per-class thresholds are
then fitted on ``p``. Pure functions of arrays and tables.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.spatial import cKDTree
from scipy.special import expit, logit

EPS = 1e-6
PRIOR = 1e-2
"""Weight of the Gaussian prior on the three weights, per candidate (keeps a separable class finite)."""


def strongest_rival(table: pd.DataFrame, radii: Mapping[str, float], fraction: float) -> np.ndarray:
    """For each candidate (``experiment, particle_type, x, y, z``, ``score``), the highest score of a candidate
    of another class in the same run within ``fraction * (r_own + r_other)``; 0 where there is none."""
    rival = np.zeros(len(table))
    if not len(table):
        return rival
    reach = fraction * 2 * max(radii.values())
    for rows in table.groupby("experiment", sort=False).indices.values():
        part = table.iloc[rows]
        pairs = cKDTree(part[["x", "y", "z"]].to_numpy(np.float64)).query_pairs(reach, output_type="ndarray")
        if not len(pairs):
            continue
        names = part["particle_type"].to_numpy()
        radius = np.array([radii[n] for n in names])
        xyz, score = part[["x", "y", "z"]].to_numpy(np.float64), part["score"].to_numpy(np.float64)
        a, b = pairs[:, 0], pairs[:, 1]
        close = (names[a] != names[b]) & (np.linalg.norm(xyz[a] - xyz[b], axis=1) <= fraction * (radius[a] + radius[b]))
        a, b = a[close], b[close]
        best = np.zeros(len(part))
        np.maximum.at(best, a, score[b])
        np.maximum.at(best, b, score[a])
        rival[rows] = best
    return rival


def features(own: np.ndarray, rival: np.ndarray) -> np.ndarray:
    """``[N, 3]``: 1, logit(own), logit(rival) (scores clipped away from 0 and 1)."""
    clip = lambda v: logit(np.clip(np.asarray(v, np.float64), EPS, 1 - EPS))  # noqa: E731
    return np.stack([np.ones(len(own)), clip(own), clip(rival)], axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood weights (intercept, own slope >= 0, rival slope <= 0) with a weak Gaussian prior."""
    if not len(x):
        return float(logit(EPS)), 0.0, 0.0
    y = np.asarray(y, np.float64)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        p = expit(x @ w)
        nll = -np.sum(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        return nll + PRIOR * len(x) * 0.5 * w @ w / 100.0, x.T @ (p - y) + PRIOR * len(x) * w / 100.0

    result = minimize(loss, np.array([0.0, 1.0, 0.0]), jac=True, method="L-BFGS-B",
                      bounds=[(None, None), (0.0, None), (None, 0.0)])
    return tuple(float(v) for v in result.x)  # type: ignore[return-value]


@dataclass(frozen=True)
class Competition:
    """Per class, the weights of its probability given its own and its strongest rival's calibrated score."""

    weights: Mapping[str, tuple[float, float, float]]
    radii: Mapping[str, float]  # Å, to find rivals
    fraction: float = 0.5

    def apply(self, calibrated: pd.DataFrame) -> np.ndarray:
        """The new scores of calibrated candidates (their rivals found among themselves)."""
        x = features(calibrated["score"].to_numpy(np.float64),
                     strongest_rival(calibrated, self.radii, self.fraction))
        weights = np.array([self.weights[n] for n in calibrated["particle_type"]]).reshape(-1, 3)
        return expit(np.sum(x * weights, axis=1))

    def to_json(self) -> dict[str, object]:
        return {"fraction": self.fraction, "radii": dict(self.radii),
                "weights": {n: {"intercept": w[0], "own": w[1], "rival": w[2]} for n, w in self.weights.items()}}

    @classmethod
    def from_json(cls, doc: object, where: str, names: tuple[str, ...]) -> Competition:
        """Read what ``to_json`` wrote; anything malformed is an error naming ``where``."""
        try:
            weights = {n: (float(doc["weights"][n]["intercept"]), float(doc["weights"][n]["own"]),
                           float(doc["weights"][n]["rival"])) for n in names}
            radii = {n: float(doc["radii"][n]) for n in names}
            fraction = float(doc["fraction"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: competition needs a fraction, and a radius and weights (intercept, own, "
                             f"rival) for every class ({', '.join(names)})") from None
        values = [v for w in weights.values() for v in w] + list(radii.values()) + [fraction]
        if not all(np.isfinite(values)) or any(w[1] < 0 or w[2] > 0 for w in weights.values()):
            raise ValueError(f"{where}: competition weights must be finite, own >= 0 and rival <= 0")
        return cls(weights, radii, fraction)


def fit_competition(calibrated: pd.DataFrame, outcomes: np.ndarray, radii: Mapping[str, float],
                    fraction: float = 0.5) -> Competition:
    """Each class's weights fitted to its OOF candidates' outcomes (``calibrated``: Platt-calibrated scores)."""
    x = features(calibrated["score"].to_numpy(np.float64), strongest_rival(calibrated, radii, fraction))
    names = calibrated["particle_type"].to_numpy()
    weights = {name: fit_logistic(x[names == name], np.asarray(outcomes)[names == name]) for name in radii}
    return Competition(weights, dict(radii), fraction)
