"""A run folder as train.py writes it and inference reads it (``<runs>/<experiment>_fold<k>/``): the one owner
of its files, identified by its own path, never by names inside its config.

``config.yaml`` (the full resolved config), ``split.yaml`` (train and held-out runs, voxel spacing), ``run.json``
(who made it, how it ended), the lock beside it, ``checkpoints/last.ckpt`` (the full training state, for
``--resume``), ``checkpoints/weights.ckpt`` (the last epoch's EMA weights: what the ensemble reads),
``checkpoints/best.ckpt`` (with ``validation.checkpoint best``), and the fold validation's
``oof_candidates.csv`` and ``val_metrics.json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from config.experiment import ExperimentConfig
from config.resolve import experiment_config
from config.yaml_cli import load_yaml, to_dict
from runtime.atomic import write_text_atomic
from runtime.bounded_reads import read_json
from runtime.run_lock import acquire_run_lock, lock_path, release_run_lock
from runtime.run_status import RUN_STATUS_NAME, is_run_folder, read_run_status, run_state, write_run_status
from particles import VOXEL_SPACING, checked_spacing

CONFIG_NAME = "config.yaml"
SPLIT_NAME = "split.yaml"
CHECKPOINT_DIR = "checkpoints"
WEIGHTS_NAME = "weights.ckpt"
"""The last epoch's EMA weights and config: what the ensemble and ``--init-from RUN_FOLDER`` read."""
OOF_CANDIDATES = "oof_candidates.csv"
VAL_METRICS = "val_metrics.json"


def fold_label(fold: int | str) -> str:
    """The fold as it appears in a run folder's name (``all`` for -1)."""
    return "all" if str(fold) in ("-1", "all") else str(fold)


@dataclass(frozen=True)
class RunSplit:
    """The split a run trained with, as it saved it."""

    train_runs: list[str]
    val_runs: list[str]
    voxel_spacing: float | None  # Å per voxel of the tomograms it trained on


@dataclass(frozen=True)
class RunFolder:
    """One run folder and its files."""

    run_dir: Path

    @classmethod
    def of(cls, runs_dir: str | Path, cfg: ExperimentConfig) -> RunFolder:
        """The folder train.py makes for ``cfg`` under ``runs_dir`` (``<experiment>_fold<k>``)."""
        return cls(Path(runs_dir) / f"{cfg.experiment}_fold{fold_label(cfg.data.fold)}")

    @classmethod
    def found_under(cls, runs_dir: str | Path) -> list[RunFolder]:
        """Every folder directly under ``runs_dir`` that holds a ``config.yaml``, sorted."""
        return [cls(path.parent) for path in sorted(Path(runs_dir).glob(f"*/{CONFIG_NAME}"))]

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def config_file(self) -> Path:
        return self.run_dir / CONFIG_NAME

    @property
    def split_file(self) -> Path:
        return self.run_dir / SPLIT_NAME

    @property
    def status_file(self) -> Path:
        return self.run_dir / RUN_STATUS_NAME

    @property
    def lock_file(self) -> Path:
        return lock_path(self.run_dir)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    @property
    def last(self) -> Path:
        return self.checkpoint_dir / "last.ckpt"

    @property
    def best(self) -> Path:
        return self.checkpoint_dir / "best.ckpt"

    @property
    def weights(self) -> Path:
        return self.checkpoint_dir / WEIGHTS_NAME

    @property
    def oof_candidates(self) -> Path:
        return self.run_dir / OOF_CANDIDATES

    @property
    def val_metrics(self) -> Path:
        return self.run_dir / VAL_METRICS

    # --- reading ---------------------------------------------------------------------------------------------
    def read_config(self) -> ExperimentConfig:
        """The resolved config saved here, through the command line's value checks."""
        return experiment_config(load_yaml(self.config_file), f"run config {self.config_file}")

    def read_split(self) -> RunSplit | None:
        """The split it trained with; None for a folder that has none (older versions, or not started)."""
        if not self.split_file.exists():
            return None
        doc = load_yaml(self.split_file)
        if not all(isinstance(doc.get(k), list) for k in ("train_runs", "val_runs")):
            raise ValueError(f"{self.split_file}: expected lists 'train_runs' and 'val_runs'")
        spacing = doc.get("voxel_spacing")
        return RunSplit([str(r) for r in doc["train_runs"]], [str(r) for r in doc["val_runs"]],
                        None if spacing is None else checked_spacing(spacing, f"split file {self.split_file}"))

    def spacing(self) -> float | None:
        """The voxel spacing (Å) it trained at; None when its split file does not say."""
        split = self.read_split()
        return None if split is None else split.voxel_spacing

    def checkpoint(self, choice: str = "last") -> Path | None:
        """The weights to predict with: ``best.ckpt`` when ``choice`` is "best" and it exists, else the last
        epoch's ``weights.ckpt``, else ``last.ckpt`` (runs older than weights.ckpt); None when none exists."""
        wanted = [self.best] if choice == "best" else []
        return next((p for p in (*wanted, self.weights, self.last) if p.is_file()), None)

    def status(self) -> dict | None:
        """Its ``run.json`` record; None when train.py did not make it (or an older version did)."""
        return read_run_status(self.run_dir)

    def state(self) -> str:
        """``finished``, ``running``, ``interrupted``, ``failed`` or ``unknown``."""
        return run_state(self.run_dir)

    def made_by_train(self) -> bool:
        """Whether train.py created it (only such a folder is ever deleted by ``--overwrite``)."""
        return is_run_folder(self.run_dir)

    def metrics(self) -> dict | None:
        """The best validation's metrics (fold validation's record), None before the first validation."""
        return read_json(self.val_metrics, "validation metrics") if self.val_metrics.is_file() else None

    # --- writing (train.py, rank 0 only) ---------------------------------------------------------------------
    def write_config(self, cfg: ExperimentConfig) -> Path:
        return write_text_atomic(self.config_file, yaml.safe_dump(to_dict(cfg), sort_keys=False))

    def write_split(self, fold: object, train_runs: list[str], val_runs: list[str], voxel_spacing: float) -> Path:
        """The split as trained: the OOF record stays right whatever folds.yaml says later."""
        return write_text_atomic(self.split_file, yaml.safe_dump(
            {"fold": fold, "train_runs": list(train_runs), "val_runs": list(val_runs),
             "voxel_spacing": float(voxel_spacing)}))

    def write_status(self, status: str, **details: object) -> Path:
        return write_run_status(self.run_dir, status, **details)

    def acquire(self, launch: str) -> Path:
        """Take this folder for the launch ``launch`` (refused, by name, when another job holds it)."""
        return acquire_run_lock(self.run_dir, launch)

    def release(self, launch: str) -> None:
        release_run_lock(self.run_dir, launch)


def check_voxel_spacing(trained: float | None, given: float, where: str, tolerance: float = 0.01) -> None:
    """A network learns sizes in voxels: refuse tomograms more than ``tolerance`` (relative) off the spacing
    it was trained at (10.0 vs 10.012 Å passes; 20 Å binned data does not: rescale it first)."""
    trained = VOXEL_SPACING if trained is None else trained
    if abs(given / trained - 1.0) > tolerance:
        raise ValueError(f"{where} is at {given:g} Å/voxel but the models were trained at {trained:g} Å/voxel; "
                         f"rescale the tomograms to {trained:g} Å/voxel or train at {given:g}")
