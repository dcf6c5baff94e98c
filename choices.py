"""Every named option the config and the code share, defined once: the config's fields are typed with these
Literals (so ``--help`` and the checks know them), and the code checks values against ``values(...)`` of the
same Literal. Nothing here imports the project."""
from __future__ import annotations

from typing import Literal, get_args

LossKind = Literal["bce", "focal", "ce", "dice", "tversky", "dice_ce", "tversky_ce"]
SoftmaxLoss = Literal["ce", "dice_ce", "tversky_ce"]
"""Losses on a softmax over background + classes (the model gets a background channel)."""
Activation = Literal["sigmoid", "softmax"]
CheckpointChoice = Literal["last", "best"]
ThresholdRule = Literal["plateau", "one-se"]
NormalizationMode = Literal["zscore", "percentile"]
TargetKind = Literal["gaussian", "point", "sphere"]
PickerKind = Literal["nms", "cc3d"]
ComponentScore = Literal["peak", "mass"]
"""cc3d: a component scored by its peak probability, or by its mass (summed probability)."""
SliceDetectorName = Literal["fcos-slices"]
"""Model names of the 2D family (slice detections merged in 3D); every other model name is a 3D U-Net."""
Average = Literal["logits", "probabilities"]
PadMode = Literal["mirror", "constant", "reflect", "replicate"]
Blend = Literal["gaussian", "constant"]
TTAName = Literal["identity", "flip_z", "flip_y", "flip_x", "rot90_1", "rot90_2", "rot90_3"]
"""Test-time transforms (``inference.tta.TRANSFORMS`` implements exactly these)."""
Precision = Literal["auto", "fp32", "bf16"]
ImagingFamily = Literal["fourier", "tilt-series"]
"""How the simulator images a run: Fourier filters (CTF, wedge mask, coloured noise, Gaussian low-pass) or a
real-space tilt series (per-tilt CTF and dose, shot noise, weighted back-projection, median + Gaussian denoising)."""
ClassDecision = Literal["independent", "calibrated", "competing"]
"""How a location gets its class: each channel thresholded on its own, or the channels' scores calibrated out of
fold and the most probable class kept where candidates of different classes overlap."""
OutputStride = Literal[1, 2]
"""Where a model's head sits: full resolution, or the stride-2 decoder level (the 1st place's choice)."""


def values(kind: object) -> tuple[str, ...]:
    """The names a Literal allows, in order."""
    return tuple(get_args(kind))


def check_choice(value: object, kind: object, what: str) -> str:
    """``value`` if ``kind`` allows it, else an error naming ``what`` and the allowed names."""
    if value not in values(kind):
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(values(kind))}")
    return str(value)


def is_slice_detector(model_name: str) -> bool:
    """Whether a model name is of the 2D slice-detector family (boxes per slice, models.slice_detector) rather
    than a 3D U-Net (per-class heatmaps)."""
    return model_name in values(SliceDetectorName)
