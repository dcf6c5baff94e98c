"""Slice detectors beside the U-Nets: the same folds, data and test runs, alone and voted, with the classical
baseline.

``python -m benchmarks.bench_slice_detectors --work WORK/LEVEL --folds 0+1 2+3 4+5 [--train-args ...]``

``WORK/LEVEL`` is a level folder of ``bench_pair_ensemble`` (its ``data``, ``test20`` and trained U-Nets
``runs_cpu``). This trains ``fcos-slices`` pair models on the same folds into ``runs_slices`` (finished runs are
kept), then scores on the 4 and the 20 test runs: the detectors alone, the U-Nets of the same folds alone, and
their vote (``inference.family_vote``: weight and thresholds fitted out of fold), each with its honest OOF CV
and the false picks on other classes' particles; the baseline is run on the same test runs. Appends one JSON
line per family to ``WORK/LEVEL/slices.jsonl`` and prints Markdown rows. Say whether the machine was idle.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


from benchmarks.bench_pair_ensemble import (ensemble_scores, finished, per_class, scored_confusion,
                                            train_pairs)
from benchmarks.classical_baseline import run_baseline
from inference.family_vote import FamilyVote
from inference.fold_runs import find_fold_runs
from inference.predictor import EnsemblePredictor
from inference.run_folder import fold_label

DETECTOR_RECIPE: tuple[str, ...] = ("--model.name", "fcos-slices", "--data.patch_size", "5", "128", "128",
                                    "--data.batch_size", "8", "--data.patches_per_epoch", "192")
"""The CPU recipe with the detector: 2.5D stacks of 5 slices of 128x128, 8 per step, 24 steps per epoch for the
recipe's 36 epochs (864 steps, as many as the U-Nets'), the `cpu` preset's optimiser and schedule."""


def fold_runs(runs_dir: Path, folds: list[str]):
    """The finished runs of ``folds`` under ``runs_dir`` (one experiment)."""
    wanted = {fold_label(f) for f in folds}
    runs = [r for r in find_fold_runs(runs_dir) if fold_label(r.fold) in wanted]
    if len(runs) != len(wanted):
        raise ValueError(f"{runs_dir}: found folds {[r.fold for r in runs]} of {sorted(wanted)}")
    return runs


def scored(picker: EnsemblePredictor | FamilyVote, root: Path, picks_file: Path) -> tuple[dict, float]:
    """Score, per class and false picks of ``picker`` (a predictor or a vote) on a root's test runs
    (``bench_pair_ensemble.ensemble_scores``), and the seconds per tomogram it took."""
    start = time.perf_counter()
    report, confusion, n_runs, _ = ensemble_scores(picker, root, picks_file)
    seconds = (time.perf_counter() - start) / n_runs
    return {"score": report.score, "per_class": per_class(report),
            "confusion": scored_confusion(confusion, picker, n_runs)}, seconds


def evaluate(name: str, picker: EnsemblePredictor | FamilyVote, oof_score: float, work: Path) -> dict:
    row: dict = {"family": name, "oof_cv": oof_score}
    for label, root in (("small", work / "data"), ("large", work / "test20")):
        if root.is_dir():
            picks_file = work / "runs_slices" / f"picks-{name.replace(' ', '-')}-{label}.csv"
            result, seconds = scored(picker, root, picks_file)
            row |= {f"test_{label}": result, f"seconds_per_tomogram_{label}": seconds}
    return row


def baseline_row(work: Path) -> dict:
    """The classical baseline on the level's test runs, templates and thresholds from its training runs."""
    baseline = {"small": run_baseline(work / "data")["test"]}
    if (work / "test20").is_dir():
        baseline["large"] = run_baseline(work / "data", test_root=work / "test20")["test"]
    return {"family": "classical baseline", "oof_cv": None,
            **{f"test_{k}": {"score": v.score, "per_class": per_class(v)} for k, v in baseline.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a level folder of bench_pair_ensemble")
    parser.add_argument("--folds", nargs="+", default=["0+1", "2+3", "4+5"])
    parser.add_argument("--unets", default="runs_cpu", help="the U-Nets' runs folder under --work")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the classical baseline (bench_pair_ensemble recorded it on the same runs)")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[], help="more train.py flags (last)")
    args = parser.parse_args(argv)
    work, runs = args.work, args.work / "runs_slices"
    minutes = train_pairs(work / "data", runs, args.folds, [*DETECTOR_RECIPE, *args.train_args])
    unfinished = [f for f in args.folds if not finished(runs, f)]
    if unfinished:
        raise RuntimeError(f"{runs}: folds {unfinished} did not finish training")
    detectors = EnsemblePredictor.from_fold_runs(fold_runs(runs, args.folds), device="cpu", thresholds_file=None)
    unets = EnsemblePredictor.from_fold_runs(fold_runs(work / args.unets, args.folds), device="cpu",
                                             thresholds_file=None)
    vote = FamilyVote.fit(unets, detectors)
    common = {"date": time.strftime("%Y-%m-%d %H:%M"), "work": str(work), "folds": args.folds,
              "detector_train_minutes": minutes, "train_args": [*DETECTOR_RECIPE, *args.train_args]}
    rows = [evaluate("slice detectors", detectors, detectors.oof_report().score, work),
            evaluate("U-Nets", unets, unets.oof_report().score, work),
            evaluate("vote", vote, vote.oof_report().score, work) | {"weight": vote.weight,
                                                                           "weights_oof": vote.oof_scores}]
    if not args.no_baseline:
        rows.append(baseline_row(work))
    for row in rows:
        with open(work / "slices.jsonl", "a") as handle:
            handle.write(json.dumps({**common, **row}) + "\n")
        large = row.get("test_large", row["test_small"])
        oof = "—" if row["oof_cv"] is None else f"{row['oof_cv']:.3f}"
        on_other = f"{large['confusion']['on_other_per_run']:.1f}" if "confusion" in large else "—"
        print(f"| {work.name} | {row['family']} | {row['test_small']['score']:.3f} / {large['score']:.3f} | {oof} | "
              f"{on_other} | {row.get('seconds_per_tomogram_large', 0):.1f} s |", flush=True)


if __name__ == "__main__":
    main()
