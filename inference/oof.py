"""Out-of-fold predictions of a recipe's folds, and the thresholds fitted on them with exactly the settings
the ensemble predicts with. Each held-out tomogram is predicted by the ensemble of every model that never
trained on it: its fold's model alone when each fold holds out one run, two or three models when the models
leave two folds out (``--fold 0+1``), so the OOF CV and its thresholds describe an ensemble, not one model."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from dataio.folds import load_folds, resolve_folds_file, split_runs
from dataio.pick_readers import PickSelection
from dataio.sources import TomogramSource, open_source
from particles import CZII_PARTICLES
from inference.fold_runs import FoldRun, load_model
from inference.candidates import fits_component_levels, pick_candidates_per_level
from inference.predict import EnsembleSettings, ensemble_probabilities, predict_run
from postprocess.calibration import Calibration, fit_calibration
from postprocess.class_suppression import DEFAULT_FRACTION, fit_thresholds_suppressed, select_picks
from postprocess.component_levels import LEVEL_COLUMN, candidates_at_levels, fit_component_levels

UNRECORDED_SETTINGS: tuple[str, ...] = ("batch_size",)
"""Settings that do not change what the ensemble predicts (beyond rounding), so thresholds ignore them."""


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


def predict_oof(runs: list[FoldRun], settings: EnsembleSettings,
                device: torch.device | str = "cpu") -> OOFPredictions:
    """Each held-out tomogram predicted, under ``settings`` (TTA, window, NMS as the ensemble), by the
    ensemble of the models that never trained on it. Candidates are not suppressed across classes: that
    depends on the thresholds still to be fitted. With cc3d and a grid of ``component_levels``, each class's
    level is fitted here and the candidates are those at the chosen levels."""
    groups = models_by_held_out_run(runs)
    if not groups:
        raise ValueError("no fold has held-out runs (fold -1 trains on everything): nothing to fit thresholds on")
    candidates, truths = [], []
    floor = {n: settings.inference.candidate_threshold for n in settings.particles.names}
    settings = replace(settings, inference=replace(settings.inference, class_suppression=0.0))
    per_level = fits_component_levels(settings.inference)
    loaded: dict[Path, torch.nn.Module] = {}  # a pair model holds out two runs: read its checkpoint once
    for name, (source, members) in groups.items():
        if not source.has_picks:
            raise ValueError(f"{members[0].config.data.data_root}: no picks for held-out run {name} "
                             f"(fold {members[0].fold})")
        for run in members:
            if run.checkpoint not in loaded:
                loaded[run.checkpoint] = load_model(run, device)
        models = [loaded[run.checkpoint] for run in members]
        volume = source.load_tomogram(name)
        if per_level:
            probs = ensemble_probabilities(models, volume, name, settings, torch.device(device))
            candidates.append(pick_candidates_per_level(probs, name, settings.inference,
                                                        spacing=source.voxel_spacing,
                                                        output_stride=settings.output_stride,
                                                        particles=settings.particles))
        else:
            candidates.append(predict_run(models, volume, name, settings, floor, torch.device(device),
                                          source.voxel_spacing))
        truths.append(source.picks(name))
    raw, truth = pd.concat(candidates, ignore_index=True), pd.concat(truths, ignore_index=True)
    levels = fit_levels(raw, truth, settings)
    table = candidates_at_levels(raw, levels) if levels is not None else raw
    return OOFPredictions(table, truth, list(groups),
                          {name: len(members) for name, (_, members) in groups.items()}, levels, raw=raw)


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


def fit_postprocess(raw: pd.DataFrame, truth: pd.DataFrame, settings: EnsembleSettings) -> PostprocessFit:
    """Levels, calibration and thresholds fitted on ``raw`` candidates (``OOFPredictions.raw``) and their
    truth, in that order, each on what the previous one chose."""
    infer, particles = settings.inference, settings.particles
    levels = fit_levels(raw, truth, settings)
    table = candidates_at_levels(raw, levels) if levels is not None else raw
    calibration = (fit_calibration(table, truth, particles=particles, competing=infer.class_decision == "competing",
                                   fraction=infer.class_suppression or DEFAULT_FRACTION)
                   if infer.class_decision != "independent" else None)
    thresholds, _ = fit_thresholds_suppressed(table, truth, infer.class_suppression, infer.threshold_tolerance,
                                              infer.threshold_rule, particles=particles, calibration=calibration)
    return PostprocessFit(thresholds, levels, calibration)


def picks_with(fit: PostprocessFit, raw: pd.DataFrame, settings: EnsembleSettings) -> pd.DataFrame:
    """The picks a fitted post-processing makes of ``raw`` candidates."""
    table = candidates_at_levels(raw, fit.levels) if fit.levels is not None else raw
    return select_picks(table, fit.thresholds, settings.inference.class_suppression, particles=settings.particles,
                        calibration=fit.calibration)


def cross_fitted_picks(oof: OOFPredictions, settings: EnsembleSettings) -> pd.DataFrame:
    """Each OOF run's picks with levels, calibration and thresholds fitted on the *other* OOF runs: scored, the
    honest estimate of what a fit on all of them gives on new tomograms (the in-sample one reuses the very runs
    it fitted every one of those choices on)."""
    raw = oof.raw if oof.raw is not None else oof.candidates
    picks = []
    for runs in oof.tomogram_runs().values():  # every prediction of the scored tomogram is left out of its fit
        others, truth = ~raw["experiment"].isin(runs), ~oof.truth["experiment"].isin(runs)
        fit = fit_postprocess(raw[others], oof.truth[truth], settings)
        picks.append(picks_with(fit, raw[~others], settings))
    return pd.concat(picks, ignore_index=True)


MEMBER_MARK = "@fold"
"""A single model's OOF prediction of a run is the run ``RUN@foldK+L``."""


def single_model_oof(runs: list[FoldRun], settings: EnsembleSettings,
                     device: torch.device | str = "cpu") -> OOFPredictions:
    """Each held-out tomogram predicted by each model that never trained on it, alone, each prediction a run of
    its own (``RUN@foldK+L``); component levels fitted on them all. With the ensembles' OOF CV it tells what a
    second member buys, which ``postprocess.ensemble_size`` carries to the size of the whole ensemble."""
    parts = [predict_oof([run], settings, device) for run in runs]
    raws, truths, tomograms = [], [], {}
    for run, part in zip(runs, parts):
        tag = f"{MEMBER_MARK}{run.fold}"
        raw = part.raw if part.raw is not None else part.candidates
        raws.append(raw.assign(experiment=raw["experiment"] + tag))
        truths.append(part.truth.assign(experiment=part.truth["experiment"] + tag))
        tomograms |= {name + tag: name for name in part.runs}
    raw, truth = pd.concat(raws, ignore_index=True), pd.concat(truths, ignore_index=True)
    levels = fit_levels(raw, truth, settings)
    table = candidates_at_levels(raw, levels) if levels is not None else raw
    return OOFPredictions(table, truth, sorted(tomograms), {name: 1 for name in tomograms}, levels, raw=raw,
                          tomograms=tomograms)


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


def fit_oof_thresholds(runs: list[FoldRun], settings: EnsembleSettings,
                       device: torch.device | str = "cpu") -> tuple[dict[str, float], OOFPredictions]:
    """Per-class thresholds maximising F4 over the out-of-fold predictions made with ``settings``."""
    oof = predict_oof(runs, settings, device)
    fit = fit_postprocess(oof.raw, oof.truth, settings)
    return fit.thresholds, replace(oof, calibration=fit.calibration)
