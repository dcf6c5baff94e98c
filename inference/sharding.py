"""Spreading tomograms over processes (torchrun / SLURM): each rank predicts every world-th run."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TypeVar

import pandas as pd
import torch
import torch.distributed as dist

from runtime.launch import current_launch, slurm_rendezvous

T = TypeVar("T")


def shard_runs(runs: list[str], rank: int, world_size: int) -> list[str]:
    """The runs rank ``rank`` of ``world_size`` handles: a strided slice, so sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    return runs[rank::world_size]


def init_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int, torch.device]:
    """(rank, world size, device) from the launcher's environment (torchrun, or the tasks of ``srun`` without
    torchrun, which meet at ``runtime.launch.slurm_rendezvous``); a single process when there is none."""
    launch = current_launch(env)
    if launch.world_size == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        torch.cuda.set_device(launch.local_rank)
        device = torch.device("cuda", launch.local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():  # rank 0 fits the thresholds while the others wait: allow it hours
        where = slurm_rendezvous(env) if launch.kind == "slurm" else "env://"
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=where, rank=launch.rank,
                                world_size=launch.world_size, timeout=timedelta(hours=4))
    return launch.rank, launch.world_size, device


def close_process_group() -> None:
    """Destroy the process group ``init_from_env`` made, if any: a rank leaving with gloo's threads still
    running aborts at exit ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def from_rank_zero(value: T) -> T:
    """Rank 0's ``value`` on every rank (identity without a process group): work done once, shared."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_tables(table: pd.DataFrame) -> pd.DataFrame:
    """Every rank's picks on every rank (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return table
    parts: list[pd.DataFrame | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, table)
    return pd.concat([p for p in parts if p is not None], ignore_index=True)


def gather_objects(value: T) -> list[T]:
    """Every rank's ``value``, in rank order, on every rank (``[value]`` without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    parts: list[T | None] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, value)
    return parts  # type: ignore[return-value]
