"""Shared fixtures: tiny simulated datasets, CPU only, no network, no W&B account."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

TINY_SHAPE = (48, 96, 96)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole simulated dataset (7 train runs with picks, 2 test runs) of tiny volumes; built once."""
    from simulation import simulate_dataset

    root = tmp_path_factory.mktemp("tiny_dataset")
    return simulate_dataset(root, size=TINY_SHAPE, seed=0, n_test=2)
