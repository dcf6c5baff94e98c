"""Scoring a fold's held-out run with the official metric, and keeping the best epoch's OOF outputs."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from config.experiment import ValidationConfig
from runtime.atomic import atomic_path, write_text_atomic
from particles import ParticleSet
from postprocess.metric import MetricReport, score_picks
from postprocess.class_suppression import fit_thresholds_suppressed, select_picks
from dataio.pick_writers import write_picks_table
from inference.run_folder import OOF_CANDIDATES, VAL_METRICS

VAL_PICTURE = "val_slices.png"


@dataclass
class FoldResult:
    candidates: pd.DataFrame  # every peak above the candidate threshold, with score
    thresholds: dict[str, float]  # per-class thresholds fitted on this fold's candidates
    report: MetricReport  # the official metric at those thresholds
    picks: pd.DataFrame  # the picks scored: candidates after class suppression and thresholds


class FoldValidation:
    """Turns validation candidates into a score; remembers the best one across epochs."""

    def __init__(self, cfg: ValidationConfig, *, particles: ParticleSet) -> None:
        self.cfg, self.particles = cfg, particles
        self.best_score = -math.inf

    @staticmethod
    def gather(parts: list[pd.DataFrame]) -> pd.DataFrame:
        """Candidates of every rank, one copy per run (DDP pads the validation set by repeating runs)."""
        local = [p for p in parts if len(p)] or parts[:1]
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, local)
            local = [part for rank_parts in gathered for part in rank_parts]
        seen: dict[str, pd.DataFrame] = {}
        for part in local:
            for run, rows in part.groupby("experiment", sort=False):
                seen.setdefault(run, rows)
        return pd.concat(seen.values(), ignore_index=True) if seen else parts[0].iloc[:0]

    def evaluate(self, candidates: pd.DataFrame, ground_truth: pd.DataFrame, runs: list[str],
                 class_suppression: float = 0.0) -> FoldResult:
        """Fit per-class thresholds on the held-out runs, as the OOF protocol does, and score (candidates stay
        unsuppressed in the result: suppression depends on the thresholds the ensemble fits)."""
        truth = ground_truth[ground_truth["experiment"].isin(runs)]
        thresholds, _ = fit_thresholds_suppressed(candidates, truth, class_suppression, particles=self.particles)
        picks = select_picks(candidates, thresholds, class_suppression, particles=self.particles)
        return FoldResult(candidates, thresholds, score_picks(picks, truth, runs=runs, particles=self.particles),
                          picks)

    def should_save(self, score: float) -> bool:
        """Whether this validation's results become the run's OOF record: every validation when the ensemble
        uses the last weights (the final one stays), only improvements when it uses the best."""
        improved = score > self.best_score
        self.best_score = max(self.best_score, score)
        return improved or self.cfg.checkpoint == "last"

    def save(self, run_dir: Path, result: FoldResult, epoch: int, probs: dict[str, torch.Tensor],
             datamodule: Any, loggers: list[Any], final: bool = True) -> None:
        """Write this epoch's OOF candidates, metrics, optional heatmaps and picture to the run folder. With the
        last checkpoint every validation is saved, but only the ``final`` one draws its picture (a second each)."""
        write_picks_table(result.candidates, run_dir / OOF_CANDIDATES)
        table = result.report.table.reset_index().to_dict(orient="records")
        write_text_atomic(run_dir / VAL_METRICS, json.dumps(
            {"epoch": epoch, "score": result.report.score, "thresholds": result.thresholds,
             "per_class": table}, indent=2))
        for run, prob in probs.items():
            with atomic_path(run_dir / f"oof_probs_{run}.npy", suffix=".npy") as tmp:
                np.save(tmp, prob.numpy())
        if self.cfg.picture and (final or self.cfg.checkpoint == "best"):
            self._picture(run_dir, result, datamodule, loggers)

    def _picture(self, run_dir: Path, result: FoldResult, datamodule: Any, loggers: list[Any]) -> None:
        from postprocess.plots import slice_figure

        run = datamodule.val_runs[0]
        volume = datamodule.val_dataset.volumes[0]  # already in memory (normalised): no second read
        truth = datamodule.val_picks[datamodule.val_picks["experiment"] == run]
        picks = result.picks
        png = slice_figure(volume, truth, picks[picks["experiment"] == run], run_dir / VAL_PICTURE,
                           spacing=datamodule.val_dataset.spacing, particles=self.particles)
        for logger in loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key="val/slices", images=[str(png)])
