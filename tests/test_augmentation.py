"""Image and picks move together: a marker blob in the image ends where the transformed pick's heatmap peaks."""
from __future__ import annotations

import numpy as np
import pytest

from config.experiment import AugmentConfig
from datamodules.augmentation import (AugmentParams, draw_params, extract_patch, flip,
                                      rot90_xy, rotate_xy, scale_intensity)
from datamodules.heatmaps import gaussian_heatmaps
from particles import CZII_PARTICLES

SHAPE = (14, 20, 26)  # H != W catches swapped axes
PICKS = np.array([[4.3, 6.8, 7.2], [9.6, 13.1, 18.4]])  # bright marker, dark marker


def _marked_image(shape: tuple[int, int, int], picks: np.ndarray) -> np.ndarray:
    """A bright blob at picks[0] and a dark blob at picks[1] (sigma 1.2 voxels)."""
    heat = gaussian_heatmaps(shape, picks, np.array([0, 1]), np.array([1.2, 1.2]),
                             num_channels=CZII_PARTICLES.num_classes)
    return heat[0] - heat[1]


def _peaks_agree(image: np.ndarray, picks: np.ndarray, tolerance: float) -> None:
    """argmax / argmin of the image vs argmax of the heatmaps rendered from the transformed picks."""
    heat = gaussian_heatmaps(image.shape, picks, np.array([0, 1]), np.array([1.2, 1.2]),
                             num_channels=CZII_PARTICLES.num_classes)
    bright = np.array(np.unravel_index(np.argmax(image), image.shape))
    dark = np.array(np.unravel_index(np.argmin(image), image.shape))
    for marker, channel in ((bright, 0), (dark, 1)):
        target = np.array(np.unravel_index(np.argmax(heat[channel]), image.shape))
        assert np.linalg.norm(marker - target) <= tolerance, (marker, target, picks[channel])
        assert np.linalg.norm(marker - picks[channel]) <= 0.5 * np.sqrt(3) + tolerance


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_flip_moves_picks_with_image(axis: int) -> None:
    image, picks = flip(_marked_image(SHAPE, PICKS), PICKS, axis)
    _peaks_agree(image, picks, 0.5)
    heat = gaussian_heatmaps(SHAPE, PICKS, np.array([0, 1]), np.array([2.0, 2.0]),
                             num_channels=CZII_PARTICLES.num_classes)
    np.testing.assert_allclose(gaussian_heatmaps(SHAPE, picks, np.array([0, 1]), np.array([2.0, 2.0]),
                                                 num_channels=CZII_PARTICLES.num_classes),
                               np.flip(heat, axis=axis + 1), atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_rot90_moves_picks_with_image(k: int) -> None:
    image, picks = rot90_xy(_marked_image(SHAPE, PICKS), PICKS, k)
    assert image.shape == ((14, 26, 20) if k % 2 else SHAPE)
    _peaks_agree(image, picks, 0.5)
    heat = gaussian_heatmaps(SHAPE, PICKS, np.array([0, 1]), np.array([2.0, 2.0]),
                             num_channels=CZII_PARTICLES.num_classes)
    np.testing.assert_allclose(gaussian_heatmaps(image.shape, picks, np.array([0, 1]), np.array([2.0, 2.0]),
                                                 num_channels=CZII_PARTICLES.num_classes),
                               np.rot90(heat, k, axes=(2, 3)), atol=1e-6)


@pytest.mark.parametrize("angle", [-15.0, -7.0, 4.0, 12.0])
def test_small_rotation_moves_picks_with_image(angle: float) -> None:
    image, picks = rotate_xy(_marked_image(SHAPE, PICKS), PICKS, angle)
    assert image.shape == SHAPE
    _peaks_agree(image, picks, 1.0)
    # a pick at the rotation centre stays put; one off-centre moves on a circle by the angle
    centre = np.array([[3.0, 9.5, 12.5]])
    _, moved = rotate_xy(np.zeros(SHAPE, np.float32), np.vstack([centre, centre + [0, 0, 5]]), angle)
    np.testing.assert_allclose(moved[0], centre[0], atol=1e-9)
    offset = moved[1, 1:] - centre[0, 1:]
    assert np.linalg.norm(offset) == pytest.approx(5.0)
    assert abs(np.degrees(np.arctan2(offset[0], offset[1]))) == pytest.approx(abs(angle))


def test_rotation_about_a_point_of_a_larger_volume_has_no_empty_corners() -> None:
    volume = np.random.default_rng(0).normal(size=(6, 60, 60)).astype(np.float32) + 10.0
    patch, _ = rotate_xy(volume, np.zeros((0, 3)), 15.0, out_hw=(20, 20), center_yx=(30.0, 29.5))
    assert patch.shape == (6, 20, 20) and patch.min() > 5.0


def test_random_combinations_through_extract_patch() -> None:
    volume_shape = (24, 40, 40)
    picks = np.array([[11.3, 18.6, 17.2], [13.8, 22.1, 23.4]])
    volume = _marked_image(volume_shape, picks)
    rng = np.random.default_rng(5)
    cfg = AugmentConfig(rotate_prob=0.5, intensity_scale=0.0, intensity_shift=0.0)
    angles = set()
    for _ in range(16):
        params = draw_params(rng, cfg)
        angles.add(params.angle_deg != 0.0)
        start = tuple(int(s) for s in rng.integers(0, 5, size=3) + (4, 6, 6))
        patch, moved = extract_patch(volume, picks, start, (16, 24, 24), params)
        assert patch.shape == (16, 24, 24) and patch.flags.c_contiguous and patch.dtype == np.float32
        _peaks_agree(patch, moved, 1.0 if params.angle_deg else 0.5)
    assert angles == {True, False}


def test_intensity_and_odd_rot90_only_for_square_patches() -> None:
    image = np.ones((2, 2, 2), np.float32)
    np.testing.assert_allclose(scale_intensity(image, 1.5, -0.5), 1.0)
    rng = np.random.default_rng(0)
    ks = {draw_params(rng, AugmentConfig(), square_xy=False).rot90_k for _ in range(50)}
    assert ks == {0, 2}
    assert AugmentParams().angle_deg == 0.0
