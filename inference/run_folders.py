"""A run folder as train.py writes it (``<runs>/<experiment>_fold<k>/``): where its files are, and reading its
config, its split and the voxel spacing it was trained at."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.experiment import ExperimentConfig
from config.resolve import experiment_config
from config.yaml_cli import load_yaml
from particles import VOXEL_SPACING, checked_spacing

CONFIG_NAME = "config.yaml"
SPLIT_NAME = "split.yaml"
CHECKPOINT_DIR = "checkpoints"
WEIGHTS_NAME = "weights.ckpt"
"""The last epoch's EMA weights and config: what the ensemble and ``--init-from RUN_FOLDER`` read."""


@dataclass
class RunPaths:
    """The files of one run folder."""

    run_dir: Path
    config: Path
    last: Path  # the full training state, every epoch: what --resume reads
    best: Path  # with validation.checkpoint best: the best epoch's EMA weights and config
    weights: Path  # every epoch: the last epoch's EMA weights and config, what the ensemble reads by default


def fold_label(fold: int | str) -> str:
    """The fold as it appears in a run folder's name (``all`` for -1)."""
    return "all" if str(fold) in ("-1", "all") else str(fold)


def folder_paths(run_dir: str | Path) -> RunPaths:
    """The files of the run folder ``run_dir``: found from the folder itself, never from names in its config."""
    run_dir = Path(run_dir)
    ckpt = run_dir / CHECKPOINT_DIR
    return RunPaths(run_dir, run_dir / CONFIG_NAME, ckpt / "last.ckpt", ckpt / "best.ckpt", ckpt / WEIGHTS_NAME)


def run_paths(runs_dir: str | Path, cfg: ExperimentConfig) -> RunPaths:
    """The files of the run train.py makes for ``cfg`` under ``runs_dir`` (``<experiment>_fold<k>``)."""
    return folder_paths(Path(runs_dir) / f"{cfg.experiment}_fold{fold_label(cfg.data.fold)}")


def load_run_config(path: str | Path) -> ExperimentConfig:
    """The resolved config saved beside a run's checkpoints, through the command line's value checks."""
    return experiment_config(load_yaml(path), f"run config {path}")


def load_run_spacing(run_dir: str | Path | None) -> float | None:
    """The voxel spacing (Å) a run was trained at, from its ``split.yaml``; None if it does not say."""
    path = Path(run_dir) / SPLIT_NAME if run_dir is not None else None
    if path is None or not path.is_file():
        return None
    spacing = load_yaml(path).get("voxel_spacing")
    return None if spacing is None else checked_spacing(spacing, f"split file {path}")


def check_voxel_spacing(trained: float | None, given: float, where: str, tolerance: float = 0.01) -> None:
    """A network learns sizes in voxels: refuse tomograms more than ``tolerance`` (relative) off the spacing
    it was trained at (10.0 vs 10.012 Å passes; 20 Å binned data does not: rescale it first)."""
    trained = VOXEL_SPACING if trained is None else trained
    if abs(given / trained - 1.0) > tolerance:
        raise ValueError(f"{where} is at {given:g} Å/voxel but the models were trained at {trained:g} Å/voxel; "
                         f"rescale the tomograms to {trained:g} Å/voxel or train at {given:g}")


def load_run_split(run_dir: str | Path) -> tuple[list[str], list[str]] | None:
    """(training runs, held-out runs) a run was trained with, from its ``split.yaml``; None if it has none."""
    path = Path(run_dir) / SPLIT_NAME
    if not path.is_file():
        return None
    split = load_yaml(path)
    if not isinstance(split, dict) or not all(isinstance(split.get(k), list) for k in ("train_runs", "val_runs")):
        raise ValueError(f"{path}: expected lists 'train_runs' and 'val_runs'")
    return [str(r) for r in split["train_runs"]], [str(r) for r in split["val_runs"]]
