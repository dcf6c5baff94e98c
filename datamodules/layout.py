"""Where files live in the copick / Kaggle CZII layout; every reader and writer asks here."""
from __future__ import annotations

from pathlib import Path

VOXEL_SPACING_DIR = "VoxelSpacing10.000"
TOMOGRAM_TYPES: tuple[str, ...] = ("denoised", "wbp", "ctfdeconvolved", "isonetcorrected")
TRAIN_RUNS: tuple[str, ...] = ("TS_5_4", "TS_6_4", "TS_6_6", "TS_69_2", "TS_73_6", "TS_86_3", "TS_99_9")
SPLITS: tuple[str, ...] = ("train", "test")
TEST_TRUTH_DIR = "test_truth"
"""Simulated datasets keep the true test picks apart, under ``<root>/test_truth/overlay``."""
COPICK_CONFIG_NAME = "copick_config.json"


def static_runs_dir(root: Path, split: str) -> Path:
    """``<root>/<split>/static/ExperimentRuns``: one folder per run holding its tomograms."""
    return Path(root) / split / "static" / "ExperimentRuns"


def overlay_runs_dir(overlay_root: Path) -> Path:
    """``<overlay_root>/ExperimentRuns`` where ``overlay_root`` is e.g. ``<root>/train/overlay``."""
    return Path(overlay_root) / "ExperimentRuns"


def train_overlay_root(root: Path) -> Path:
    return Path(root) / "train" / "overlay"


def truth_overlay_root(root: Path) -> Path:
    return Path(root) / TEST_TRUTH_DIR / "overlay"


def tomogram_path(root: Path, split: str, run: str, tomo_type: str = "denoised") -> Path:
    """``<root>/<split>/static/ExperimentRuns/<run>/VoxelSpacing10.000/<type>.zarr``."""
    return static_runs_dir(root, split) / run / VOXEL_SPACING_DIR / f"{tomo_type}.zarr"


def picks_dir(overlay_root: Path, run: str) -> Path:
    """``<overlay_root>/ExperimentRuns/<run>/Picks``: one ``<particle>.json`` per class."""
    return overlay_runs_dir(overlay_root) / run / "Picks"


def pick_file(overlay_root: Path, run: str, particle_name: str) -> Path:
    return picks_dir(overlay_root, run) / f"{particle_name}.json"
