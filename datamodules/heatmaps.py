"""Training targets: Gaussian heatmaps (peak 1 at each pick) or single-voxel points, one channel per class."""
from __future__ import annotations

import numpy as np
import pandas as pd

from particles import CZII_PARTICLES, ParticleSet, angstrom_to_index

TRUNCATE: float = 3.0
"""Gaussians are rendered in the box within +-TRUNCATE sigma of their centre along each axis, 0 beyond."""


def _check_picks(centers_zyx: np.ndarray, channels: np.ndarray, num_channels: int) -> tuple[np.ndarray, np.ndarray]:
    centers = np.asarray(centers_zyx, dtype=np.float64).reshape(-1, 3)
    chans = np.asarray(channels, dtype=np.int64).reshape(-1)
    if len(chans) != len(centers):
        raise ValueError(f"{len(centers)} centres but {len(chans)} channels")
    if len(chans) and (chans.min() < 0 or chans.max() >= num_channels):
        raise ValueError(f"channels must lie in [0, {num_channels}), got {np.unique(chans).tolist()}")
    return centers, chans


def gaussian_heatmaps(shape: tuple[int, int, int], centers_zyx: np.ndarray, channels: np.ndarray,
                      sigmas: np.ndarray, num_channels: int = CZII_PARTICLES.num_classes,
                      truncate: float = TRUNCATE) -> np.ndarray:
    """Render ``[num_channels, D, H, W]`` float32: per pick exp(-d^2 / 2 sigma^2), max over picks of a class.

    Centres are continuous indices (voxel ``i`` centred at ``i``); picks outside the volume still
    contribute their tails. Each pick costs one separable outer product inside its local box.
    """
    centers, chans = _check_picks(centers_zyx, channels, num_channels)
    sig = np.broadcast_to(np.asarray(sigmas, dtype=np.float64), chans.shape)
    if len(sig) and sig.min() <= 0:
        raise ValueError(f"sigmas must be positive, got min {sig.min()}")
    out = np.zeros((num_channels, *shape), dtype=np.float32)
    size = np.asarray(shape)
    reach = truncate * sig
    lo = np.clip(np.ceil(centers - reach[:, None]).astype(np.int64), 0, size)  # [N, 3]
    hi = np.clip(np.floor(centers + reach[:, None]).astype(np.int64) + 1, 0, size)  # [N, 3]
    visible = np.flatnonzero(np.all(hi > lo, axis=1))
    for n in visible:  # loop over picks, each vectorised over its box
        axes_1d = [np.exp(-((np.arange(lo[n, a], hi[n, a]) - centers[n, a]) ** 2) / (2 * sig[n] ** 2))
                   .astype(np.float32) for a in range(3)]
        blob = axes_1d[0][:, None, None] * axes_1d[1][None, :, None] * axes_1d[2][None, None, :]
        view = out[chans[n], lo[n, 0]:hi[n, 0], lo[n, 1]:hi[n, 1], lo[n, 2]:hi[n, 2]]
        np.maximum(view, blob, out=view)
    return out


def point_heatmaps(shape: tuple[int, int, int], centers_zyx: np.ndarray, channels: np.ndarray,
                   num_channels: int = CZII_PARTICLES.num_classes) -> np.ndarray:
    """Render ``[num_channels, D, H, W]`` float32 with 1 at the nearest voxel of each pick inside the volume."""
    centers, chans = _check_picks(centers_zyx, channels, num_channels)
    out = np.zeros((num_channels, *shape), dtype=np.float32)
    voxels = np.rint(centers).astype(np.int64)
    inside = np.all((voxels >= 0) & (voxels < np.asarray(shape)), axis=1)
    v = voxels[inside]
    out[chans[inside], v[:, 0], v[:, 1], v[:, 2]] = 1.0
    return out


def pick_arrays(picks: pd.DataFrame, voxel_spacing: float, sigma_scale: float,
                particles: ParticleSet = CZII_PARTICLES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A picks table (Å) -> centres ``[N, 3]`` (z, y, x continuous index), channels ``[N]``, sigmas ``[N]`` (voxels)."""
    if sigma_scale <= 0:
        raise ValueError(f"sigma_scale must be positive, got {sigma_scale}")
    kinds = [particles.get(name) for name in picks["particle_type"]]
    centers = angstrom_to_index(picks[["x", "y", "z"]].to_numpy(dtype=np.float64), voxel_spacing)
    channels = np.array([p.channel for p in kinds], dtype=np.int64)
    sigmas = np.array([sigma_scale * p.radius / voxel_spacing for p in kinds], dtype=np.float64)
    return centers.reshape(-1, 3), channels, sigmas
