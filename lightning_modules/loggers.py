"""Loggers: a CSV logger that always works, plus W&B (offline when no API key or network is there)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger

from config.experiment import LoggingConfig
from runtime.wandb_runs import flatten_config, wandb_mode

CSV_DIR = "csv"
TRAIN_JOB = "train"
"""W&B job type of a fold's training run; ``ensemble.py`` logs job type ``ensemble`` in the same group."""


def build_loggers(cfg: LoggingConfig, run_dir: Path, run_name: str, group: str,
                  config: dict[str, Any]) -> list[Logger]:
    """CSV metrics in ``run_dir/csv/version_<n>/metrics.csv`` (a resumed run adds a version rather than
    overwriting the last); W&B run ``run_name`` of job type ``train`` in group ``group`` (the experiment),
    with the full config flattened (``data.patch_size``, ``optim.lr``, ...)."""
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name=CSV_DIR)]
    if cfg.wandb and wandb_mode() != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        flat = flatten_config(config)
        if "data.fold" in flat:  # 3 and "3+4" in one column: text, so the dashboard filters both alike
            flat["data.fold"] = str(flat["data.fold"])
        loggers.append(WandbLogger(project=cfg.project, entity=cfg.entity, group=group, name=run_name,
                                   job_type=TRAIN_JOB, save_dir=str(run_dir), config=flat, mode=wandb_mode()))
    return loggers
