"""Each class's connected-component level, fitted out of fold: a weak class is found only at a low level, a
crowded one only at a high level (a low one merges its neighbours), so the fit must choose per class; the
levels travel with the thresholds file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from config.experiment import InferenceSettings
from inference.candidates import pick_candidates_per_level
from particles import CZII_PARTICLES, VOXEL_SPACING, index_to_angstrom
from postprocess.component_levels import LEVEL_COLUMN, candidates_at_levels, fit_component_levels
from postprocess.components import pick_components
from postprocess.thresholds import load_component_levels, save_thresholds

RIBO, APO = CZII_PARTICLES.get("ribosome"), CZII_PARTICLES.get("apo-ferritin")
RIBO_CENTRES = [(4, 4, 5), (4, 4, 25)]  # 20 voxels apart: a blob joining both has its centroid 10 from each
APO_CENTRE = (4, 4, 15)


def probabilities() -> torch.Tensor:
    """Two strong ribosomes joined by a 0.25 ridge; one faint apo-ferritin peaking at 0.15."""
    probs = torch.zeros(CZII_PARTICLES.num_classes, 8, 8, 32)
    for z, y, x in RIBO_CENTRES:
        probs[RIBO.channel, z - 1:z + 2, y - 1:y + 2, x - 1:x + 2] = 0.9
    probs[RIBO.channel, 4, 4, 7:24] = 0.25
    probs[(APO.channel, *APO_CENTRE)] = 0.15
    return probs


def truth() -> pd.DataFrame:
    rows = [(RIBO.name, c) for c in RIBO_CENTRES] + [(APO.name, APO_CENTRE)]
    xyz = index_to_angstrom(np.array([c for _, c in rows]), VOXEL_SPACING)
    return pd.DataFrame({"experiment": "run", "particle_type": [n for n, _ in rows], "x": xyz[:, 0],
                         "y": xyz[:, 1], "z": xyz[:, 2]})


def test_each_class_gets_the_level_that_finds_its_particles() -> None:
    settings = InferenceSettings(picker="cc3d", component_levels=(0.1, 0.3))
    candidates = pick_candidates_per_level(probabilities(), "run", settings, spacing=VOXEL_SPACING, output_stride=1,
                                           particles=CZII_PARTICLES)
    by_level = candidates.groupby([LEVEL_COLUMN, "particle_type"]).size().to_dict()
    assert by_level == {(0.1, RIBO.name): 1, (0.1, APO.name): 1, (0.3, RIBO.name): 2}  # 0.1 merges the ribosomes
    levels = fit_component_levels(candidates, truth(), fallback=0.42, particles=CZII_PARTICLES)
    assert levels[RIBO.name] == 0.3 and levels[APO.name] == 0.1
    assert {levels[n] for n in CZII_PARTICLES.names if n not in (RIBO.name, APO.name)} == {0.42}  # nothing found
    chosen = candidates_at_levels(candidates, levels)
    assert LEVEL_COLUMN not in chosen.columns
    assert chosen.groupby("particle_type").size().to_dict() == {APO.name: 1, RIBO.name: 2}


def test_a_plateau_of_levels_gives_its_middle() -> None:
    """The ribosomes are found alike at 0.35, 0.5 and 0.7 (0.1 merges them): the middle of that plateau."""
    settings = InferenceSettings(picker="cc3d", component_levels=(0.7, 0.1, 0.5, 0.35))
    candidates = pick_candidates_per_level(probabilities(), "run", settings, spacing=VOXEL_SPACING, output_stride=1,
                                           particles=CZII_PARTICLES)
    levels = fit_component_levels(candidates, truth(), fallback=0.5, particles=CZII_PARTICLES)
    assert levels[RIBO.name] == 0.5 and levels[APO.name] == 0.1
    two = candidates[candidates[LEVEL_COLUMN].isin([0.35, 0.5])]
    assert fit_component_levels(two, truth(), fallback=0.5,
                                particles=CZII_PARTICLES)[RIBO.name] == 0.35  # an even plateau: the lower
    # a tolerance widens the plateau by F4, not by level: the merged blob (hitting neither) stays off it
    assert fit_component_levels(candidates, truth(), fallback=0.5, tolerance=0.1,
                                particles=CZII_PARTICLES)[RIBO.name] == 0.5
    with pytest.raises(ValueError, match="'level' column"):
        fit_component_levels(candidates.drop(columns=LEVEL_COLUMN), truth(), fallback=0.5, particles=CZII_PARTICLES)


def test_per_class_levels_in_the_picker() -> None:
    levels = {n: 0.3 for n in CZII_PARTICLES.names} | {APO.name: 0.1}
    picks = pick_components(probabilities(), "run", levels, spacing=VOXEL_SPACING, particles=CZII_PARTICLES)
    assert picks.groupby("particle_type").size().to_dict() == {APO.name: 1, RIBO.name: 2}
    with pytest.raises(ValueError, match="missing for classes"):
        pick_components(probabilities(), "run", {APO.name: 0.1}, spacing=VOXEL_SPACING, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="level must be in"):
        pick_components(probabilities(), "run", levels | {RIBO.name: 1.0}, spacing=VOXEL_SPACING,
                        particles=CZII_PARTICLES)


def test_levels_are_saved_with_the_thresholds(tmp_path: Path) -> None:
    limits = {n: 0.5 for n in CZII_PARTICLES.names}
    levels = {n: 0.2 for n in CZII_PARTICLES.names}
    path = save_thresholds(limits, tmp_path / "t.json", component_levels=levels, particles=CZII_PARTICLES)
    assert load_component_levels(path, particles=CZII_PARTICLES) == levels
    assert load_component_levels(save_thresholds(limits, tmp_path / "nms.json", particles=CZII_PARTICLES),
                                 particles=CZII_PARTICLES) is None
    with pytest.raises(ValueError, match=r"t\.json: component levels must be in \(0, 1\)"):
        save_thresholds(limits, tmp_path / "t.json", component_levels=levels | {RIBO.name: 0.0},
                        particles=CZII_PARTICLES)
    assert load_component_levels(path, particles=CZII_PARTICLES) == levels  # the refused write left the file as it was
    path.write_text(path.read_text().replace('"ribosome": 0.2', '"ribosome": 1.5'))
    with pytest.raises(ValueError, match="component_levels: threshold of ribosome"):
        load_component_levels(path, particles=CZII_PARTICLES)
