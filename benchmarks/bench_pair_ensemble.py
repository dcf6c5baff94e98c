"""The README's key figures: seven pair models of a recipe, their ensemble on 4 and on 20 test runs, and the
classical baseline on the same runs, at one difficulty level.

``python -m benchmarks.bench_pair_ensemble --difficulty realistic --work WORK [--train-args ...]``

1. ``simulate.py`` writes the training root (the seven CZII run names, seed ``--train-seed``, ``--n-test``
   test runs) and a second root holding only ``--n-test-large`` test runs of the same level (seed
   ``--test-seed``), unless they exist already;
2. ``train.py --fold K+L`` for every pair of ``--folds`` (the CPU preset unless ``--train-args`` say
   otherwise), timed;
3. the ensemble through ``EnsemblePredictor`` (what ``ensemble.py`` runs): thresholds fitted out of fold,
   the OOF CV, and the picks of both test sets (kept as ``picks-SETTING-small|large.csv`` in the runs
   folder), timed, with the spread of the score of 4-run subsets of the large set;
4. the classical baseline (``benchmarks.classical_baseline``) on both test sets, templates and thresholds
   from the same training runs.

Appends one JSON line to ``WORK/results.jsonl`` and prints a Markdown row. Times are wall-clock on the
machine it ran on: say whether anything else ran beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from benchmarks.classical_baseline import run_baseline
from dataio.sources import open_source
from inference.family_vote import FamilyVote
from inference.predictor import EnsemblePredictor
from inference.run_folder import RunFolder
from benchmarks.bench_recipes import POSTPROCESS
from postprocess.class_confusion import cross_class_false_picks
from postprocess.metric import MetricReport, score_picks
from postprocess.score_spread import ScoreSpread, score_spread

REPO = Path(__file__).resolve().parents[1]
PAIR_FOLDS = tuple(f"{k}+{(k + 1) % 7}" for k in range(7))


def simulate(out: Path, difficulty: str, seed: int, n_test: int, size: str, extra: list[str],
             n_train: int | None = None) -> Path:
    """A simulated root (skipped when ``out`` already holds one)."""
    if (out / "difficulty.json").is_file():
        return out
    cmd = [sys.executable, str(REPO / "simulate.py"), "--out", str(out), "--size", size, "--seed", str(seed),
           "--difficulty", difficulty, "--n-test", str(n_test), *extra]
    if n_train is not None:
        cmd += ["--n-train", str(n_train)]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out


def train_pairs(root: Path, runs: Path, folds: list[str], train_args: list[str]) -> list[float]:
    """train.py for each fold pair (a finished run is kept, an interrupted one resumed); minutes per model
    (None for a run kept from before)."""
    minutes: list[float | None] = []
    for fold in folds:
        start = time.perf_counter()
        cmd = [sys.executable, str(REPO / "train.py"), "--fold", fold, "--data", str(root), "--out", str(runs),
               *train_args]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        kept = done.returncode != 0 and "already exists" in done.stderr
        if kept and not finished(runs, fold):
            done = subprocess.run([*cmd, "--resume"], cwd=REPO, capture_output=True, text=True)
            kept = False
        if done.returncode != 0 and not kept:
            raise RuntimeError(f"train.py --fold {fold} failed:\n{done.stderr[-3000:]}")
        minutes.append(None if kept else (time.perf_counter() - start) / 60)
    return minutes


def finished(runs: Path, fold: str) -> bool:
    """Whether the run folder of ``fold`` under ``runs`` says its training finished."""
    folders = [f for f in RunFolder.found_under(runs) if f.name.endswith(f"_fold{fold}")]
    return len(folders) == 1 and folders[0].state() == "finished"


def per_class(report: MetricReport) -> dict[str, float]:
    return {str(n): float(report.table.loc[n, "f4"]) for n in report.table.index}


SUBSET_RUNS = 4
"""The spread of the score of this many test runs (as many as the small test set and the independent benchmark's)
is reported for the large test set."""


def ensemble_scores(predictor: EnsemblePredictor | FamilyVote, root: Path,
                    picks_file: Path) -> tuple[MetricReport, pd.DataFrame, int, ScoreSpread | None]:
    """The ensemble's picks of a root's test runs (kept in ``picks_file``): their score, where their false picks
    sit, how many runs, and the spread of the score of ``SUBSET_RUNS``-run subsets when there are more runs."""
    source = open_source(root, "test", particles=predictor.particles)
    runs = source.run_names()
    picks = predictor.predict_source(source, progress=False)
    picks.to_csv(picks_file, index=False)
    truth = pd.concat([source.picks(r) for r in runs], ignore_index=True)
    report = score_picks(picks, truth, runs=runs, particles=predictor.particles)
    spread = (score_spread(picks, truth, runs, SUBSET_RUNS, particles=predictor.particles)
              if len(runs) > SUBSET_RUNS else None)
    return report, cross_class_false_picks(picks, truth, particles=predictor.particles), len(runs), spread


def scored_confusion(confusion: pd.DataFrame, predictor: EnsemblePredictor | FamilyVote,
                     runs: int) -> dict[str, float]:
    """False picks of the scored classes per test run: all of them, and those on another class's particle."""
    scored = [n for n in confusion.index if predictor.particles.get(n).weight > 0]
    return {"false_per_run": float(confusion.loc[scored, "off"].sum()) / runs,
            "on_other_per_run": float(confusion.loc[scored, "on_other"].sum()) / runs,
            "on_other": confusion.loc[scored, "on_other"].to_dict()}


def evaluate(runs: Path, root: Path, large: Path | None, setting: str) -> dict:
    """One post-processing setting on the trained runs: OOF CV, both test sets, the false picks on other
    classes' particles; thresholds (and calibration) fitted out of fold for that setting."""
    start = time.perf_counter()
    predictor = EnsemblePredictor.from_runs(runs, device="cpu", thresholds_file=runs / f"bench-{setting}.json",
                                            **POSTPROCESS[setting])
    oof = predictor.oof_report()
    row: dict = {"postprocess": setting, "oof_cv": oof.score if oof else None,
                 "oof_cv_in_sample": predictor.oof_report(cross_fitted=False).score if oof else None,
                 "oof_per_class": per_class(oof) if oof else None, "thresholds": predictor.fitted.values,
                 "component_levels": predictor.fitted.levels}
    for name, data in (("small", root), ("large", large)):
        if data is None:
            continue
        report, confusion, n_runs, spread = ensemble_scores(predictor, data, runs / f"picks-{setting}-{name}.csv")
        row |= {f"test_{name}": report.score, f"test_{name}_per_class": per_class(report),
                f"test_{name}_confusion": scored_confusion(confusion, predictor, n_runs)}
        if spread is not None:
            row[f"test_{name}_subsets"] = asdict(spread)
    row["predict_minutes"] = (time.perf_counter() - start) / 60
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--difficulty", required=True, help="simulate.py --difficulty of both roots")
    parser.add_argument("--work", type=Path, required=True, help="folder for the data, runs and results.jsonl")
    parser.add_argument("--family", default="fourier", help="simulate.py --family of both roots")
    parser.add_argument("--size", default="demo", help="simulate.py --size (default: demo)")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=4, help="test runs of the training root")
    parser.add_argument("--n-test-large", type=int, default=20, help="test runs of the second root (0: none)")
    parser.add_argument("--folds", nargs="+", default=list(PAIR_FOLDS))
    parser.add_argument("--label", default="cpu", help="name of this recipe's runs and row")
    parser.add_argument("--postprocess", nargs="+", default=["as-trained"], choices=sorted(POSTPROCESS),
                        help="post-processing settings scored on the same trained runs (bench_recipes.POSTPROCESS)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the classical baseline (already recorded)")
    parser.add_argument("--simulate-args", nargs="*", default=[], help="more simulate.py flags for both roots")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[], help="more train.py flags (last)")
    args = parser.parse_args(argv)
    work = args.work / (args.difficulty if args.family == "fourier" else f"{args.family}-{args.difficulty}")
    work.mkdir(parents=True, exist_ok=True)
    sim_args = [*args.simulate_args, "--family", args.family]
    root = simulate(work / "data", args.difficulty, args.train_seed, args.n_test, args.size, sim_args)
    large = (simulate(work / "test20", args.difficulty, args.test_seed, args.n_test_large, args.size,
                      sim_args, n_train=1) if args.n_test_large else None)
    runs = work / f"runs_{args.label}"
    fold_minutes = train_pairs(root, runs, args.folds, args.train_args)
    common = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores", "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                                  capture_output=True, text=True).stdout.strip(),
              "family": args.family, "difficulty": args.difficulty, "label": args.label,
              "train_args": args.train_args, "folds": args.folds,
              "train_minutes": None if None in fold_minutes else sum(fold_minutes),
              "fold_minutes": fold_minutes}
    if not args.no_baseline:
        start = time.perf_counter()
        base_small = run_baseline(root)["test"]
        base_large = run_baseline(root, test_root=large)["test"] if large else None
        common |= {"baseline_small": base_small.score, "baseline_small_per_class": per_class(base_small),
                   "baseline_large": base_large.score if base_large else None,
                   "baseline_large_per_class": per_class(base_large) if base_large else None,
                   "baseline_minutes": (time.perf_counter() - start) / 60}
    for setting in args.postprocess:
        row = {**common, **evaluate(runs, root, large, setting)}
        with open(args.work / "results.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")
        large_text = f"{row['test_large']:.3f}" if large else "—"
        print(f"| {args.family} {args.difficulty} | {setting} | {row['test_small']:.3f} / {large_text} | "
              f"{row['oof_cv']:.3f} | on other classes per run: "
              f"{row.get('test_large_confusion', row['test_small_confusion'])['on_other_per_run']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
