"""From a preset, a config file and command-line overrides to the one resolved, checked ExperimentConfig, and
its deterministic name; configs saved by older versions are read through ``experiment_config``."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from config.checks import check_config_values
from config.experiment import ExperimentConfig, InferenceSettings, default_class_weights, out_channels_for
from config.presets import preset_overrides
from config.yaml_cli import from_dict, load_yaml, merge, to_dict
from particles import PARTICLES

RUN_ONLY_FIELDS: tuple[tuple[str, str], ...] = (("data", "fold"), ("data", "num_workers"), ("logging", "wandb"),
                                                ("logging", "project"), ("validation", "picture"))
"""Fields that differ between the folds or machines of one recipe, left out of its name's hash."""

_MOVED_TO_INFERENCE: dict[str, str] = {"window": "window", "overlap": "overlap", "batch_size": "batch_size",
                                       "pad_mode": "pad_mode", "tta": "tta", "kernel_fraction": "kernel_fraction",
                                       "candidate_threshold": "candidate_threshold",
                                       "max_candidates_per_class": "max_candidates_per_class",
                                       "class_suppression": "class_suppression",
                                       "threshold_tolerance": "threshold_tolerance",
                                       "threshold_rule": "threshold_rule"}
"""``validation.*`` keys of configs written before the prediction settings became ``inference.*``."""


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A config dict as an older version saved it, in today's form: prediction settings moved from
    ``validation`` to ``inference``; ``data.level`` (only ever 0) dropped."""
    doc = json.loads(json.dumps(doc))
    validation = doc.get("validation")
    if isinstance(validation, dict):
        moved = {new: validation.pop(old) for old, new in _MOVED_TO_INFERENCE.items() if old in validation}
        if moved:
            doc["inference"] = {**moved, **(doc.get("inference") or {})}
    data = doc.get("data")
    if isinstance(data, dict) and "level" in data:
        if data.pop("level") not in (0, None):
            raise ValueError("data.level: only level 0 (full resolution) is supported")
    return doc


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


LATER_OPTIONS: tuple[tuple[str, str], ...] = (
    ("data", "sphere_scale"), ("model", "deep_supervision"), ("loss", "tversky_alpha"), ("loss", "tversky_beta"),
    ("loss", "region_weight"))
"""Fields added after recipes were first named (inference fields count only where they differ anyway)."""


def recipe_hash(cfg: ExperimentConfig) -> str:
    """Six hex digits of the resolved config without its per-fold and per-machine fields: two recipes that
    differ in anything else (widths, learning rate, data) never share a run folder. The prediction settings
    keep the form they had before ``inference`` existed, so a recipe keeps its name across versions."""
    doc = to_dict(cfg)
    doc.pop("experiment", None)
    if tuple(cfg.particles) == PARTICLES:  # the default set: recipes named before sets existed keep their name
        doc.pop("particles")
    for section, key in RUN_ONLY_FIELDS:
        doc.get(section, {}).pop(key, None)
    if doc.get("init_from") is None:  # added later: trained from scratch, a recipe keeps its name
        doc.pop("init_from", None)
    for section, key in LATER_OPTIONS:  # at their default, options added later leave older names unchanged
        if doc[section][key] == to_dict(type(getattr(cfg, section))())[key]:
            doc[section].pop(key)
    inference = doc.pop("inference")
    defaults = to_dict(InferenceSettings())
    doc["validation"].update({k: v for k, v in inference.items()
                              if k in _MOVED_TO_INFERENCE or v != defaults[k]})
    doc["data"]["level"] = 0
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:6]


def experiment_name(cfg: ExperimentConfig) -> str:
    """Deterministic name carrying the key choices and a hash of the rest, shared by the folds of one recipe."""
    patch = "x".join(str(s) for s in cfg.data.patch_size)
    stride = f"_os{cfg.model.output_stride}" if cfg.model.output_stride != 1 else ""
    return f"{cfg.model.name}_{patch}_{cfg.loss.kind}{stride}_s{cfg.seed}_{recipe_hash(cfg)}"
