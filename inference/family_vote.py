"""Two ensembles of different model families voted into one picker: the U-Nets and the slice detectors.

    vote = FamilyVote.fit(EnsemblePredictor.from_runs(runs, unets), EnsemblePredictor.from_runs(runs, detectors))
    picks = vote.predict(volume, spacing)

Each family's out-of-fold candidates (its own levels and calibration applied, before thresholds) are fused by
distance within each class (``postprocess.family_fusion``); the first family's weight and the per-class
thresholds are fitted on the fused OOF candidates, so the vote is chosen only where it wins out of fold (a
weight of 1 or 0 is one family alone). Both families must hold out the same runs.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch.distributed as dist
from tqdm import tqdm

from dataio.pick_readers import empty_picks_table
from dataio.sources import TomogramSource
from inference.predictor import EnsemblePredictor
from inference.sharding import from_rank_zero, shard_runs
from particles import ParticleSet
from postprocess.family_fusion import WEIGHT_GRID, fit_fusion_weight, fuse_picks
from postprocess.metric import MetricReport, score_picks
from postprocess.thresholds import apply_thresholds


@dataclass
class FamilyVote:
    """Two fitted ensembles, the first one's weight in the vote and the thresholds of the fused scores."""

    first: EnsemblePredictor
    second: EnsemblePredictor
    weight: float
    thresholds: dict[str, float]
    oof_scores: dict[float, float]  # each weight tried -> its in-sample OOF score

    @classmethod
    def fit(cls, first: EnsemblePredictor, second: EnsemblePredictor,
            weights: tuple[float, ...] = WEIGHT_GRID) -> FamilyVote:
        """The weight and thresholds that score best on both families' OOF candidates (fitted by rank 0 under a
        multi-process launch, where only it holds the OOF predictions, and shared)."""
        fitted = None
        if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
            a, b, truth, runs = oof_tables(first, second)
            tolerance = first.settings.inference.threshold_tolerance
            fitted = fit_fusion_weight(a, b, truth, particles=first.particles, runs=runs, tolerance=tolerance,
                                       weights=weights)
        weight, thresholds, scores = from_rank_zero(fitted)
        return cls(first, second, weight, thresholds, scores)

    @property
    def particles(self) -> ParticleSet:
        return self.first.particles

    def candidates(self, volume: np.ndarray, spacing: float, run: str = "tomogram") -> pd.DataFrame:
        """Both families' candidates of one tomogram, fused at the fitted weight."""
        a, b = (scored_space(p, p.candidates(volume, spacing, run)) for p in (self.first, self.second))
        return fuse_picks(a, b, self.weight, particles=self.particles)

    def predict(self, volume: np.ndarray, spacing: float, run: str = "tomogram") -> pd.DataFrame:
        """The voted picks of one tomogram (``experiment, particle_type, x, y, z`` in Å, ``score``)."""
        return apply_thresholds(self.candidates(volume, spacing, run), self.thresholds, particles=self.particles)

    def predict_source(self, source: TomogramSource, runs: list[str] | None = None, rank: int = 0,
                       world_size: int = 1, progress: bool = True,
                       each: Callable[[str, np.ndarray, pd.DataFrame], None] | None = None) -> pd.DataFrame:
        """The voted picks of every tomogram of ``source`` (or ``runs``) this rank's share holds, as
        ``EnsemblePredictor.predict_source``."""
        names = source.run_names() if runs is None else runs
        self.first.check_spacing(source.voxel_spacing, f"{source!r}")
        self.second.check_spacing(source.voxel_spacing, f"{source!r}")
        tables = []
        for name in tqdm(shard_runs(names, rank, world_size), desc=f"voting (rank {rank})", unit="tomogram",
                         disable=not progress):
            volume = source.load_tomogram(name)
            tables.append(self.predict(volume, source.voxel_spacing, name))
            if each is not None:
                each(name, volume, tables[-1])
        return pd.concat(tables, ignore_index=True) if tables else empty_picks_table()

    def oof_report(self) -> MetricReport:
        """The honest OOF CV of the vote: each OOF run scored with the weight and thresholds fitted on the
        other OOF runs."""
        a, b, truth, runs = oof_tables(self.first, self.second)
        tolerance = self.first.settings.inference.threshold_tolerance
        picks = []
        for run in runs:
            others = [r for r in runs if r != run]
            weight, thresholds, _ = fit_fusion_weight(a[a["experiment"] != run], b[b["experiment"] != run],
                                                      truth[truth["experiment"] != run], particles=self.particles,
                                                      runs=others, tolerance=tolerance)
            fused = fuse_picks(a[a["experiment"] == run], b[b["experiment"] == run], weight, particles=self.particles)
            picks.append(apply_thresholds(fused, thresholds, particles=self.particles))
        return score_picks(pd.concat(picks, ignore_index=True), truth, runs=runs, particles=self.particles)


def scored_space(predictor: EnsemblePredictor, candidates: pd.DataFrame) -> pd.DataFrame:
    """Candidates in the space the family's thresholds were fitted in (calibrated with class_decision
    calibrated), as its OOF candidates are."""
    calibration = predictor.prepare_thresholds().calibration
    return candidates if calibration is None else calibration.apply(candidates)


def oof_tables(first: EnsemblePredictor,
               second: EnsemblePredictor) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Both families' OOF candidates (in their thresholds' score space), the truth and the held-out runs."""
    if first.particles != second.particles:
        raise ValueError(f"a vote needs the same particle classes: {list(first.particles.names)} vs "
                         f"{list(second.particles.names)}")
    fitted = [p.prepare_thresholds() for p in (first, second)]
    if any(f.oof is None for f in fitted):
        raise ValueError("a vote is fitted on both families' out-of-fold predictions: refit their thresholds "
                         "(refit_thresholds=True) instead of reading them from a file")
    a, b = (p.oof_scores_space() for p in (first, second))
    runs = list(fitted[0].oof.runs)
    if sorted(runs) != sorted(fitted[1].oof.runs):
        raise ValueError(f"the two families held out different runs ({runs} vs {list(fitted[1].oof.runs)}): "
                         "train both on the same folds")
    return a, b, fitted[0].oof.truth, runs
