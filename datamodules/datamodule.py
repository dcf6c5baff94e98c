"""The LightningDataModule: whole training tomograms in memory, random augmented patches, whole val volumes."""
from __future__ import annotations


import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from config.experiment import DataConfig
from dataio.folds import load_folds, resolve_folds_file, split_runs
from datamodules.heatmaps import pick_arrays
from datamodules.normalization import normalize
from datamodules.patch_dataset import EpochSampler, RunPicks, TrainPatchDataset
from datamodules.sampling import PatchSampler
from datamodules.slice_dataset import SlicePatchDataset, collate_slices
from dataio.sources import TomogramSource, open_source
from dataio.pick_readers import PickSelection, empty_picks_table
from particles import ParticleSet

class ValVolumeDataset(Dataset):
    """One item per validation run: ``{"run": str, "volume": [D, H, W] float32 normalised, "spacing": Å}``."""

    def __init__(self, runs: list[str], volumes: list[np.ndarray], spacing: float) -> None:
        self.runs, self.volumes, self.spacing = runs, volumes, float(spacing)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> dict[str, object]:
        return {"run": self.runs[index], "volume": torch.from_numpy(self.volumes[index]), "spacing": self.spacing}


class CryoETDataModule(L.LightningDataModule):
    """Training patches from the fold's training runs; whole tomograms of its validation runs."""

    def __init__(self, cfg: DataConfig, *, particles: ParticleSet, slice_detector: bool = False) -> None:
        """``slice_detector``: training items are 2.5D slice stacks with boxes (``SlicePatchDataset``) instead of
        patches with heatmap targets."""
        super().__init__()
        self.cfg, self.particles, self.slice_detector = cfg, particles, slice_detector
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
        source = open_source(cfg.data_root, cfg.split, cfg.tomo_type, 0, cfg.picks_csv,
                             PickSelection(cfg.picks_user, cfg.picks_session, other_particles="error"),
                             cfg.voxel_spacing, particles=self.particles)
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
        self.train_dataset = self._train_dataset(source, train_runs, volumes, patch)
        self.train_runs, self.val_runs = train_runs, val_runs
        if val_runs:
            self.val_dataset = ValVolumeDataset(val_runs, [self._load(run) for run in val_runs],
                                                source.voxel_spacing)
            self.val_picks = pd.concat([source.picks(run) for run in val_runs], ignore_index=True)

    def _train_dataset(self, source: TomogramSource, runs: list[str], volumes: list[np.ndarray],
                       patch: tuple[int, ...]) -> TrainPatchDataset:
        """Heatmap patches for U-Nets; slice stacks with boxes (the picks' sizes their radii) for detectors."""
        cfg = self.cfg
        size_scale = (1.0 if self.slice_detector else  # a detector's boxes are the spheres' cross-sections
                      cfg.sphere_scale if cfg.target_kind == "sphere" else cfg.sigma_scale)  # sphere radius or sigma
        picks = [RunPicks(*pick_arrays(source.picks(run), source.voxel_spacing, size_scale, particles=self.particles))
                 for run in runs]
        sampler = PatchSampler([v.shape for v in volumes], [p.channels for p in picks],
                               [p.centers_zyx for p in picks], patch, cfg.positive_fraction,
                               cfg.class_sampling_weights, runs, particles=self.particles)
        args = (volumes, picks, sampler, patch, cfg.augment, cfg.target_kind, cfg.patches_per_epoch, cfg.seed)
        if self.slice_detector:
            radii = np.array([p.radius_voxels(source.voxel_spacing) for p in self.particles.particles])
            return SlicePatchDataset(*args, num_channels=self.particles.num_classes, channel_radii=radii)
        return TrainPatchDataset(*args, num_channels=self.particles.num_classes, target_stride=cfg.target_stride)

    def train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise RuntimeError("call setup() before train_dataloader()")
        cfg = self.cfg
        world = self.trainer.world_size if self.trainer is not None else 1  # DDP splits an epoch's draws
        if cfg.batch_size > cfg.patches_per_epoch // world:
            raise ValueError(f"batch_size {cfg.batch_size} exceeds patches_per_epoch {cfg.patches_per_epoch}"
                             + (f" split over {world} processes ({cfg.patches_per_epoch // world} each): no "
                                "process would take a step" if world > 1 else ""))
        return DataLoader(self.train_dataset, batch_size=cfg.batch_size,
                          sampler=EpochSampler(len(self.train_dataset)), num_workers=cfg.num_workers,
                          persistent_workers=cfg.num_workers > 0, pin_memory=torch.cuda.is_available(),
                          drop_last=True, collate_fn=collate_slices if self.slice_detector else None)

    def val_dataloader(self) -> DataLoader | list:
        """Whole normalised tomograms, uncollated (batch_size None); an empty list when there is no fold."""
        if self.val_dataset is None:
            return []
        return DataLoader(self.val_dataset, batch_size=None, num_workers=0)
