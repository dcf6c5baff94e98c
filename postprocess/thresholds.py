"""Per-class score thresholds fitted out of fold to maximise each class's F4, and their JSON files."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from dataio.pick_readers import validate_picks
from runtime.bounded_reads import read_json
from particles import BETA, HIT_RADIUS_FRACTION, ParticleSet
from runtime.atomic import OutputBatch, write_text_atomic
from postprocess.metric import f_beta, reference_best_scores
from choices import ThresholdRule, values

CURVE_COLUMNS: tuple[str, ...] = ("threshold", "tp", "fp", "fn", "precision", "recall", "f4")
THRESHOLD_RULES: tuple[str, ...] = values(ThresholdRule)
"""How far below its OOF optimum a class's threshold may go: ``plateau``, within ``tolerance`` F4 of the best;
``one-se``, within one standard error of that best F4, sqrt(F (1 - F) / references) (a class resting on 17
particles may drop ~0.1, one resting on 100 ~0.02), and never less than ``tolerance``."""


def _candidates(table: pd.DataFrame, particles: ParticleSet) -> pd.DataFrame:
    """Validated candidates; a score column is required (thresholds act on it)."""
    if "score" not in table.columns:
        raise ValueError(f"candidates need a 'score' column; have {list(table.columns)}")
    return validate_picks(table, "candidates", particles=particles)


def _best_hitting_scores(cand: pd.DataFrame, truth: pd.DataFrame, name: str, radius: float) -> np.ndarray:
    """Per reference of class ``name`` (all runs), the best score of a candidate hitting it; -inf if none."""
    hit_radius = HIT_RADIUS_FRACTION * radius
    cand = cand[cand["particle_type"] == name]
    truth = truth[truth["particle_type"] == name]
    best = []
    for run, refs in truth.groupby("experiment"):
        preds = cand[cand["experiment"] == run]
        best.append(reference_best_scores(preds[["x", "y", "z"]].to_numpy(), preds["score"].to_numpy(),
                                          refs[["x", "y", "z"]].to_numpy(), hit_radius))
    return np.concatenate(best) if best else np.zeros(0)


def precision_recall_curve(candidates: pd.DataFrame, ground_truth: pd.DataFrame, name: str,
                           *, particles: ParticleSet) -> pd.DataFrame:
    """Counts and P/R/F4 of class ``name`` when keeping scores >= t, for every distinct candidate score t
    (ascending). TP(t) = references whose best hitting score >= t; FP(t) = kept candidates - TP(t)."""
    radius = particles.get(name).radius
    return _curve(_candidates(candidates, particles), validate_picks(ground_truth, "ground truth",
                                                                     particles=particles), name,
                  radius)


def _curve(cand: pd.DataFrame, truth: pd.DataFrame, name: str, radius: float) -> pd.DataFrame:
    """``precision_recall_curve`` on tables already validated (fitting every class validates once)."""
    best = np.sort(_best_hitting_scores(cand, truth, name, radius))  # [R]
    scores = np.sort(cand.loc[cand["particle_type"] == name, "score"].to_numpy(dtype=np.float64))  # [P]
    thresholds = np.unique(scores)
    kept = len(scores) - np.searchsorted(scores, thresholds, side="left")
    tp = len(best) - np.searchsorted(best, thresholds, side="left")
    fp, fn = kept - tp, len(best) - tp
    precision, recall, f4 = f_beta(tp, fp, fn)
    return pd.DataFrame({"threshold": thresholds, "tp": tp, "fp": fp, "fn": fn, "precision": precision,
                         "recall": recall, "f4": f4}, columns=list(CURVE_COLUMNS))


def fit_thresholds(candidates: pd.DataFrame, ground_truth: pd.DataFrame, fallback: float = 0.5,
                   tolerance: float = 0.0, rule: str = "plateau",
                   *, particles: ParticleSet) -> dict[str, float]:
    """Class -> threshold maximising that class's F4 over the OOF runs (ties: the lowest, for recall).

    With ``tolerance`` > 0, the lowest threshold whose F4 is within ``tolerance`` of the best: F4 is flat
    near its maximum for classes with few false positives, and the low end of that plateau keeps recall
    when new data scores particles lower (another microscope, real rather than simulated proteins).
    With ``rule`` "one-se" the margin grows to one standard error of the best F4 where that is larger: an
    optimum resting on few particles is noise, and the threshold it picks can sit above most of a
    seven-model ensemble's scores for that class (BENCHMARKS_HISTORY.md, "OOF CV vs test").
    A class whose F4 is 0 at every threshold (no references, or no candidate hits one) gets ``fallback``.
    """
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; choose one of {', '.join(THRESHOLD_RULES)}")
    cand, truth = _candidates(candidates, particles), validate_picks(ground_truth, "ground truth", particles=particles)
    thresholds = {}
    for p in particles.particles:
        name = p.name
        curve = _curve(cand, truth, name, p.radius)
        if len(curve) == 0 or curve["f4"].max() <= 0:
            thresholds[name] = float(fallback)
            continue
        # F-beta = (1 + b^2) TP / (b^2 N + kept): from integers, so equal F4 compare exactly equal
        tp, fn, fp = (curve[c].to_numpy(dtype=np.float64) for c in ("tp", "fn", "fp"))
        exact = (1 + BETA**2) * tp / (BETA**2 * (tp + fn) + tp + fp)
        margin = tolerance
        if rule == "one-se":
            top, references = float(exact.max()), float(tp[0] + fn[0])
            margin = max(tolerance, math.sqrt(top * (1.0 - top) / references))
        best = int(np.flatnonzero(exact >= exact.max() - margin - 1e-12)[0])  # lowest on the plateau
        thresholds[name] = float(curve["threshold"].iloc[best])
    return thresholds


def _check_thresholds(thresholds: Mapping[str, float], where: str,
                      *, particles: ParticleSet) -> dict[str, float]:
    """Every class, nothing else, numbers in [0, 1]."""
    if not isinstance(thresholds, Mapping):
        raise ValueError(f"{where}: thresholds must be a mapping class -> float; got {type(thresholds).__name__}")
    unknown = sorted(set(thresholds) - set(particles.names))
    if unknown:
        raise ValueError(f"{where}: unknown particle classes {unknown}; known: {', '.join(particles.names)}")
    missing = [n for n in particles.names if n not in thresholds]
    if missing:
        raise ValueError(f"{where}: thresholds missing for classes {missing}")
    out = {}
    for name in particles.names:
        value = thresholds[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{where}: threshold of {name} must be a number in [0, 1] (scores are "
                             f"probabilities); got {value!r}")
        out[name] = float(value)
    return out


def apply_thresholds(candidates: pd.DataFrame, thresholds: Mapping[str, float],
                     *, particles: ParticleSet) -> pd.DataFrame:
    """Keep the candidates whose score reaches their class threshold."""
    cand = _candidates(candidates, particles)
    limits = _check_thresholds(thresholds, "apply_thresholds", particles=particles)
    keep = cand["score"].to_numpy() >= cand["particle_type"].map(limits).to_numpy(dtype=np.float64)
    return cand[keep].reset_index(drop=True)


def save_thresholds(thresholds: Mapping[str, float], path: str | Path,
                    fitted_with: Mapping[str, object] | None = None, batch: OutputBatch | None = None,
                    oof_scores: Mapping[str, float] | None = None,
                    *, particles: ParticleSet,
                    component_levels: Mapping[str, float] | None = None,
                    calibration: dict[str, object] | None = None) -> Path:
    """Write ``{"thresholds": {class: threshold}, "fitted_with": {...}, "oof_scores": {...}}`` as JSON
    atomically; ``fitted_with`` records what the thresholds depend on (the prediction settings and checkpoints
    they were fitted for), ``oof_scores`` the out-of-fold CV they gave (kept so a run that reuses them can
    still report it), ``component_levels`` (cc3d) each class's level fitted with them."""
    clean = _check_thresholds(thresholds, str(path), particles=particles)
    doc: dict[str, object] = {"thresholds": clean, "fitted_with": dict(fitted_with or {}),
                              "oof_scores": dict(oof_scores or {})}
    if component_levels is not None:
        doc["component_levels"] = _check_levels(component_levels, str(path), particles)
    if calibration is not None:
        doc["calibration"] = dict(calibration)  # checked where it is read (postprocess.calibration)
    return write_text_atomic(path, json.dumps(doc, indent=2, default=str) + "\n", batch=batch)


def _check_levels(levels: object, where: str, particles: ParticleSet) -> dict[str, float]:
    """Component levels: like thresholds, but strictly inside (0, 1) (a level of 0 or 1 cuts nothing out)."""
    clean = _check_thresholds(levels, f"{where}: component_levels", particles=particles)  # type: ignore[arg-type]
    bad = {name: value for name, value in clean.items() if not 0.0 < value < 1.0}
    if bad:
        raise ValueError(f"{where}: component levels must be in (0, 1); got {bad}")
    return clean


def load_component_levels(path: str | Path, *, particles: ParticleSet) -> dict[str, float] | None:
    """Each class's component level saved with the thresholds (cc3d), None when the file has none."""
    data = read_json(path, "thresholds file")
    levels = data.get("component_levels") if isinstance(data, dict) else None
    return None if levels is None else _check_levels(levels, str(path), particles)


def load_oof_scores(path: str | Path) -> dict[str, float]:
    """The out-of-fold scores saved with the thresholds (empty for files written by hand or before they were
    recorded)."""
    data = read_json(path, "thresholds file")
    scores = data.get("oof_scores", {}) if isinstance(data, dict) else {}
    return {str(k): float(v) for k, v in scores.items()} if isinstance(scores, dict) else {}


def load_thresholds(path: str | Path,
                    *, particles: ParticleSet) -> tuple[dict[str, float], dict[str, object] | None]:
    """(thresholds, what they were fitted with) from a file of ``save_thresholds``; a plain ``{class: value}``
    file (written by hand or by an older version) has no record (None). Malformed files are a clear error."""
    path = Path(path)
    data = read_json(path, "thresholds file")
    if isinstance(data, dict) and "thresholds" in data:
        record = data.get("fitted_with")
        if not isinstance(record, dict):
            raise ValueError(f"thresholds file {path}: 'fitted_with' must be a mapping; got {record!r}")
        return _check_thresholds(data["thresholds"], f"thresholds file {path}", particles=particles), record
    return _check_thresholds(data, f"thresholds file {path}", particles=particles), None
