"""Out-of-fold predictions of a recipe's folds, and the thresholds fitted on them with exactly the settings
the ensemble predicts with. Each held-out tomogram is predicted by the ensemble of every model that never
trained on it: its fold's model alone when each fold holds out one run, two or three models when the models
leave two folds out (``--fold 0+1``), so the OOF CV and its thresholds describe an ensemble, not one model."""
from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dataio.folds import load_folds, resolve_folds_file, split_runs
from dataio.pick_readers import PickSelection
from dataio.sources import TomogramSource, open_source
from particles import CZII_PARTICLES
from inference.fold_runs import FoldRun, load_model
from inference.candidates import fits_component_levels, pick_candidates_per_level
from inference.predict import (EnsembleSettings, ensemble_member_terms, ensemble_probabilities,
                               picks_from_probabilities, predict_run)
from inference.probabilities import members_probabilities
from postprocess.calibration import Calibration, fit_calibration
from postprocess.class_suppression import DEFAULT_FRACTION, fit_thresholds_suppressed, select_picks
from postprocess.component_levels import LEVEL_COLUMN, candidates_at_levels, fit_component_levels

UNRECORDED_SETTINGS: tuple[str, ...] = ("batch_size",)
"""Settings that do not change what the ensemble predicts (beyond rounding), so thresholds ignore them."""

MEMBER_MARK = "@fold"
"""A single model's OOF prediction of a run is the run ``RUN@foldK+L``."""


@dataclass(frozen=True)
class OOFPredictions:
    """Every held-out run's candidates (with score) and truth, as the ensemble would predict them."""

    candidates: pd.DataFrame
    truth: pd.DataFrame
    runs: list[str]
    models_per_run: dict[str, int]
    component_levels: dict[str, float] | None = None  # cc3d: each class's level, fitted on these runs
    calibration: Calibration | None = None  # class_decision calibrated: each class's score map, fitted on these
    raw: pd.DataFrame | None = None  # every candidate before any fitted choice (cc3d grid: with a level column)
    tomograms: dict[str, str] | None = None  # run -> its tomogram, when a tomogram is several runs (single models)
    singles: OOFPredictions | None = field(default=None, repr=False)  # each model alone (``predict_oof(singles=True)``)

    def tomogram_runs(self) -> dict[str, list[str]]:
        """Each tomogram -> the runs that are predictions of it (itself alone unless ``tomograms`` says)."""
        out: dict[str, list[str]] = {}
        for run in self.runs:
            out.setdefault((self.tomograms or {}).get(run, run), []).append(run)
        return out


def held_out(run: FoldRun) -> tuple[TomogramSource, list[str]]:
    """The fold's data source and held-out runs: the split saved when it trained (``split.yaml``), else its
    folds file as it is now."""
    data = run.config.data
    source = open_source(data.data_root, data.split, data.tomo_type, 0, data.picks_csv,
                         PickSelection(data.picks_user, data.picks_session), data.voxel_spacing,
                         particles=run.config.particle_set)
    saved = run.folder.read_split() if run.folder is not None else None
    if saved is not None:
        return source, saved.val_runs
    _, val_runs = split_runs(load_folds(resolve_folds_file(data.folds_file), source.run_names()), data.fold)
    return source, val_runs


def models_by_held_out_run(runs: list[FoldRun]) -> dict[str, tuple[TomogramSource, list[FoldRun]]]:
    """Each held-out tomogram -> its data source and every model of ``runs`` that held it out."""
    out: dict[str, tuple[TomogramSource, list[FoldRun]]] = {}
    for run in runs:
        source, val_runs = held_out(run)
        for name in val_runs:
            out.setdefault(name, (source, []))[1].append(run)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class HeldOutTomogram:
    """One held-out tomogram and how its OOF candidates are taken from models, or from their outputs."""

    volume: np.ndarray
    name: str
    spacing: float
    settings: EnsembleSettings
    device: torch.device

    @property
    def per_level(self) -> bool:
        return fits_component_levels(self.settings.inference)

    def from_models(self, models: list[torch.nn.Module]) -> pd.DataFrame:
        """The candidates of the ensemble of ``models``, in one pass over the tomogram."""
        if self.per_level:
            return self.from_probabilities(ensemble_probabilities(models, self.volume, self.name, self.settings,
                                                                  self.device))
        return predict_run(models, self.volume, self.name, self.settings, self.floor, self.device, self.spacing)

    def from_terms(self, terms: torch.Tensor) -> pd.DataFrame:
        """The candidates of the ensemble of the members whose ``member_terms`` are the rows of ``terms``."""
        return self.from_probabilities(members_probabilities(terms, self.settings.activation,
                                                             self.settings.inference.average,
                                                             num_classes=self.settings.particles.num_classes))

    def from_probabilities(self, probs: torch.Tensor) -> pd.DataFrame:
        infer = self.settings.inference
        if self.per_level:
            return pick_candidates_per_level(probs, self.name, infer, spacing=self.spacing,
                                             output_stride=self.settings.output_stride,
                                             particles=self.settings.particles)
        return picks_from_probabilities(probs, self.name, self.settings, self.floor, self.spacing)

    @property
    def floor(self) -> dict[str, float]:
        return {n: self.settings.inference.candidate_threshold for n in self.settings.particles.names}


def predict_oof(runs: list[FoldRun], settings: EnsembleSettings, device: torch.device | str = "cpu",
                singles: bool = False) -> OOFPredictions:
    """Each held-out tomogram predicted, under ``settings`` (TTA, window, NMS as the ensemble), by the
    ensemble of the models that never trained on it. Candidates are not suppressed across classes: that
    depends on the thresholds still to be fitted. With cc3d and a grid of ``component_levels``, each class's
    level is fitted here and the candidates are those at the chosen levels.

    ``singles``: each tomogram is also predicted by each of those models alone (``OOFPredictions.singles``, what
    ``postprocess.ensemble_size`` carries from) out of the same forward passes: each model's own output is kept
    (memory holds one output per model of the tomogram) and the ensemble's is their mean, equal to one pass up
    to float rounding. Slice detectors, whose boxes do not average, predict once more per model."""
    groups = models_by_held_out_run(runs)
    if not groups:
        raise ValueError("no fold has held-out runs (fold -1 trains on everything): nothing to fit thresholds on")
    settings = replace(settings, inference=replace(settings.inference, class_suppression=0.0))
    candidates, truths, alone, alone_truths, tomograms = [], [], [], [], {}
    loaded: dict[Path, torch.nn.Module] = {}  # a pair model holds out two runs: read its checkpoint once
    for name, (source, members) in groups.items():
        if not source.has_picks:
            raise ValueError(f"{members[0].config.data.data_root}: no picks for held-out run {name} "
                             f"(fold {members[0].fold})")
        for run in members:
            if run.checkpoint not in loaded:
                loaded[run.checkpoint] = load_model(run, device)
        models = [loaded[run.checkpoint] for run in members]
        tomogram = HeldOutTomogram(source.load_tomogram(name), name, source.voxel_spacing, settings,
                                   torch.device(device))
        shared = singles and len(models) > 1 and settings.slice_half_depth is None
        terms = ensemble_member_terms(models, tomogram.volume, name, settings, tomogram.device) if shared else None
        candidates.append(tomogram.from_terms(terms) if terms is not None else tomogram.from_models(models))
        truths.append(source.picks(name))
        for i, run in enumerate(members if singles else []):
            mine = (candidates[-1] if len(models) == 1 else tomogram.from_terms(terms[i:i + 1])
                    if terms is not None else tomogram.from_models([models[i]]))
            tag = f"{name}{MEMBER_MARK}{run.fold}"
            alone.append(mine.assign(experiment=tag))
            alone_truths.append(truths[-1].assign(experiment=tag))
            tomograms[tag] = name
    oof = oof_predictions(candidates, truths, settings, {name: len(members) for name, (_, members) in groups.items()})
    if not singles:
        return oof
    return replace(oof, singles=oof_predictions(alone, alone_truths, settings, dict.fromkeys(tomograms, 1),
                                                tomograms))


def oof_predictions(candidates: list[pd.DataFrame], truths: list[pd.DataFrame], settings: EnsembleSettings,
                    models_per_run: dict[str, int], tomograms: dict[str, str] | None = None) -> OOFPredictions:
    """Held-out runs' candidates and truth, with component levels (cc3d grid) fitted on them all."""
    raw, truth = pd.concat(candidates, ignore_index=True), pd.concat(truths, ignore_index=True)
    levels = fit_levels(raw, truth, settings)
    table = candidates_at_levels(raw, levels) if levels is not None else raw
    return OOFPredictions(table, truth, sorted(models_per_run), models_per_run, levels, raw=raw,
                          tomograms=tomograms)


@dataclass(frozen=True)
class PostprocessFit:
    """Everything fitted on OOF predictions after the networks: component levels, calibration, thresholds."""

    thresholds: dict[str, float]
    levels: dict[str, float] | None = None
    calibration: Calibration | None = None


def fit_levels(raw: pd.DataFrame, truth: pd.DataFrame, settings: EnsembleSettings) -> dict[str, float] | None:
    """Each class's component level from a cc3d grid (None for other pickers)."""
    if LEVEL_COLUMN not in raw.columns:
        return None
    infer = settings.inference
    return fit_component_levels(raw, truth, infer.component_threshold, infer.threshold_tolerance,
                                particles=settings.particles)


POSTPROCESS_CHOICES: tuple[str, ...] = ("levels", "calibration", "thresholds")
"""What ``fit_postprocess`` fits, in order, each on what the previous one chose."""


def fit_postprocess(raw: pd.DataFrame, truth: pd.DataFrame, settings: EnsembleSettings,
                    fixed: PostprocessFit | None = None,
                    refit: Collection[str] = POSTPROCESS_CHOICES) -> PostprocessFit:
    """Levels, calibration and thresholds fitted on ``raw`` candidates (``OOFPredictions.raw``) and their
    truth, in that order, each on what the previous one chose; a choice not in ``refit`` is ``fixed``'s (to
    tell which fitted choice a cross-fitted score pays for: ``benchmarks.bench_oof_choices``)."""
    unknown = set(refit) - set(POSTPROCESS_CHOICES)
    if unknown or (fixed is None and set(refit) != set(POSTPROCESS_CHOICES)):
        raise ValueError(f"refit names choices of {POSTPROCESS_CHOICES} (got {sorted(refit)}); a choice not "
                         "refitted needs a fixed fit to take it from")
    infer, particles = settings.inference, settings.particles
    levels = fit_levels(raw, truth, settings) if "levels" in refit else fixed.levels
    table = candidates_at_levels(raw, levels) if levels is not None else raw
    if "calibration" not in refit:
        calibration = fixed.calibration
    else:
        calibration = (fit_calibration(table, truth, particles=particles,
                                       competing=infer.class_decision == "competing",
                                       fraction=infer.class_suppression or DEFAULT_FRACTION)
                       if infer.class_decision != "independent" else None)
    if "thresholds" in refit:
        thresholds, _ = fit_thresholds_suppressed(table, truth, infer.class_suppression, infer.threshold_tolerance,
                                                  infer.threshold_rule, particles=particles,
                                                  calibration=calibration)
    else:
        thresholds = fixed.thresholds
    return PostprocessFit(thresholds, levels, calibration)


def picks_with(fit: PostprocessFit, raw: pd.DataFrame, settings: EnsembleSettings) -> pd.DataFrame:
    """The picks a fitted post-processing makes of ``raw`` candidates."""
    table = candidates_at_levels(raw, fit.levels) if fit.levels is not None else raw
    return select_picks(table, fit.thresholds, settings.inference.class_suppression, particles=settings.particles,
                        calibration=fit.calibration)


def cross_fitted_picks(oof: OOFPredictions, settings: EnsembleSettings,
                       refit: Collection[str] = POSTPROCESS_CHOICES) -> pd.DataFrame:
    """Each OOF run's picks with levels, calibration and thresholds fitted on the *other* OOF runs: scored, the
    honest estimate of what a fit on all of them gives on new tomograms (the in-sample one reuses the very runs
    it fitted every one of those choices on). ``refit``: the choices fitted on the other runs; the rest are
    fitted on every run, as in-sample."""
    raw = oof.raw if oof.raw is not None else oof.candidates
    every = None if set(refit) == set(POSTPROCESS_CHOICES) else fit_postprocess(raw, oof.truth, settings)
    picks = []
    for runs in oof.tomogram_runs().values():  # every prediction of the scored tomogram is left out of its fit
        others, truth = ~raw["experiment"].isin(runs), ~oof.truth["experiment"].isin(runs)
        fit = fit_postprocess(raw[others], oof.truth[truth], settings, every, refit)
        picks.append(picks_with(fit, raw[~others], settings))
    return pd.concat(picks, ignore_index=True)


PREDICTOR = "one pass, views per window"
"""Recorded with fitted thresholds: thresholds fitted by the earlier predictor (each view over the whole
volume) are fitted again rather than reused."""


def threshold_record(settings: EnsembleSettings, runs: list[FoldRun]) -> dict[str, object]:
    """What OOF thresholds depend on, as plain JSON: the prediction settings and each checkpoint (path, size,
    modification time), so thresholds saved for other settings or retrained folds are never reused."""
    flat = {"activation": settings.activation, "output_stride": settings.output_stride,
            "normalization": settings.normalization, **asdict(settings.inference),
            "precision": "bf16" if settings.autocast_dtype == torch.bfloat16 else "fp32", "predictor": PREDICTOR}
    used = {k: v for k, v in flat.items() if k not in UNRECORDED_SETTINGS}
    if settings.particles != CZII_PARTICLES:  # thresholds of another class set never fit these models
        used["particles"] = list(settings.particles.names)
    checkpoints = []
    for run in runs:
        stat = run.checkpoint.stat()
        checkpoints.append(f"{run.checkpoint.resolve()} {stat.st_size} {stat.st_mtime_ns}")
    return json.loads(json.dumps({"settings": used, "checkpoints": checkpoints}))


def fit_oof_thresholds(runs: list[FoldRun], settings: EnsembleSettings, device: torch.device | str = "cpu",
                       singles: bool = False) -> tuple[dict[str, float], OOFPredictions]:
    """Per-class thresholds maximising F4 over the out-of-fold predictions made with ``settings``
    (``singles``: ``predict_oof``'s)."""
    oof = predict_oof(runs, settings, device, singles)
    fit = fit_postprocess(oof.raw, oof.truth, settings)
    return fit.thresholds, replace(oof, calibration=fit.calibration)
