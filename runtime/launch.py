"""Which process of a launch this is, from the launcher's environment, before any process group exists:
only global rank 0 creates, overwrites or writes the run folder (the other ranks wait for it), and the
ensemble's processes find each other (torchrun's rendezvous, or SLURM's tasks started by ``srun``)."""
from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from runtime.run_status import read_run_status


@dataclass(frozen=True)
class Launch:
    """This process's place in a (possibly multi-process) launch."""

    rank: int  # global rank
    world_size: int
    token: str  # shared by every process of one launch, different for every launch
    spawned_by_lightning: bool = False  # a child of Lightning's own launcher: its parent prepared the folder
    local_rank: int = 0  # the process's index on its node: which GPU it uses
    kind: str = "single"  # torchrun, slurm, lightning or single

    @property
    def prepares_run_folder(self) -> bool:
        return self.rank == 0 and not self.spawned_by_lightning


def current_launch(env: Mapping[str, str] | None = None) -> Launch:
    """torchrun (``RANK``, ``WORLD_SIZE``, ``TORCHELASTIC_RUN_ID``), SLURM (``SLURM_PROCID``, ``SLURM_NTASKS``,
    ``SLURM_JOB_ID``, ``SLURM_STEP_ID``), a child of Lightning's subprocess launcher (``LOCAL_RANK`` without
    ``RANK``), or a single process."""
    env = os.environ if env is None else env
    if "RANK" in env:
        run_id = env.get("TORCHELASTIC_RUN_ID", "")
        token = f"torchrun-{run_id}-{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}"
        return Launch(int(env["RANK"]), int(env.get("WORLD_SIZE", "1")), token,
                      local_rank=int(env.get("LOCAL_RANK", "0")), kind="torchrun")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        token = f"slurm-{env.get('SLURM_JOB_ID', '')}.{env.get('SLURM_STEP_ID', '')}"
        return Launch(int(env.get("SLURM_PROCID", "0")), int(env["SLURM_NTASKS"]), token,
                      local_rank=int(env.get("SLURM_LOCALID", "0")), kind="slurm")
    if int(env.get("LOCAL_RANK", "0")) > 0:
        token = f"lightning-{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}"
        return Launch(int(env["LOCAL_RANK"]), int(env.get("WORLD_SIZE", "1")), token, spawned_by_lightning=True,
                      local_rank=int(env["LOCAL_RANK"]), kind="lightning")
    return Launch(0, 1, f"pid-{os.getpid()}@{socket.gethostname()}")


TOKEN_KEY = "czii-picker/launch-token"


def new_token(kind: str) -> str:
    """A token no other launch has: host, process, start time and a random part."""
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{int(time.time())}-{secrets.token_hex(4)}"


def with_unique_token(launch: Launch, env: Mapping[str, str] | None = None, timeout_s: float = 900.0) -> Launch:
    """``launch`` with a token unique to this launch and shared by all its processes, for the run lock and
    ``run.json``. A single process makes its own. A torchrun launch's rank 0 makes one and hands it to the
    other ranks through the launch's own store (torchrun's agent store at MASTER_ADDR:MASTER_PORT), since its
    environment is the same on every host that runs a plain ``torchrun`` (run id ``none``, port 29500).
    SLURM's job and step ids are unique on their cluster; Lightning's own children never take the lock."""
    env = os.environ if env is None else env
    if launch.kind == "single":
        return replace(launch, token=new_token("pid"))
    if launch.kind != "torchrun":
        return launch
    if launch.world_size == 1:
        return replace(launch, token=new_token("torchrun"))
    if env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() != "true":  # no store to meet at before training
        return launch
    from torch.distributed import TCPStore  # imported here: only a torchrun launch needs it

    store = TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), is_master=False,
                     timeout=timedelta(seconds=timeout_s))
    key = f"{TOKEN_KEY}/{env.get('TORCHELASTIC_RESTART_COUNT', '0')}"  # a restarted attempt is a new launch
    if launch.rank == 0:
        token = new_token("torchrun")
        store.set(key, token)
    else:
        token = store.get(key).decode()  # waits for rank 0
    return replace(launch, token=token)


def slurm_rendezvous(env: Mapping[str, str] | None = None) -> str:
    """``tcp://host:port`` where the tasks of a SLURM step meet: ``MASTER_ADDR``/``MASTER_PORT`` when set, else
    the step's first node and Lightning's port rule (15000 + the job id's last four digits), so that a job
    script needs no extra line."""
    env = os.environ if env is None else env
    host = env.get("MASTER_ADDR") or first_slurm_host(env.get("SLURM_STEP_NODELIST") or env.get("SLURM_NODELIST")
                                                      or env.get("SLURM_JOB_NODELIST") or "")
    port = env.get("MASTER_PORT") or str(15000 + int((env.get("SLURM_JOB_ID") or "0")[-4:]))
    return f"tcp://{host}:{port}"


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    match = re.match(r"([^,\[]+)(?:\[([^],-]+))?", nodelist.strip())
    if not match:
        raise ValueError(f"cannot read a host from the SLURM node list {nodelist!r}; set MASTER_ADDR")
    return match.group(1) + (match.group(2) or "")


def wait_for_run_folder(run_dir: Path, launch: Launch, timeout: float = 900.0, poll: float = 0.5) -> None:
    """A rank > 0 waits until rank 0 of its own launch has prepared the run folder (its ``run.json`` names
    this launch), so no rank reads a folder being deleted or written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_run_status(run_dir)
        if status is not None and status.get("launch") == launch.token:
            return
        time.sleep(poll)
    raise TimeoutError(f"rank {launch.rank}: rank 0 of this launch did not prepare {run_dir} within {timeout:.0f} s "
                       "(did it fail? see its output)")
