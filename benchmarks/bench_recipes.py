"""Compare training recipes as a user runs them: ``train.py`` per fold, then ``ensemble.py`` on the test runs.

``python -m benchmarks.bench_recipes --data ROOT --out RUNS --variants default lr3e-3 [--folds 0 1 ...]``

Each variant is a small, named diff over the CPU default (``VARIANTS``). For each it prints and appends to
``<out>/results.jsonl``: the out-of-fold CV (thresholds fitted on the folds' held-out runs), the test
score of the fold ensemble with those thresholds (per class too), the test score with thresholds fitted on
the test runs themselves (how well the picks are ranked, free of threshold noise: the quick comparison
when only one or two folds are trained) and the wall time of training and prediction. Same data, same
folds, same budget: only the named fields differ.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from dataio.sources import open_source
from inference.fold_runs import FoldRun, find_fold_runs
from particles import CZII_PARTICLES
from postprocess.class_confusion import cross_class_false_picks
from postprocess.class_suppression import decide_classes, select_picks
from inference.predict import EnsembleSettings
from inference.predictor import EnsemblePredictor, Thresholds
from postprocess.metric import MetricReport, load_ground_truth, score_picks
from postprocess.thresholds import apply_thresholds, fit_thresholds

REPO = Path(__file__).resolve().parents[1]
POSTPROCESS: dict[str, dict[str, Any]] = {
    "as-trained": {},
    "kernel1": {"kernel_fraction": 1.0},
    "kernel1.5": {"kernel_fraction": 1.5},
    "kernel1.5-supp0.5": {"kernel_fraction": 1.5, "class_suppression": 0.5},
    "supp0.5": {"class_suppression": 0.5},
    "constant-pad": {"pad_mode": "constant"},
    "kernel1-supp0.5": {"kernel_fraction": 1.0, "class_suppression": 0.5},
    "nms": {"picker": "nms"},
    "cc3d": {"picker": "cc3d"},  # each class's level fitted out of fold (component_levels)
    "cc3d-0.3": {"picker": "cc3d", "component_levels": []},  # one level for every class (before the fit)
    "calibrated": {"class_decision": "calibrated"},  # one class per location by calibrated scores (issue 32)
    "calibrated-0.3": {"class_decision": "calibrated", "class_suppression": 0.3},
    "competing": {"class_decision": "competing"},  # each candidate's probability given its strongest rival
    "competing-0.3": {"class_decision": "competing", "component_levels": []},  # no level fitted: 0.3 for all
    "mass": {"component_score": "mass"},  # components scored by their mass: graded where Dice peaks saturate
    "mass-competing": {"component_score": "mass", "class_decision": "competing"},
    # runs trained before the cpu preset's window became the whole tomogram, predicted as it predicts now
    "window-192x640x640": {"window": [192, 640, 640]},
}
"""Post-processing settings scored on the same trained folds (no retraining): ensemble settings overrides."""
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "class-contrast": {"loss": {"class_contrast": True}},
    "ce": {"loss": {"kind": "ce"}},
    "no-mixup": {"mixup": {"prob": 0.0}},
    # the CPU recipe before Dice and fitted components became its defaults (the rows "default" of 2026-12-03)
    "bce-nms": {"loss": {"kind": "bce"}, "inference": {"picker": "nms"}},
    # the field's recipe options (issue 23), each alone over the CPU recipe
    "sphere": {"data": {"target_kind": "sphere"}},
    "dice": {"loss": {"kind": "dice"}},
    "tversky": {"loss": {"kind": "tversky"}},
    "dice-ce": {"loss": {"kind": "dice_ce"}},
    "tversky-ce": {"loss": {"kind": "tversky_ce"}},
    "sphere-dice-ce": {"data": {"target_kind": "sphere"}, "loss": {"kind": "dice_ce"}},
    "deep-supervision": {"model": {"deep_supervision": [0.5, 0.25]}},
    # the CPU recipe before issue 9 (preset cpu-demo as it was): 12 epochs of 96 patches of 64^3
    "old-cpu-demo": {"model": {"name": "unet-tiny", "output_stride": 2, "widths": [16, 32, 64, 128]},
                     "data": {"patch_size": [64, 64, 64], "batch_size": 4, "num_workers": 1,
                              "patches_per_epoch": 96, "positive_fraction": 0.8},
                     "optim": {"lr": 1e-3, "warmup_fraction": 0.05}, "mixup": {"prob": 0.25},
                     "ema": {"decay": 0.98, "start_step": 20},
                     "inference": {"window": [96, 256, 256], "batch_size": 1},
                     "trainer": {"accelerator": "cpu", "precision": "32", "max_epochs": 12}},
}
"""Variant name -> nested overrides laid over the CPU default recipe."""


def flags(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """Nested overrides -> ``--section.key value ...`` flags of train.py."""
    out: list[str] = []
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out += flags(value, f"{name}.")
        elif isinstance(value, (list, tuple)):
            out += [f"--{name}", *[str(v) for v in value]]
        else:
            out += [f"--{name}", "null" if value is None else str(value)]
    return out


def per_class(report: MetricReport) -> dict[str, float]:
    return {str(n): float(report.table.loc[n, "f4"]) for n in report.table.index}


def test_candidates(fold_runs: list[FoldRun], data: Path, settings: EnsembleSettings,
                    levels: dict[str, float] | None = None) -> pd.DataFrame:
    """Every peak (or component at its class's ``levels``) of the fold ensemble above the candidate threshold
    on the test runs, with its score (the predictor's candidates, competing across classes as the settings
    say, at the candidate threshold)."""
    predictor = EnsemblePredictor(fold_runs, settings, torch.device("cpu"), fitted=Thresholds({}, levels))
    source = open_source(data, "test", fold_runs[0].config.data.tomo_type, particles=CZII_PARTICLES)
    floor = {n: settings.inference.candidate_threshold for n in settings.particles.names}
    tables = [select_picks(predictor.candidates(source.load_tomogram(run), source.voxel_spacing, run), floor,
                           settings.inference.class_suppression, particles=settings.particles)
              for run in source.run_names()]
    return pd.concat(tables, ignore_index=True)


def evaluate(fold_runs: list[FoldRun], data: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """OOF CV and test scores of trained folds under one post-processing setting (thresholds fitted on
    out-of-fold predictions made with that same setting, by the predictor ``ensemble.py`` uses), and where
    the test's false picks sit (on another class's particle, or on nothing)."""
    predictor = EnsemblePredictor.from_fold_runs(fold_runs, device="cpu", precision="fp32", **overrides)
    settings, fitted = predictor.settings, predictor.fitted
    particles, fraction = settings.particles, settings.inference.class_suppression
    oof = predictor.oof_report()
    candidates = test_candidates(fold_runs, data, replace(settings, inference=replace(settings.inference,
                                                                                    class_suppression=0.0)),
                                 fitted.levels)
    truth = load_ground_truth(data / "test_truth", particles=particles)
    picks = select_picks(candidates, fitted.values, fraction, particles=particles, calibration=fitted.calibration)
    test = score_picks(picks, truth, particles=particles)
    ranked = (decide_classes(candidates, fraction, fitted.calibration, particles=particles)
              if fitted.calibration is not None else candidates)
    best = score_picks(apply_thresholds(ranked, fit_thresholds(ranked, truth, particles=particles),
                                        particles=particles), truth, particles=particles)
    confusion = cross_class_false_picks(picks, truth, particles=particles)
    return {"oof_cv": oof.score, "oof_cv_in_sample": predictor.oof_report(cross_fitted=False).score,
            "test": test.score, "test_best_thresholds": best.score,
            "test_per_class": per_class(test), "oof_per_class": per_class(oof), "thresholds": fitted.values,
            "component_levels": fitted.levels, "false_picks_on_other_classes": confusion["on_other"].to_dict(),
            "false_picks": confusion["off"].to_dict()}


def run_variant(name: str, data: Path, out: Path, folds: list[str], extra: list[str],
                postprocess: list[str], reuse: bool = False, label: str | None = None) -> list[dict[str, Any]]:
    """Train every fold of one variant (train.py), then score it under each post-processing setting.
    ``reuse`` scores the folds already trained under ``out`` instead; ``label`` names the runs (default: the
    variant), so one variant with different ``extra`` flags keeps its runs apart."""
    label = label or name
    runs = out / label
    start = time.perf_counter()
    fold_minutes = []
    for fold in [] if reuse else folds:
        t0 = time.perf_counter()
        cmd = [sys.executable, str(REPO / "train.py"), "--fold", str(fold), "--data", str(data), "--out", str(runs),
               "--overwrite", "--experiment", label, *flags(variant_overrides(name)), *extra]
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        fold_minutes.append((time.perf_counter() - t0) / 60)
    t_train = time.perf_counter() - start
    fold_runs = find_fold_runs(runs, label)
    rows = []
    for setting in postprocess:
        t0 = time.perf_counter()
        row = evaluate(fold_runs, data, POSTPROCESS[setting])
        rows.append({"variant": name, "label": label, "postprocess": setting, "overrides": variant_overrides(name),
                     "postprocess_overrides": POSTPROCESS[setting], "extra": extra, "data": str(data), "folds": folds,
                     **row, "train_minutes": t_train / 60, "predict_minutes": (time.perf_counter() - t0) / 60,
                     "fold_minutes": fold_minutes, "date": time.strftime("%Y-%m-%d %H:%M")})
    return rows


def variant_overrides(name: str) -> dict[str, Any]:
    """A variant's overrides; ``cand-a-*`` variants are laid over ``cand-a``."""
    if name.startswith("cand-a-"):
        return merge_nested(VARIANTS["cand-a"], VARIANTS[name])
    return VARIANTS[name]


def merge_nested(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = merge_nested(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="simulated copick root with test_truth")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and results.jsonl")
    parser.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--folds", nargs="+", default=[str(k) for k in range(7)],
                        help="folds to train, K or the pair form K+L (default: 0..6)")
    parser.add_argument("--postprocess", nargs="+", default=["as-trained"], choices=sorted(POSTPROCESS),
                        help="post-processing settings to score each variant with (no retraining)")
    parser.add_argument("--label", help="name of the runs (one variant only; default: the variant's name)")
    parser.add_argument("--reuse", action="store_true", help="score the variants' existing runs, train nothing")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                        help="further train.py flags for every variant (last on the line)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        if args.label and len(args.variants) > 1:
            parser.error("--label names the runs of a single variant")
        for row in run_variant(name, args.data, args.out, args.folds, args.train_args, args.postprocess,
                               args.reuse, args.label):
            record(args.out, row)


def record(out: Path, row: dict[str, Any]) -> None:
    """Append one scored variant to ``<out>/results.jsonl`` and print it on one line."""
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    classes = "  ".join(f"{k[:8]} {v:.2f}" for k, v in row["test_per_class"].items())
    print(f"{row['label']:<16} {row['postprocess']:<18} OOF {row['oof_cv']:.3f}  test {row['test']:.3f} "
          f"(best thresholds {row['test_best_thresholds']:.3f})  ({classes})  "
          f"train {row['train_minutes']:.1f} + predict {row['predict_minutes']:.1f} min", flush=True)


if __name__ == "__main__":
    main()
