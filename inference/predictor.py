"""The fold ensemble as one object, built from a runs folder, in the spirit of nnU-Net's predictor:

    predictor = EnsemblePredictor.from_runs("runs")
    picks = predictor.predict(volume, spacing=10.012)     # particle_type, x, y, z (Å), score

It finds and checks the runs of one experiment, loads their models, takes the recipe's prediction settings
(any of them overridable), and the per-class thresholds (and component levels) fitted out of fold: the saved
ones when they were fitted with these very settings and checkpoints, else fitted now on the folds' held-out
runs (and saved). ``ensemble.py`` is its command line.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from runtime.atomic import OutputBatch
from dataio.pick_readers import empty_picks_table
from dataio.sources import TomogramSource
from inference.fold_runs import (FoldRun, check_compatible, check_distinct, check_soupable, ensemble_settings,
                                 find_fold_runs, fold_run_from_checkpoint, load_model, weight_soup)
from inference.oof import (OOFPredictions, cross_fitted_picks, fit_oof_thresholds, fit_postprocess, picks_with,
                          threshold_record)
from inference.precision import autocast_dtype
from inference.predict import EnsembleSettings, predict_run, run_candidates
from inference.run_folder import check_voxel_spacing
from inference.sharding import from_rank_zero, shard_runs
from particles import ParticleSet
from postprocess.calibration import Calibration, load_calibration
from postprocess.class_suppression import select_picks
from postprocess.ensemble_size import carried_score
from postprocess.metric import MetricReport, score_picks
from postprocess.thresholds import load_component_levels, load_oof_scores, load_thresholds, save_thresholds


@dataclass
class Thresholds:
    """What the ensemble picks with: per-class thresholds and (cc3d with a grid) component levels; when fitted
    now, the OOF predictions they were fitted on and the record they are saved with."""

    values: dict[str, float]
    levels: dict[str, float] | None = None
    calibration: Calibration | None = None  # class_decision calibrated: thresholds are on calibrated scores
    oof: OOFPredictions | None = None
    record: dict | None = None
    source: str = ""  # how they were obtained, said to the user


@dataclass(frozen=True)
class CarriedOOF:
    """The OOF CV of single members and of the OOF ensembles, carried to the whole ensemble: cross-fitted, and
    in-sample (levels, calibration and thresholds fitted on every OOF run, the scored one included)."""

    single: float  # cross-fitted, each OOF run predicted by one model that never saw it
    ensemble: float  # cross-fitted, by all ``members`` of them (what the OOF CV is)
    members: int
    size: int  # the models that predict new tomograms
    score: float  # a - b / m through both, read at ``size``
    single_in_sample: float
    ensemble_in_sample: float
    score_in_sample: float
    singles: OOFPredictions = field(repr=False)  # the single members' OOF predictions, for further scores


def thresholds_file_of(runs_dir: str | Path | None, experiment: str) -> Path | None:
    """Where a recipe's fitted thresholds are kept by default: ``<runs>/<experiment>.thresholds.json``."""
    return None if runs_dir is None else Path(runs_dir) / f"{experiment}.thresholds.json"


@dataclass
class EnsemblePredictor:
    """Trained fold models of one recipe, their prediction settings and fitted thresholds."""

    runs: list[FoldRun]
    settings: EnsembleSettings
    device: torch.device
    thresholds_file: Path | None = None
    refit: bool = False
    user_thresholds: bool = False  # the file was named by the user: used as given, whatever it was fitted with
    soup: bool = False
    fitted: Thresholds | None = None
    _models: list[nn.Module] = field(default_factory=list, repr=False)
    _oof_reports: dict[bool, MetricReport] = field(default_factory=dict, repr=False)  # cross-fitted or not

    # --- building --------------------------------------------------------------------------------------------
    @classmethod
    def from_runs(cls, runs_dir: str | Path, experiment: str | None = None, *, allow_unfinished: bool = False,
                  fit: bool = True, **options: object) -> EnsemblePredictor:
        """The finished runs of ``experiment`` (the only one when None) under ``runs_dir``; ``options`` are
        those of ``from_fold_runs`` and any ``InferenceSettings`` field (``tta=("identity", "flip_z")``)."""
        runs = find_fold_runs(runs_dir, experiment, allow_unfinished)
        options.setdefault("thresholds_file", thresholds_file_of(runs_dir, runs[0].config.experiment))
        return cls.from_fold_runs(runs, fit=fit, **options)

    @classmethod
    def from_checkpoints(cls, checkpoints: Iterable[str | Path], *, fit: bool = True,
                         **options: object) -> EnsemblePredictor:
        """Checkpoints given one by one (their configs come from inside them); repeats are refused."""
        paths = [Path(c) for c in checkpoints]
        check_distinct(paths)
        return cls.from_fold_runs([fold_run_from_checkpoint(p) for p in paths], fit=fit, **options)

    @classmethod
    def from_fold_runs(cls, runs: list[FoldRun], *, device: str | torch.device | None = None,
                       precision: str = "auto", soup: bool = False, thresholds_file: str | Path | None = None,
                       user_thresholds: bool = False, refit_thresholds: bool = False, fit: bool = True,
                       **overrides: object) -> EnsemblePredictor:
        """``device``: default the GPU when there is one; ``precision``: auto, bf16 or fp32; ``soup``: average
        the weights into one model; ``thresholds_file``: where thresholds are read (and saved when fitted now);
        ``fit``: False leaves fitting to ``prepare_thresholds`` (so a caller can check its outputs first)."""
        check_compatible(runs)
        if soup:
            check_soupable(runs)
        device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        settings = ensemble_settings(runs[0].config, autocast_dtype(precision, device), **overrides)
        predictor = cls(runs, settings, device, None if thresholds_file is None else Path(thresholds_file),
                        refit_thresholds, user_thresholds, soup)
        if fit:
            predictor.prepare_thresholds(save=True)
        return predictor

    @property
    def particles(self) -> ParticleSet:
        return self.settings.particles

    @property
    def experiment(self) -> str:
        return self.runs[0].config.experiment

    @property
    def models(self) -> list[nn.Module]:
        """The fold networks (one averaged network with ``soup``), loaded once, in eval mode."""
        if not self._models:
            models = [load_model(run, self.device) for run in self.runs]
            self._models = [weight_soup(models)] if self.soup else models
        return self._models

    # --- thresholds ------------------------------------------------------------------------------------------
    def prepare_thresholds(self, save: bool = False) -> Thresholds:
        """Saved thresholds fitted with these very settings and checkpoints, else thresholds fitted now on the
        folds' out-of-fold predictions made with them (``save``: written to ``thresholds_file`` at once).
        Under a multi-process launch rank 0 fits and every rank gets its result."""
        if self.fitted is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
            mine = self._load_or_fit() if rank == 0 else Thresholds({})
            values, levels, calibration, how = from_rank_zero((mine.values, mine.levels, mine.calibration,
                                                               mine.source))
            self.fitted = Thresholds(values, levels, calibration, mine.oof, mine.record, how) if rank == 0 else \
                Thresholds(values, levels, calibration, source=how)
            if save and self.fitted.record is not None and self.thresholds_file is not None:
                self.save_thresholds()
        return self.fitted

    def _load_or_fit(self) -> Thresholds:
        path, record = self.thresholds_file, threshold_record(self.settings, self.runs)
        if path is not None and path.is_file() and not self.refit:
            values, fitted_with = load_thresholds(path, particles=self.particles)
            levels = load_component_levels(path, particles=self.particles)
            calibration = load_calibration(path, particles=self.particles)
            if fitted_with == record:
                return Thresholds(values, levels, calibration, source=f"thresholds from {path} (fitted out of fold "
                                                                      "with these settings and checkpoints)")
            if self.user_thresholds:
                what = "no fitting settings" if fitted_with is None else "other settings or checkpoints"
                return Thresholds(values, levels, calibration, source=f"thresholds from {path}, which records {what}")
            print(f"{path} was fitted with other settings or checkpoints: fitting again")
        values, oof = fit_oof_thresholds(self.runs, self.settings, self.device, singles=not self.soup)
        return Thresholds(values, oof.component_levels, oof.calibration, oof, record, "thresholds fitted out of fold")

    def oof_report(self, cross_fitted: bool = True) -> MetricReport | None:
        """The out-of-fold CV of thresholds fitted now (None when they were read from a file). ``cross_fitted``
        (the default, the honest estimate): each OOF run scored with levels, calibration and thresholds fitted
        on the other OOF runs; else in-sample, with those fitted on every OOF run, itself included."""
        thresholds = self.prepare_thresholds()
        if thresholds.oof is None:
            return None
        if cross_fitted not in self._oof_reports:
            oof = thresholds.oof
            picks = (cross_fitted_picks(oof, self.settings) if cross_fitted else
                     select_picks(oof.candidates, thresholds.values, self.settings.inference.class_suppression,
                                  particles=self.particles, calibration=thresholds.calibration))
            self._oof_reports[cross_fitted] = score_picks(picks, oof.truth, runs=oof.runs, particles=self.particles)
        return self._oof_reports[cross_fitted]

    def carried_oof(self) -> CarriedOOF | None:
        """The cross-fitted OOF CV carried from the OOF ensembles' size to this ensemble's
        (``postprocess.ensemble_size``), through the OOF runs as each member alone predicted them (kept from the
        same passes as the OOF ensembles). None when the thresholds were read from a file, the weights are
        souped, or every OOF run is predicted by one model or by all of them (nothing to carry from, or to)."""
        fitted = self.prepare_thresholds()
        counts = set(fitted.oof.models_per_run.values()) if fitted.oof is not None else set()
        members = counts.pop() if len(counts) == 1 else 0
        if self.soup or members < 2 or members >= len(self.runs):
            return None
        singles = fitted.oof.singles
        if singles is None:
            raise ValueError("the OOF predictions were made without each member's own (predict_oof singles=True)")
        single = score_picks(cross_fitted_picks(singles, self.settings), singles.truth, runs=singles.runs,
                             particles=self.particles).score
        single_in = score_picks(picks_with(fit_postprocess(singles.raw, singles.truth, self.settings), singles.raw,
                                           self.settings), singles.truth, runs=singles.runs,
                                particles=self.particles).score
        ensemble, ensemble_in, size = self.oof_report().score, self.oof_report(cross_fitted=False).score, len(self.runs)
        return CarriedOOF(single, ensemble, members, size, carried_score(single, ensemble, members, size),
                          single_in, ensemble_in, carried_score(single_in, ensemble_in, members, size), singles)

    def oof_scores_space(self) -> pd.DataFrame | None:
        """The OOF candidates in the space the thresholds apply to (calibrated with class_decision calibrated),
        for precision-recall curves; None when the thresholds were read from a file."""
        fitted = self.prepare_thresholds()
        if fitted.oof is None:
            return None
        return fitted.oof.candidates if fitted.calibration is None else fitted.calibration.apply(fitted.oof.candidates)

    def saved_oof_scores(self) -> dict[str, float]:
        """The OOF scores recorded when the thresholds read from a file were fitted (empty when none)."""
        path = self.thresholds_file
        return load_oof_scores(path) if path is not None and path.is_file() else {}

    def save_thresholds(self, batch: OutputBatch | None = None, oof_scores: dict[str, float] | None = None) -> Path:
        """Write thresholds fitted now (with their record and component levels) to ``thresholds_file``."""
        fitted = self.prepare_thresholds()
        if fitted.record is None or self.thresholds_file is None:
            raise ValueError("only thresholds fitted now, with a thresholds file to keep them in, are saved")
        calibration = None if fitted.calibration is None else fitted.calibration.to_json()
        return save_thresholds(fitted.values, self.thresholds_file, fitted_with=fitted.record, batch=batch,
                               oof_scores=oof_scores, particles=self.particles, component_levels=fitted.levels,
                               calibration=calibration)

    # --- predicting ------------------------------------------------------------------------------------------
    def check_spacing(self, spacing: float, where: str) -> None:
        """Refuse tomograms more than 1 % off the spacing every run was trained at."""
        for run in self.runs:
            check_voxel_spacing(run.folder.spacing() if run.folder else None, spacing, where)

    def predict(self, volume: np.ndarray, spacing: float, run: str = "tomogram") -> pd.DataFrame:
        """The picks of one tomogram ``[z, y, x]`` at ``spacing`` Å/voxel: ``experiment`` (= ``run``),
        ``particle_type``, ``x``, ``y``, ``z`` (Å) and ``score``."""
        self.check_spacing(spacing, f"tomogram {run}")
        thresholds = self.prepare_thresholds()
        return predict_run(self.models, np.asarray(volume, dtype=np.float32), run, self.settings, thresholds.values,
                           self.device, spacing, thresholds.levels, thresholds.calibration)

    def candidates(self, volume: np.ndarray, spacing: float, run: str = "tomogram") -> pd.DataFrame:
        """Every candidate of one tomogram above the candidate threshold (components at the fitted levels), with
        its score, before thresholds and cross-class competition: what benchmarks rank and re-threshold."""
        self.check_spacing(spacing, f"tomogram {run}")
        levels = self.prepare_thresholds().levels
        return run_candidates(self.models, np.asarray(volume, dtype=np.float32), run, self.settings,
                              self.settings.inference.candidate_threshold, self.device, spacing, levels)

    def predict_source(self, source: TomogramSource, runs: list[str] | None = None, rank: int = 0,
                       world_size: int = 1, progress: bool = True,
                       each: Callable[[str, np.ndarray, pd.DataFrame], None] | None = None) -> pd.DataFrame:
        """The picks of every tomogram of ``source`` (or ``runs``) this rank's share holds; ``each(run, volume,
        picks)`` is called per tomogram (pictures, say)."""
        names = source.run_names() if runs is None else runs
        self.check_spacing(source.voxel_spacing, f"{source!r}")
        tables = []
        for name in tqdm(shard_runs(names, rank, world_size), desc=f"predicting (rank {rank})", unit="tomogram",
                         disable=not progress):
            volume = source.load_tomogram(name)
            picks = self.predict(volume, source.voxel_spacing, name)
            tables.append(picks)
            if each is not None:
                each(name, volume, picks)
        return pd.concat(tables, ignore_index=True) if tables else empty_picks_table()
