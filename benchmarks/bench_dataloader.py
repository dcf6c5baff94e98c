"""Training patches per second of the data pipeline alone (no model): crop, augment, render targets.

Runs on a full-size-like random volume (184 x 630 x 630 float32, ~200 random picks of the six
classes), so it needs neither the simulator nor real data.

    python benchmarks/bench_dataloader.py --workers 0 2 --patches 200
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader


from config.experiment import AugmentConfig
from datamodules.patch_dataset import EpochSampler, RunPicks, TrainPatchDataset
from config.experiment import default_class_weights
from datamodules.sampling import PatchSampler
from particles import CZII_PARTICLES, FULL_SHAPE_ZYX, NUM_CLASSES, PARTICLES, VOXEL_SPACING


def make_dataset(shape: tuple[int, int, int], n_picks: int, patch: tuple[int, int, int], patches: int,
                 target_kind: str, sigma_scale: float, target_stride: int = 1,
                 seed: int = 0) -> TrainPatchDataset:
    """One random normalised volume with random picks, wrapped as the training dataset."""
    rng = np.random.default_rng(seed)
    volume = rng.standard_normal(shape, dtype=np.float32)
    centers = rng.uniform(0, np.array(shape) - 1, size=(n_picks, 3))
    channels = rng.integers(0, NUM_CLASSES, size=n_picks)
    sigmas = np.array([sigma_scale * PARTICLES[c].radius_voxels(VOXEL_SPACING) for c in channels])
    picks = RunPicks(centers, channels, sigmas)
    sampler = PatchSampler([shape], [channels], [centers], patch, 0.7, default_class_weights(),
                           particles=CZII_PARTICLES)
    return TrainPatchDataset([volume], [picks], sampler, patch, AugmentConfig(), target_kind,  # type: ignore[arg-type]
                             patches, seed, target_stride=target_stride, num_channels=CZII_PARTICLES.num_classes)


def patches_per_second(dataset: TrainPatchDataset, workers: int, batch_size: int) -> float:
    """Patches per second after the first batch (excludes worker start-up)."""
    loader = DataLoader(dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset)), num_workers=workers)
    iterator = iter(loader)
    next(iterator)
    start, count = time.perf_counter(), 0
    for batch in iterator:
        count += batch["image"].shape[0]
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--patches", type=int, default=200)
    parser.add_argument("--patch-size", type=int, nargs=3, default=[96, 96, 96])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--picks", type=int, default=200)
    parser.add_argument("--target-kind", choices=["gaussian", "point"], default="gaussian")
    parser.add_argument("--sigma-scale", type=float, default=0.4)
    parser.add_argument("--target-stride", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)  # what a DataLoader worker gets; keeps workers=0 a one-core figure
    dataset = make_dataset(FULL_SHAPE_ZYX, args.picks, tuple(args.patch_size), args.patches, args.target_kind,
                           args.sigma_scale, args.target_stride)
    print(f"cpu cores {os.cpu_count()}, patch {tuple(args.patch_size)}, targets {args.target_kind}, "
          f"target stride {args.target_stride}, {args.patches} patches, batch {args.batch_size}")
    for workers in args.workers:
        rate = patches_per_second(dataset, workers, args.batch_size)
        print(f"num_workers={workers}: {rate:.1f} patches/s total, {rate / max(workers, 1):.1f} per worker")


if __name__ == "__main__":
    main()
