"""What ensemble size buys, on the test runs and out of fold: does the OOF CV err low because each OOF run is
predicted by two pair models and each test run by all seven?

``python -m benchmarks.bench_ensemble_size --runs WORK/LEVEL/runs_cpu --test-data WORK/LEVEL/test20
[--postprocess as-trained competing] [--sizes 1 2 3 7]``

On the trained pair models of ``bench_pair_ensemble``, with the thresholds fitted out of fold as it fits them
(saved as ``size-SETTING.json``), so that every ensemble here is cut at the same thresholds:

* **test, by ensemble size**: every test run is predicted once by each model (``member_terms``); the ensemble
  of each ring window of ``m`` consecutive pair models (``0+1, 1+2, ...``: the two models holding out a fold
  are such a window) is their averaged output, picked and thresholded as ``ensemble.py`` does; the score of
  each window over all test runs, their mean and range per size;
* **out of fold, by ensemble size**: the OOF CV of single models (each OOF run predicted by each of the two
  models that never saw it, one at a time; levels, calibration and thresholds fitted on those single-model
  predictions, cross-fitted by tomogram and in-sample) beside the OOF CV of the pairs (what ``ensemble.py``
  prints);
* **the OOF CV carried to the test's ensemble size**: ``S(m) = a - b / m`` through the OOF scores at m = 1 and
  2, read at the ensemble's size, beside the test score it is meant to predict.

Appends one JSON line per setting to ``--out`` (default ``RUNS/../ensemble_size.jsonl``) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.bench_recipes import POSTPROCESS
from dataio.sources import open_source
from inference.fold_runs import FoldRun
from inference.predict import ensemble_member_terms, picks_from_probabilities
from inference.predictor import EnsemblePredictor
from inference.probabilities import members_probabilities
from postprocess.metric import score_picks

REPO = Path(__file__).resolve().parents[1]


def ring_order(runs: list[FoldRun]) -> list[int]:
    """Indices of pair models in ring order (``0+1, 1+2, ..., 6+0``): consecutive ones share a held-out fold."""
    return sorted(range(len(runs)), key=lambda i: int(runs[i].fold.split("+")[0]))


def windows(order: list[int], size: int) -> list[list[int]]:
    """The ring windows of ``size`` consecutive members of ``order`` (one window when it is all of them)."""
    n = len(order)
    if size >= n:
        return [list(order)]
    return [[order[(start + k) % n] for k in range(size)] for start in range(n)]


def test_by_size(predictor: EnsemblePredictor, test_root: Path, sizes: list[int]) -> dict[int, list[float]]:
    """Each size's window scores on the test runs, every window cut at the predictor's fitted thresholds."""
    settings, fitted = predictor.settings, predictor.fitted
    source = open_source(test_root, "test", particles=predictor.particles)
    runs, order = source.run_names(), ring_order(predictor.runs)
    picks: dict[tuple[int, int], list[pd.DataFrame]] = {}
    for run in runs:
        terms = ensemble_member_terms(predictor.models, source.load_tomogram(run), run, settings,
                                      predictor.device)
        for size in sizes:
            for i, window in enumerate(windows(order, size)):
                probs = members_probabilities(terms[window], settings.activation, settings.inference.average,
                                              num_classes=predictor.particles.num_classes)
                picks.setdefault((size, i), []).append(picks_from_probabilities(
                    probs, run, settings, fitted.values, source.voxel_spacing, fitted.levels, fitted.calibration))
    truth = pd.concat([source.picks(r) for r in runs], ignore_index=True)
    scores: dict[int, list[float]] = {}
    for (size, _), tables in sorted(picks.items()):
        report = score_picks(pd.concat(tables, ignore_index=True), truth, runs=runs, particles=predictor.particles)
        scores.setdefault(size, []).append(report.score)
    return scores


def evaluate(runs: Path, test_root: Path, setting: str, sizes: list[int]) -> dict:
    """One post-processing setting: test scores by ensemble size, OOF CV of single models and of pairs."""
    start = time.perf_counter()
    # fitted again (the same OOF predictions as bench_pair_ensemble's fit): a fit read from a file keeps no OOF
    predictor = EnsemblePredictor.from_runs(runs, device="cpu", refit_thresholds=True,
                                            thresholds_file=runs / f"size-{setting}.json", **POSTPROCESS[setting])
    n_models = len(predictor.runs)
    by_size = test_by_size(predictor, test_root, sorted(set(sizes) | {n_models}))
    carried = predictor.carried_oof()  # what ensemble.py prints
    if carried is None:
        raise ValueError(f"{runs}: the OOF runs are not predicted by 2+ models each, fewer than the ensemble's")
    return {"postprocess": setting, "models": n_models,
            "test_by_size": {str(k): v for k, v in by_size.items()},
            "oof_single": {"cross_fitted": carried.single, "in_sample": carried.single_in_sample},
            "oof_pair": {"cross_fitted": carried.ensemble, "in_sample": carried.ensemble_in_sample},
            "oof_carried": {"cross_fitted": carried.score, "in_sample": carried.score_in_sample},
            "test": float(np.mean(by_size[n_models])), "minutes": (time.perf_counter() - start) / 60}


def print_row(row: dict) -> None:
    sizes = " | ".join(f"{k}: {np.mean(v):.3f} ({min(v):.3f}–{max(v):.3f})" for k, v in row["test_by_size"].items())
    print(f"| {row['postprocess']} | {sizes} | OOF 1 model {row['oof_single']['cross_fitted']:.3f} / "
          f"{row['oof_single']['in_sample']:.3f} | 2 models {row['oof_pair']['cross_fitted']:.3f} / "
          f"{row['oof_pair']['in_sample']:.3f} | carried to {row['models']}: "
          f"{row['oof_carried']['cross_fitted']:.3f} / {row['oof_carried']['in_sample']:.3f} | "
          f"test {row['test']:.3f} |", flush=True)


def provenance(runs: Path, test_data: Path) -> dict[str, str]:
    """Date, machine (torch's CPU capability too: it sets the speed), commit and data of a results line."""
    machine = (f"{platform.processor() or platform.machine()} ({torch.backends.cpu.get_cpu_capability()}), "
               f"{os.cpu_count()} cores")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine, "commit": commit.stdout.strip(),
            "runs": str(runs), "test_data": str(test_data)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="bench_pair_ensemble's runs folder (runs_LABEL)")
    parser.add_argument("--test-data", type=Path, required=True, help="the root of the test runs (its test20)")
    parser.add_argument("--postprocess", nargs="+", default=["as-trained"], choices=sorted(POSTPROCESS),
                        help="post-processing settings (their thresholds fitted by bench_pair_ensemble)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 3], help="ensemble sizes besides all")
    parser.add_argument("--out", type=Path, default=None, help="results file (default RUNS/../ensemble_size.jsonl)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    out = args.out or args.runs.parent / "ensemble_size.jsonl"
    common = provenance(args.runs, args.test_data)
    for setting in args.postprocess:
        row = {**common, **evaluate(args.runs, args.test_data, setting, args.sizes)}
        with open(out, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print_row(row)


if __name__ == "__main__":
    main()
