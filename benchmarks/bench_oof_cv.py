"""What the out-of-fold CV predicts: single models or the ensemble, and how precisely a test set can tell.

``python -m benchmarks.bench_oof_cv --runs RUNS --data ROOT [--test-data OTHER_ROOT] [--single]``

For one experiment's trained folds it prints, each with its per-class F4:
* the OOF CV (each fold's model on its held-out run, thresholds fitted on them all: what ``ensemble.py``
  prints), at tolerance 0, at the recipe's ``inference.threshold_tolerance``, and with the ``one-se`` rule;
* the ensemble's test score with those thresholds (what ``ensemble.py --score`` prints), and with thresholds
  fitted on the test runs themselves (ranking only, an upper bound);
* with ``--single``, each fold's model alone on the test runs at the same thresholds (mean, sd, range): the
  score the OOF CV estimates, as it is made of single models;
* "count-matched" thresholds (per class, keep as many test picks per run as the OOF thresholds kept per
  OOF run): a calibration-free way to carry thresholds to the ensemble, measured and rejected;
* per-run test scores: their sd and the standard error of the test mean, to read differences against;
* with ``--suppression F``, OOF and test with cross-class suppression at fraction F (thresholds refitted).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.bench_recipes import test_candidates
from inference.fold_runs import ensemble_settings, find_fold_runs
from inference.oof import predict_oof
from particles import ParticleSet
from postprocess.class_suppression import fit_thresholds_suppressed, select_picks
from postprocess.metric import MetricReport, load_ground_truth, score_picks
from postprocess.thresholds import apply_thresholds, fit_thresholds
from inference.tta import TRANSFORM_NAMES


def row(label: str, report: MetricReport) -> str:
    f4 = report.table["f4"]
    return f"| {label} | " + " | ".join(f"{f4[n]:.3f}" for n in report.table.index) + f" | **{report.score:.3f}** |"


def count_matched(oof: pd.DataFrame, thresholds: dict[str, float], n_oof: int, test: pd.DataFrame,
                  n_test: int) -> dict[str, float]:
    """Per class, the test threshold that keeps as many picks per run as ``thresholds`` kept per OOF run."""
    out = {}
    for name in thresholds:
        per_run = float((oof.loc[oof["particle_type"] == name, "score"] >= thresholds[name]).sum()) / n_oof
        scores = np.sort(test.loc[test["particle_type"] == name, "score"].to_numpy())[::-1]
        keep = int(round(per_run * n_test))
        if keep > 0 and len(scores):
            out[name] = float(scores[min(keep, len(scores)) - 1])
        else:  # keep none: just above the best test score
            out[name] = float(np.nextafter(scores[0], np.inf)) if len(scores) else 1.0
    return out


def per_run_scores(candidates: pd.DataFrame, thresholds: dict[str, float], truth: pd.DataFrame,
                   runs: list[str], particles: ParticleSet) -> np.ndarray:
    picks = apply_thresholds(candidates, thresholds, particles=particles)
    return np.array([score_picks(picks[picks["experiment"] == r], truth[truth["experiment"] == r], runs=[r],
                                 particles=particles).score for r in runs])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="runs folder of one experiment's folds")
    parser.add_argument("--data", required=True, help="the dataset the folds were trained on")
    parser.add_argument("--test-data", help="score the test runs of this root instead (same distribution, "
                                            "more runs)")
    parser.add_argument("--single", action="store_true", help="also score each fold's model alone on the test")
    parser.add_argument("--tta", nargs="+", choices=TRANSFORM_NAMES, help="test-time transforms for the OOF and "
                                                                        "test predictions (default: none)")
    parser.add_argument("--suppression", type=float, help="also score with cross-class suppression at this "
                                                          "fraction (postprocess.class_suppression)")
    return parser


def threshold_rows(folds: list, settings, oof, ensemble: pd.DataFrame, truth: pd.DataFrame, test_root: Path,
                   single: bool) -> None:
    """OOF CV and test scores at tolerance 0, at the recipe's tolerance and with the one-se rule."""
    particles, tolerance = settings.particles, settings.inference.threshold_tolerance
    n_oof, n_test = len(oof.runs), len(truth.attrs["runs"])
    for label, fitting in (("tolerance 0", {"tolerance": 0.0}), (f"tolerance {tolerance}", {"tolerance": tolerance}),
                           (f"one-se, tolerance {tolerance}", {"tolerance": tolerance, "rule": "one-se"})):
        thresholds = fit_thresholds(oof.candidates, oof.truth, **fitting, particles=particles)
        print(row(f"OOF CV ({label})", score_picks(apply_thresholds(oof.candidates, thresholds, particles=particles),
                                                   oof.truth, runs=oof.runs, particles=particles)))
        print(row(f"ensemble on test, OOF thresholds ({label})",
                  score_picks(apply_thresholds(ensemble, thresholds, particles=particles), truth, particles=particles)))
        matched = count_matched(oof.candidates, thresholds, n_oof, ensemble, n_test)
        print(row(f"ensemble on test, count-matched thresholds ({label})",
                  score_picks(apply_thresholds(ensemble, matched, particles=particles), truth, particles=particles)))
        if single:
            singles = [score_picks(apply_thresholds(test_candidates([fold], test_root, settings), thresholds,
                                                    particles=particles), truth, particles=particles).score
                       for fold in folds]
            print(f"| single models on test, OOF thresholds ({label}) | mean {np.mean(singles):.3f}, "
                  f"sd {np.std(singles):.3f}, range {min(singles):.3f}–{max(singles):.3f} |")


def suppression_rows(oof, ensemble: pd.DataFrame, truth: pd.DataFrame, fraction: float, settings) -> None:
    particles = settings.particles
    suppressed, _ = fit_thresholds_suppressed(oof.candidates, oof.truth, fraction,
                                              settings.inference.threshold_tolerance, particles=particles)
    picked = select_picks(oof.candidates, suppressed, fraction, particles=particles)
    print(row(f"OOF CV (class suppression {fraction})", score_picks(picked, oof.truth, runs=oof.runs,
                                                                     particles=particles)))
    print(row(f"ensemble on test (class suppression {fraction})",
              score_picks(select_picks(ensemble, suppressed, fraction, particles=particles), truth,
                          particles=particles)))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    folds = find_fold_runs(args.runs)
    settings = ensemble_settings(folds[0].config, tta=tuple(args.tta) if args.tta else None)
    particles = settings.particles
    oof = predict_oof(folds, settings)
    test_root = Path(args.test_data or args.data)
    truth = load_ground_truth(test_root / "test_truth", particles=particles)
    ensemble = test_candidates(folds, test_root, settings)
    print(f"{len(folds)} folds of {folds[0].config.experiment}; OOF over {len(oof.runs)} runs; test: "
          f"{len(truth.attrs['runs'])} runs of {test_root}; TTA {', '.join(settings.inference.tta)}")
    print("| thresholds, predictions | " + " | ".join(particles.names) + " | F4 |")
    print("|---|" + "---|" * (len(particles.names) + 1))
    threshold_rows(folds, settings, oof, ensemble, truth, test_root, args.single)
    if args.suppression:
        suppression_rows(oof, ensemble, truth, args.suppression, settings)
    print(row("ensemble on test, thresholds fitted on the test runs", score_picks(
        apply_thresholds(ensemble, fit_thresholds(ensemble, truth, particles=particles), particles=particles),
        truth, particles=particles)))
    thresholds = fit_thresholds(oof.candidates, oof.truth, tolerance=settings.inference.threshold_tolerance,
                                particles=particles)
    runs = per_run_scores(ensemble, thresholds, truth, truth.attrs["runs"], particles)
    print(f"per test run (ensemble, OOF thresholds): mean {runs.mean():.3f}, sd {runs.std(ddof=1):.3f}, "
          f"standard error of the mean {runs.std(ddof=1) / np.sqrt(len(runs)):.3f} over {len(runs)} runs")
    oof_runs = per_run_scores(oof.candidates, thresholds, oof.truth, oof.runs, particles)
    print(f"per OOF run: mean {oof_runs.mean():.3f}, sd {oof_runs.std(ddof=1):.3f}")


if __name__ == "__main__":
    main()
