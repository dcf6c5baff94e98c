"""Value ranges of the experiment config, checked once when a run starts, so a zero patch, a negative learning
rate or a run of no epochs is one clear message naming the key rather than a crash (or an empty run) later."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from config.experiment import ExperimentConfig, InferenceSettings
from config.yaml_cli import to_dict
from dataio.layout import check_path_name

_POSITIVE, _NON_NEGATIVE = "> 0", ">= 0"
_RULES: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("optim.lr", _POSITIVE, lambda v: v > 0),
    ("optim.weight_decay", _NON_NEGATIVE, lambda v: v >= 0),
    ("optim.warmup_fraction", "in [0, 1)", lambda v: 0 <= v < 1),
    ("optim.min_lr_ratio", "in [0, 1]", lambda v: 0 <= v <= 1),
    ("optim.gradient_clip", _NON_NEGATIVE, lambda v: v >= 0),
    ("loss.pos_weight", _POSITIVE, lambda v: v > 0),
    ("loss.focal_gamma", _NON_NEGATIVE, lambda v: v >= 0),
    ("loss.tversky_alpha", _NON_NEGATIVE, lambda v: v >= 0),
    ("loss.tversky_beta", _NON_NEGATIVE, lambda v: v >= 0),
    ("loss.region_weight", _NON_NEGATIVE, lambda v: v >= 0),
    ("model.deep_supervision", ">= 0 each", lambda v: all(w >= 0 for w in v)),
    ("model.slice_half_depth", _NON_NEGATIVE, lambda v: v >= 0),
    ("data.sphere_scale", _POSITIVE, lambda v: v > 0),
    ("data.voxel_spacing", "None or > 0", lambda v: v is None or v > 0),
    ("mixup.prob", "in [0, 1]", lambda v: 0 <= v <= 1),
    ("mixup.alpha", _POSITIVE, lambda v: v > 0),
    ("ema.decay", "in [0, 1)", lambda v: 0 <= v < 1),
    ("ema.start_step", _NON_NEGATIVE, lambda v: v >= 0),
    ("data.patch_size", "> 0 on every axis", lambda v: all(s > 0 for s in v)),
    ("data.batch_size", ">= 1", lambda v: v >= 1),
    ("data.num_workers", _NON_NEGATIVE, lambda v: v >= 0),
    ("data.patches_per_epoch", ">= 1", lambda v: v >= 1),
    ("data.positive_fraction", "in [0, 1]", lambda v: 0 <= v <= 1),
    ("data.sigma_scale", _POSITIVE, lambda v: v > 0),
    ("inference.window", "> 0 on every axis", lambda v: all(s > 0 for s in v)),
    ("inference.overlap", "in [0, 1)", lambda v: 0 <= v < 1),
    ("inference.batch_size", ">= 1", lambda v: v >= 1),
    ("inference.candidate_threshold", "in [0, 1)", lambda v: 0 <= v < 1),
    ("inference.max_candidates_per_class", ">= 1", lambda v: v >= 1),
    ("inference.kernel_fraction", _POSITIVE, lambda v: v > 0),
    ("inference.threshold_tolerance", "in [0, 1)", lambda v: 0 <= v < 1),
    ("inference.class_suppression", _NON_NEGATIVE, lambda v: v >= 0),
    ("inference.smooth_sigma", "None or >= 0", lambda v: v is None or v >= 0),
    ("inference.component_threshold", "in (0, 1)", lambda v: 0 < v < 1),
    ("inference.component_levels", "in (0, 1) each", lambda v: all(0 < x < 1 for x in v)),
    ("trainer.max_steps", "-1 (off) or >= 1", lambda v: v == -1 or v >= 1),
    ("trainer.num_nodes", ">= 1", lambda v: v >= 1),
    ("trainer.check_val_every_n_epoch", ">= 1", lambda v: v >= 1),
    ("trainer.log_every_n_steps", ">= 1", lambda v: v >= 1),
    ("trainer.num_sanity_val_steps", _NON_NEGATIVE, lambda v: v >= 0),
)
_FOLD = re.compile(r"^(-1|all|\d+(\+\d+)*)$")


def _value(doc: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def check_fold_text(fold: object) -> None:
    """A fold is K, K+L (several held out) or -1 / all (every run trains); anything else is refused here,
    before any data is read (whether K exists is checked against folds.yaml later)."""
    text = str(fold).strip().lower()
    if "-1" in text.split("+") and text != "-1":
        raise ValueError(f"--fold {fold!r}: -1 (train on every run) cannot be joined with other folds")
    if isinstance(fold, bool) or not _FOLD.match(text):
        raise ValueError(f"--fold {fold!r}: expected a fold number K of the folds file, several joined by '+' "
                         "(0+1), or -1 / all to train on every run")


def _check_rules(doc: dict[str, Any], prefix: str = "") -> None:
    for dotted, rule, holds in _RULES:
        if dotted.startswith(prefix):
            value = _value(doc, dotted)
            if not holds(value):
                raise ValueError(f"config key {dotted!r} must be {rule}, got {value!r}")


def check_inference_settings(settings: InferenceSettings) -> None:
    """The ``inference.*`` rules, for settings ``ensemble.py``'s flags have changed."""
    _check_rules({"inference": to_dict(settings)}, "inference.")


def check_config_values(cfg: ExperimentConfig) -> None:
    """Every rule of ``_RULES``, the fold's form, a training length, and a name usable as a folder."""
    _check_rules(to_dict(cfg))
    if cfg.trainer.max_steps == -1 and cfg.trainer.max_epochs < 1:
        raise ValueError(f"config key 'trainer.max_epochs' must be >= 1 (or trainer.max_steps >= 1), got "
                         f"{cfg.trainer.max_epochs}: the run would take no step and write no weights")
    check_fold_text(cfg.data.fold)
    if cfg.experiment:
        check_path_name(cfg.experiment, "experiment")
