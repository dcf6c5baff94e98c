"""How much a test score of a few runs moves with the runs drawn: the challenge metric of random k-run subsets.

The metric pools each class's true, false and missed picks over the runs it scores, so a subset's score is the
F-beta of summed per-run counts: each run is scored once and every subset is a sum, vectorised over the draws.
It answers whether a gap between an OOF CV and a 4-run test score says anything (the accuracy issue's 0.04 was
measured on 4 test runs).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from particles import ParticleSet
from postprocess.metric import f_beta, score_picks


def per_run_counts(picks: pd.DataFrame, truth: pd.DataFrame, runs: Sequence[str], *,
                   particles: ParticleSet) -> np.ndarray:
    """``[runs, classes, 3]`` true, false and missed picks of each run and class (the metric's counts)."""
    counts = np.zeros((len(runs), len(particles.names), 3), dtype=np.int64)
    for i, run in enumerate(runs):
        table = score_picks(picks[picks["experiment"] == run], truth[truth["experiment"] == run], runs=[run],
                            particles=particles).table
        counts[i] = table[["tp", "fp", "fn"]].to_numpy()
    return counts


def subset_scores(counts: np.ndarray, weights: np.ndarray, size: int, draws: int, seed: int = 0) -> np.ndarray:
    """The weighted F-beta of ``draws`` random subsets of ``size`` runs (without replacement) of ``counts``
    ``[runs, classes, 3]``; ``weights`` ``[classes]``."""
    n_runs = counts.shape[0]
    if not 1 <= size <= n_runs:
        raise ValueError(f"a subset of {size} runs out of {n_runs}")
    rng = np.random.default_rng(seed)
    chosen = np.argsort(rng.random((draws, n_runs)), axis=1)[:, :size]  # [draws, size]
    member = np.zeros((draws, n_runs), dtype=np.float64)
    np.put_along_axis(member, chosen, 1.0, axis=1)
    summed = np.einsum("dr,rck->dck", member, counts.astype(np.float64))  # [draws, classes, 3]
    _, _, f4 = f_beta(summed[..., 0], summed[..., 1], summed[..., 2])
    weights = np.asarray(weights, dtype=np.float64)
    return (f4 * weights).sum(axis=1) / weights.sum()


@dataclass(frozen=True)
class ScoreSpread:
    """Spread of the score of ``size``-run subsets: mean, standard deviation and the central 90 %."""

    size: int
    mean: float
    sd: float
    low: float
    high: float

    @classmethod
    def of(cls, scores: np.ndarray, size: int) -> "ScoreSpread":
        low, high = np.quantile(scores, [0.05, 0.95])
        return cls(size, float(scores.mean()), float(scores.std(ddof=1)), float(low), float(high))


def score_spread(picks: pd.DataFrame, truth: pd.DataFrame, runs: Sequence[str], size: int, *,
                 particles: ParticleSet, draws: int = 2000, seed: int = 0) -> ScoreSpread:
    """The spread of the test score had only ``size`` of ``runs`` been the test set."""
    counts = per_run_counts(picks, truth, runs, particles=particles)
    weights = np.array([p.weight for p in particles.particles], dtype=np.float64)
    return ScoreSpread.of(subset_scores(counts, weights, size, draws, seed), size)
