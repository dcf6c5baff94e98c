"""One tomogram through the fold ensemble: normalise, sliding window + TTA, average logits, pick peaks."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from datamodules.normalization import normalize
from particles import PARTICLE_NAMES
from postprocess.class_suppression import select_picks
from postprocess.heatmap_nms import pick_particles, resolve_thresholds
from postprocess.inference import predict_probabilities


@dataclass(frozen=True)
class EnsembleSettings:
    """How the ensemble predicts; the model-dependent parts come from the fold configs."""

    activation: str  # "sigmoid" | "softmax"
    output_stride: int
    normalization: str
    window: tuple[int, int, int]
    overlap: float = 0.25
    batch_size: int = 2
    tta: tuple[str, ...] = ("identity",)
    average: str = "logits"
    kernel_fraction: float = 0.5
    smooth_sigma: float | None = None
    candidate_threshold: float = 0.05  # peaks above this compete in class suppression before the thresholds
    max_per_class: int | None = None  # best candidates kept per class (as in validation)
    class_suppression: float = 0.0  # postprocess.class_suppression fraction (0: off)
    threshold_tolerance: float = 0.0  # OOF thresholds: lowest within this F4 of the best (thresholds.py)
    threshold_rule: str = "plateau"  # thresholds.THRESHOLD_RULES
    pad_mode: str = "mirror"  # sliding_window.PAD_MODES
    autocast_dtype: torch.dtype | None = None


def predict_run(models: Sequence[nn.Module], volume: np.ndarray, run: str, settings: EnsembleSettings,
                thresholds: Mapping[str, float], device: torch.device) -> pd.DataFrame:
    """Picks (with score) of one run; only the ensemble's output for this tomogram is held in memory.

    Peaks above the candidate threshold compete across classes first (those reaching their class threshold
    suppress weaker picks of other classes on the same spot, as when the thresholds were fitted), then each
    class keeps those reaching its threshold.
    """
    try:
        normalised = normalize(volume, settings.normalization)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"run {run}: {err}") from err
    tensor = torch.from_numpy(normalised).to(device)  # [D, H, W]
    probs = predict_probabilities(models, tensor, settings.activation, window=settings.window,
                                  overlap=settings.overlap, batch_size=settings.batch_size, tta=settings.tta,
                                  average=settings.average, autocast_dtype=settings.autocast_dtype,
                                  pad_mode=settings.pad_mode)
    limits = dict(zip(PARTICLE_NAMES, resolve_thresholds(thresholds)))
    floor = min(settings.candidate_threshold, *limits.values())
    candidates = pick_particles(probs, run, floor, output_stride=settings.output_stride,
                                kernel_fraction=settings.kernel_fraction, smooth_sigma=settings.smooth_sigma,
                                max_per_class=settings.max_per_class)
    return select_picks(candidates, limits, settings.class_suppression)
