"""Where objects go: the ice slab, per-run counts, and non-overlapping placement with random orientations."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from particles import CZII_PARTICLES, FULL_SHAPE_ZYX, VOXEL_SPACING, ParticleSet
from simulation.render import DensityModel, Slab
from simulation.shapes import random_rotations

CZII_TRAIN_COUNTS: dict[str, int] = {
    "apo-ferritin": 375, "beta-amylase": 87, "beta-galactosidase": 112,
    "ribosome": 331, "thyroglobulin": 251, "virus-like-particle": 113,
}
"""Ground-truth counts over the 7 real CZII training runs (the challenge's published picks); a full-size run gets a
seventh of each."""

DISTRACTORS_PER_FULL_RUN: dict[str, float] = {"protein": 60.0, "blob": 80.0, "gold": 5.0}
"""Expected unlabelled objects in a full-size run: other proteins, small blobs, gold beads."""

RUN_TOTAL_RANGE: tuple[float, float] = (140.0, 220.0)
"""Labelled particles in a real full-size CZII training run (about 140 to 220)."""

CLUSTER_FRACTION: float = 0.5
"""Share of objects placed next to an already placed one: real runs are locally crowded
(median nearest-neighbour distance ~1.3x the sum of CZII radii in three real runs)."""

_CLUSTER_GAP = 25.0  # Å, mean surface gap of a clustered object to its neighbour
_MIX_CONCENTRATION = 40.0  # Dirichlet concentration of the per-run class mix
_FULL_SLAB_FRACTION = 0.8  # the reference full-size run has ice over 80 % of its depth
_CANDIDATES = 256  # positions tried at once for one object
_ROUNDS = 16  # batches of candidates before an object is given up


@dataclass(frozen=True)
class Placement:
    """Placed objects, in placement order: centres as continuous indices (z, y, x) and rotations."""

    names: list[str]  # particle name, or "distractor-*" / "gold-bead" for unlabelled objects
    centres: np.ndarray  # [n, 3] z, y, x voxel index (voxel i centre at i * spacing Å)
    radii: np.ndarray  # [n] exclusion radius in Å (no two objects closer than the sum)
    rotations: np.ndarray  # [n, 3, 3] lab = R @ body
    labelled: np.ndarray  # [n] bool: a pickable particle (written as a pick) or a distractor
    models: list[DensityModel]


def sample_slab(shape: tuple[int, int, int], rng: np.random.Generator) -> Slab:
    """A slab filling 75-88 % of the depth, slightly tilted (<= ~1°), roughly centred in z."""
    nz, ny, nx = shape
    thickness = nz * rng.uniform(0.75, 0.88)
    slope_y, slope_x = rng.uniform(-0.015, 0.015, size=2)
    tilt_span = abs(slope_y) * ny / 2 + abs(slope_x) * nx / 2
    room = max(0.0, (nz - 1 - thickness) / 2 - tilt_span)
    centre = (nz - 1) / 2 + rng.uniform(-room, room)
    return Slab(float(centre), float(thickness), float(slope_y), float(slope_x), (ny - 1) / 2, (nx - 1) / 2)


def volume_scale(shape: tuple[int, int, int], slab: Slab) -> float:
    """Ice volume of this run relative to the ice of a reference full-size run (scales the counts)."""
    full_z, full_y, full_x = FULL_SHAPE_ZYX
    ice = shape[1] * shape[2] * min(slab.thickness, shape[0])
    return ice / (full_y * full_x * full_z * _FULL_SLAB_FRACTION)


def sample_counts(rng: np.random.Generator, scale: float,
                  particles: ParticleSet = CZII_PARTICLES) -> dict[str, int]:
    """Per-class counts: a run total in the real 140-220 range (x ice volume) per six classes, split by a
    jittered class mix around the real one (Dirichlet; classes of other sets at the CZII mean); every class
    at least once, as in every real run."""
    names = particles.names
    total = int(np.rint(rng.uniform(*RUN_TOTAL_RANGE) * scale * len(names) / len(CZII_TRAIN_COUNTS)))
    mean = float(np.mean(list(CZII_TRAIN_COUNTS.values())))
    mix = np.array([CZII_TRAIN_COUNTS.get(n, mean) for n in names], dtype=float)
    proportions = rng.dirichlet(_MIX_CONCENTRATION * mix / mix.sum())
    return {n: max(1, int(c)) for n, c in zip(names, rng.multinomial(total, proportions))}


def sample_distractor_counts(rng: np.random.Generator, scale: float) -> dict[str, int]:
    """Unlabelled object counts, Poisson around the full-run expectations scaled by ice volume."""
    return {kind: int(rng.poisson(mean * scale)) for kind, mean in DISTRACTORS_PER_FULL_RUN.items()}


def _near_placed(placed: np.ndarray, placed_r: np.ndarray, radius: float, rng: np.random.Generator,
                 spacing: float) -> np.ndarray:
    """Candidate centres ``[K, 3]`` just outside random placed objects (a gap of ~_CLUSTER_GAP Å)."""
    j = rng.integers(len(placed), size=_CANDIDATES)
    dirs = rng.standard_normal((_CANDIDATES, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    reach = (radius + placed_r[j] + 1.0 + rng.exponential(_CLUSTER_GAP, _CANDIDATES)) / spacing
    return placed[j] + dirs * reach[:, None]


def place_objects(shape: tuple[int, int, int], slab: Slab, models: list[DensityModel], names: list[str],
                  labelled: list[bool], rng: np.random.Generator,
                  spacing: float = VOXEL_SPACING, particles: ParticleSet = CZII_PARTICLES) -> Placement:
    """Random sequential placement, largest first; objects that find no free spot are dropped.

    Exclusion radius of a pickable particle is max(its model's extent, its CZII radius); centres
    lie inside the volume and inside the ice (at least one exclusion radius, or 45 % of the ice
    thickness when thinner, from each surface).
    """
    radii = np.array([max(m.extent, particles.get(n).radius) if lab else m.extent
                      for m, n, lab in zip(models, names, labelled)])
    order = np.argsort(-radii, kind="stable")
    nz, ny, nx = shape
    centres: list[np.ndarray] = []
    kept: list[int] = []
    placed = np.empty((0, 3))
    placed_r = np.empty(0)
    for i in order:
        margin = min(radii[i] / spacing, 0.45 * slab.thickness)
        cluster = rng.uniform() < CLUSTER_FRACTION
        for _ in range(_ROUNDS):
            if cluster and len(placed):
                cand = _near_placed(placed, placed_r, radii[i], rng, spacing)
            else:
                cand = np.stack([np.zeros(_CANDIDATES), rng.uniform(0, ny - 1, _CANDIDATES),
                                 rng.uniform(0, nx - 1, _CANDIDATES)], axis=1)
            bottom, top = slab.surfaces(cand[:, 1], cand[:, 2])
            lo, hi = np.maximum(bottom + margin, 0.0), np.minimum(top - margin, nz - 1.0)
            if not (cluster and len(placed)):
                cand[:, 0] = lo + rng.uniform(0, 1, _CANDIDATES) * (hi - lo)
            ok = (cand[:, 0] >= lo) & (cand[:, 0] <= hi)
            ok &= np.all((cand[:, 1:] >= 0) & (cand[:, 1:] <= [ny - 1, nx - 1]), axis=1)
            if len(placed):
                dist = np.linalg.norm(cand[:, None, :] - placed[None], axis=-1) * spacing  # [K, n] Å
                ok &= np.all(dist >= radii[i] + placed_r[None] + 1e-6, axis=1)
            hit = np.flatnonzero(ok)
            if hit.size:
                centres.append(cand[hit[0]])
                kept.append(int(i))
                placed = np.vstack([placed, cand[hit[0]][None]])
                placed_r = np.append(placed_r, radii[i])
                break
    idx = np.asarray(kept, dtype=np.int64)
    return Placement(
        names=[names[k] for k in idx],
        centres=np.asarray(centres, dtype=np.float64).reshape(-1, 3),
        radii=radii[idx],
        rotations=random_rotations(len(idx), rng),
        labelled=np.asarray(labelled, dtype=bool)[idx],
        models=[models[k] for k in idx],
    )
