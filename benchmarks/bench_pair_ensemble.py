"""The README's key figures: seven pair models of a recipe, their ensemble on 4 and on 20 test runs, and the
classical baseline on the same runs, at one difficulty level.

``python -m benchmarks.bench_pair_ensemble --difficulty realistic --work WORK [--train-args ...]``

1. ``simulate.py`` writes the training root (the seven CZII run names, seed ``--train-seed``, ``--n-test``
   test runs) and a second root holding only ``--n-test-large`` test runs of the same level (seed
   ``--test-seed``), unless they exist already;
2. ``train.py --fold K+L`` for every pair of ``--folds`` (the CPU preset unless ``--train-args`` say
   otherwise), timed;
3. the ensemble through ``EnsemblePredictor`` (what ``ensemble.py`` runs): thresholds fitted out of fold,
   the OOF CV, and the picks of both test sets, timed;
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
from pathlib import Path

import pandas as pd

from benchmarks.classical_baseline import run_baseline
from dataio.sources import open_source
from inference.predictor import EnsemblePredictor
from postprocess.metric import MetricReport, score_picks

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
    """train.py for each fold pair (a finished run is kept); minutes per model."""
    minutes = []
    for fold in folds:
        start = time.perf_counter()
        cmd = [sys.executable, str(REPO / "train.py"), "--fold", fold, "--data", str(root), "--out", str(runs),
               *train_args]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise RuntimeError(f"train.py --fold {fold} failed:\n{done.stderr[-3000:]}")
        minutes.append((time.perf_counter() - start) / 60)
    return minutes


def per_class(report: MetricReport) -> dict[str, float]:
    return {str(n): float(report.table.loc[n, "f4"]) for n in report.table.index}


def ensemble_scores(predictor: EnsemblePredictor, root: Path) -> tuple[MetricReport, pd.DataFrame]:
    """The ensemble's picks of a root's test runs and their score."""
    source = open_source(root, "test", particles=predictor.particles)
    picks = predictor.predict_source(source, progress=False)
    truth = pd.concat([source.picks(r) for r in source.run_names()], ignore_index=True)
    return score_picks(picks, truth, runs=source.run_names(), particles=predictor.particles), picks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--difficulty", required=True, help="simulate.py --difficulty of both roots")
    parser.add_argument("--work", type=Path, required=True, help="folder for the data, runs and results.jsonl")
    parser.add_argument("--size", default="demo", help="simulate.py --size (default: demo)")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=100)
    parser.add_argument("--n-test", type=int, default=4, help="test runs of the training root")
    parser.add_argument("--n-test-large", type=int, default=20, help="test runs of the second root (0: none)")
    parser.add_argument("--folds", nargs="+", default=list(PAIR_FOLDS))
    parser.add_argument("--label", default="cpu", help="name of this recipe's runs and row")
    parser.add_argument("--simulate-args", nargs="*", default=[], help="more simulate.py flags for both roots")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[], help="more train.py flags (last)")
    args = parser.parse_args(argv)
    work = args.work / args.difficulty
    work.mkdir(parents=True, exist_ok=True)
    root = simulate(work / "data", args.difficulty, args.train_seed, args.n_test, args.size, args.simulate_args)
    large = (simulate(work / "test20", args.difficulty, args.test_seed, args.n_test_large, args.size,
                      args.simulate_args, n_train=1) if args.n_test_large else None)
    runs = work / f"runs_{args.label}"
    fold_minutes = train_pairs(root, runs, args.folds, args.train_args)

    start = time.perf_counter()
    predictor = EnsemblePredictor.from_runs(runs, device="cpu")
    oof = predictor.oof_report()
    test_small, _ = ensemble_scores(predictor, root)
    test_large = ensemble_scores(predictor, large)[0] if large else None
    predict_minutes = (time.perf_counter() - start) / 60

    start = time.perf_counter()
    base_small = run_baseline(root)["test"]
    base_large = run_baseline(root, test_root=large)["test"] if large else None
    baseline_minutes = (time.perf_counter() - start) / 60

    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} cores", "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                                               capture_output=True, text=True).stdout.strip(),
           "difficulty": args.difficulty, "label": args.label, "train_args": args.train_args, "folds": args.folds,
           "oof_cv": oof.score if oof else None, "oof_per_class": per_class(oof) if oof else None,
           "test_small": test_small.score, "test_small_per_class": per_class(test_small),
           "test_large": test_large.score if test_large else None,
           "test_large_per_class": per_class(test_large) if test_large else None,
           "baseline_small": base_small.score, "baseline_small_per_class": per_class(base_small),
           "baseline_large": base_large.score if base_large else None,
           "baseline_large_per_class": per_class(base_large) if base_large else None,
           "thresholds": predictor.fitted.values, "component_levels": predictor.fitted.levels,
           "train_minutes": sum(fold_minutes), "fold_minutes": fold_minutes, "predict_minutes": predict_minutes,
           "baseline_minutes": baseline_minutes}
    with open(args.work / "results.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    large_text = (f"{row['baseline_large']:.3f}", f"**{row['test_large']:.3f}**") if test_large else ("—", "—")
    print(f"| {args.difficulty} | {row['baseline_small']:.3f} / {large_text[0]} | **{row['test_small']:.3f}** / "
          f"{large_text[1]} | {row['oof_cv']:.3f} | {row['train_minutes']:.0f} + {predict_minutes:.1f} min |")


if __name__ == "__main__":
    main()
