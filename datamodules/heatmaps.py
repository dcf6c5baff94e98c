"""Training targets, one channel per class: Gaussian heatmaps (peak 1 at each pick), single-voxel points, or
spheres (1 within a radius of each pick, as segmentation solutions train)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from particles import ParticleSet, angstrom_to_index

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


def _pick_sizes(values: np.ndarray, count: int, what: str) -> np.ndarray:
    """One positive size per pick (a scalar is every pick's)."""
    sizes = np.broadcast_to(np.asarray(values, dtype=np.float64), (count,))
    if count and sizes.min() <= 0:
        raise ValueError(f"{what} must be positive, got min {sizes.min()}")
    return sizes


def _boxes(centers: np.ndarray, reach: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                                         np.ndarray]:
    """Per pick, the voxel box within ``reach`` of its centre clipped to the volume: ``lo``, ``hi`` ``[N, 3]`` and
    the indices of the picks whose box holds a voxel."""
    size = np.asarray(shape)
    lo = np.clip(np.ceil(centers - reach[:, None]).astype(np.int64), 0, size)
    hi = np.clip(np.floor(centers + reach[:, None]).astype(np.int64) + 1, 0, size)
    return lo, hi, np.flatnonzero(np.all(hi > lo, axis=1))


def gaussian_heatmaps(shape: tuple[int, int, int], centers_zyx: np.ndarray, channels: np.ndarray,
                      sigmas: np.ndarray, *, num_channels: int,
                      truncate: float = TRUNCATE) -> np.ndarray:
    """Render ``[num_channels, D, H, W]`` float32: per pick exp(-d^2 / 2 sigma^2), max over picks of a class.

    Centres are continuous indices (voxel ``i`` centred at ``i``); picks outside the volume still
    contribute their tails. Each pick costs one separable outer product inside its local box.
    """
    centers, chans = _check_picks(centers_zyx, channels, num_channels)
    sig = _pick_sizes(sigmas, len(chans), "sigmas")
    out = np.zeros((num_channels, *shape), dtype=np.float32)
    lo, hi, visible = _boxes(centers, truncate * sig, shape)
    for n in visible:  # loop over picks, each vectorised over its box
        axes_1d = [np.exp(-((np.arange(lo[n, a], hi[n, a]) - centers[n, a]) ** 2) / (2 * sig[n] ** 2))
                   .astype(np.float32) for a in range(3)]
        blob = axes_1d[0][:, None, None] * axes_1d[1][None, :, None] * axes_1d[2][None, None, :]
        view = out[chans[n], lo[n, 0]:hi[n, 0], lo[n, 1]:hi[n, 1], lo[n, 2]:hi[n, 2]]
        np.maximum(view, blob, out=view)
    return out


def sphere_masks(shape: tuple[int, int, int], centers_zyx: np.ndarray, channels: np.ndarray, radii: np.ndarray,
                 *, num_channels: int) -> np.ndarray:
    """Render ``[num_channels, D, H, W]`` float32: 1 at voxels within ``radius`` of a pick of the class, else 0.

    Centres are continuous indices; a sphere too small to hold a voxel centre still marks its nearest voxel,
    so no pick inside the volume goes without a positive voxel.
    """
    centers, chans = _check_picks(centers_zyx, channels, num_channels)
    rad = _pick_sizes(radii, len(chans), "radii")
    out = np.zeros((num_channels, *shape), dtype=np.float32)
    lo, hi, visible = _boxes(centers, rad, shape)
    for n in visible:  # loop over picks, each vectorised over its box
        z, y, x = (np.arange(lo[n, a], hi[n, a]) - centers[n, a] for a in range(3))
        inside = (z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2) <= rad[n] ** 2
        view = out[chans[n], lo[n, 0]:hi[n, 0], lo[n, 1]:hi[n, 1], lo[n, 2]:hi[n, 2]]
        view[inside] = 1.0
    nearest = np.rint(centers).astype(np.int64)
    inside = np.all((nearest >= 0) & (nearest < np.asarray(shape)), axis=1)
    out[chans[inside], nearest[inside, 0], nearest[inside, 1], nearest[inside, 2]] = 1.0
    return out


def point_heatmaps(shape: tuple[int, int, int], centers_zyx: np.ndarray, channels: np.ndarray,
                   *, num_channels: int) -> np.ndarray:
    """Render ``[num_channels, D, H, W]`` float32 with 1 at the nearest voxel of each pick inside the volume."""
    centers, chans = _check_picks(centers_zyx, channels, num_channels)
    out = np.zeros((num_channels, *shape), dtype=np.float32)
    voxels = np.rint(centers).astype(np.int64)
    inside = np.all((voxels >= 0) & (voxels < np.asarray(shape)), axis=1)
    v = voxels[inside]
    out[chans[inside], v[:, 0], v[:, 1], v[:, 2]] = 1.0
    return out


def pick_arrays(picks: pd.DataFrame, voxel_spacing: float, sigma_scale: float,
                *, particles: ParticleSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A picks table (Å) -> centres ``[N, 3]`` (z, y, x continuous index), channels ``[N]``, sizes ``[N]``
    (voxels): ``sigma_scale`` x the class radius (a Gaussian's sigma, or a sphere's radius with the sphere scale)."""
    if sigma_scale <= 0:
        raise ValueError(f"sigma_scale must be positive, got {sigma_scale}")
    kinds = [particles.get(name) for name in picks["particle_type"]]
    centers = angstrom_to_index(picks[["x", "y", "z"]].to_numpy(dtype=np.float64), voxel_spacing)
    channels = np.array([p.channel for p in kinds], dtype=np.int64)
    sigmas = np.array([sigma_scale * p.radius / voxel_spacing for p in kinds], dtype=np.float64)
    return centers.reshape(-1, 3), channels, sigmas
