"""Heatmap peaks -> picks: max-pool NMS (kernel from each class radius), computed sparsely on the device.

A voxel is a peak when it is >= its class threshold and equals the max over the cube of side ``k``
centred on it (``max_pool3d(kernel=k, stride=1, padding=k//2)`` semantics: outside the volume counts
as -inf). Every voxel that can beat a candidate is itself >= the threshold, so instead of pooling the
whole [6, D, H, W] volume (seconds per class on a CPU) we test only the above-threshold voxels: first
against their 26 neighbours, then the few survivors against the full cube. Equal values (plateaus) are
broken by the smaller flat index, so a plateau narrower than the kernel yields exactly one pick.

Stride-s grid: output voxel ``j`` (per axis) stands for full-resolution voxel ``s * j``, reported at
``particles.index_to_angstrom(j * s, spacing)`` = ``s * j * spacing`` Å (the convention of
``sliding_window`` and ``tta``; stride-s targets must be built on the same grid, i.e. a pick at
full-resolution index ``i`` sits at coarse index ``i / s``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from particles import ParticleSet, index_to_angstrom

_GATHER_ELEMENTS = 1 << 22  # candidates x offsets gathered per step: bounds temporary memory (~100 MB)
_SMOOTH_BLOCK = 16
_DENSE_FRACTION = 0.02  # above this share of voxels over the threshold, pool densely first


def odd_kernel(size: float) -> int:
    """Nearest odd integer to ``size``, at least 3."""
    return max(3, 2 * int(round((size - 1) / 2)) + 1)


def peak_kernel_sizes(kernel_fraction: float, output_stride: int, spacing: float,
                      *, particles: ParticleSet) -> dict[str, int]:
    """Max-pool kernel side per class: ``kernel_fraction`` x radius in voxels (of ``spacing`` Å) at the output
    stride."""
    if kernel_fraction <= 0:
        raise ValueError(f"kernel_fraction must be > 0; got {kernel_fraction}")
    return {p.name: odd_kernel(kernel_fraction * p.radius / spacing / output_stride) for p in particles.particles}


def resolve_thresholds(thresholds: Mapping[str, float] | Sequence[float] | float,
                       *, particles: ParticleSet) -> list[float]:
    """Per-channel thresholds from a name->value mapping (every class), a sequence (one per class), or one
    float."""
    n = particles.num_classes
    if isinstance(thresholds, Mapping):
        for name in thresholds:
            particles.get(name)
        missing = [name for name in particles.names if name not in thresholds]
        if missing:
            raise ValueError(f"thresholds lack classes {missing}")
        values = [float(thresholds[name]) for name in particles.names]
    elif isinstance(thresholds, (int, float)):
        values = [float(thresholds)] * n
    else:
        values = [float(t) for t in thresholds]
        if len(values) != n:
            raise ValueError(f"need {n} thresholds (one per class); got {len(values)}")
    if not all(math.isfinite(t) for t in values):
        raise ValueError(f"thresholds must be finite; got {values}")
    return values


def gaussian_kernel1d(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian taps over +-ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype=dtype, device=device)


def _block_axis(n: int, block: int, device: torch.device) -> tuple[int, torch.Tensor]:
    """Block side along one axis and the origin of every block (the last flush with the end)."""
    side = min(block, n)
    origins = torch.arange(math.ceil(n / side), device=device) * side
    return side, origins.clamp_max(n - side)


def smooth_near_threshold(volume: torch.Tensor, sigma: float, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable Gaussian smoothing (replicate border) of ``[D, H, W]``, exact wherever the result can reach
    ``threshold``, elsewhere 0; also the sorted flat indices of the smoothed voxels >= ``threshold``.

    A smoothed value is a weighted mean of voxels within the kernel radius, so it can reach the threshold
    only within the kernel radius of a voxel >= threshold; only the 16^3 blocks meeting that zone are
    convolved (a dense pass over a full tomogram costs seconds per class on a CPU).
    """
    taps = gaussian_kernel1d(sigma, volume.dtype, volume.device)
    halo = taps.numel() // 2
    block = max(_SMOOTH_BLOCK, 2 * halo)
    dims = volume.shape
    sides, origins = zip(*(_block_axis(n, block, volume.device) for n in dims))
    counts = [o.numel() for o in origins]
    out = torch.zeros_like(volume)
    hot = (volume >= threshold).view(-1).nonzero().squeeze(1)
    found: list[torch.Tensor] = []
    if hot.numel() == 0:
        return out, hot
    zyx = torch.stack(torch.unravel_index(hot, dims), 1)  # [n, 3]
    # every block whose voxels lie within ``halo`` of a hot voxel: the blocks of the two corners of the
    # voxel's +-halo box along each axis (2 halo <= block side, so the box spans at most two blocks per axis)
    ends = [[torch.clamp((zyx[:, a] + d).clamp(0, dims[a] - 1) // sides[a], max=counts[a] - 1)
             for d in (-halo, halo)] for a in range(3)]
    ids = [ends[0][i] * counts[1] * counts[2] + ends[1][j] * counts[2] + ends[2][k]
           for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    blocks = torch.unique(torch.cat(ids))
    blocks = torch.stack(torch.unravel_index(blocks, counts), 1)  # [nb, 3] active block indices

    span = [torch.arange(-halo, s + halo, device=volume.device) for s in sides]
    inner = [torch.arange(s, device=volume.device) for s in sides]
    k = taps.numel()
    weights = [taps.view(1, 1, k, 1, 1), taps.view(1, 1, 1, k, 1), taps.view(1, 1, 1, 1, k)]
    per_step = max(1, _GATHER_ELEMENTS // int(np.prod([s + 2 * halo for s in sides])))
    for first in range(0, blocks.shape[0], per_step):
        chunk = blocks[first:first + per_step]
        starts = [origins[a][chunk[:, a]] for a in range(3)]  # each [b]
        src = [(starts[a][:, None] + span[a][None]).clamp(0, dims[a] - 1) for a in range(3)]
        crop = volume[src[0][:, :, None, None], src[1][:, None, :, None], src[2][:, None, None, :]]
        smoothed = crop[:, None]
        for w in weights:
            smoothed = F.conv3d(smoothed, w)
        dst = [starts[a][:, None] + inner[a][None] for a in range(3)]
        out[dst[0][:, :, None, None], dst[1][:, None, :, None], dst[2][:, None, None, :]] = smoothed[:, 0]
        flat = (dst[0][:, :, None, None] * dims[1] + dst[1][:, None, :, None]) * dims[2] + dst[2][:, None, None, :]
        found.append(flat[smoothed[:, 0] >= threshold])
    return out, torch.unique(torch.cat(found))  # last blocks overlap their neighbours: drop repeats


def _cube_offsets(kernel: int, device: torch.device) -> torch.Tensor:
    """``[k^3 - 1, 3]`` offsets of a cube of side ``kernel`` without its centre."""
    r = torch.arange(-(kernel // 2), kernel // 2 + 1, device=device)
    offsets = torch.cartesian_prod(r, r, r)
    return offsets[(offsets != 0).any(1)]


def _is_cube_max(volume: torch.Tensor, flat: torch.Tensor, values: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """For each candidate (flat index, value), True when no voxel at ``offsets`` beats it (value, then lower index)."""
    dims = torch.tensor(volume.shape, device=volume.device)
    strides = torch.tensor([volume.shape[1] * volume.shape[2], volume.shape[2], 1], device=volume.device)
    zyx = torch.stack(torch.unravel_index(flat, volume.shape), 1)  # [n, 3]
    data = volume.reshape(-1)
    beaten = torch.zeros(flat.numel(), dtype=torch.bool, device=volume.device)
    per_step = max(1, _GATHER_ELEMENTS // max(1, flat.numel()))
    for first in range(0, offsets.shape[0], per_step):
        off = offsets[first:first + per_step]  # [o, 3]
        pos = zyx[:, None, :] + off[None]  # [n, o, 3]
        inside = ((pos >= 0) & (pos < dims)).all(2)
        nflat = torch.where(inside, flat[:, None] + off @ strides, flat[:, None])
        nval = data[nflat]
        beats = (nval > values[:, None]) | ((nval == values[:, None]) & (nflat < flat[:, None]))
        beaten |= beats.any(1)
    return ~beaten


def separable_max_pool(volume: torch.Tensor, kernel: int) -> torch.Tensor:
    """``max_pool3d(kernel, stride 1, padding kernel // 2)`` of ``[D, H, W]`` as three 1-D passes: the max over
    a cube is the max along z of the max along y of the max along x (3k comparisons a voxel, not k^3)."""
    pooled = volume[None, None]
    pad = kernel // 2
    for size in ((kernel, 1, 1), (1, kernel, 1), (1, 1, kernel)):
        pooled = F.max_pool3d(pooled, size, stride=1, padding=tuple(pad if s > 1 else 0 for s in size))
    return pooled[0, 0]


def find_peaks(volume: torch.Tensor, threshold: float, kernel: int,
               candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Peaks of one ``[D, H, W]`` heatmap: (``[m, 3]`` z, y, x indices, ``[m]`` values), best first.

    ``candidates`` (flat indices of every voxel >= threshold) saves a scan when the caller has them.
    """
    flat = (volume >= threshold).view(-1).nonzero().squeeze(1) if candidates is None else candidates
    if flat.numel() > _DENSE_FRACTION * volume.numel():
        # most voxels pass (e.g. an untrained net): one dense max-pool beats gathering every neighbour
        pooled = separable_max_pool(volume, kernel)
        local_max = (volume == pooled).view(-1)
        flat = flat[local_max[flat]]
    values = volume.reshape(-1)[flat]
    keep = _is_cube_max(volume, flat, values, _cube_offsets(3, volume.device))
    flat, values = flat[keep], values[keep]
    if kernel > 3 and flat.numel():
        keep = _is_cube_max(volume, flat, values, _cube_offsets(kernel, volume.device))
        flat, values = flat[keep], values[keep]
    order = torch.argsort(values, descending=True, stable=True)
    flat, values = flat[order], values[order]
    return torch.stack(torch.unravel_index(flat, volume.shape), 1), values


def subvoxel_offsets(volume: torch.Tensor, zyx: torch.Tensor) -> torch.Tensor:
    """``[m, 3]`` offsets in (-0.5, 0.5) voxels from each peak ``zyx`` (``[m, 3]`` indices of ``[D, H, W]``) to
    the vertex of the parabola through the log-values of the peak and its two neighbours along each axis.

    A Gaussian heatmap's logarithm is a parabola, so this recovers the centre of a Gaussian blob exactly,
    wherever it falls between voxels: at a coarse output stride the voxel grid alone misplaces a peak by up
    to half a voxel per axis (10 Å at stride 2), a third of apo-ferritin's 30 Å hit radius. A peak on the
    border or on a flat top keeps offset 0 along that axis.
    """
    offsets = torch.zeros(zyx.shape, dtype=torch.float32, device=volume.device)
    if zyx.numel() == 0:
        return offsets
    logs = torch.log(volume.float().clamp_min(1e-12))
    centre = logs[zyx[:, 0], zyx[:, 1], zyx[:, 2]]
    for axis in range(3):
        inside = (zyx[:, axis] > 0) & (zyx[:, axis] < volume.shape[axis] - 1)
        lower, upper = zyx.clone(), zyx.clone()
        lower[:, axis] = (zyx[:, axis] - 1).clamp_min(0)
        upper[:, axis] = (zyx[:, axis] + 1).clamp_max(volume.shape[axis] - 1)
        below = logs[lower[:, 0], lower[:, 1], lower[:, 2]]
        above = logs[upper[:, 0], upper[:, 1], upper[:, 2]]
        curvature = below - 2 * centre + above  # < 0 at a strict maximum
        shift = 0.5 * (below - above) / torch.where(curvature < 0, curvature, torch.ones_like(curvature))
        offsets[:, axis] = torch.where(inside & (curvature < 0), shift.clamp(-0.5, 0.5), torch.zeros_like(shift))
    return offsets


def pick_particles(probs: torch.Tensor, run: str, thresholds: Mapping[str, float] | Sequence[float] | float,
                   *, spacing: float, output_stride: int = 1, kernel_fraction: float = 1.0,
                   smooth_sigma: float | None = None, max_per_class: int | None = None,
                   subvoxel: bool = True, particles: ParticleSet) -> pd.DataFrame:
    """``[C, D, H, W]`` probabilities (C: the classes of ``particles``) of a tomogram of ``spacing`` Å/voxel -> picks table (experiment,
    particle_type, x, y, z in Å, score).

    Kernel side per class = odd(kernel_fraction x radius / (spacing x output_stride)), >= 3.
    ``smooth_sigma`` (voxels at the output stride) applies a light Gaussian first; ``max_per_class``
    keeps the best-scoring picks; ``subvoxel`` places each pick at its peak's sub-voxel centre
    (``subvoxel_offsets``), else at the peak voxel. All voxel work stays on ``probs.device``.
    """
    if probs.ndim != 4 or probs.shape[0] != particles.num_classes:
        raise ValueError(f"run {run}: probs must be [{particles.num_classes}, D, H, W]; got {tuple(probs.shape)}")
    if output_stride < 1:
        raise ValueError(f"output_stride must be >= 1; got {output_stride}")
    if smooth_sigma is not None and smooth_sigma <= 0:
        raise ValueError(f"smooth_sigma must be > 0 or None; got {smooth_sigma}")
    if max_per_class is not None and max_per_class < 0:
        raise ValueError(f"max_per_class must be >= 0 or None; got {max_per_class}")
    values = resolve_thresholds(thresholds, particles=particles)
    kernels = peak_kernel_sizes(kernel_fraction, output_stride, spacing, particles=particles)
    frames = []
    for p, threshold in zip(particles.particles, values):
        heatmap, candidates = probs[p.channel], None
        if smooth_sigma is not None:
            heatmap, candidates = smooth_near_threshold(heatmap, smooth_sigma, threshold)
        zyx, scores = find_peaks(heatmap, threshold, kernels[p.name], candidates)
        if max_per_class is not None:
            zyx, scores = zyx[:max_per_class], scores[:max_per_class]
        position = zyx.float() + subvoxel_offsets(heatmap, zyx) if subvoxel else zyx.float()
        xyz = index_to_angstrom(position.cpu().numpy().astype(np.float64) * output_stride, spacing)
        frames.append(pd.DataFrame({"experiment": run, "particle_type": p.name, "x": xyz[:, 0], "y": xyz[:, 1],
                                    "z": xyz[:, 2], "score": scores.float().cpu().numpy().astype(np.float64)}))
    table = pd.concat(frames, ignore_index=True)
    return table.astype({"experiment": object, "particle_type": object})
