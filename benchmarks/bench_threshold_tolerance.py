"""How the threshold tolerance trades out-of-fold F4 for robustness: one trained 7-fold ensemble, its OOF
predictions made once, thresholds fitted at each tolerance, test runs of one or more datasets scored.

``python -m benchmarks.bench_threshold_tolerance --runs RUNS --data ROOT [ROOT ...]``

Uses the very functions ``ensemble.py`` uses (OOF prediction, suppressed fitting, pick selection), so a row
at tolerance t equals ``ensemble.py --threshold-tolerance t --score`` on the same runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.bench_recipes import test_candidates
from inference.fold_runs import ensemble_settings, find_fold_runs
from inference.oof import predict_oof
from particles import CZII_PARTICLES, PARTICLE_NAMES
from postprocess.class_suppression import fit_thresholds_suppressed, select_picks
from postprocess.metric import load_ground_truth, score_picks

TOLERANCES: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="runs folder of one 7-fold experiment")
    parser.add_argument("--data", nargs="+", type=Path, required=True, help="dataset roots with test_truth")
    args = parser.parse_args(argv)
    folds = find_fold_runs(args.runs)
    settings = ensemble_settings(folds[0].config)
    oof = predict_oof(folds, settings)
    tests = {d.name: (test_candidates(folds, d, settings), load_ground_truth(d / "test_truth", particles=CZII_PARTICLES))
             for d in args.data}
    for tolerance in TOLERANCES:
        thresholds, _ = fit_thresholds_suppressed(oof.candidates, oof.truth, settings.inference.class_suppression,
                                                  tolerance, particles=CZII_PARTICLES)
        picked = select_picks(oof.candidates, thresholds, settings.inference.class_suppression,
                              particles=CZII_PARTICLES)
        oof_score = score_picks(picked, oof.truth, runs=oof.runs, particles=CZII_PARTICLES).score
        line = f"tolerance {tolerance:<5} OOF {oof_score:.3f}"
        for name, (candidates, truth) in tests.items():
            report = score_picks(select_picks(candidates, thresholds, settings.inference.class_suppression,
                                              particles=CZII_PARTICLES), truth, particles=CZII_PARTICLES)
            per_class = " ".join(f"{n[:6]} {report.table.loc[n, 'f4']:.2f}" for n in PARTICLE_NAMES)
            line += f" | {name} {report.score:.3f} ({per_class})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
