"""Loggers: a CSV logger that always works, plus W&B (offline when no API key is set)."""
from __future__ import annotations

import netrc
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_info

from config.experiment import LoggingConfig

CSV_DIR = "csv"
PROBE_SECONDS = 3.0
"""How long a run may wait to learn that W&B is unreachable (a compute node without network) before it
logs offline instead; wandb itself would block for 90 s, then raise."""


def wandb_mode() -> str:
    """``WANDB_MODE`` if set; ``online`` when an API key is known; else ``offline`` (said once)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY") or _netrc_has_wandb():
        if wandb_reachable():
            return "online"
        rank_zero_info(f"W&B: an API key is set but {wandb_host()} is unreachable, logging offline; "
                       "`wandb sync <run>/wandb/offline-run-*` uploads later.")
        os.environ["WANDB_MODE"] = "offline"
        return "offline"
    rank_zero_info("W&B: no API key found (WANDB_API_KEY or ~/.netrc), logging offline; "
                   "`wandb sync <run>/wandb/offline-run-*` uploads later.")
    os.environ["WANDB_MODE"] = "offline"
    return "offline"


def wandb_host() -> tuple[str, int]:
    """(host, port) of the W&B server: ``WANDB_BASE_URL`` or the public one."""
    url = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    return url.hostname or "api.wandb.ai", url.port or (80 if url.scheme == "http" else 443)


def wandb_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the W&B server opens within ``timeout`` seconds."""
    try:
        with socket.create_connection(wandb_host(), timeout=timeout):
            return True
    except OSError:
        return False


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
