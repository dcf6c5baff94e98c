"""From a preset, a config file and command-line overrides to the one resolved, checked ExperimentConfig, and
its deterministic name; configs saved by older versions are read through ``experiment_config``."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from choices import is_slice_detector
from config.checks import check_config_values
from config.experiment import ExperimentConfig, default_class_weights, out_channels_for
from config.migrations import as_version_1, upgrade
from config.presets import preset_overrides
from config.yaml_cli import from_dict, load_yaml, merge, to_dict
from particles import PARTICLES

RUN_ONLY_FIELDS: tuple[tuple[str, str], ...] = (("data", "fold"), ("data", "num_workers"), ("logging", "wandb"),
                                                ("logging", "project"), ("validation", "picture"))
"""Fields that differ between the folds or machines of one recipe, left out of its name's hash."""


def experiment_config(doc: dict[str, Any], where: str = "saved config") -> ExperimentConfig:
    """The config a run folder or checkpoint carries, whichever version wrote it, through the same value checks
    as a command line (a copied or edited config decides nothing unchecked: folder names, ranges)."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(doc).__name__}")
    try:
        cfg = from_dict(ExperimentConfig, upgrade(doc))
        cfg.particle_set  # noqa: B018 (checked: labels, names, radii, weights)
        check_config_values(cfg)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if not cfg.experiment:
        raise ValueError(f"{where}: names no experiment")
    return cfg


def resolve_config(preset: str | None, config_file: str | None, overrides: dict[str, Any]) -> ExperimentConfig:
    """Defaults < preset < config file < command-line overrides; the loss decides the output channels, the
    model's output stride the targets' stride; then every value is checked."""
    cfg = ExperimentConfig()
    if preset:
        cfg = merge(cfg, preset_overrides(preset))
    if config_file:
        cfg = merge(cfg, upgrade(load_yaml(config_file)))
    cfg = merge(cfg, overrides)
    particles = cfg.particle_set  # checked here: labels 1..N, names, radii, weights
    if "out_channels" not in overrides.get("model", {}):
        cfg.model.out_channels = out_channels_for(cfg.loss, particles.num_classes)
    if cfg.data.class_sampling_weights == default_class_weights() and particles.particles != PARTICLES:
        cfg.data.class_sampling_weights = default_class_weights(particles.particles)  # the default, for this set
    if is_slice_detector(cfg.model.name):
        fit_to_slice_detector(cfg, overrides)
    asked = overrides.get("data", {}).get("target_stride")
    if asked is not None and asked != cfg.model.output_stride:
        raise ValueError(f"data.target_stride {asked} must equal model.output_stride {cfg.model.output_stride}")
    cfg.data.target_stride = cfg.model.output_stride  # target voxel j is patch voxel s*j, as in inference
    if not cfg.inference.tta:
        raise ValueError("inference.tta: give at least one transform (identity: none)")
    every = cfg.trainer.check_val_every_n_epoch
    if cfg.validation.checkpoint == "last" and cfg.trainer.max_steps < 0 and cfg.trainer.max_epochs % every:
        raise ValueError(f"trainer.max_epochs {cfg.trainer.max_epochs} must be a multiple of "
                         f"trainer.check_val_every_n_epoch {every}: with validation.checkpoint 'last' the final "
                         "epoch must validate (its candidates are the fold's out-of-fold record)")
    if not cfg.experiment:
        cfg.experiment = experiment_name(cfg)
    check_config_values(cfg)
    return cfg


SLICE_DETECTOR_FIXED: tuple[tuple[str, str, object, str], ...] = (
    ("model", "output_stride", 1, "it detects at every pixel of a slice"),
    ("mixup", "prob", 0.0, "mixing two slices would mix their boxes"),
    ("trainer", "channels_last", False, "channels_last_3d is a 3D memory layout"),
    ("inference", "picker", "nms", "its picker is the 3D merge of slice detections"),
    ("inference", "tta", ("identity",), "it predicts each slice once"),
)
"""Settings a slice detector fixes (section, key, value, why): a preset's other value is replaced, a command
line's or config file's is refused with the reason."""


def fit_to_slice_detector(cfg: ExperimentConfig, overrides: dict[str, Any]) -> None:
    """A slice detector's config: one output per class (FCOS has no background channel and its own loss), 2k+1
    slices per patch, and the settings of ``SLICE_DETECTOR_FIXED``."""
    asked = overrides.get("model", {}).get("out_channels")
    if asked is not None and asked != cfg.particle_set.num_classes:
        raise ValueError(f"model.out_channels {asked}: {cfg.model.name} has one output per particle class "
                         f"({cfg.particle_set.num_classes})")
    cfg.model.out_channels = cfg.particle_set.num_classes
    depth = 2 * cfg.model.slice_half_depth + 1
    patch = overrides.get("data", {}).get("patch_size")
    if patch is not None and int(patch[0]) != depth:
        raise ValueError(f"data.patch_size {list(patch)}: {cfg.model.name} sees {depth} slices "
                         f"(2 x model.slice_half_depth + 1), so the patch's z must be {depth}")
    cfg.data.patch_size = (depth, *cfg.data.patch_size[1:])
    for section, key, value, why in SLICE_DETECTOR_FIXED:
        given = overrides.get(section, {}).get(key)
        if given is not None and (tuple(given) if isinstance(given, list) else given) != value:
            raise ValueError(f"{section}.{key} {given!r} does not apply to {cfg.model.name}: {why} "
                             f"(it is {value!r} for slice detectors)")
        setattr(getattr(cfg, section), key, value)


def recipe_hash(cfg: ExperimentConfig) -> str:
    """Six hex digits of the resolved config without its per-fold and per-machine fields, in the version-1
    layout (``config.migrations.as_version_1``: names given by every version stay valid): two recipes that
    differ in anything else (widths, learning rate, data) never share a run folder."""
    doc = to_dict(cfg)
    for section, key in RUN_ONLY_FIELDS:
        doc.get(section, {}).pop(key, None)
    defaults = to_dict(ExperimentConfig())
    doc = as_version_1(doc, defaults, default_particles=tuple(cfg.particles) == PARTICLES)
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:6]


def experiment_name(cfg: ExperimentConfig) -> str:
    """Deterministic name carrying the key choices and a hash of the rest, shared by the folds of one recipe."""
    patch = "x".join(str(s) for s in cfg.data.patch_size)
    stride = f"_os{cfg.model.output_stride}" if cfg.model.output_stride != 1 else ""
    loss = "" if is_slice_detector(cfg.model.name) else f"_{cfg.loss.kind}"  # a detector trains FCOS's own loss
    return f"{cfg.model.name}_{patch}{loss}{stride}_s{cfg.seed}_{recipe_hash(cfg)}"
