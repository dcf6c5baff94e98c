"""Rendering: the ice slab's occupancy and rotated particle densities splatted into a volume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class DensityModel(Protocol):
    """Anything with a bounding radius (Å) and a density at body-frame points (built-in or template)."""

    extent: float

    def evaluate(self, body_zyx: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Slab:
    """A vitreous-ice slab: mid-plane ``centre + slope_y*(y-y0) + slope_x*(x-x0)`` (voxels), thickness."""

    centre: float
    thickness: float
    slope_y: float = 0.0
    slope_x: float = 0.0
    y0: float = 0.0
    x0: float = 0.0

    def surfaces(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bottom and top z (voxel index) of the ice at positions ``y, x`` (broadcast)."""
        mid = self.centre + self.slope_y * (y - self.y0) + self.slope_x * (x - self.x0)
        return mid - 0.5 * self.thickness, mid + 0.5 * self.thickness


def slab_occupancy(shape: tuple[int, int, int], slab: Slab, edge: float = 1.0) -> np.ndarray:
    """Ice occupancy ``[z, y, x]`` float32 in [0, 1], with a soft surface ``edge`` voxels wide."""
    z = np.arange(shape[0], dtype=np.float32)[:, None, None]
    y = np.arange(shape[1], dtype=np.float32)[None, :, None]
    x = np.arange(shape[2], dtype=np.float32)[None, None, :]
    bottom, top = slab.surfaces(y, x)  # [1, y, x]
    inside = z - bottom  # [z, y, x] signed distance to the nearer surface (in place below)
    np.minimum(inside, top - z, out=inside)
    inside *= np.float32(1.0 / edge)
    inside += np.float32(0.5)
    return np.clip(inside, 0.0, 1.0, out=inside).astype(np.float32, copy=False)


LABEL_DENSITY: float = 0.5
"""A voxel belongs to an object (for the label volume) where the object's density reaches this."""


def render_into(volume: np.ndarray, model: DensityModel, centre_zyx: np.ndarray, rotation: np.ndarray,
                spacing: float, weight: float = 1.0, labels: np.ndarray | None = None, label: int = 0) -> None:
    """Add ``weight`` x the model, rotated (lab = R @ body) and centred at continuous index ``centre_zyx``.

    With ``labels`` (int volume of the same shape), voxels where the model's density reaches
    ``LABEL_DENSITY`` are set to ``label``.
    """
    centre = np.asarray(centre_zyx, dtype=np.float64)
    half = int(np.ceil(model.extent / spacing)) + 1
    base = np.floor(centre).astype(np.int64)
    lo = np.maximum(base - half, 0)
    hi = np.minimum(base + half + 2, np.asarray(volume.shape))
    if np.any(hi <= lo):
        return
    offsets = [(np.arange(lo[a], hi[a]) - centre[a]) * spacing for a in range(3)]  # Å from the centre
    lab = np.stack(np.meshgrid(*offsets, indexing="ij"), axis=-1).astype(np.float32)  # [bz, by, bx, 3]
    body = lab @ rotation.astype(np.float32)  # row form of R^T @ lab
    density = model.evaluate(body)
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    volume[box] += weight * density
    if labels is not None:
        labels[box][density >= LABEL_DENSITY] = label
