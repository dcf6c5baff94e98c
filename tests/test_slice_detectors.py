"""The 2D (slice) detector family's numerics: box targets, 2.5D stacks, the 3D merge and the fusion with the
U-Nets' picks, each on tiny inputs with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datamodules.slice_boxes import cross_section_radius, slice_boxes, slice_stack
from particles import Particle, ParticleSet
from postprocess.family_fusion import fit_fusion_weight, fuse_equally, fuse_picks, mutual_nearest
from postprocess.slice_merge import keep_apart, merge_slice_detections, track_slices

TWO = ParticleSet((Particle("big", 1, 60.0, 1.0), Particle("small", 2, 30.0, 2.0)))
ONE = ParticleSet((Particle("big", 1, 60.0, 1.0),))


def test_a_sphere_cuts_each_slice_in_the_disc_of_pythagoras():
    assert cross_section_radius(np.array([5.0, 5.0, 5.0]), np.array([0.0, 3.0, 6.0])).tolist() == [5.0, 4.0, 0.0]


def test_boxes_are_the_cross_sections_clipped_to_the_slice():
    centres = np.array([[10.0, 20.0, 30.0], [10.0, 2.0, 2.0], [30.0, 20.0, 20.0]])  # z, y, x
    boxes, labels = slice_boxes(centres, np.array([5.0, 5.0, 5.0]), np.array([1, 2, 1]), z=13.0, shape_yx=(40, 40))
    # the third sphere (z 30) misses slice 13; the first is cut 3 voxels off its equator: half-size 4
    assert labels.tolist() == [1, 2]
    np.testing.assert_allclose(boxes[0], [26.0, 16.0, 34.0, 24.0])
    np.testing.assert_allclose(boxes[1], [0.0, 0.0, 6.0, 6.0])  # clipped at the slice's corner


def test_caps_narrower_than_a_voxel_get_no_box_and_lengths_must_agree():
    boxes, labels = slice_boxes(np.array([[0.0, 5.0, 5.0]]), np.array([5.0]), np.array([1]), z=4.95, shape_yx=(10, 10))
    assert len(boxes) == len(labels) == 0
    with pytest.raises(ValueError, match="one of each per particle"):
        slice_boxes(np.zeros((2, 3)), np.ones(1), np.ones(2), z=0.0, shape_yx=(4, 4))


def test_a_slice_stack_mirrors_at_the_faces():
    volume = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 2, 2), dtype=np.float32)
    assert slice_stack(volume, 0, 2)[:, 0, 0].tolist() == [2, 1, 0, 1, 2]
    assert slice_stack(volume, 3, 1)[:, 0, 0].tolist() == [2, 3, 2]
    with pytest.raises(ValueError, match="outside a volume of depth 4"):
        slice_stack(volume, 4, 1)


def column(z_values, y, x, name, scores):
    return pd.DataFrame({"particle_type": name, "z": z_values, "y": y, "x": x, "score": scores})


def test_tracks_follow_a_column_of_slices_and_end_at_a_gap():
    zyx = np.array([[0, 10, 10], [1, 10, 11], [2, 10, 10], [5, 10, 10], [6, 30, 30]], dtype=float)
    tracks = track_slices(zyx, np.ones(5), xy_distance=2.0, max_gap=1)
    assert tracks[0] == tracks[1] == tracks[2]
    assert len({tracks[2], tracks[3], tracks[4]}) == 3
    assert track_slices(zyx, np.ones(5), xy_distance=2.0, max_gap=3)[3] == tracks[0]  # a gap of 3 bridged


def test_a_crowd_of_detections_does_not_chain_neighbouring_particles():
    # two particles 6 voxels apart on slices 0..4, and on every slice detections between them, 2 voxels apart:
    # linked pairwise they would chain both particles into one blob; tracks keep them apart
    rows = [(z, 10.0, x) for z in range(5) for x in (10.0, 12.0, 14.0, 16.0)]
    zyx = np.array(rows)
    scores = np.where(np.isin(zyx[:, 2], (10.0, 16.0)), 0.9, 0.2)
    tracks = track_slices(zyx, scores, xy_distance=2.5, max_gap=1)
    assert len(np.unique(tracks)) == 4  # one track per x position, none across
    assert len(np.unique(tracks[zyx[:, 2] == 10.0])) == 1


def test_tracks_closer_than_a_radius_are_one_particle():
    assert keep_apart(np.array([[0.0, 0, 0], [0, 0, 2], [0, 0, 9]]), np.array([0.5, 0.9, 0.4]), 3.0).tolist() == [
        False, True, True]


def test_a_particle_seen_on_several_slices_becomes_one_centre_with_a_mean_of_its_best_scores():
    detections = pd.concat([
        column([8, 9, 10, 11, 12], 20.0, 30.0, "big", [0.2, 0.6, 0.8, 0.6, 0.2]),
        column([4], 5.0, 5.0, "big", [0.9]),  # a one-slice flicker
        column([10], 20.0, 30.0, "small", [0.5]),  # another class at the same place stays apart
    ], ignore_index=True)
    merged = merge_slice_detections(detections, {"big": 3.0, "small": 1.0})
    big = merged[merged["particle_type"] == "big"].set_index("slices")
    np.testing.assert_allclose(big.loc[5, ["z", "y", "x"]].to_numpy(float), [10.0, 20.0, 30.0])
    assert big.loc[5, "score"] == pytest.approx((0.8 + 0.6 + 0.6) / 3)  # best ceil(3) of five
    assert big.loc[1, "score"] == pytest.approx(0.9 / 3)  # a flicker: one of three expected slices
    small = merged[merged["particle_type"] == "small"]
    assert small["score"].tolist() == [0.5] and small["slices"].tolist() == [1]
    assert merged["score"].is_monotonic_decreasing


def test_merge_refuses_unknown_classes_and_bad_settings():
    detections = column([0], 1.0, 1.0, "other", [0.5])
    with pytest.raises(ValueError, match="'other', which has no radius"):
        merge_slice_detections(detections, {"big": 3.0})
    with pytest.raises(ValueError, match="max_gap"):
        merge_slice_detections(detections, {"other": 3.0}, max_gap=0)
    assert merge_slice_detections(detections.iloc[:0], {"big": 3.0}).empty


def picks(run, name, xyz, scores):
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    return pd.DataFrame({"experiment": run, "particle_type": name, "x": xyz[:, 0], "y": xyz[:, 1],
                         "z": xyz[:, 2], "score": scores})


def test_mutual_nearest_pairs_each_pick_once():
    i, j = mutual_nearest(np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.array([[0.9, 0, 0], [50.0, 0, 0]]), 5.0)
    assert i.tolist() == [1] and j.tolist() == [0]


def test_fusion_votes_within_class_and_keeps_singletons_at_their_weight():
    unets = pd.concat([picks("r", "big", [[0, 0, 0], [500, 0, 0]], [0.8, 0.6]),
                       picks("r", "small", [[0, 0, 0]], [0.4])], ignore_index=True)
    detectors = pd.concat([picks("r", "big", [[10, 0, 0], [0, 500, 0]], [0.4, 0.9])], ignore_index=True)
    fused = fuse_picks(unets, detectors, 0.75, particles=TWO)
    found = {(row.particle_type, round(row.x, 3), round(row.y, 3)): row.score for row in fused.itertuples()}
    # matched (10 Å apart, within half of 60 Å): 0.75 * 0.8 + 0.25 * 0.4, at the score-weighted mean x
    assert found == pytest.approx({("big", round(0.1 * 10 / 0.7, 3), 0.0): 0.7, ("big", 500.0, 0.0): 0.45,
                                   ("big", 0.0, 500.0): 0.225, ("small", 0.0, 0.0): 0.3})
    assert len(fuse_picks(unets, detectors, 1.0, particles=TWO)) == 3  # weight 1: the first family alone
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fuse_picks(unets, detectors, 1.5, particles=TWO)


def test_equal_votes_average_over_models_with_zero_for_a_miss():
    models = [picks("r", "big", [[0, 0, 0]], [0.9]), picks("r", "big", [[6, 0, 0]], [0.6]),
              picks("r", "big", [[900, 0, 0]], [0.3])]
    fused = fuse_equally(models, particles=TWO).sort_values("x").reset_index(drop=True)
    assert fused["score"].tolist() == pytest.approx([0.5, 0.1])  # (0.9 + 0.6 + 0) / 3 and (0 + 0 + 0.3) / 3
    assert fused.loc[0, "x"] == pytest.approx(0.6 * 6 / 1.5 / 1.0, rel=1e-6)


def test_the_fitted_weight_prefers_the_family_that_finds_the_particles():
    truth = picks("r", "big", [[0, 0, 0], [300, 0, 0], [600, 0, 0]], [1.0, 1.0, 1.0]).drop(columns="score")
    good = picks("r", "big", [[0, 0, 0], [300, 0, 0], [600, 0, 0]], [0.9, 0.8, 0.7])
    noisy = picks("r", "big", [[150, 150, 0], [450, 150, 0], [0, 300, 0]], [0.95, 0.9, 0.85])
    weight, thresholds, scores = fit_fusion_weight(good, noisy, truth, particles=ONE, runs=["r"])
    # 0.75 ties with 1.0 (the noisy picks' votes stay under the good ones'): one family alone wins the tie
    assert weight == 1.0 and scores[1.0] == scores[0.75] == pytest.approx(1.0) and scores[0.0] < 0.5
    assert thresholds["big"] <= 0.7
    weight, _, _ = fit_fusion_weight(noisy, good, truth, particles=ONE, runs=["r"])
    assert weight == 0.0


def disc_image(centres, radius, size=64, channels=3, seed=0):
    """A slice stack with bright discs (the same in every channel) over faint noise."""
    yy, xx = np.mgrid[:size, :size]
    image = np.random.default_rng(seed).normal(0, 0.1, (channels, size, size)).astype(np.float32)
    for y, x in centres:
        image += ((yy - y) ** 2 + (xx - x) ** 2 <= radius**2).astype(np.float32)
    return image


@pytest.mark.slow
def test_the_slice_detector_trains_from_scratch_and_finds_a_disc():
    import torch

    from models.slice_detector import build_slice_detector

    torch.manual_seed(0)
    model = build_slice_detector(in_channels=3, num_classes=2, widths=(8, 16, 32, 32))
    centres = [(20, 20), (44, 40)]
    boxes, labels = slice_boxes(np.array([[0.0, y, x] for y, x in centres]), np.array([6.0, 6.0]),
                                np.array([1, 1]), z=0.0, shape_yx=(64, 64))
    image = torch.from_numpy(disc_image(centres, 6))
    target = {"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels).long()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(60):
        loss = sum(model([image], [target]).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        found = model([image])[0]
    assert found["boxes"].shape[1] == 4 and len(found["scores"]) == len(found["labels"])
    best = found["boxes"][found["scores"].argmax()].numpy()
    centre = ((best[1] + best[3]) / 2, (best[0] + best[2]) / 2)
    assert min(np.hypot(centre[0] - y, centre[1] - x) for y, x in centres) < 3.0
    assert int(found["labels"][found["scores"].argmax()]) == 1


def test_the_slice_detector_needs_its_widths():
    from models.slice_detector import build_slice_detector

    with pytest.raises(ValueError, match="one stem width and one per pyramid level"):
        build_slice_detector(3, 2, widths=(8, 16))
