"""Config versions and the explicit migrations between them.

Version 1: prediction settings under ``validation`` (window, overlap, TTA, NMS, thresholds), ``data.level``
(only ever 0); no ``particles``, ``init_from``, ``data.sphere_scale``, ``model.deep_supervision``,
``loss.tversky_*``, ``loss.region_weight``. Version 2 (today): prediction settings under ``inference``, those
fields added, and ``version`` recorded in every saved config.

A recipe's name carries a hash of its config *in the version-1 layout* (``as_version_1``), so every run named
by an older version keeps its name: ``--resume`` finds its folder, and a recipe trained before and after an
upgrade is one experiment.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

CONFIG_VERSION = 2

MOVED_TO_INFERENCE: tuple[str, ...] = ("window", "overlap", "batch_size", "pad_mode", "tta", "kernel_fraction",
                                       "candidate_threshold", "max_candidates_per_class", "class_suppression",
                                       "threshold_tolerance", "threshold_rule")
"""``validation.*`` keys of version 1 that are ``inference.*`` since version 2."""
ADDED_IN_2: tuple[tuple[str, str], ...] = (("data", "sphere_scale"), ("model", "deep_supervision"),
                                           ("loss", "tversky_alpha"), ("loss", "tversky_beta"),
                                           ("loss", "region_weight"), ("model", "slice_half_depth"))
"""Fields of version 2 a version-1 recipe did not have (slice_half_depth: added within version 2, read at its
default from configs saved before it); at their defaults they leave a recipe's name unchanged."""


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    validation = doc.get("validation")
    if isinstance(validation, dict):
        moved = {key: validation.pop(key) for key in MOVED_TO_INFERENCE if key in validation}
        if moved:
            doc["inference"] = {**moved, **(doc.get("inference") or {})}
    data = doc.get("data")
    if isinstance(data, dict) and "level" in data:
        if data.pop("level") not in (0, None):
            raise ValueError("data.level: only level 0 (full resolution) is supported")
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
"""Version -> the migration from it to the next."""


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A config document of any version (a saved ``config.yaml`` without ``version`` is version 1, or a
    version-2 one written before the field: migrating it changes nothing) in today's form."""
    doc = json.loads(json.dumps(doc))
    version = doc.pop("version", 1)
    if not isinstance(version, int) or not 1 <= version <= CONFIG_VERSION:
        raise ValueError(f"config version {version!r}: this code reads versions 1 to {CONFIG_VERSION}")
    while version < CONFIG_VERSION:
        doc = MIGRATIONS[version](doc)
        version += 1
    return doc


def as_version_1(doc: dict[str, Any], defaults: dict[str, Any], default_particles: bool) -> dict[str, Any]:
    """Today's config document (``to_dict``) in the version-1 layout, for the recipe's name: prediction settings
    back under ``validation`` (those added since only when they differ from ``defaults``), fields added since
    left out at their defaults (``particles`` when ``default_particles``), ``data.level`` 0."""
    doc = json.loads(json.dumps(doc, default=str))
    doc.pop("version", None)
    doc.pop("experiment", None)
    if default_particles:
        doc.pop("particles", None)
    if doc.get("init_from") is None:
        doc.pop("init_from", None)
    for section, key in ADDED_IN_2:
        if doc[section][key] == defaults[section][key]:
            doc[section].pop(key)
    inference = doc.pop("inference")
    doc["validation"].update({k: v for k, v in inference.items()
                              if k in MOVED_TO_INFERENCE or v != defaults["inference"][k]})
    doc["data"]["level"] = 0
    return doc
