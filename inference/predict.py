"""One tomogram through the fold ensemble: normalise, sliding window + TTA, average logits, pick peaks."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from config.experiment import InferenceSettings
from datamodules.normalization import normalize
from particles import ParticleSet
from postprocess.calibration import Calibration
from postprocess.class_suppression import select_picks
from inference.candidates import pick_candidates
from postprocess.heatmap_nms import resolve_thresholds
from inference.probabilities import member_terms, predict_probabilities
from inference.slice_detection import slice_detector_candidates


@dataclass(frozen=True)
class EnsembleSettings:
    """How an ensemble predicts: what its models fix (activation, output stride, normalisation, from their
    configs), the recipe's ``InferenceSettings`` with ensemble.py's flags laid over them, and the precision."""

    activation: str  # "sigmoid" | "softmax"
    output_stride: int
    normalization: str
    inference: InferenceSettings
    autocast_dtype: torch.dtype | None = None
    particles: ParticleSet = field(kw_only=True)  # the classes the models' channels are, from their config
    slice_half_depth: int | None = field(default=None, kw_only=True)  # slice detectors: their 2.5D stack; None: U-Nets


def normalised_tensor(volume: np.ndarray, run: str, settings: EnsembleSettings, device: torch.device) -> torch.Tensor:
    """The run's volume ``[D, H, W]`` normalised as the models were trained, on ``device``."""
    try:
        normalised = normalize(volume, settings.normalization)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"run {run}: {err}") from err
    return torch.from_numpy(normalised).to(device)


def ensemble_probabilities(models: Sequence[nn.Module], volume: np.ndarray, run: str, settings: EnsembleSettings,
                           device: torch.device) -> torch.Tensor:
    """``[C, D/s, H/s, W/s]`` probabilities of one run: normalised, every model and TTA view in one pass."""
    if settings.slice_half_depth is not None:
        raise ValueError("slice detectors give boxes, not probability maps: no heatmaps to average or draw")
    tensor = normalised_tensor(volume, run, settings, device)
    infer = settings.inference
    return predict_probabilities(models, tensor, settings.activation, window=infer.window, overlap=infer.overlap,
                                 batch_size=infer.batch_size, tta=infer.tta, average=infer.average,
                                 autocast_dtype=settings.autocast_dtype, pad_mode=infer.pad_mode,
                                 num_classes=settings.particles.num_classes)


def ensemble_member_terms(models: Sequence[nn.Module], volume: np.ndarray, run: str, settings: EnsembleSettings,
                          device: torch.device) -> torch.Tensor:
    """``[M, C', D/s, H/s, W/s]``: each model's own mean over the TTA views (``probabilities.member_terms``),
    for scoring ensembles of any subset of ``models`` from one prediction of each."""
    if settings.slice_half_depth is not None:
        raise ValueError("slice detectors give boxes, not probability maps: no heatmaps to average")
    infer = settings.inference
    return member_terms(models, normalised_tensor(volume, run, settings, device), settings.activation,
                        window=infer.window, overlap=infer.overlap, batch_size=infer.batch_size, tta=infer.tta,
                        average=infer.average, autocast_dtype=settings.autocast_dtype, pad_mode=infer.pad_mode,
                        num_classes=settings.particles.num_classes)


def predict_run(models: Sequence[nn.Module], volume: np.ndarray, run: str, settings: EnsembleSettings,
                thresholds: Mapping[str, float], device: torch.device, spacing: float,
                levels: Mapping[str, float] | None = None, calibration: Calibration | None = None) -> pd.DataFrame:
    """Picks (with score, in Å at the tomogram's ``spacing``) of one run; only the ensemble's output for this
    tomogram is held in memory. ``levels``: each class's component level fitted out of fold (cc3d).

    Peaks above the candidate threshold compete across classes first (those reaching their class threshold
    suppress weaker picks of other classes on the same spot, as when the thresholds were fitted), then each
    class keeps those reaching its threshold.
    """
    limits, floor = thresholds_and_floor(settings, thresholds, calibration)
    candidates = run_candidates(models, volume, run, settings, floor, device, spacing, levels)
    return select_picks(candidates, limits, settings.inference.class_suppression, particles=settings.particles,
                        calibration=calibration)


def picks_from_probabilities(probs: torch.Tensor, run: str, settings: EnsembleSettings,
                             thresholds: Mapping[str, float], spacing: float,
                             levels: Mapping[str, float] | None = None,
                             calibration: Calibration | None = None) -> pd.DataFrame:
    """``predict_run``'s picks from probabilities already averaged (``members_probabilities``)."""
    limits, floor = thresholds_and_floor(settings, thresholds, calibration)
    candidates = pick_candidates(probs, run, settings.inference, floor, spacing=spacing,
                                 output_stride=settings.output_stride, particles=settings.particles, levels=levels)
    return select_picks(candidates, limits, settings.inference.class_suppression, particles=settings.particles,
                        calibration=calibration)


def thresholds_and_floor(settings: EnsembleSettings, thresholds: Mapping[str, float],
                         calibration: Calibration | None) -> tuple[dict[str, float], float]:
    """Each class's threshold, and the floor candidates are cut at before they compete: calibrated thresholds
    are probabilities, not channel scores, so candidates are then cut at the usual floor."""
    infer = settings.inference
    limits = dict(zip(settings.particles.names, resolve_thresholds(thresholds, particles=settings.particles)))
    floor = infer.candidate_threshold if calibration is not None else min(infer.candidate_threshold, *limits.values())
    return limits, floor


def run_candidates(models: Sequence[nn.Module], volume: np.ndarray, run: str, settings: EnsembleSettings,
                   floor: Mapping[str, float] | float, device: torch.device, spacing: float,
                   levels: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Candidates (Å, with score) of one run before thresholds: the U-Nets' heatmap peaks or components at or
    above ``floor``, or the slice detectors' merged and voted detections (``inference.slice_detection``)."""
    infer = settings.inference
    if settings.slice_half_depth is not None:
        return slice_detector_candidates(models, normalised_tensor(volume, run, settings, device), run,
                                         spacing=spacing, particles=settings.particles,
                                         half_depth=settings.slice_half_depth, batch_size=infer.batch_size,
                                         max_per_class=infer.max_candidates_per_class,
                                         autocast_dtype=settings.autocast_dtype)
    probs = ensemble_probabilities(models, volume, run, settings, device)
    return pick_candidates(probs, run, infer, floor, spacing=spacing, output_stride=settings.output_stride,
                           particles=settings.particles, levels=levels)
