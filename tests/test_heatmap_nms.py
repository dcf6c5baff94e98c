"""Heatmap NMS finds planted peaks at the right Å coordinates (borders, corners, stride 2), once each."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from particles import CZII_PARTICLES, NUM_CLASSES, PARTICLES, PARTICLE_NAMES, VOXEL_SPACING
from postprocess.heatmap_nms import (find_peaks, gaussian_kernel1d, peak_kernel_sizes, pick_particles,
                                     resolve_thresholds, smooth_near_threshold)

SHAPE = (20, 40, 44)


def planted(shape: tuple[int, int, int], stride: int) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Gaussian blobs (sigma = radius / 3 voxels at the stride) at corners, faces and the inside, per class."""
    d, h, w = shape
    centres = np.array([[0, 0, 0], [d - 1, h - 1, w - 1], [0, h - 1, 5], [d // 2, 0, w // 2],
                        [d // 2, h // 2, w - 1], [d // 2, h // 2 + 3, w // 4]])
    grid = torch.stack(torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in shape), indexing="ij"))
    probs = torch.zeros(NUM_CLASSES, *shape)
    truth = {}
    for p in PARTICLES:
        sigma = p.radius_voxels(VOXEL_SPACING) / 3 / stride
        use = centres[p.channel % 2::2] if p.channel < 4 else centres  # keep blobs of one class apart
        use = use[np.linalg.norm(use[:, None] - use[None], axis=2).__add__(np.eye(len(use)) * 1e9).min(1) > 2 * sigma]
        for c in use:
            dist2 = ((grid - torch.tensor(c, dtype=torch.float32).view(3, 1, 1, 1)) ** 2).sum(0)
            probs[p.channel] = torch.maximum(probs[p.channel], 0.9 * torch.exp(-dist2 / (2 * sigma**2)))
        truth[p.name] = use[:, ::-1] * stride * VOXEL_SPACING  # x, y, z in Å
    return probs, truth


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("smooth", [None, 1.0])
def test_planted_peaks_recovered_at_right_angstrom(stride: int, smooth: float | None) -> None:
    probs, truth = planted(SHAPE, stride)
    probs += 0.005 * torch.rand(probs.shape, generator=torch.Generator().manual_seed(0))  # noise below the blob slope
    picks = pick_particles(probs, "TS_test", 0.2 if smooth else 0.5, spacing=VOXEL_SPACING, output_stride=stride,
                           smooth_sigma=smooth, particles=CZII_PARTICLES)
    assert list(picks.columns) == ["experiment", "particle_type", "x", "y", "z", "score"]
    assert (picks["experiment"] == "TS_test").all()
    for name in PARTICLE_NAMES:
        got = picks.loc[picks["particle_type"] == name, ["x", "y", "z"]].to_numpy()
        want = truth[name]
        assert len(got) == len(want), (name, got, want)
        got = got[np.lexsort(np.rint(got / VOXEL_SPACING).T)]  # sort by voxel: sub-voxel noise keeps the order
        want = want[np.lexsort(np.rint(want / VOXEL_SPACING).T)]
        np.testing.assert_allclose(got, want, atol=0.5)  # the noise moves sub-voxel centres by < 0.1 Å


@pytest.mark.parametrize("stride", [1, 2])
def test_subvoxel_centre_of_an_off_grid_gaussian(stride: int) -> None:
    """A blob centred between voxels is picked at its true centre, not at the nearest voxel."""
    centre = np.array([7.3, 9.62, 11.5])  # z, y, x at the output stride
    grid = torch.stack(torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in (16, 20, 24)), indexing="ij"))
    blob = 0.8 * torch.exp(-((grid - torch.tensor(centre, dtype=torch.float32).view(3, 1, 1, 1)) ** 2).sum(0) / 8.0)
    probs = torch.zeros(NUM_CLASSES, 16, 20, 24)
    probs[3] = blob
    want = centre[::-1] * stride * VOXEL_SPACING  # x, y, z in Å
    fine = pick_particles(probs, "r", 0.5, spacing=VOXEL_SPACING, output_stride=stride, particles=CZII_PARTICLES)
    coarse = pick_particles(probs, "r", 0.5, spacing=VOXEL_SPACING, output_stride=stride, subvoxel=False,
                            particles=CZII_PARTICLES)
    assert len(fine) == len(coarse) == 1
    np.testing.assert_allclose(fine[["x", "y", "z"]].to_numpy()[0], want, atol=0.05)
    assert np.abs(coarse[["x", "y", "z"]].to_numpy()[0] - want).max() > 0.3 * stride * VOXEL_SPACING


def test_stride2_index_maps_to_full_resolution_voxel() -> None:
    probs = torch.zeros(NUM_CLASSES, 8, 8, 8)
    probs[3, 3, 4, 5] = 0.7
    picks = pick_particles(probs, "r", 0.5, spacing=VOXEL_SPACING, output_stride=2, particles=CZII_PARTICLES)
    row = picks.iloc[0]
    assert len(picks) == 1 and row["particle_type"] == "ribosome"
    assert (row["x"], row["y"], row["z"]) == pytest.approx((10 * VOXEL_SPACING, 8 * VOXEL_SPACING, 6 * VOXEL_SPACING))
    assert row["score"] == pytest.approx(0.7)


@pytest.mark.parametrize("smooth", [None, 0.8])
def test_plateau_gives_one_pick(smooth: float | None) -> None:
    probs = torch.zeros(NUM_CLASSES, 12, 12, 12)
    probs[0, 4:6, 4:6, 4:6] = 0.8  # 2x2x2 plateau
    probs[1, 6, 6, 3:6] = 0.9  # flat ridge
    picks = pick_particles(probs, "r", 0.1 if smooth else 0.5, spacing=VOXEL_SPACING, smooth_sigma=smooth,
                           particles=CZII_PARTICLES)
    assert picks["particle_type"].value_counts().to_dict() == {"apo-ferritin": 1, "beta-amylase": 1}


def test_sparse_nms_matches_dense_max_pool() -> None:
    gen = torch.Generator().manual_seed(1)
    volume = F.avg_pool3d(torch.rand(1, 1, 24, 30, 34, generator=gen), 5, 1, 2)[0, 0]
    for kernel in (3, 7):
        pooled = F.max_pool3d(volume[None, None], kernel, 1, kernel // 2)[0, 0]
        want = ((volume == pooled) & (volume >= 0.5)).nonzero()
        got, values = find_peaks(volume, 0.5, kernel)
        assert len(want) > 3
        assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, want.tolist()))
        assert torch.all(values[:-1] >= values[1:])


def test_block_smoothing_equals_dense_where_it_matters() -> None:
    gen = torch.Generator().manual_seed(2)
    volume = 0.01 * torch.rand(40, 50, 61, generator=gen)
    volume[[2, 39, 20], [3, 49, 30], [4, 60, 1]] = 1.0  # a few bright voxels (two in corners): most blocks stay cold
    taps = gaussian_kernel1d(1.2, torch.float32, torch.device("cpu"))
    r = taps.numel() // 2
    dense = F.pad(volume[None, None], [r] * 6, mode="replicate")
    for w in (taps.view(1, 1, -1, 1, 1), taps.view(1, 1, 1, -1, 1), taps.view(1, 1, 1, 1, -1)):
        dense = F.conv3d(dense, w)
    dense = dense[0, 0]
    sparse, candidates = smooth_near_threshold(volume, 1.2, 0.012)
    hot = dense >= 0.012
    assert torch.equal(candidates, (sparse >= 0.012).view(-1).nonzero().squeeze(1))
    assert hot.sum() > 10 and (sparse[~hot] < 0.012).all() and (sparse == 0).float().mean() > 0.3
    torch.testing.assert_close(sparse[hot], dense[hot], rtol=1e-5, atol=1e-6)


def test_max_per_class_kernels_and_bad_input() -> None:
    probs, _ = planted(SHAPE, 1)
    picks = pick_particles(probs, "r", [0.5] * 6, spacing=VOXEL_SPACING, max_per_class=1, particles=CZII_PARTICLES)
    assert picks["particle_type"].value_counts().max() == 1
    assert peak_kernel_sizes(1.0, 1, VOXEL_SPACING, particles=CZII_PARTICLES)["ribosome"] == 15
    assert peak_kernel_sizes(1.0, 2, VOXEL_SPACING, particles=CZII_PARTICLES)["apo-ferritin"] == 3
    assert min(peak_kernel_sizes(0.1, 2, VOXEL_SPACING, particles=CZII_PARTICLES).values()) == 3
    assert resolve_thresholds({n: 0.1 * i for i, n in enumerate(PARTICLE_NAMES)},
                              particles=CZII_PARTICLES)[3] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="lack classes"):
        resolve_thresholds({"ribosome": 0.5}, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="unknown particle"):
        resolve_thresholds({**{n: 0.5 for n in PARTICLE_NAMES}, "bogus": 0.1}, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="TS_x"):
        pick_particles(torch.zeros(5, 4, 4, 4), "TS_x", 0.5, spacing=VOXEL_SPACING, particles=CZII_PARTICLES)
    empty = pick_particles(torch.zeros(6, 4, 4, 4), "r", 0.5, spacing=VOXEL_SPACING, particles=CZII_PARTICLES)
    assert len(empty) == 0 and "score" in empty.columns


def test_dense_path_for_mostly_hot_heatmaps_gives_the_same_peaks() -> None:
    """An untrained net puts most voxels over the candidate threshold: the dense path must agree."""
    from postprocess.heatmap_nms import find_peaks

    gen = torch.Generator().manual_seed(0)
    volume = torch.nn.functional.avg_pool3d(torch.rand(1, 1, 24, 40, 40, generator=gen), 3, 1, 1)[0, 0]
    volume[5, 5, 5] = volume[5, 5, 6] = 2.0  # a plateau: still one pick
    hot_zyx, hot_values = find_peaks(volume, threshold=0.0, kernel=5)  # every voxel passes: dense path
    sparse_zyx, sparse_values = find_peaks(volume, threshold=0.0, kernel=5,
                                           candidates=torch.arange(volume.numel())[:0])
    assert sparse_zyx.shape[0] == 0  # no candidates given -> no peaks (the sparse path ran)
    assert hot_zyx.shape[0] > 10
    assert (hot_zyx == torch.tensor([5, 5, 5])).all(1).sum() == 1
    assert not (hot_zyx == torch.tensor([5, 5, 6])).all(1).any()
    # reference: the plain definition, computed densely by hand
    pooled = torch.nn.functional.max_pool3d(volume[None, None], 5, 1, 2)[0, 0]
    expected = {tuple(v) for v in (volume == pooled).nonzero().tolist()} - {(5, 5, 6)}
    assert {tuple(v) for v in hot_zyx.tolist()} == expected
