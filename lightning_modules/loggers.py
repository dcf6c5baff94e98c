"""Loggers: a CSV logger that always works, plus W&B (offline when no API key is set)."""
from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_info

from lightning_modules.config import LoggingConfig

CSV_DIR = "csv"


def wandb_mode() -> str:
    """``WANDB_MODE`` if set; ``online`` when an API key is known; else ``offline`` (said once)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY") or _netrc_has_wandb():
        return "online"
    rank_zero_info("W&B: no API key found (WANDB_API_KEY or ~/.netrc), logging offline; "
                   "`wandb sync <run>/wandb/offline-run-*` uploads later.")
    os.environ["WANDB_MODE"] = "offline"
    return "offline"


def _netrc_has_wandb() -> bool:
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def build_loggers(cfg: LoggingConfig, run_dir: Path, run_name: str, group: str,
                  config: dict[str, Any]) -> list[Logger]:
    """CSV metrics in ``run_dir/csv/version_<n>/metrics.csv`` (a resumed run adds a version rather than
    overwriting the last); W&B run ``run_name`` in group ``group`` (the experiment)."""
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name=CSV_DIR)]
    if cfg.wandb and wandb_mode() != "disabled":
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(WandbLogger(project=cfg.project, entity=cfg.entity, group=group, name=run_name,
                                   save_dir=str(run_dir), config=config, mode=wandb_mode()))
    return loggers
