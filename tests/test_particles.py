"""The particle table and the axis / half-voxel convention every module relies on."""
from __future__ import annotations

import numpy as np
import pytest

from particles import (BETA, HIT_RADIUS_FRACTION, NUM_CLASSES, PARTICLE_NAMES, PARTICLES, VOXEL_SPACING,
                       angstrom_to_index, index_to_angstrom, particle)


def test_spacing_and_constants() -> None:
    assert VOXEL_SPACING == 10.012
    assert BETA == 4.0 and HIT_RADIUS_FRACTION == 0.5
    assert NUM_CLASSES == 6


def angstrom_to_voxel(xyz: np.ndarray, spacing: float = VOXEL_SPACING) -> np.ndarray:
    """The voxel a position lies in: the nearest voxel centre (no half-voxel offset)."""
    return np.rint(angstrom_to_index(xyz, spacing)).astype(np.int64)


@pytest.mark.parametrize("angstrom, voxel", [
    (0.0, 0), (5.0, 0), (5.1, 1), (-5.0, 0), (-5.1, -1), (10.012, 1), (15.0, 1), (15.1, 2),
    (629 * 10.012, 629), (629 * 10.012 + 5.0, 629), (629 * 10.012 + 5.1, 630),
])
def test_half_voxel_convention(angstrom: float, voxel: int) -> None:
    # voxel i covers [(i - 0.5) * s, (i + 0.5) * s): its centre is at i * s Å, no offset
    xyz = np.array([[angstrom, 0.0, 0.0]])
    assert angstrom_to_voxel(xyz)[0, 2] == voxel
    assert angstrom_to_index(xyz)[0, 2] == pytest.approx(angstrom / 10.012)


def test_axis_order_is_xyz_to_zyx() -> None:
    xyz = np.array([[10.012, 20.024, 30.036]])  # x, y, z in Å
    np.testing.assert_array_equal(angstrom_to_voxel(xyz), [[3, 2, 1]])
    np.testing.assert_allclose(index_to_angstrom(np.array([[3, 2, 1]])), xyz)


def test_voxel_centre_maps_to_multiple_of_spacing() -> None:
    np.testing.assert_allclose(index_to_angstrom(np.array([[0, 0, 0], [1, 2, 3]])),
                               [[0.0, 0.0, 0.0], [3 * 10.012, 2 * 10.012, 10.012]])


def test_round_trips() -> None:
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 6300, size=(100, 3))
    np.testing.assert_allclose(index_to_angstrom(angstrom_to_index(xyz)), xyz, rtol=0, atol=1e-9)
    zyx = rng.integers(0, 630, size=(100, 3))
    np.testing.assert_array_equal(angstrom_to_voxel(index_to_angstrom(zyx)), zyx)
    # a pick rounded to its voxel moves by at most half a voxel per axis
    moved = index_to_angstrom(angstrom_to_voxel(xyz)) - xyz
    assert np.abs(moved).max() <= 0.5 * VOXEL_SPACING + 1e-9


def test_coarser_level_spacing() -> None:
    xyz = np.array([[100.12, 200.24, 400.48]])  # voxels 10, 20, 40 at level 0
    np.testing.assert_array_equal(angstrom_to_voxel(xyz, spacing=2 * VOXEL_SPACING), [[20, 10, 5]])
    np.testing.assert_array_equal(angstrom_to_voxel(xyz, spacing=4 * VOXEL_SPACING), [[10, 5, 2]])


def test_weights_labels_channels() -> None:
    assert sum(p.weight for p in PARTICLES) == 7.0
    assert [p.label for p in PARTICLES] == [1, 2, 3, 4, 5, 6]
    assert [p.channel for p in PARTICLES] == [0, 1, 2, 3, 4, 5]
    assert PARTICLE_NAMES == ("apo-ferritin", "beta-amylase", "beta-galactosidase", "ribosome",
                              "thyroglobulin", "virus-like-particle")
    assert particle("beta-amylase").weight == 0.0
    assert particle("beta-galactosidase").weight == 2.0 and particle("thyroglobulin").weight == 2.0
    assert [particle(n).radius for n in PARTICLE_NAMES] == [60.0, 65.0, 90.0, 150.0, 130.0, 135.0]
    assert particle("ribosome").radius_voxels(10.012) == pytest.approx(150.0 / 10.012)


def test_unknown_particle_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown particle name 'proteasome'"):
        particle("proteasome")
