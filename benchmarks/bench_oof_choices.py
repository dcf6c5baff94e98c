"""Which fitted choice the cross-fitted OOF CV pays for, against the test it is meant to predict.

``python -m benchmarks.bench_oof_choices --runs WORK/LEVEL/runs_cpu --test-data WORK/LEVEL/test20
[--postprocess competing]``

On the trained pair models of ``bench_pair_ensemble`` and one post-processing setting: the OOF predictions
(the pairs, and each member alone) scored with subsets of the fitted choices (component levels, calibration,
thresholds) fitted on the *other* OOF runs and the rest on every OOF run: no choice refitted is the in-sample
OOF CV, all three the cross-fitted one ``ensemble.py`` prints (``refit_subsets``). Per class, beside the test score
of the whole ensemble from the picks ``bench_pair_ensemble`` kept (``RUNS/picks-SETTING-large.csv``, cut at
thresholds fitted on every OOF run). And how far each class's threshold and level move between the
leave-one-run-out fits. Appends one JSON line per setting to ``--out`` (default ``RUNS/../oof_choices.jsonl``).
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.bench_ensemble_size import provenance
from benchmarks.bench_recipes import POSTPROCESS
from dataio.sources import open_source
from inference.oof import POSTPROCESS_CHOICES, OOFPredictions, cross_fitted_picks, fit_postprocess
from inference.predict import EnsembleSettings
from inference.predictor import EnsemblePredictor
from postprocess.metric import MetricReport, score_picks


def refit_subsets() -> list[tuple[str, ...]]:
    """The subsets of the fitted choices from none (in-sample) to all (cross-fitted) that make a consistent
    fit: thresholds are on the calibrated scale, so a calibration refitted needs its thresholds refitted."""
    every = [c for k in range(len(POSTPROCESS_CHOICES) + 1) for c in itertools.combinations(POSTPROCESS_CHOICES, k)]
    return [c for c in every if "calibration" not in c or "thresholds" in c]


def scored(oof: OOFPredictions, settings: EnsembleSettings, refit: tuple[str, ...]) -> MetricReport:
    """The OOF CV with ``refit`` fitted on the other runs, the rest on all of them (none: in-sample)."""
    return score_picks(cross_fitted_picks(oof, settings, refit), oof.truth, runs=oof.runs,
                       particles=settings.particles)


def choice_spread(oof: OOFPredictions, settings: EnsembleSettings) -> dict[str, dict[str, list[float]]]:
    """Per class: the threshold and level fitted on every run, then their range over the leave-one-out fits."""
    every = fit_postprocess(oof.raw, oof.truth, settings)
    folds = [fit_postprocess(oof.raw[~oof.raw["experiment"].isin(runs)],
                             oof.truth[~oof.truth["experiment"].isin(runs)], settings)
             for runs in oof.tomogram_runs().values()]
    out: dict[str, dict[str, list[float]]] = {}
    for name in settings.particles.names:
        out[name] = {"threshold": [every.thresholds[name]] + sorted(f.thresholds[name] for f in folds)}
        if every.levels is not None:
            out[name]["level"] = [every.levels[name]] + sorted(f.levels[name] for f in folds)
    return out


def test_report(runs: Path, test_root: Path, setting: str, settings: EnsembleSettings) -> MetricReport:
    """The ensemble's test score from the picks ``bench_pair_ensemble`` kept for this setting."""
    source = open_source(test_root, "test", particles=settings.particles)
    names = source.run_names()
    picks = pd.read_csv(runs / f"picks-{setting}-large.csv")
    truth = pd.concat([source.picks(r) for r in names], ignore_index=True)
    return score_picks(picks, truth, runs=names, particles=settings.particles)


def evaluate(runs: Path, test_root: Path, setting: str) -> dict:
    start = time.perf_counter()
    predictor = EnsemblePredictor.from_runs(runs, device="cpu", refit_thresholds=True,
                                            thresholds_file=runs / f"choices-{setting}.json", **POSTPROCESS[setting])
    pairs, settings = predictor.fitted.oof, predictor.settings
    row: dict = {"postprocess": setting, "models": len(predictor.runs)}
    for label, oof in (("pairs", pairs), ("singles", pairs.singles)):
        row[label] = {"+".join(refit) or "none": per_class(scored(oof, settings, refit)) for refit in refit_subsets()}
        row[f"{label}_spread"] = choice_spread(oof, settings)
    row["test"] = per_class(test_report(runs, test_root, setting, settings))
    row["minutes"] = (time.perf_counter() - start) / 60
    return row


def per_class(report: MetricReport) -> dict[str, float]:
    return {"score": float(report.score), **{n: float(v) for n, v in report.table["f4"].items()}}


def print_rows(row: dict) -> None:
    classes = [k for k in row["test"] if k != "score"]
    print(f"\n{row['postprocess']}: OOF CV with the named choices fitted on the other runs (the rest on all)")
    print("| OOF of | refitted | score | " + " | ".join(classes) + " |")
    print("|---" * (len(classes) + 3) + "|")
    for label in ("pairs", "singles"):
        for refit, scores in row[label].items():
            print(f"| {label} | {refit} | {scores['score']:.3f} | "
                  + " | ".join(f"{scores[c]:.2f}" for c in classes) + " |")
    print(f"| test ({row['models']} models) | all on every OOF run | {row['test']['score']:.3f} | "
          + " | ".join(f"{row['test'][c]:.2f}" for c in classes) + " |")
    for label in ("pairs", "singles"):
        print(f"{label}: each class's choice fitted on every run [leave-one-out range]")
        for name, choices in row[f"{label}_spread"].items():
            text = ", ".join(f"{what} {v[0]:.4g} [{v[1]:.4g}–{v[-1]:.4g}]" for what, v in choices.items())
            print(f"  {name}: {text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="bench_pair_ensemble's runs folder")
    parser.add_argument("--test-data", type=Path, required=True, help="the test root its large picks score")
    parser.add_argument("--postprocess", nargs="+", default=["competing"], choices=sorted(POSTPROCESS))
    parser.add_argument("--out", type=Path, default=None, help="JSON lines (default RUNS/../oof_choices.jsonl)")
    args = parser.parse_args(argv)
    out = args.out or args.runs.parent / "oof_choices.jsonl"
    torch.set_grad_enabled(False)
    for setting in args.postprocess:
        row = {**provenance(args.runs, args.test_data), **evaluate(args.runs, args.test_data, setting)}
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print_rows(row)


if __name__ == "__main__":
    main()
