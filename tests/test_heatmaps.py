"""Heatmap targets: peaks exactly at the picks, sigma respected, classes apart, overlaps by max."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datamodules.heatmaps import gaussian_heatmaps, pick_arrays, point_heatmaps
from particles import CZII_PARTICLES, VOXEL_SPACING, particle

SHAPE = (20, 24, 28)


def test_integer_centre_peak_is_one_at_the_pick() -> None:
    heat = gaussian_heatmaps(SHAPE, np.array([[5.0, 7.0, 9.0]]), np.array([2]), np.array([2.0]),
                             num_channels=CZII_PARTICLES.num_classes)
    assert heat.shape == (6, *SHAPE) and heat.dtype == np.float32
    assert heat[2, 5, 7, 9] == 1.0
    assert np.unravel_index(heat[2].argmax(), SHAPE) == (5, 7, 9)
    assert heat[[0, 1, 3, 4, 5]].max() == 0.0


def test_sigma_is_respected() -> None:
    sigma = 2.5
    heat = gaussian_heatmaps(SHAPE, np.array([[10.0, 12.0, 14.0]]), np.array([0]), np.array([sigma]),
                             num_channels=CZII_PARTICLES.num_classes)
    for d in (1, 2, 4):
        assert heat[0, 10, 12, 14 + d] == pytest.approx(np.exp(-d * d / (2 * sigma ** 2)), rel=1e-5)
        assert heat[0, 10 - d, 12 + d, 14] == pytest.approx(np.exp(-2 * d * d / (2 * sigma ** 2)), rel=1e-5)
    assert heat[0, 10, 12, 14 + 8] == 0.0  # beyond 3 sigma: truncated


def test_subvoxel_centre_max_within_half_voxel() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        centre = rng.uniform(3, 15, size=3)
        heat = gaussian_heatmaps(SHAPE, centre[None], np.array([4]), np.array([1.7]),
                                 num_channels=CZII_PARTICLES.num_classes)
        peak = np.array(np.unravel_index(heat[4].argmax(), SHAPE))
        assert np.all(np.abs(peak - centre) <= 0.5 + 1e-9)
        assert np.array_equal(peak, np.rint(centre))


def test_two_classes_separate_channels_and_overlap_uses_max() -> None:
    centres = np.array([[5.0, 5.0, 5.0], [5.0, 5.0, 8.0], [12.0, 12.0, 12.0]])
    heat = gaussian_heatmaps(SHAPE, centres, np.array([1, 1, 3]), np.array([2.0, 2.0, 2.0]),
                             num_channels=CZII_PARTICLES.num_classes)
    assert heat[1, 5, 5, 5] == 1.0 and heat[1, 5, 5, 8] == 1.0 and heat[3, 12, 12, 12] == 1.0
    assert heat[1, 12, 12, 12] == 0.0 and heat[3, 5, 5, 5] == 0.0
    single = gaussian_heatmaps(SHAPE, centres[:1], np.array([1]), np.array([2.0]),
                               num_channels=CZII_PARTICLES.num_classes)
    other = gaussian_heatmaps(SHAPE, centres[1:2], np.array([1]), np.array([2.0]),
                              num_channels=CZII_PARTICLES.num_classes)
    np.testing.assert_array_equal(heat[1], np.maximum(single[1], other[1]))
    assert heat.max() <= 1.0


def test_pick_outside_volume_contributes_tail_only() -> None:
    heat = gaussian_heatmaps(SHAPE, np.array([[-2.0, 5.0, 5.0], [100.0, 5.0, 5.0]]), np.array([0, 0]),
                             np.array([2.0, 2.0]), num_channels=CZII_PARTICLES.num_classes)
    assert heat[0, 0, 5, 5] == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    assert heat[0, 1:].max() < heat[0, 0, 5, 5]


def test_point_targets_nearest_voxel() -> None:
    heat = point_heatmaps(SHAPE, np.array([[3.4, 4.6, 5.5], [30.0, 1.0, 1.0]]), np.array([5, 0]),
                          num_channels=CZII_PARTICLES.num_classes)
    assert heat.sum() == 1.0 and heat[5, 3, 5, 6] == 1.0


def test_bad_channels_are_errors() -> None:
    with pytest.raises(ValueError, match="channels"):
        gaussian_heatmaps(SHAPE, np.zeros((1, 3)), np.array([6]), np.array([1.0]),
                          num_channels=CZII_PARTICLES.num_classes)
    with pytest.raises(ValueError, match="2 channels"):
        point_heatmaps(SHAPE, np.zeros((1, 3)), np.array([0, 1]), num_channels=CZII_PARTICLES.num_classes)


def test_pick_arrays_from_table() -> None:
    table = pd.DataFrame({"experiment": ["r", "r"], "particle_type": ["ribosome", "apo-ferritin"],
                          "x": [10 * VOXEL_SPACING, 0.0], "y": [20 * VOXEL_SPACING, 0.0],
                          "z": [5 * VOXEL_SPACING, 0.0]})
    centres, channels, sigmas = pick_arrays(table, VOXEL_SPACING, 0.5, particles=CZII_PARTICLES)
    np.testing.assert_allclose(centres[0], [5, 20, 10])
    assert channels.tolist() == [particle("ribosome").channel, particle("apo-ferritin").channel]
    assert sigmas[0] == pytest.approx(0.5 * 150 / VOXEL_SPACING)
