"""The particle table, voxel spacing and axis convention: the one source every module imports.

Axis convention
---------------
* Arrays (tomograms, heatmaps, logits) are indexed ``[z, y, x]``.
* Picks are given as ``x, y, z`` in Ångström.
* Half-voxel convention: the *centre* of voxel ``i`` lies at ``i * VOXEL_SPACING`` Å
  (no half-voxel offset). A pick at Å coordinate ``a`` has continuous index
  ``a / VOXEL_SPACING`` and lies in voxel ``round(a / VOXEL_SPACING)``; a peak found
  at integer voxel ``i`` is reported at ``i * VOXEL_SPACING`` Å. This is the
  convention of the CZII challenge data and of its published solutions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOXEL_SPACING: float = 10.012
"""Å per voxel of the full-resolution (level 0) CZII tomograms."""

FULL_SHAPE_ZYX: tuple[int, int, int] = (184, 630, 630)
"""Shape of a full-resolution CZII tomogram."""


@dataclass(frozen=True)
class Particle:
    """One pickable particle class as the CZII challenge defines it."""

    name: str
    label: int  # 1..6; channel index in model outputs is label - 1
    radius: float  # Å
    weight: float  # weight in the F-beta score; 0 = trained on, not scored
    difficulty: str
    pdb_id: str

    @property
    def radius_voxels(self) -> float:
        return self.radius / VOXEL_SPACING

    @property
    def channel(self) -> int:
        return self.label - 1


PARTICLES: tuple[Particle, ...] = (
    Particle("apo-ferritin", 1, 60.0, 1.0, "easy", "4V1W"),
    Particle("beta-amylase", 2, 65.0, 0.0, "impossible", "1FA2"),
    Particle("beta-galactosidase", 3, 90.0, 2.0, "hard", "6X1Q"),
    Particle("ribosome", 4, 150.0, 1.0, "easy", "6EK0"),
    Particle("thyroglobulin", 5, 130.0, 2.0, "hard", "6SCJ"),
    Particle("virus-like-particle", 6, 135.0, 1.0, "easy", "6N4V"),
)

PARTICLE_NAMES: tuple[str, ...] = tuple(p.name for p in PARTICLES)
NUM_CLASSES: int = len(PARTICLES)
_BY_NAME = {p.name: p for p in PARTICLES}

BETA: float = 4.0
"""Recall weight of the challenge's F-beta score."""

HIT_RADIUS_FRACTION: float = 0.5
"""A reference particle is hit by a prediction within this fraction of its radius."""


def particle(name: str) -> Particle:
    """Look up a particle by name; unknown names are an error, never silently skipped."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(
            f"unknown particle name {name!r}; known: {', '.join(PARTICLE_NAMES)}"
        ) from None


def angstrom_to_index(xyz_angstrom: np.ndarray, spacing: float = VOXEL_SPACING) -> np.ndarray:
    """Convert picks ``[N, 3]`` (x, y, z in Å) to continuous array indices ``[N, 3]`` (z, y, x).

    ``spacing`` is the voxel size of the array indexed (coarser multiscale levels use 2**level times it).
    """
    xyz = np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)
    return xyz[:, ::-1] / spacing


def index_to_angstrom(zyx_index: np.ndarray, spacing: float = VOXEL_SPACING) -> np.ndarray:
    """Convert array indices ``[N, 3]`` (z, y, x; integer or continuous) to picks (x, y, z in Å)."""
    zyx = np.asarray(zyx_index, dtype=np.float64).reshape(-1, 3)
    return zyx[:, ::-1] * spacing
