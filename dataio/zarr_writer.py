"""Write a tomogram as the challenge ships it: a zarr v2 group, OME-NGFF multiscales, arrays 0, 1, 2, with
"/" chunk keys (copick reads stores that way; a "."-keyed store reads through copick as all zeros)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc

from particles import VOXEL_SPACING

CHUNKS: tuple[int, int, int] = (64, 64, 64)
"""Chunk shape: a random 96^3 patch touches at most 3^3 chunks of ~1 MiB each."""

_COMPRESSOR = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)


def downsample_mean(volume: np.ndarray) -> np.ndarray:
    """2x mean pooling ``[z, y, x] -> [ceil(z/2), ceil(y/2), ceil(x/2)]`` (odd sizes padded by edge)."""
    pad = [(0, s % 2) for s in volume.shape]
    if any(p[1] for p in pad):
        volume = np.pad(volume, pad, mode="edge")
    z, y, x = (s // 2 for s in volume.shape)
    return volume.reshape(z, 2, y, 2, x, 2).mean(axis=(1, 3, 5), dtype=np.float32)


def multiscales_attrs(name: str, levels: int, spacing: float = VOXEL_SPACING) -> list[dict]:
    """OME-NGFF 0.4 ``multiscales``: level ``l`` has scale ``2**l * spacing`` Å.

    The translation puts a coarse voxel's centre at the mean of the fine voxel centres it pools
    (fine voxel i centred at ``i * spacing``), i.e. ``(2**l - 1) / 2 * spacing``.
    """
    datasets = [{"path": str(level), "coordinateTransformations": [
        {"type": "scale", "scale": [spacing * 2 ** level] * 3},
        {"type": "translation", "translation": [spacing * (2 ** level - 1) / 2] * 3}]}
        for level in range(levels)]
    axes = [{"name": a, "type": "space", "unit": "angstrom"} for a in ("z", "y", "x")]
    return [{"version": "0.4", "name": name, "axes": axes, "datasets": datasets}]


def write_multiscale_zarr(path: str | Path, volume: np.ndarray, levels: int = 3,
                          spacing: float = VOXEL_SPACING) -> Path:
    """Write ``volume [z, y, x]`` and ``levels - 1`` coarser copies; temp folder, then rename onto ``path``."""
    path = Path(path)
    if volume.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume [z, y, x], got shape {volume.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_version=2)
        level_volume = np.ascontiguousarray(volume, dtype=np.float32)
        for level in range(levels):
            if level:
                level_volume = downsample_mean(level_volume)
            chunks = tuple(min(c, s) for c, s in zip(CHUNKS, level_volume.shape))
            group.create_dataset(str(level), data=level_volume, chunks=chunks, dtype="<f4",
                                 compressor=_COMPRESSOR, overwrite=True, dimension_separator="/")
        group.attrs["multiscales"] = multiscales_attrs(path.stem, levels, spacing)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path
