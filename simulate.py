"""CLI: write a synthetic CZII dataset (copick layout) that the rest of the project trains on.

Difficulty is the SNR of the protein signal (see simulation/difficulty.py): ``--difficulty realistic``
(default), ``easy``, ``hard`` or a number. Every run draws its own imaging (defocus, B-factor, phase
flipping or not, tilt range, low-pass, SNR around the level); ``<out>/difficulty.json`` records each run's
physics and per-class SNR/CNR.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from runtime.cli_errors import run_tool
from choices import ImagingFamily, values
from dataio.particle_sets import particles_from_source
from particles import CZII_PARTICLES
from simulation import simulate_dataset
from simulation.dataset import DIFFICULTY_REPORT, particle_models, resolve_size, simulated_train_runs
from simulation.difficulty import (DEFAULT_DIFFICULTY, DIFFICULTY_LEVELS, FAMILY_LEVELS, ImagingConfig, resolve_snr,
                                   snr_range)
from simulation.ownership import check_budget, clear_dataset
from simulation.templates import load_templates

IMAGING_FLAGS = [f for f in dataclasses.fields(ImagingConfig) if f.name != "snr"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--size`` takes demo, full or Z,Y,X (e.g. 48,96,96)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write")
    parser.add_argument("--size", default="demo",
                        help="demo (96x256x256), full (184x630x630) or Z,Y,X (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    levels = ", ".join(f"{k} (SNR {v}; {FAMILY_LEVELS['tilt-series'][k]} with --family tilt-series)"
                       for k, v in DIFFICULTY_LEVELS.items())
    parser.add_argument("--difficulty", default=DEFAULT_DIFFICULTY,
                        help=f"{levels}, or an SNR per protein voxel as a number; inf: no noise; LOW:HIGH "
                             "(e.g. 1:8 or hard:easy): each run's SNR log-uniform in that range, for a "
                             f"pre-training set of every difficulty (replaces --snr-spread) "
                             f"(default: {DEFAULT_DIFFICULTY})")
    parser.add_argument("--templates", type=Path, default=None,
                        help="folder of MRC density maps (10 Å/voxel) named <particle>.mrc or <pdb_id>.mrc "
                             "(distractor*.mrc: unlabelled); classes without a map keep the built-in shape")
    parser.add_argument("--particles", default="czii",
                        help="the classes to simulate: czii (the challenge's six, default) or a particles file "
                             "(YAML/JSON: particles: [{name, radius, weight, ...}]) or copick config; classes "
                             "without a map in --templates and without a built-in shape are ellipsoids of "
                             "their radius")
    parser.add_argument("--n-train", type=int, default=None,
                        help="number of train runs (with picks); default: the seven CZII run names (folds.yaml "
                             "of the repository); a number names them TS_sim_train_<i>. Every dataset gets "
                             "<out>/folds.yaml (one run per fold) for --data.folds_file")
    parser.add_argument("--n-test", type=int, default=3, help="number of test runs (picks under test_truth)")
    parser.add_argument("--tomo-types", nargs="+", default=["denoised"], choices=["denoised", "wbp"],
                        help="tomogram types to write per run")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset in --out (otherwise a non-empty --out is an error)")
    physics = parser.add_argument_group("per-run imaging (each run draws its own value in these ranges)")
    for f in IMAGING_FLAGS:
        nargs = 2 if isinstance(f.default, tuple) else None
        text = isinstance(f.default, str)
        physics.add_argument(f"--{f.name.replace('_', '-')}", type=str if text else float, nargs=nargs,
                             default=f.default, choices=values(ImagingFamily) if text else None,
                             metavar=("LOW", "HIGH") if nargs else None if text else "X",
                             help=f"{f.metadata['help']} (default: {f.default})")
    return parser.parse_args(argv)


def imaging_from(args: argparse.Namespace) -> ImagingConfig:
    """The imaging config of the command line (a bad level or range is a ValueError)."""
    values = {f.name: tuple(getattr(args, f.name)) if isinstance(f.default, tuple) else getattr(args, f.name)
              for f in IMAGING_FLAGS}
    ranged = snr_range(args.difficulty, args.family)
    if ranged is None:
        return ImagingConfig(snr=resolve_snr(args.difficulty, args.family), **values)
    snr, values["snr_spread"] = ranged
    return ImagingConfig(snr=snr, **values)


def clear_previous(out: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless asked; when asked, drop only the old dataset's parts that
    simulate.py's own marker names (a folder without it is refused: nothing there is ours to delete)."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to replace the dataset there")
    clear_dataset(out)


def main(argv: list[str] | None = None) -> int:
    """Simulate the dataset with a progress bar over runs and print where it went (bad input: exit code 2)."""
    args = parse_args(argv)
    return run_tool("simulate.py", lambda: simulate(args))


def simulate(args: argparse.Namespace) -> int:
    imaging = imaging_from(args)
    particles = particles_from_source(args.particles, args.out)
    templates = load_templates(args.templates, particles) if args.templates else None
    if templates is not None or particles != CZII_PARTICLES:
        print("particle models: " + "; ".join(f"{k}: {v}"
                                              for k, v in particle_models(templates, particles).items()))
    if args.out.exists() and not args.out.is_dir():
        raise FileExistsError(f"--out {args.out} is a file, not a folder")
    shape, train_runs = resolve_size(args.size), simulated_train_runs(args.n_train)
    if args.n_test < 0:
        raise ValueError(f"--n-test must be >= 0, got {args.n_test}")
    # every refusal (a bad value, too little memory or disk, a folder that is not ours) before the old set goes
    check_budget(args.out, shape, len(train_runs) + args.n_test, len(args.tomo_types))
    clear_previous(args.out, args.overwrite)
    out = simulate_dataset(args.out, size=args.size, seed=args.seed, imaging=imaging, templates=templates,
                           n_train=args.n_train, n_test=args.n_test, tomo_types=tuple(args.tomo_types), progress=True,
                           difficulty=args.difficulty, particles=particles)
    level = (f"SNR log-uniform per run in {args.difficulty}" if snr_range(args.difficulty, args.family)
             else f"difficulty {args.difficulty}, SNR {imaging.snr}")
    print(f"wrote synthetic dataset to {out} ({level}; per-run physics and per-class SNR in "
          f"{out / DIFFICULTY_REPORT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
