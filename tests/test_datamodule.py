"""The DataModule end to end on the tiny simulated dataset, normalisation, and patch determinism."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from config.experiment import DataConfig
from datamodules.datamodule import CryoETDataModule
from dataio.layout import TRAIN_RUNS
from datamodules.normalization import normalize
from tests.conftest import TINY_SHAPE
from particles import CZII_PARTICLES

FOLDS = str(Path(__file__).resolve().parents[1] / "folds.yaml")


def _cfg(root: Path, **overrides: object) -> DataConfig:
    base = DataConfig(data_root=str(root), folds_file=FOLDS, fold=0, patch_size=(16, 32, 32), batch_size=2,
                      num_workers=0, patches_per_epoch=4, positive_fraction=1.0, seed=3)
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def fold0(tiny_dataset: Path) -> CryoETDataModule:
    dm = CryoETDataModule(_cfg(tiny_dataset), particles=CZII_PARTICLES)
    dm.setup("fit")
    return dm


def test_normalize_zscore_and_percentile() -> None:
    rng = np.random.default_rng(0)
    volume = rng.gamma(2.0, 3.0, size=(20, 30, 30)).astype(np.float32) + 7
    z = normalize(volume, "zscore")
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-4
    p = normalize(volume, "percentile")
    assert p.min() == -1.0 and p.max() == 1.0
    low, high = np.percentile(volume, [0.5, 99.5])
    assert np.mean(p == 1.0) == pytest.approx(np.mean(volume >= high), abs=2e-3)
    assert np.all(np.diff(p.ravel()[np.argsort(volume.ravel())]) >= -1e-6)  # monotone
    with pytest.raises(ValueError, match="no contrast"):
        normalize(np.ones((4, 4, 4)), "zscore")
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize(volume, "minmax")  # type: ignore[arg-type]


def test_fold0_runs_and_train_batch(fold0: CryoETDataModule) -> None:
    assert fold0.val_runs == ["TS_5_4"]
    assert sorted(fold0.train_runs) == sorted(set(TRAIN_RUNS) - {"TS_5_4"})
    batch = next(iter(fold0.train_dataloader()))
    assert batch["image"].shape == (2, 1, 16, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["target"].shape == (2, 6, 16, 32, 32) and batch["target"].dtype == torch.float32
    assert batch["target"].min() >= 0 and batch["target"].max() <= 1
    assert torch.all(batch["target"].amax(dim=(1, 2, 3, 4)) > 0.5)  # positive_fraction 1: a particle each


def test_val_item_and_picks(fold0: CryoETDataModule) -> None:
    items = list(fold0.val_dataloader())
    assert len(items) == 1 and items[0]["run"] == "TS_5_4"
    volume = items[0]["volume"]
    assert volume.shape == TINY_SHAPE and volume.dtype == torch.float32
    assert abs(float(volume.mean())) < 1e-3 and abs(float(volume.std()) - 1) < 1e-3
    assert len(fold0.val_picks) > 0 and set(fold0.val_picks["experiment"]) == {"TS_5_4"}
    assert list(fold0.val_picks.columns[:5]) == ["experiment", "particle_type", "x", "y", "z"]


def test_patches_are_deterministic_per_seed_epoch_index(fold0: CryoETDataModule) -> None:
    ds = fold0.train_dataset
    a, b = ds[(1, 2)], ds[(1, 2)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["image"], ds[(2, 2)]["image"])
    serial = next(iter(fold0.train_dataloader()))
    parallel_loader = CryoETDataModule(replace(fold0.cfg, num_workers=2), particles=CZII_PARTICLES)
    parallel_loader.setup("fit")
    parallel = next(iter(parallel_loader.train_dataloader()))
    assert torch.equal(serial["image"], parallel["image"]) and torch.equal(serial["target"], parallel["target"])
    other_seed = CryoETDataModule(replace(fold0.cfg, seed=4), particles=CZII_PARTICLES)
    other_seed.setup("fit")
    assert not torch.equal(serial["image"], next(iter(other_seed.train_dataloader()))["image"])


def test_point_targets(tiny_dataset: Path) -> None:
    dm = CryoETDataModule(_cfg(tiny_dataset, target_kind="point", fold=1), particles=CZII_PARTICLES)
    dm.setup("fit")
    target = next(iter(dm.train_dataloader()))["target"]
    assert set(torch.unique(target).tolist()) == {0.0, 1.0}
    assert dm.val_runs == ["TS_6_4"]


def test_fold_all_has_no_validation(tiny_dataset: Path) -> None:
    dm = CryoETDataModule(_cfg(tiny_dataset, fold=-1), particles=CZII_PARTICLES)
    dm.setup("fit")
    assert sorted(dm.train_runs) == sorted(TRAIN_RUNS) and dm.val_runs == []
    assert len(dm.val_picks) == 0 and len(dm.val_dataloader()) == 0


def test_patch_larger_than_tomogram_names_run_and_shapes(tiny_dataset: Path) -> None:
    dm = CryoETDataModule(_cfg(tiny_dataset, patch_size=(64, 32, 32)), particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match=r"patch size \(64, 32, 32\) is larger than tomogram TS_\w+ of shape "
                                         r"\(48, 96, 96\)"):
        dm.setup("fit")


def test_target_stride_two_subsamples_the_full_target(fold0: CryoETDataModule) -> None:
    strided = CryoETDataModule(replace(fold0.cfg, target_stride=2), particles=CZII_PARTICLES)
    strided.setup("fit")
    for index in range(3):
        full, half = fold0.train_dataset[(0, index)], strided.train_dataset[(0, index)]
        assert torch.equal(full["image"], half["image"]) and half["target"].shape == (6, 8, 16, 16)
        torch.testing.assert_close(half["target"], full["target"][:, ::2, ::2, ::2], atol=1e-5, rtol=0)
        assert half["target"].max() > 0.3
