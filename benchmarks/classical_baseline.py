"""The classical baseline every accuracy table is compared with: NCC template matching, thresholds fitted on
the training runs only, scored with the project's metric on the held-out test runs.

``python -m benchmarks.classical_baseline --data ROOT [--json results.json]``

Templates (benchmarks/template_matching.py) are rotation-averaged means of the training runs' particles.
On each training run the templates come from the other training runs (leave one run out), so the
choices fitted there (per class: threshold, and whether to smooth the NCC map before peak picking) rest
on scores the run's own particles did not shape; the test runs use templates from all training runs.
The last line printed is ``score <test F4>``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from benchmarks.template_matching import class_templates, score_maps, smooth_maps
from datamodules.normalization import normalize
from dataio.sources import TomogramSource, open_source
from dataio.particle_sets import particles_from_source
from particles import CZII_PARTICLES, ParticleSet, angstrom_to_index
from runtime.atomic import check_writable, write_text_atomic
from runtime.cli_errors import run_tool
from postprocess.heatmap_nms import pick_particles
from postprocess.metric import MetricReport, format_report, score_picks
from postprocess.thresholds import apply_thresholds, fit_thresholds
from dataio.pick_writers import write_submission

CANDIDATE_THRESHOLD: float = 0.0  # NCC above which peaks are candidates for threshold fitting
MAX_CANDIDATES: int = 300  # per class and run; a 92x315x315 run holds a few dozen particles
KERNEL_FRACTION: float = 1.0  # NMS kernel ≈ the class radius, as the 1st place used


def centres_by_class(picks: pd.DataFrame, spacing: float) -> dict[str, np.ndarray]:
    """Class name -> ``[n, 3]`` continuous z, y, x indices of the picks."""
    return {name: angstrom_to_index(rows[["x", "y", "z"]].to_numpy(), spacing)
            for name, rows in picks.groupby("particle_type")}


def candidates(maps: np.ndarray, run: str, smoothed: dict[str, bool], spacing: float,
               particles: ParticleSet = CZII_PARTICLES) -> pd.DataFrame:
    """NCC peaks of every class on one run's score maps (smoothed where asked), with their NCC as score."""
    return pick_particles(torch.from_numpy(smooth_maps(maps, smoothed, spacing, particles)), run, CANDIDATE_THRESHOLD,
                          spacing=spacing, kernel_fraction=KERNEL_FRACTION, max_per_class=MAX_CANDIDATES,
                          particles=particles)


def load_runs(source: TomogramSource) -> tuple[list[str], list[np.ndarray], list[pd.DataFrame]]:
    """Run names, z-scored volumes and picks of one split."""
    names = source.run_names()
    volumes = [normalize(source.load_tomogram(r)) for r in tqdm(names, desc="reading", leave=False)]
    return names, volumes, [source.picks(r) for r in names]


def fit_on_training(names: list[str], maps: list[np.ndarray], truth: pd.DataFrame, spacing: float,
                    particles: ParticleSet = CZII_PARTICLES) -> tuple[dict[str, bool], dict[str, float], MetricReport]:
    """Per class, whether to smooth its NCC map and its threshold: whichever gives the better F4 on the
    training runs (each run's maps made with templates from the other runs)."""
    fits = {}
    classes = particles.names
    for smooth in (False, True):
        choice = {n: smooth for n in classes}
        cands = pd.concat([candidates(m, r, choice, spacing, particles) for r, m in zip(names, maps)],
                          ignore_index=True)
        thresholds = fit_thresholds(cands, truth, particles=particles)
        fits[smooth] = (cands, thresholds, score_picks(apply_thresholds(cands, thresholds, particles=particles), truth,
                                                       runs=names, particles=particles))
    smoothed = {n: bool(fits[True][2].table.loc[n, "f4"] > fits[False][2].table.loc[n, "f4"]) for n in classes}
    thresholds = {n: fits[smoothed[n]][1][n] for n in classes}
    cands = pd.concat([fits[smoothed[n]][0].query("particle_type == @n") for n in classes], ignore_index=True)
    return smoothed, thresholds, score_picks(apply_thresholds(cands, thresholds, particles=particles), truth,
                                             runs=names,
                                             particles=particles)


def run_baseline(root: str | Path, tomo_type: str = "denoised", test_root: str | Path | None = None,
                 particles: ParticleSet = CZII_PARTICLES) -> dict:
    """Fit on the train split, score the test split (of ``test_root`` if given: a cross-domain test, templates
    and thresholds from ``root``); returns the choices, both reports and timings."""
    start = time.perf_counter()
    train = open_source(root, "train", tomo_type, particles=particles)
    test = open_source(test_root or root, "test", tomo_type, particles=particles)
    if not train.has_picks or not test.has_picks:
        raise ValueError(f"{root}: the baseline needs picks for the train split and ground truth for the test split")
    spacing = train.voxel_spacing
    names, volumes, picks = load_runs(train)
    centres = [centres_by_class(p, spacing) for p in picks]
    train_maps = []
    for i in tqdm(range(len(names)), desc="matching train runs (leave one out)"):
        others = [j for j in range(len(names)) if j != i]
        templates = class_templates([volumes[j] for j in others], [centres[j] for j in others], spacing, particles)
        train_maps.append(score_maps(volumes[i], templates, spacing, particles))
    smoothed, thresholds, train_report = fit_on_training(names, train_maps, pd.concat(picks, ignore_index=True),
                                                         spacing, particles)
    del train_maps
    templates = class_templates(volumes, centres, spacing, particles)
    test_names, test_volumes, test_picks = load_runs(test)
    test_cands = [candidates(score_maps(v, templates, spacing, particles), r, smoothed, spacing, particles)
                  for r, v in tqdm(list(zip(test_names, test_volumes)), desc="matching test runs")]
    test_picked = apply_thresholds(pd.concat(test_cands, ignore_index=True), thresholds, particles=particles)
    test_report = score_picks(test_picked, pd.concat(test_picks, ignore_index=True), runs=test_names,
                              particles=particles)
    return {"thresholds": thresholds, "smoothed": smoothed, "train": train_report, "test": test_report,
            "test_picks": test_picked,
            "seconds": time.perf_counter() - start, "train_runs": names, "test_runs": test_names}


def report_dict(report: MetricReport) -> dict:
    """Score and per-class F4/precision/recall as plain JSON."""
    table = report.table
    return {"score": report.score, "per_class": {n: {c: float(table.loc[n, c]) for c in ("precision", "recall", "f4")}
                                                 for n in table.index}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="copick root with train picks and test ground truth")
    parser.add_argument("--test-data", help="score the test runs of this root instead (cross-domain: templates "
                                            "and thresholds still come from --data's training runs)")
    parser.add_argument("--tomo-type", default="denoised", help="tomogram type to match (default: denoised)")
    parser.add_argument("--json", type=Path, help="also write thresholds and scores to this JSON file")
    parser.add_argument("--particles", default="czii", help="the classes: czii (default), copick (--data's copick "
                                                            "config) or a particles file")
    parser.add_argument("--submission", type=Path,
                        help="also write the test picks as a submission CSV (to compare with postprocess.metric)")
    args = parser.parse_args(argv)
    return run_tool("benchmarks.classical_baseline", lambda: report_baseline(args))


def report_baseline(args: argparse.Namespace) -> int:
    for flag, path in (("--submission", args.submission), ("--json", args.json)):
        if path is not None:
            check_writable(path, flag)  # before minutes of template matching
    particles = particles_from_source(args.particles, args.data)
    result = run_baseline(args.data, args.tomo_type, args.test_data, particles)
    smoothed = [n for n, v in result["smoothed"].items() if v] or ["none"]
    print(f"classical baseline (NCC template matching), thresholds fitted on {len(result['train_runs'])} "
          f"training runs (leave-one-run-out templates); smoothed classes: {', '.join(smoothed)}")
    print(format_report(result["train"]).replace("\nscore", "\ntrain score"))
    print(f"test runs ({len(result['test_runs'])}), {result['seconds']:.0f} s in all:")
    print(format_report(result["test"]))
    if args.submission:
        write_submission(result["test_picks"], args.submission, particles=particles)
    if args.json:
        write_text_atomic(args.json, json.dumps({
            "data": str(args.data), "test_data": str(args.test_data or args.data), "thresholds": result["thresholds"], "smoothed": result["smoothed"],
            "seconds": result["seconds"],
            "train": report_dict(result["train"]), "test": report_dict(result["test"])}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
