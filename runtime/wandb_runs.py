"""W&B without surprises, shared by training and the ensemble: offline when there is no key or network,
configs flattened so the dashboard filters by any field, and children that never log into their parent's
sweep run. ``wandb`` itself is imported only when a run starts (prediction must not pay for it)."""
from __future__ import annotations

import netrc
import os
import socket
import sys
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from runtime.launch import current_launch

PROBE_SECONDS = 3.0
"""How long a run may wait to learn that W&B is unreachable (a compute node without network) before it
logs offline instead; wandb itself would block for 90 s, then raise."""
RUN_VARIABLES: tuple[str, ...] = ("WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME",
                                  "WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_NAME", "WANDB_CONFIG_PATHS")
"""What a W&B agent sets for the one run it started: a child process that inherits them would log into it."""
OFFLINE_NOTE = "`wandb sync <folder>/wandb/offline-run-*` uploads later."


def _rank_zero() -> bool:
    """Whether this is the launch's first process (the one rank rule: ``runtime.launch.current_launch``)."""
    return current_launch().rank == 0


def _say(message: str) -> None:
    if _rank_zero():
        print(message, file=sys.stderr, flush=True)


def wandb_mode() -> str:
    """``WANDB_MODE`` if set; ``online`` when an API key is known and the server answers; else ``offline``
    (said once: the choice is then kept in ``WANDB_MODE`` for this process and its children)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY") or _netrc_has_wandb():
        if wandb_reachable():
            return "online"
        _say(f"W&B: an API key is set but {wandb_host()} is unreachable, logging offline; {OFFLINE_NOTE}")
    else:
        _say(f"W&B: no API key found (WANDB_API_KEY or ~/.netrc), logging offline; {OFFLINE_NOTE}")
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


def flatten_config(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"patch_size": [64, 64, 64]}}`` -> ``{"data.patch_size": [64, 64, 64]}``: one column per
    field in the runs table, so recipes are filtered and plotted by any of them."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) without the variables that tie a process to one W&B run: what a
    sweep trial gives the train.py and ensemble.py it starts, so each logs its own run."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in RUN_VARIABLES}


def start_run(*, project: str, entity: str | None, group: str, name: str, job_type: str,
              config: Mapping[str, Any], directory: Path) -> Any | None:
    """A W&B run (None when ``WANDB_MODE=disabled``), its files under ``directory/wandb``."""
    mode = wandb_mode()
    if mode == "disabled":
        return None
    import wandb

    directory.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=project, entity=entity, group=group, name=name, job_type=job_type,
                      config=flatten_config(config), dir=str(directory), mode=mode, reinit="create_new")
