"""CPU seconds for heatmap NMS + threshold fitting on a full-size 6-class probability volume (goal <= 3 s, 2 cores).

Run: WANDB_MODE=disabled .venv/bin/python -m benchmarks.bench_nms [--threads 2] [--shape 184 630 630]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from particles import CZII_PARTICLES, FULL_SHAPE_ZYX, NUM_CLASSES, PARTICLES, VOXEL_SPACING, index_to_angstrom
from postprocess.heatmap_nms import pick_particles
from postprocess.thresholds import apply_thresholds, fit_thresholds


def synthetic_probs(shape: tuple[int, int, int], n_peaks: int, seed: int) -> tuple[torch.Tensor, pd.DataFrame]:
    """Smooth noise in [0, 0.2] plus ``n_peaks`` Gaussian blobs (sigma = radius / 3 voxels, peak 0.6-0.95)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, NUM_CLASSES, *(max(2, n // 8) for n in shape), generator=gen)
    probs = 0.2 * F.interpolate(coarse, size=shape, mode="trilinear", align_corners=False)[0]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_peaks):
        p = PARTICLES[rng.integers(len(PARTICLES))]
        centre = np.array([rng.integers(n) for n in shape])
        sigma = p.radius_voxels(VOXEL_SPACING) / 3
        r = int(np.ceil(3 * sigma))
        lo, hi = np.maximum(centre - r, 0), np.minimum(centre + r + 1, shape)
        grids = torch.meshgrid(*(torch.arange(a, b, dtype=torch.float32) for a, b in zip(lo, hi)), indexing="ij")
        dist2 = sum((g - float(c)) ** 2 for g, c in zip(grids, centre))
        blob = float(rng.uniform(0.6, 0.95)) * torch.exp(-dist2 / (2 * sigma**2))
        view = probs[p.channel, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        torch.maximum(view, blob, out=view)
        x, y, z = index_to_angstrom(centre[None])[0]
        rows.append(("bench", p.name, x, y, z))
    return probs, pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"])


def main() -> None:
    """Time pick_particles (with and without smoothing) followed by threshold fitting and application."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs=3, default=list(FULL_SHAPE_ZYX))
    parser.add_argument("--peaks", type=int, default=200)
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    probs, truth = synthetic_probs(tuple(args.shape), args.peaks, seed=0)
    print(f"probs {tuple(probs.shape)} float32, {args.peaks} planted peaks, threshold {args.threshold}, "
          f"{torch.get_num_threads()} threads")
    for smooth in (None, 1.0):
        timings, cpu = [], []
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            picks = pick_particles(probs, "bench", args.threshold, spacing=VOXEL_SPACING, smooth_sigma=smooth,
                                   particles=CZII_PARTICLES)
            thresholds = fit_thresholds(picks, truth, particles=CZII_PARTICLES)
            kept = apply_thresholds(picks, thresholds, particles=CZII_PARTICLES)
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(f"smooth_sigma={smooth}: wall {min(timings):.2f} s, process CPU {min(cpu):.2f} s "
              f"(best of {args.repeats}; {len(picks)} candidates, "
              f"{len(kept)} kept after fitted thresholds)")


if __name__ == "__main__":
    main()
