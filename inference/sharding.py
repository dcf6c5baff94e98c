"""Spreading tomograms over processes (torchrun / SLURM): each rank predicts every world-th run."""
from __future__ import annotations

import os
from datetime import timedelta
from typing import TypeVar

import pandas as pd
import torch
import torch.distributed as dist

T = TypeVar("T")


def shard_runs(runs: list[str], rank: int, world_size: int) -> list[str]:
    """The runs rank ``rank`` of ``world_size`` handles: a strided slice, so sizes differ by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    return runs[rank::world_size]


def init_from_env() -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; a single process when it is absent."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():  # rank 0 fits the thresholds while the others wait: allow it hours
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=4))
    return rank, world_size, device


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
