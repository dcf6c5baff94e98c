"""Real density maps (MRC, 10 Å/voxel) as particle models, in place of the built-in shapes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np
from scipy.ndimage import map_coordinates

from particles import CZII_PARTICLES, ParticleSet

TEMPLATE_SPACING: float = 10.0
"""Å per voxel the template maps must have (checked against the MRC header when it is set)."""

_MASK_FRACTION = 0.15  # voxels above this fraction of the maximum count as protein for normalisation


@dataclass(frozen=True)
class TemplateModel:
    """A density map normalised to mean 1 inside the protein, centred on its centre of mass."""

    name: str
    density: np.ndarray  # [n, n, n] float32
    com: np.ndarray  # [3] z, y, x centre of mass, in template voxels
    extent: float  # Å from the centre of mass that bounds the protein

    def evaluate(self, body_zyx: np.ndarray) -> np.ndarray:
        """Density at body-frame points ``[..., 3]`` (z, y, x in Å) by trilinear interpolation."""
        idx = body_zyx / TEMPLATE_SPACING + self.com  # [..., 3] template voxel coordinates
        flat = idx.reshape(-1, 3).T
        vals = map_coordinates(self.density, flat, order=1, mode="constant", cval=0.0)
        return vals.reshape(body_zyx.shape[:-1]).astype(np.float32)


@dataclass(frozen=True)
class TemplateSet:
    """Particle name -> template, and the distractor maps (unlabelled)."""

    particles: dict[str, TemplateModel]
    distractors: list[TemplateModel] = field(default_factory=list)


def read_template(path: Path) -> TemplateModel:
    """Load one MRC map, check it is a finite cube at 10 Å/voxel, normalise and centre it."""
    try:
        with mrcfile.open(path, permissive=True) as mrc:
            data = None if mrc.data is None else np.asarray(mrc.data, dtype=np.float32)
            voxel = float(mrc.voxel_size.x)
    except (OSError, ValueError) as err:
        raise ValueError(f"template {path}: cannot read as MRC ({err})") from err
    if data is None or data.ndim != 3:
        raise ValueError(f"template {path}: expected a 3D map, got {None if data is None else data.shape}")
    if len(set(data.shape)) != 1:
        raise ValueError(f"template {path}: map must be cubic, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"template {path}: map holds NaN or infinite values")
    if voxel > 0 and abs(voxel - TEMPLATE_SPACING) > 0.05 * TEMPLATE_SPACING:
        raise ValueError(f"template {path}: voxel size {voxel:.3f} Å, expected {TEMPLATE_SPACING} Å")
    data = np.clip(data, 0.0, None)
    peak = float(data.max())
    if peak <= 0.0:
        raise ValueError(f"template {path}: map has no positive density")
    mask = data > _MASK_FRACTION * peak
    data = data / float(data[mask].mean())
    grid = np.indices(data.shape).reshape(3, -1).astype(np.float64)  # [3, n^3]
    com = (grid * data.reshape(-1)).sum(axis=1) / data.sum()
    radii = np.linalg.norm(grid[:, mask.reshape(-1)] - com[:, None], axis=0)
    return TemplateModel(path.stem, data.astype(np.float32), com, float(radii.max() + 1.0) * TEMPLATE_SPACING)


def load_templates(folder: str | Path, particles: ParticleSet = CZII_PARTICLES) -> TemplateSet:
    """Match ``<particle-name>.mrc`` or ``<pdb_id>.mrc`` (any case) of the classes of ``particles`` and
    ``distractor*.mrc`` in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"template folder {folder} does not exist or is not a folder")
    files = {p.stem.lower(): p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".mrc"}
    found: dict[str, TemplateModel] = {}
    for part in particles.particles:
        for key in (part.name.lower(), part.pdb_id.lower()):
            if key and key in files:
                found[part.name] = read_template(files[key])
                break
    distractors = [read_template(p) for stem, p in files.items() if stem.startswith("distractor")]
    if not found:
        expected = ", ".join(f"{p.name}.mrc" + (f"|{p.pdb_id.lower()}.mrc" if p.pdb_id else "")
                             for p in particles.particles)
        raise ValueError(f"template folder {folder}: no file matches a particle; expected names: {expected}"
                         f"; found: {sorted(p.name for p in files.values()) or 'no .mrc files'}")
    return TemplateSet(found, distractors)
