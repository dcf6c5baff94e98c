"""The LightningDataModule: whole training tomograms in memory, random augmented patches, whole val volumes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.augmentation import AugmentConfig
from datamodules.folds import load_folds, split_runs
from datamodules.heatmaps import pick_arrays
from datamodules.normalization import NormalizationMode, normalize
from datamodules.patch_dataset import EpochSampler, RunPicks, TargetKind, TrainPatchDataset
from datamodules.sampling import PatchSampler, default_class_weights
from dataio.sources import TomogramSource, open_source
from dataio.pick_readers import PickSelection, empty_picks_table

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class DataConfig:
    """Where the data is, which fold, and how training patches are drawn, augmented and targeted."""

    data_root: str = "data/synthetic"  # dataset: a copick-layout root, a copick config JSON, or MRC/zarr files
    split: str = "train"  # split of a copick-layout root to train on
    tomo_type: str = "denoised"  # tomogram type: denoised, wbp, ctfdeconvolved, isonetcorrected
    level: int = 0  # multiscale level (0 = full resolution)
    picks_csv: str | None = None  # MRC tomograms only
    picks_user: str = "curation"  # copick user id whose picks are the truth (copick's curated picks by default)
    picks_session: str | None = None  # copick session id of those picks; None: the user's only session
    voxel_spacing: float | None = None  # copick projects: which voxel spacing (Å) to read; None: the only one
    folds_file: str = "folds.yaml"  # relative paths: the working directory, then the repository
    fold: int | str = 0  # -1 or "all": train on every run, no validation
    patch_size: tuple[int, int, int] = (64, 64, 64)  # training patch size (z y x)
    batch_size: int = 2  # patches per optimiser step (per process)
    num_workers: int = 2  # data-loader worker processes
    patches_per_epoch: int = 256  # patches drawn per epoch (per process)
    positive_fraction: float = 0.7  # share of patches centred near a particle
    class_sampling_weights: dict[str, float] = field(default_factory=default_class_weights)
    """relative chance of centring a positive patch on each class"""
    normalization: NormalizationMode = "zscore"  # per-tomogram intensity normalisation
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    target_kind: TargetKind = "gaussian"  # gaussian heatmaps or single-voxel points
    sigma_scale: float = 0.4  # Gaussian sigma = sigma_scale * particle radius (voxels)
    target_stride: int = 1  # render targets at the model's output_stride (voxel j <-> patch voxel j * s)
    seed: int = 0  # patch-sampling seed (follows --seed unless given)
def resolve_folds_file(folds_file: str | Path) -> Path:
    """The folds file as given, else relative to the repository root."""
    path = Path(folds_file)
    for candidate in (path, REPO_ROOT / path):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"folds file {folds_file} not found (looked in the working directory and {REPO_ROOT})")


class ValVolumeDataset(Dataset):
    """One item per validation run: ``{"run": str, "volume": [D, H, W] float32 normalised}``."""

    def __init__(self, runs: list[str], volumes: list[np.ndarray]) -> None:
        self.runs, self.volumes = runs, volumes

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> dict[str, object]:
        return {"run": self.runs[index], "volume": torch.from_numpy(self.volumes[index])}


class CryoETDataModule(L.LightningDataModule):
    """Training patches from the fold's training runs; whole tomograms of its validation runs."""

    def __init__(self, cfg: DataConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.source: TomogramSource | None = None
        self.train_runs: list[str] = []
        self.val_runs: list[str] = []
        self.val_picks: pd.DataFrame = empty_picks_table()
        self.train_dataset: TrainPatchDataset | None = None
        self.val_dataset: ValVolumeDataset | None = None

    def _load(self, run: str) -> np.ndarray:
        volume = self.source.load_tomogram(run)  # type: ignore[union-attr]
        try:
            return normalize(volume, self.cfg.normalization)
        except ValueError as err:
            raise ValueError(f"run {run}: {err}") from err

    def setup(self, stage: str | None = None) -> None:
        """Open the source, split runs by fold, load and normalise the volumes (once)."""
        if self.source is not None:
            return
        cfg = self.cfg
        source = open_source(cfg.data_root, cfg.split, cfg.tomo_type, cfg.level, cfg.picks_csv,
                             PickSelection(cfg.picks_user, cfg.picks_session), cfg.voxel_spacing)
        if not source.has_picks:
            raise ValueError(f"{cfg.data_root} (split {cfg.split}) has no picks to train on")
        folds = load_folds(resolve_folds_file(cfg.folds_file), source.run_names())
        train_runs, val_runs = split_runs(folds, cfg.fold)
        patch = tuple(int(p) for p in cfg.patch_size)
        for run in train_runs:
            shape = tuple(source.tomogram(run).shape)
            if any(p > s for p, s in zip(patch, shape)):
                raise ValueError(f"patch size {patch} is larger than tomogram {run} of shape {shape}")
        self.source = source
        volumes = [self._load(run) for run in train_runs]
        picks = [RunPicks(*pick_arrays(source.picks(run), source.voxel_spacing, cfg.sigma_scale))
                 for run in train_runs]
        sampler = PatchSampler([v.shape for v in volumes], [p.channels for p in picks],
                               [p.centers_zyx for p in picks], patch, cfg.positive_fraction,
                               cfg.class_sampling_weights, train_runs)
        self.train_dataset = TrainPatchDataset(volumes, picks, sampler, patch, cfg.augment, cfg.target_kind,
                                               cfg.patches_per_epoch, cfg.seed, target_stride=cfg.target_stride)
        self.train_runs, self.val_runs = train_runs, val_runs
        if val_runs:
            self.val_dataset = ValVolumeDataset(val_runs, [self._load(run) for run in val_runs])
            self.val_picks = pd.concat([source.picks(run) for run in val_runs], ignore_index=True)

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise RuntimeError("call setup() before train_dataloader()")
        cfg = self.cfg
        if cfg.batch_size > cfg.patches_per_epoch:
            raise ValueError(f"batch_size {cfg.batch_size} exceeds patches_per_epoch {cfg.patches_per_epoch}")
        return DataLoader(self.train_dataset, batch_size=cfg.batch_size,
                          sampler=EpochSampler(len(self.train_dataset)), num_workers=cfg.num_workers,
                          persistent_workers=cfg.num_workers > 0, pin_memory=torch.cuda.is_available(),
                          drop_last=True)

    def val_dataloader(self) -> DataLoader | list:
        """Whole normalised tomograms, uncollated (batch_size None); an empty list when there is no fold."""
        if self.val_dataset is None:
            return []
        return DataLoader(self.val_dataset, batch_size=None, num_workers=0)
