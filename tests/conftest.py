"""Shared fixtures: tiny simulated datasets, CPU only, no network, no W&B account."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

TINY_SHAPE = (48, 96, 96)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole simulated dataset (7 train runs with picks, 2 test runs) of tiny volumes; built once."""
    from simulation import simulate_dataset

    root = tmp_path_factory.mktemp("tiny_dataset")
    return simulate_dataset(root, size=TINY_SHAPE, seed=0, n_test=2)


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset root, folds.yaml): one simulated tomogram as TS_A (fold 0) and TS_B (fold 1); read only."""
    from tests.training_fixtures import twin_dataset

    root, folds, picks = twin_dataset(tmp_path_factory.mktemp("twin"), (48, 96, 96), seed=0)
    assert len(picks) >= 6
    return root, folds


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for training tests: on a loaded 2-core machine two spinning OpenMP threads make a
    step ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def world(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """The bad-input tests' private dataset copy with one finished run (tests/bad_input_harness.py); built once."""
    from tests.bad_input_harness import build_world

    return build_world(tiny_dataset, tmp_path_factory.mktemp("bad_inputs"))
