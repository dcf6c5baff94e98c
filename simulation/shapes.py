"""Built-in particle density models: unions of soft ellipsoids and shells, evaluated vectorised.

Each model is sized from the real density maps of the six CZII proteins (10 Å maps of the
PDB entries: outer/inner radii of the shells, principal extents of the compact particles)
and has its centre of mass at the body-frame origin, so the placed centre is the true pick.
Density is 1 inside protein (0 outside); gold beads carry a higher density.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EDGE_WIDTH: float = 6.0
"""Å over which a model's surface ramps from 0 to full density (about a voxel, like a 10 Å map)."""

GOLD_DENSITY: float = 5.0
"""Density of a gold bead relative to protein: beads are far darker than any protein."""


@dataclass(frozen=True)
class Component:
    """One ellipsoid (or ellipsoidal shell when ``inner`` > 0) of a model, in the body frame (Å)."""

    centre: tuple[float, float, float]  # z, y, x offset from the particle centre
    semi_axes: tuple[float, float, float]  # z, y, x semi-axes of the outer surface
    inner: float = 0.0  # inner surface as a fraction of the outer one (shells); 0 = solid
    density: float = 1.0


@dataclass(frozen=True)
class ShapeModel:
    """A particle model: a union of components; ``extent`` bounds it (Å from the centre)."""

    name: str
    components: tuple[Component, ...]

    @property
    def extent(self) -> float:
        dirs = _sphere_directions()  # [n, 3]
        reach = [np.linalg.norm(np.asarray(c.centre) + dirs * np.asarray(c.semi_axes), axis=1).max()
                 for c in self.components]
        return float(max(reach)) + EDGE_WIDTH + 2.0  # 2 Å: slack for the direction sampling

    def evaluate(self, body_zyx: np.ndarray) -> np.ndarray:
        """Density at body-frame points ``[..., 3]`` (z, y, x in Å) -> ``[...]`` float32."""
        return evaluate_shape(self, body_zyx)


def _sphere_directions(n: int = 2000) -> np.ndarray:
    """``n`` near-uniform unit vectors ``[n, 3]`` (Fibonacci sphere), to bound an ellipsoid's reach."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azimuth = np.pi * (1.0 + 5.0 ** 0.5) * i
    return np.stack([np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], axis=1)


def _tetrahedron(offset: float, radius: float) -> tuple[Component, ...]:
    """Four equal blobs on the vertices of a regular tetrahedron (a compact tetramer)."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / np.sqrt(3.0)
    return tuple(Component(tuple(offset * p), (radius, radius, radius)) for p in v)


def _ribosome() -> tuple[Component, ...]:
    """Large (60S) sphere and small (40S) flattened ellipsoid, offset so the centre of mass is 0."""
    large, small = (105.0, 105.0, 105.0), (55.0, 95.0, 70.0)
    separation = large[0] + small[0] - 20.0  # subunits touch along z with a 20 Å interface
    v_large, v_small = np.prod(large), np.prod(small)
    w = v_small / (v_large + v_small)  # offsets weighted so the centre of mass is the origin
    return (Component((-separation * w, -10.0 * w, 0.0), large),
            Component((separation * (1 - w), 10.0 * (1 - w), 0.0), small))


BUILTIN_SHAPES: dict[str, ShapeModel] = {
    # 24-mer cage: outer radius ~66 Å, cavity ~40 Å (8cpv/4v1w map profile).
    "apo-ferritin": ShapeModel("apo-ferritin", (Component((0, 0, 0), (66.0, 66.0, 66.0), inner=0.6),)),
    # Small compact tetramer, ~40 Å bounding radius (1fa2 map).
    "beta-amylase": ShapeModel("beta-amylase", _tetrahedron(16.0, 22.0)),
    # D2 tetramer: four lobes in a plane, extents ~45 x 73 x 90 Å (6drv map).
    # (a central core fills the interface, as in the real map, which is densest at its centre).
    "beta-galactosidase": ShapeModel("beta-galactosidase", tuple(
        Component((0.0, sy * 33.0, sx * 45.0), (42.0, 38.0, 44.0)) for sy in (-1, 1) for sx in (-1, 1))
        + (Component((0.0, 0.0, 0.0), (36.0, 40.0, 50.0)),)),
    # 80S: two unequal subunits, ~160 Å bounding radius (6qzp map).
    "ribosome": ShapeModel("ribosome", _ribosome()),
    # Elongated dimer, ~250 Å long, ~60 Å semi-axes across (7n4y map).
    "thyroglobulin": ShapeModel("thyroglobulin", (
        Component((0.0, 12.0, -55.0), (45.0, 50.0, 72.0)),
        Component((0.0, -12.0, 55.0), (45.0, 50.0, 72.0)))),
    # Icosahedral capsid approximated by a shell: outer ~155 Å, inner ~118 Å (6n4v map).
    "virus-like-particle": ShapeModel("virus-like-particle", (
        Component((0, 0, 0), (155.0, 155.0, 155.0), inner=118.0 / 155.0),)),
}


def generic_shape(name: str, radius: float) -> ShapeModel:
    """A class without a built-in shape or density map: a compact, slightly oblate ellipsoid of its radius
    (semi-axes 1, 0.85 and 0.7 x radius), so classes of other sets differ by size as their radii do."""
    return ShapeModel(name, (Component((0.0, 0.0, 0.0), (0.7 * radius, 0.85 * radius, radius)),))


def random_distractor(kind: str, rng: np.random.Generator) -> ShapeModel:
    """An unlabelled object: another protein (2-4 blobs), a small blob, or a gold bead."""
    if kind == "protein":
        n = int(rng.integers(2, 5))
        radii = rng.uniform(16.0, 32.0, size=n)
        offsets = rng.normal(size=(n, 3))
        offsets *= (rng.uniform(0.6, 1.0, size=(n, 1)) * radii[:, None]) / np.linalg.norm(offsets, axis=1,
                                                                                          keepdims=True)
        offsets -= offsets.mean(axis=0)
        comps = tuple(Component(tuple(o), (r, r * rng.uniform(0.7, 1.0), r * rng.uniform(0.7, 1.0)))
                      for o, r in zip(offsets, radii))
        return ShapeModel("distractor-protein", comps)
    if kind == "blob":
        r = float(rng.uniform(12.0, 30.0))
        return ShapeModel("distractor-blob", (Component((0, 0, 0), (r, r, r)),))
    if kind == "gold":
        r = float(rng.uniform(25.0, 50.0))
        return ShapeModel("gold-bead", (Component((0, 0, 0), (r, r, r), density=GOLD_DENSITY),))
    raise ValueError(f"unknown distractor kind {kind!r}; known: protein, blob, gold")


def _soft_inside(distance_fraction: np.ndarray, scale: float) -> np.ndarray:
    """Occupancy ramp: 1 well inside (fraction < 1), 0 outside, linear over EDGE_WIDTH Å."""
    return np.clip(0.5 + (1.0 - distance_fraction) * scale / EDGE_WIDTH, 0.0, 1.0)


def evaluate_shape(model: ShapeModel, body_zyx: np.ndarray) -> np.ndarray:
    """Density at body-frame points ``[..., 3]`` (z, y, x in Å) -> ``[...]`` float32 (union = max)."""
    out = np.zeros(body_zyx.shape[:-1], dtype=np.float32)
    for comp in model.components:
        axes = np.asarray(comp.semi_axes, dtype=np.float32)
        rho = np.linalg.norm((body_zyx - np.asarray(comp.centre, dtype=np.float32)) / axes, axis=-1)
        scale = float(axes.min())
        occ = _soft_inside(rho, scale)
        if comp.inner > 0.0:
            occ = np.clip(occ - _soft_inside(rho / comp.inner, scale * comp.inner), 0.0, 1.0)
        np.maximum(out, occ * comp.density, out=out)
    return out


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random 3D rotation matrices ``[n, 3, 3]`` (normalised Gaussian quaternions)."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, a, b, c = q.T
    return np.stack([
        np.stack([1 - 2 * (b * b + c * c), 2 * (a * b - c * w), 2 * (a * c + b * w)], -1),
        np.stack([2 * (a * b + c * w), 1 - 2 * (a * a + c * c), 2 * (b * c - a * w)], -1),
        np.stack([2 * (a * c - b * w), 2 * (b * c + a * w), 1 - 2 * (a * a + b * b)], -1),
    ], axis=1)
