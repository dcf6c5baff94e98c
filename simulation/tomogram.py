"""One simulated tomogram: slab, objects, placement, potential, imaging; returns volumes and true picks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from particles import CZII_PARTICLES, VOXEL_SPACING, Particle, ParticleSet, index_to_angstrom
from simulation.difficulty import ImagingConfig, class_difficulty
from simulation.imaging import ImagingParams, reconstruct
from simulation.tilt_series import reconstruct_tilt_series
from simulation.placement import (Placement, place_objects, sample_counts, sample_distractor_counts,
                                  sample_slab, volume_scale)
from simulation.render import DensityModel, Slab, render_into, slab_occupancy
from simulation.shapes import BUILTIN_SHAPES, generic_shape, random_distractor
from simulation.templates import TemplateSet, load_templates

PROTEIN_CONTRAST: float = 0.4
"""Protein potential above that of the ice it displaces (1.35 vs ~0.93 g/cm^3, ice = 1)."""

Templates = TemplateSet | str | Path | None


def _as_template_set(templates: Templates) -> TemplateSet | None:
    """Accept a loaded TemplateSet, a folder path, or None (built-in shapes)."""
    if templates is None or isinstance(templates, TemplateSet):
        return templates
    return load_templates(templates)


def particle_model(p: Particle, templates: TemplateSet | None) -> DensityModel:
    """A class's density: its template map, else its built-in shape (the CZII six), else an ellipsoid of its
    radius."""
    model = templates.particles.get(p.name) if templates is not None else None
    return model or BUILTIN_SHAPES.get(p.name) or generic_shape(p.name, p.radius)


def build_objects(counts: dict[str, int], distractor_counts: dict[str, int], rng: np.random.Generator,
                  templates: TemplateSet | None,
                  particles: ParticleSet = CZII_PARTICLES) -> tuple[list[DensityModel], list[str], list[bool]]:
    """Density models, names and pickable flags for every object of a run (templates where given)."""
    models: list[DensityModel] = []
    names: list[str] = []
    labelled: list[bool] = []
    for p in particles.particles:
        name, model = p.name, particle_model(p, templates)
        models += [model] * counts[name]
        names += [name] * counts[name]
        labelled += [True] * counts[name]
    maps = templates.distractors if templates is not None else []
    for kind, n in distractor_counts.items():
        for _ in range(n):
            if kind == "protein" and maps and rng.uniform() < 0.5:
                model = maps[int(rng.integers(len(maps)))]
            else:
                model = random_distractor(kind, rng)
            models.append(model)
            names.append(f"distractor-{kind}")
            labelled.append(False)
    return models, names, labelled


def render_potential(shape: tuple[int, int, int], slab: Slab, placement: Placement,
                     spacing: float = VOXEL_SPACING,
                     particles: ParticleSet = CZII_PARTICLES) -> tuple[np.ndarray, np.ndarray]:
    """Scattering potential ``[z, y, x]`` float32 (ice occupancy + PROTEIN_CONTRAST x density) and the
    label volume ``[z, y, x]`` uint8 (particle label inside each pickable particle, 0 elsewhere)."""
    density = np.zeros(shape, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    for name, model, centre, rot, pickable in zip(placement.names, placement.models, placement.centres,
                                                  placement.rotations, placement.labelled):
        render_into(density, model, centre, rot, spacing, labels=labels if pickable else None,
                    label=particles.get(name).label if pickable else 0)
    density *= np.float32(PROTEIN_CONTRAST)
    density += slab_occupancy(shape, slab)
    return density, labels


def placement_picks(placement: Placement, spacing: float = VOXEL_SPACING) -> pd.DataFrame:
    """Picks table (particle_type, x, y, z in Å) of the pickable objects: exactly the placed centres."""
    keep = placement.labelled
    xyz = index_to_angstrom(placement.centres[keep], spacing)  # [n, 3] x, y, z
    names = [n for n, k in zip(placement.names, keep) if k]
    return pd.DataFrame({"particle_type": names, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})


@dataclass(frozen=True)
class SimulatedRun:
    """Everything of one simulated run."""

    volumes: dict[str, np.ndarray]  # tomogram type -> [z, y, x] float32
    picks: pd.DataFrame  # the true picks (particle_type, x, y, z in Å)
    placement: Placement  # every placed object, distractors too
    imaging: ImagingParams  # this run's physics
    difficulty: dict[str, dict[str, float]]  # per class: snr, snr_db, cnr, voxels (simulation.difficulty)
    noise_std: float  # per voxel, in the denoised tomogram


def simulate_run(shape: tuple[int, int, int], rng: np.random.Generator, imaging: ImagingConfig | None = None,
                 templates: Templates = None, tomo_types: tuple[str, ...] = ("denoised",),
                 spacing: float = VOXEL_SPACING, particles: ParticleSet = CZII_PARTICLES) -> SimulatedRun:
    """One run: slab, objects, placement, potential, imaging drawn from ``imaging`` (default: realistic), of
    the classes of ``particles``."""
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"tomogram shape must be 3 sizes >= 8 (z, y, x), got {shape}")
    shape = tuple(int(s) for s in shape)
    template_set = _as_template_set(templates)
    slab = sample_slab(shape, rng)
    scale = volume_scale(shape, slab)
    counts = sample_counts(rng, scale, particles)
    models, names, labelled = build_objects(counts, sample_distractor_counts(rng, scale), rng, template_set,
                                            particles)
    placement = place_objects(shape, slab, models, names, labelled, rng, spacing, particles)
    potential, labels = render_potential(shape, slab, placement, spacing, particles)
    params = (imaging or ImagingConfig()).draw(rng)
    imager = reconstruct_tilt_series if params.family == "tilt-series" else reconstruct
    recon = imager(potential, rng, params, spacing, labels > 0, tuple(tomo_types))
    return SimulatedRun(recon.volumes, placement_picks(placement, spacing), placement, params,
                        class_difficulty(recon.signal, recon.noise_std, labels, particles), recon.noise_std)


def simulate_tomogram(shape: tuple[int, int, int], rng: np.random.Generator, imaging: ImagingConfig | None = None,
                      templates: Templates = None) -> tuple[np.ndarray, pd.DataFrame]:
    """A denoised tomogram ``[z, y, x]`` float32 and its picks (particle_type, x, y, z in Å)."""
    run = simulate_run(shape, rng, imaging, templates, ("denoised",))
    return run.volumes["denoised"], run.picks
