"""The particle table, voxel spacing and axis convention: the one source every module imports.

The six CZII classes are the built-in particle set; ``ParticleSet`` holds any other (read from a copick
config or a particles file by ``dataio.particle_sets``), with the same fields and checks.

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

from dataclasses import asdict, dataclass

import numpy as np

VOXEL_SPACING: float = 10.012
"""Å per voxel of the full-resolution (level 0) CZII tomograms."""

FULL_SHAPE_ZYX: tuple[int, int, int] = (184, 630, 630)
"""Shape of a full-resolution CZII tomogram."""


DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard", "impossible")
"""How hard a class is to see (sets its patch-sampling weight); classes of other sets are ``medium``."""


@dataclass(frozen=True)
class Particle:
    """One pickable particle class (the CZII challenge's, or any copick project's)."""

    name: str
    label: int  # 1..N; channel index in model outputs is label - 1
    radius: float  # Å
    weight: float = 1.0  # weight in the F-beta score; 0 = trained on, not scored
    difficulty: str = "medium"
    pdb_id: str = ""

    def radius_voxels(self, spacing: float) -> float:
        """The radius in voxels of a tomogram at ``spacing`` Å per voxel."""
        return self.radius / spacing

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



@dataclass(frozen=True)
class ParticleSet:
    """The classes a model picks, in channel order: labels 1..N, names unique and usable as copick object
    names, radii positive, weights non-negative with at least one scored class."""

    particles: tuple[Particle, ...]

    def __post_init__(self) -> None:
        check_particles(self.particles, "particle set")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.particles)

    @property
    def num_classes(self) -> int:
        return len(self.particles)

    def get(self, name: str) -> Particle:
        """The class called ``name``; unknown names are an error listing the set, never skipped."""
        for p in self.particles:
            if p.name == name:
                return p
        raise ValueError(f"unknown particle name {name!r}; known: {', '.join(self.names)}")

    def to_records(self) -> list[dict[str, object]]:
        """Plain records (a particles file, the run config's ``particles``) from which ``from_records`` rebuilds
        the same set."""
        return [asdict(p) for p in self.particles]

    @classmethod
    def from_records(cls, records: object, where: str) -> "ParticleSet":
        """A set from plain records; anything malformed is an error naming ``where`` and the record."""
        if not isinstance(records, list) or not records:
            raise ValueError(f"{where}: expected a non-empty list of particles, got {type(records).__name__}")
        fields = set(Particle.__dataclass_fields__)
        particles = []
        for i, record in enumerate(records):
            if not isinstance(record, dict) or not {"name", "radius"} <= set(record):
                raise ValueError(f"{where}: particle {i + 1} needs at least a name and a radius (Å), got {record!r}")
            unknown = set(record) - fields
            if unknown:
                raise ValueError(f"{where}: particle {record['name']!r} has unknown field(s) {sorted(unknown)}; "
                                 f"known: {sorted(fields)}")
            try:  # fields a record leaves out take the Particle defaults (the only ones)
                typed = {"name": str(record["name"]), "label": int(record.get("label", i + 1)),
                         "radius": _real(record["radius"], "radius")}
                typed |= {k: _real(record[k], k) for k in ("weight",) if k in record}
                typed |= {k: str(record[k] or "") for k in ("difficulty", "pdb_id") if k in record}
                particles.append(Particle(**typed))
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: particle {record['name']!r}: {err}") from None
        check_particles(particles, where)
        return cls(tuple(sorted(particles, key=lambda p: p.label)))


def _real(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def check_particles(particles: tuple[Particle, ...] | list[Particle], where: str) -> None:
    """Labels 1..N (the channel order), unique names fit for copick file names, sizes and weights in range."""
    names = [p.name for p in particles]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{where}: particle name(s) {duplicated} appear more than once")
    labels = sorted(p.label for p in particles)
    if labels != list(range(1, len(particles) + 1)):
        raise ValueError(f"{where}: labels must be 1..{len(particles)} (one per class, the output channel order); "
                         f"got {labels}")
    for p in particles:
        if not p.name or any(c in p.name for c in '_/\\ <>:"|?*') or p.name.startswith("."):
            raise ValueError(f"{where}: particle name {p.name!r} cannot be a copick object name "
                             "(no spaces, underscores or path characters)")
        if not (p.radius > 0 and np.isfinite(p.radius)):
            raise ValueError(f"{where}: particle {p.name!r} needs a positive radius in Å, got {p.radius}")
        if not (p.weight >= 0 and np.isfinite(p.weight)):
            raise ValueError(f"{where}: particle {p.name!r} has weight {p.weight}; weights are >= 0")
        if p.difficulty not in DIFFICULTIES:
            raise ValueError(f"{where}: particle {p.name!r} has difficulty {p.difficulty!r}; "
                             f"choose one of {DIFFICULTIES}")
    if not any(p.weight > 0 for p in particles):
        raise ValueError(f"{where}: every weight is 0, so nothing would be scored")


CZII_PARTICLES = ParticleSet(PARTICLES)
"""The challenge's six classes with their F-beta weights: the default set."""

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


def checked_spacing(value: object, where: str) -> float:
    """A voxel spacing read from a file (copick folder name, OME-NGFF scale, MRC header, split file): a
    positive finite number of Å, else an error naming ``where`` (a spacing of 0 or NaN would divide every
    coordinate into nonsense)."""
    try:
        spacing = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: voxel spacing {value!r} is not a number") from None
    if not np.isfinite(spacing) or spacing <= 0:
        raise ValueError(f"{where}: voxel spacing {value!r} must be a positive finite number of Å")
    return spacing
