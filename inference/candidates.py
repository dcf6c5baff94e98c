"""Probabilities -> candidate picks with the picker the inference settings name (NMS peaks or components),
so fold validation, the OOF fit and the ensemble pick the same way."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from config.experiment import InferenceSettings
from particles import ParticleSet
from postprocess.component_levels import LEVEL_COLUMN
from postprocess.components import pick_components
from postprocess.heatmap_nms import pick_particles
from choices import PickerKind, values

PICKERS: tuple[str, ...] = values(PickerKind)


def fits_component_levels(settings: InferenceSettings) -> bool:
    """Whether the OOF fit chooses each class's component level (cc3d with a grid of levels)."""
    return settings.picker == "cc3d" and bool(settings.component_levels)


def pick_candidates(probs: torch.Tensor, run: str, settings: InferenceSettings,
                    floor: Mapping[str, float] | Sequence[float] | float, *, spacing: float, output_stride: int,
                    particles: ParticleSet,
                    levels: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Candidates of one tomogram: NMS peaks at or above ``floor``, or (``picker: cc3d``) the components
    above each class's fitted ``levels`` (default: ``settings.component_threshold``); either way at most
    ``max_candidates_per_class`` per class."""
    if settings.picker == "cc3d":
        return pick_components(probs, run, settings.component_threshold if levels is None else levels,
                               spacing=spacing, output_stride=output_stride,
                               max_per_class=settings.max_candidates_per_class, particles=particles,
                               score=settings.component_score)
    if settings.picker != "nms":
        raise ValueError(f"unknown picker {settings.picker!r}; expected one of {PICKERS}")
    return pick_particles(probs, run, floor, spacing=spacing, output_stride=output_stride,
                          kernel_fraction=settings.kernel_fraction, smooth_sigma=settings.smooth_sigma,
                          max_per_class=settings.max_candidates_per_class, particles=particles)


def pick_candidates_per_level(probs: torch.Tensor, run: str, settings: InferenceSettings, *, spacing: float,
                              output_stride: int, particles: ParticleSet) -> pd.DataFrame:
    """The components of one tomogram cut at each of ``settings.component_levels``, with a ``level`` column:
    what the OOF fit chooses each class's level from."""
    tables = []
    for level in settings.component_levels:
        table = pick_components(probs, run, level, spacing=spacing, output_stride=output_stride,
                                max_per_class=settings.max_candidates_per_class, particles=particles,
                                score=settings.component_score)
        tables.append(table.assign(**{LEVEL_COLUMN: float(level)}))
    return pd.concat(tables, ignore_index=True)
