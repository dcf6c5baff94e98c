"""CLI: write a synthetic CZII dataset (copick layout) that the rest of the project trains on."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from datamodules.layout import TEST_TRUTH_DIR
from simulation import simulate_dataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--size`` takes demo, full or Z,Y,X (e.g. 48,96,96)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write")
    parser.add_argument("--size", default="demo",
                        help="demo (96x256x256), full (184x630x630) or Z,Y,X (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--noise", type=float, default=1.0, help="noise level; 1 is realistic, 0 noise-free")
    parser.add_argument("--templates", type=Path, default=None,
                        help="folder of MRC density maps (10 Å/voxel) named <particle>.mrc or <pdb_id>.mrc")
    parser.add_argument("--n-test", type=int, default=3, help="number of test runs (picks under test_truth)")
    parser.add_argument("--tomo-types", nargs="+", default=["denoised"], choices=["denoised", "wbp"],
                        help="tomogram types to write per run")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset in --out (otherwise a non-empty --out is an error)")
    return parser.parse_args(argv)


def clear_previous(out: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless asked; when asked, drop the old dataset's parts."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite to replace the dataset there")
    for part in ("train", "test", TEST_TRUTH_DIR):
        if (out / part).is_dir():
            shutil.rmtree(out / part)


def main(argv: list[str] | None = None) -> None:
    """Simulate the dataset with a progress bar over runs and print where it went."""
    args = parse_args(argv)
    try:
        clear_previous(args.out, args.overwrite)
        out = simulate_dataset(args.out, size=args.size, seed=args.seed, noise=args.noise,
                               templates=args.templates, n_test=args.n_test,
                               tomo_types=tuple(args.tomo_types), progress=True)
    except (ValueError, FileNotFoundError, FileExistsError) as err:  # bad size / template folder: a message, not a traceback
        sys.exit(f"simulate.py: error: {err}")
    print(f"wrote synthetic dataset to {out}")


if __name__ == "__main__":
    main()
