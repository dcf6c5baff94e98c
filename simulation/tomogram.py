"""One simulated tomogram: slab, objects, placement, potential, imaging; returns volumes and true picks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from particles import PARTICLE_NAMES, VOXEL_SPACING, index_to_angstrom
from simulation.imaging import reconstruct
from simulation.placement import (Placement, place_objects, sample_counts, sample_distractor_counts,
                                  sample_slab, volume_scale)
from simulation.render import DensityModel, Slab, render_into, slab_occupancy
from simulation.shapes import BUILTIN_SHAPES, random_distractor
from simulation.templates import TemplateSet, load_templates

PROTEIN_CONTRAST: float = 0.4
"""Protein potential above that of the ice it displaces (1.35 vs ~0.93 g/cm^3, ice = 1)."""

NOISE_SIGMA: float = 0.08
"""Per-voxel noise std (before wedge and low-pass) at ``noise=1``; ice contrast is 1."""

DEFOCUS_RANGE: tuple[float, float] = (25_000.0, 45_000.0)
"""Defocus range in Å (2.5-4.5 µm underfocus), drawn per run."""

Templates = TemplateSet | str | Path | None


def _as_template_set(templates: Templates) -> TemplateSet | None:
    """Accept a loaded TemplateSet, a folder path, or None (built-in shapes)."""
    if templates is None or isinstance(templates, TemplateSet):
        return templates
    return load_templates(templates)


def build_objects(counts: dict[str, int], distractor_counts: dict[str, int], rng: np.random.Generator,
                  templates: TemplateSet | None) -> tuple[list[DensityModel], list[str], list[bool]]:
    """Density models, names and pickable flags for every object of a run (templates where given)."""
    models: list[DensityModel] = []
    names: list[str] = []
    labelled: list[bool] = []
    for name in PARTICLE_NAMES:
        model = templates.particles.get(name) if templates is not None else None
        model = model if model is not None else BUILTIN_SHAPES[name]
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
                     spacing: float = VOXEL_SPACING) -> np.ndarray:
    """Scattering potential ``[z, y, x]`` float32: ice occupancy + PROTEIN_CONTRAST x density."""
    density = np.zeros(shape, dtype=np.float32)
    for model, centre, rot in zip(placement.models, placement.centres, placement.rotations):
        render_into(density, model, centre, rot, spacing)
    density *= np.float32(PROTEIN_CONTRAST)
    density += slab_occupancy(shape, slab)
    return density


def placement_picks(placement: Placement, spacing: float = VOXEL_SPACING) -> pd.DataFrame:
    """Picks table (particle_type, x, y, z in Å) of the pickable objects: exactly the placed centres."""
    keep = placement.labelled
    xyz = index_to_angstrom(placement.centres[keep], spacing)  # [n, 3] x, y, z
    names = [n for n, k in zip(placement.names, keep) if k]
    return pd.DataFrame({"particle_type": names, "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})


def simulate_run(shape: tuple[int, int, int], rng: np.random.Generator, noise: float = 1.0,
                 templates: Templates = None, tomo_types: tuple[str, ...] = ("denoised",),
                 spacing: float = VOXEL_SPACING) -> tuple[dict[str, np.ndarray], pd.DataFrame, Placement]:
    """Everything of one run: tomograms by type, the true picks and the full placement (distractors too)."""
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"tomogram shape must be 3 sizes >= 8 (z, y, x), got {shape}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    shape = tuple(int(s) for s in shape)
    template_set = _as_template_set(templates)
    slab = sample_slab(shape, rng)
    scale = volume_scale(shape, slab)
    counts = sample_counts(rng, scale)
    models, names, labelled = build_objects(counts, sample_distractor_counts(rng, scale), rng, template_set)
    placement = place_objects(shape, slab, models, names, labelled, rng, spacing)
    potential = render_potential(shape, slab, placement, spacing)
    defocus = rng.uniform(*DEFOCUS_RANGE)
    volumes = reconstruct(potential, rng, defocus, noise * NOISE_SIGMA, spacing, tuple(tomo_types))
    return volumes, placement_picks(placement, spacing), placement


def simulate_tomogram(shape: tuple[int, int, int], rng: np.random.Generator, noise: float = 1.0,
                      templates: Templates = None) -> tuple[np.ndarray, pd.DataFrame]:
    """A denoised tomogram ``[z, y, x]`` float32 and its picks (particle_type, x, y, z in Å)."""
    volumes, picks, _ = simulate_run(shape, rng, noise, templates, ("denoised",))
    return volumes["denoised"], picks
