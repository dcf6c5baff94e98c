"""The training dataset: random augmented patches with targets rendered on the fly, deterministic per index."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, get_args

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from choices import TargetKind
from config.experiment import AugmentConfig
from datamodules.augmentation import draw_params, extract_patch
from datamodules.heatmaps import TRUNCATE, gaussian_heatmaps, point_heatmaps, sphere_masks
from datamodules.sampling import PatchSampler



@dataclass(frozen=True)
class RunPicks:
    """The picks of one run in voxel units: centres ``[N, 3]`` (z, y, x), channels ``[N]``, sizes ``[N]`` (the
    Gaussians' sigmas, or the spheres' radii for sphere targets)."""

    centers_zyx: np.ndarray
    channels: np.ndarray
    sizes: np.ndarray


class EpochSampler(Sampler):
    """Yields ``(epoch, i)`` for i in 0..n-1; Lightning calls ``set_epoch`` (also through its DDP wrapper)."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in range(self.length)])

    def __len__(self) -> int:
        return self.length


class TrainPatchDataset(Dataset):
    """``patches_per_epoch`` items ``{"image": [1,D,H,W], "target": [6,D/s,H/s,W/s]}``, s = target_stride.

    Item (epoch, i) is a pure function of (seed, epoch, i): the same whatever the worker count or process.
    """

    def __init__(self, volumes: list[np.ndarray], picks: list[RunPicks], sampler: PatchSampler,
                 patch_size: tuple[int, int, int], augment: AugmentConfig, target_kind: TargetKind,
                 patches_per_epoch: int, seed: int, *, num_channels: int,
                 target_stride: int = 1) -> None:
        if len(volumes) != len(picks):
            raise ValueError(f"{len(volumes)} volumes but {len(picks)} pick sets")
        if target_kind not in get_args(TargetKind):
            raise ValueError(f"unknown target_kind {target_kind!r}; use one of {get_args(TargetKind)}")
        if patches_per_epoch < 1:
            raise ValueError(f"patches_per_epoch must be positive, got {patches_per_epoch}")
        if target_stride < 1 or any(p % target_stride for p in patch_size):
            raise ValueError(f"patch size {tuple(patch_size)} must be a multiple of target_stride {target_stride}")
        self.volumes = volumes
        self.picks = picks
        self.sampler = sampler
        self.patch_size = tuple(int(p) for p in patch_size)
        self.augment = augment
        self.target_kind = target_kind
        self.patches_per_epoch = patches_per_epoch
        self.seed = seed
        self.num_channels = num_channels
        self.target_stride = target_stride
        self.target_shape = tuple(p // target_stride for p in self.patch_size)

    def __len__(self) -> int:
        return self.patches_per_epoch

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        draw = self.sampler.sample(rng)
        params = draw_params(rng, self.augment, square_xy=self.patch_size[1] == self.patch_size[2])
        run = self.picks[draw.run]
        patch, centers = extract_patch(self.volumes[draw.run], run.centers_zyx, draw.start,
                                       self.patch_size, params)  # [D, H, W], [N, 3]
        target = self._render(centers / self.target_stride, run.channels,
                              run.sizes / self.target_stride)  # [6, D/s, H/s, W/s]
        return {"image": torch.from_numpy(patch)[None], "target": torch.from_numpy(target)}

    def _render(self, centers: np.ndarray, channels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Targets (target voxel j <-> patch voxel j * stride) from the picks in or reaching into the patch."""
        reach = {"gaussian": TRUNCATE * sizes[:, None], "sphere": sizes[:, None]}.get(self.target_kind, 0.5)
        near = np.all((centers > -reach - 1) & (centers < np.asarray(self.target_shape) + reach), axis=1)
        if self.target_kind == "gaussian":
            return gaussian_heatmaps(self.target_shape, centers[near], channels[near], sizes[near],
                                     num_channels=self.num_channels)
        if self.target_kind == "sphere":
            return sphere_masks(self.target_shape, centers[near], channels[near], sizes[near],
                                num_channels=self.num_channels)
        return point_heatmaps(self.target_shape, centers[near], channels[near], num_channels=self.num_channels)
