"""The classical baseline: rotation averages, NCC and the whole fit-on-train, score-on-test protocol."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.classical_baseline import run_baseline
from benchmarks.template_matching import (average_subvolumes, local_ncc, radial_distances, smooth_maps,
                                          spherical_average)
from dataio.layout import tomogram_path, train_overlay_root, truth_overlay_root
from particles import PARTICLE_NAMES, VOXEL_SPACING, index_to_angstrom, particle
from dataio.layout import TRUTH_SESSION, TRUTH_USER
from dataio.pick_writers import write_pick_json
from dataio.zarr_writer import write_multiscale_zarr


def test_spherical_average_keeps_radial_and_averages_out_the_rest():
    r = radial_distances(6)
    radial = np.exp(-r ** 2 / 8).astype(np.float32)
    np.testing.assert_allclose(spherical_average(radial), radial, atol=0.02)
    z = np.indices((13, 13, 13))[0].astype(np.float32) - 6  # odd in z: every shell averages to 0
    assert np.abs(spherical_average(z)).max() < 1e-5
    with pytest.raises(ValueError, match="odd cubic"):
        spherical_average(np.zeros((4, 4, 4)))


def test_average_subvolumes_pads_with_the_mean():
    volume = np.zeros((10, 10, 10), np.float32)
    volume[5, 5, 5] = 8.0
    mean = average_subvolumes([volume], [np.array([[5.0, 5.0, 5.0], [0.0, 0.0, 0.0]])], 1)
    assert mean[1, 1, 1] == 4.0 and mean[2, 2, 2] == 0.0  # (1, 1, 1) of the second box is inside: 0
    assert mean[0, 0, 0] == pytest.approx(volume.mean() / 2)  # (-1, -1, -1) is outside: the mean
    assert average_subvolumes([volume], [np.zeros((0, 3))], 1) is None


def test_ncc_peaks_at_the_planted_template():
    rng = np.random.default_rng(0)
    template = -np.exp(-radial_distances(4) ** 2 / 6).astype(np.float32)
    volume = 0.05 * rng.standard_normal((24, 30, 28)).astype(np.float32)
    volume[8:17, 12:21, 5:14] += template  # centred at (12, 16, 9)
    ncc = local_ncc(volume, template, 4.0)
    assert ncc.shape == volume.shape and ncc.max() <= 1.0 + 1e-5 and ncc.min() >= -1.0 - 1e-5
    assert np.unravel_index(np.argmax(ncc), ncc.shape) == (12, 16, 9)
    assert ncc[12, 16, 9] > 0.95
    smoothed = smooth_maps(np.stack([ncc] * 6), {"apo-ferritin": True}, VOXEL_SPACING)
    assert not np.array_equal(smoothed[0], ncc) and np.array_equal(smoothed[1], ncc)


def _ball(shape, centre, radius, inner=0.0):
    d = np.linalg.norm(np.indices(shape).reshape(3, -1).T - centre, axis=1).reshape(shape)
    return ((d <= radius) & (d >= inner)).astype(np.float32)


def _planted_run(root: Path, split: str, run: str, rng: np.random.Generator) -> None:
    """Dark solid balls (apo-ferritin) and dark shells (virus-like particles) at known places, little noise."""
    shape = (40, 96, 96)
    volume = 0.1 * rng.standard_normal(shape).astype(np.float32)
    picks = {"apo-ferritin": [], "virus-like-particle": []}
    for k, (z, y, x) in enumerate([(20, 20, 20), (20, 20, 70), (20, 70, 20), (20, 70, 70)]):
        name = "apo-ferritin" if (k + len(run)) % 2 else "virus-like-particle"
        centre = np.array([z, y + rng.integers(-3, 4), x + rng.integers(-3, 4)], dtype=float)
        volume -= _ball(shape, centre, 5.0) if name == "apo-ferritin" else _ball(shape, centre, 13.0, 10.0)
        picks[name].append(index_to_angstrom(centre[None])[0])
    write_multiscale_zarr(tomogram_path(root, split, run), volume, levels=1)
    overlay = train_overlay_root(root) if split == "train" else truth_overlay_root(root)
    for name in PARTICLE_NAMES:
        write_pick_json(overlay, run, name, np.array(picks.get(name, [])).reshape(-1, 3), TRUTH_USER,
                        TRUTH_SESSION)


def test_baseline_finds_planted_particles_on_held_out_runs(tmp_path: Path):
    rng = np.random.default_rng(0)
    for split, run in [("train", "TS_a"), ("train", "TS_bb"), ("train", "TS_ccc"), ("test", "TS_t")]:
        _planted_run(tmp_path, split, run, rng)
    result = run_baseline(tmp_path)
    table = result["test"].table
    assert table.loc["apo-ferritin", "f4"] == 1.0 and table.loc["virus-like-particle", "f4"] == 1.0
    assert table["fp"].sum() == 0  # classes without templates pick nothing
    total = sum(particle(n).weight for n in PARTICLE_NAMES)
    assert result["test"].score == pytest.approx(2 / total)  # only two classes exist here
    assert result["train_runs"] == ["TS_a", "TS_bb", "TS_ccc"] and result["test_runs"] == ["TS_t"]
