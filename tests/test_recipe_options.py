"""The field's recipe options: sphere targets, Dice/Tversky losses (alone and with CE), deep supervision and
connected-component picking, each on tiny arrays with known answers, then together through training, the OOF
threshold fit and the ensemble of pair models."""
from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from config.experiment import InferenceSettings, LossConfig, activation_kind, out_channels_for
from datamodules.heatmaps import sphere_masks
from lightning_modules.losses import (build_loss, ce_with_region, deep_supervision_loss, region_loss, tversky_index,
                                      weighted_bce, weighted_ce)
from models.basic_unet import BasicUNet3d
from particles import CZII_PARTICLES, VOXEL_SPACING
from postprocess.components import component_centroids, pick_components
from postprocess.thresholds import load_component_levels


def test_a_sphere_marks_the_voxels_within_its_radius() -> None:
    masks = sphere_masks((11, 11, 11), np.array([[5.0, 5.0, 5.0]]), np.array([2]), np.array([2.0]), num_channels=3)
    assert masks.shape == (3, 11, 11, 11) and masks[[0, 1]].sum() == 0
    assert masks[2].sum() == 33  # lattice points with z^2 + y^2 + x^2 <= 4: 1 + 6 + 12 + 8 + 6
    assert masks[2, 5, 5, 7] == 1 and masks[2, 5, 6, 7] == 0  # distance 2 in, sqrt(5) out


def test_a_sphere_smaller_than_a_voxel_keeps_its_centre_and_edges_are_clipped() -> None:
    masks = sphere_masks((6, 6, 6), np.array([[2.4, 2.6, 0.0], [0.0, 0.0, -9.0]]), np.array([0, 0]),
                         np.array([0.3, 1.5]), num_channels=1)
    assert masks.sum() == 1 and masks[0, 2, 3, 0] == 1  # the far-outside pick marks nothing


def test_tversky_index_known_values() -> None:
    target = torch.zeros(1, 1, 4, 2, 2)
    target[:, :, :2] = 1.0  # half the voxels
    everywhere = torch.ones_like(target)  # TP = n/2, FP = n/2, FN = 0
    assert float(tversky_index(everywhere, target, 0.5, 0.5)) == pytest.approx(2 / 3, abs=1e-5)  # Dice
    assert float(tversky_index(everywhere, target, 0.3, 0.7)) == pytest.approx(1 / 1.3, abs=1e-5)
    assert float(tversky_index(target, target, 0.3, 0.7)) == pytest.approx(1.0)
    nothing = torch.zeros_like(target)  # TP = 0, FN = n/2: the index is ~0
    assert float(tversky_index(nothing, target, 0.3, 0.7)) < 1e-5


def test_recall_weighted_tversky_punishes_misses_more_than_false_alarms() -> None:
    target = torch.zeros(1, 1, 8, 1, 1)
    target[:, :, :4] = 1.0
    logit = lambda p: torch.logit(p.clamp(1e-6, 1 - 1e-6))  # noqa: E731
    missing_half = target.clone()
    missing_half[:, :, :2] = 0.0  # two misses
    extra = target.clone()
    extra[:, :, 4:6] = 1.0  # two false alarms
    loss = partial(region_loss, alpha=0.3, beta=0.7)
    assert float(loss(logit(missing_half), target)) > float(loss(logit(extra), target))


def test_every_loss_kind_trains_its_own_head() -> None:
    """Each kind builds, gives a finite loss and gradient on the head its activation needs, and a perfect
    prediction scores below a wrong one."""
    torch.manual_seed(0)
    target = torch.zeros(2, 6, 4, 4, 4)
    target[0, 2, 1:3, 1:3, 1:3] = 1.0
    for kind in ("bce", "focal", "ce", "dice", "tversky", "dice_ce", "tversky_ce"):
        cfg = LossConfig(kind=kind)
        channels = out_channels_for(cfg, 6)
        logits = torch.randn(2, channels, 4, 4, 4, requires_grad=True)
        loss = build_loss(cfg)(logits, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0, kind
        if activation_kind(cfg) == "softmax":
            good = torch.cat([(1 - target.sum(1, keepdim=True)), target], 1) * 20 - 10
        else:
            good = target * 20 - 10
        assert float(build_loss(cfg)(good, target)) < float(build_loss(cfg)(-good, target)), kind


def test_ce_with_region_adds_the_overlap_of_the_particle_channels() -> None:
    torch.manual_seed(1)
    logits, target = torch.randn(1, 7, 4, 4, 4), (torch.rand(1, 6, 4, 4, 4) > 0.9).float()
    prob = torch.softmax(logits, 1)[:, 1:]
    want = weighted_ce(logits, target, 8.0) + 0.5 * (1 - tversky_index(prob, target, 0.3, 0.7).mean())
    torch.testing.assert_close(ce_with_region(logits, target, 8.0, 0.3, 0.7, 0.5), want)


def test_deep_supervision_adds_weighted_losses_on_pooled_targets() -> None:
    torch.manual_seed(2)
    model = BasicUNet3d(6, (4, 8, 16, 32), output_stride=2, deep_supervision=2)
    image, target = torch.randn(1, 1, 32, 32, 32), torch.zeros(1, 6, 16, 16, 16)
    target[0, 1, 7, 8, 9] = 1.0  # a point target survives max-pooling at every level
    outputs = model.forward_levels(image)
    assert [tuple(o.shape[2:]) for o in outputs] == [(16, 16, 16), (8, 8, 8), (4, 4, 4)]
    torch.testing.assert_close(model(image), outputs[0])  # inference reads the output head only
    loss_fn = partial(weighted_bce, pos_weight=4.0)
    want = (loss_fn(outputs[0], target) + 0.5 * loss_fn(outputs[1], F.max_pool3d(target, 2))
            + 0.25 * loss_fn(outputs[2], F.max_pool3d(target, 4)))
    torch.testing.assert_close(deep_supervision_loss(loss_fn, outputs, target, (0.5, 0.25)), want)
    assert F.max_pool3d(target, 4).sum() == 1
    with pytest.raises(ValueError, match="deep-supervision weights"):
        deep_supervision_loss(loss_fn, outputs, target, (0.5,))
    with pytest.raises(ValueError, match="decoder levels"):
        BasicUNet3d(6, (4, 8, 16), deep_supervision=2)


def test_components_give_centroids_and_peaks() -> None:
    heat = np.zeros((10, 10, 10), dtype=np.float32)
    heat[2:4, 2:4, 2:4] = 0.6
    heat[3, 3, 3] = 0.9  # the first blob's peak pulls its weighted centroid towards (3, 3, 3)
    heat[7, 7, 7] = heat[8, 8, 8] = 0.5  # corner-touching voxels: one component (26-connectivity)
    heat[0, 9, 9] = 0.2  # below the level
    zyx, peaks = component_centroids(heat, 0.3)
    np.testing.assert_allclose(peaks, [0.9, 0.5])
    weights = np.full(8, 0.6)
    weights[-1] = 0.9
    corner = np.array([[z, y, x] for z in (2, 3) for y in (2, 3) for x in (2, 3)], dtype=float)
    np.testing.assert_allclose(zyx[0], (corner * weights[:, None]).sum(0) / weights.sum())
    np.testing.assert_allclose(zyx[1], [7.5, 7.5, 7.5])


def test_a_component_scored_by_mass_ranks_saturated_peaks() -> None:
    heat = np.zeros((10, 10, 10), dtype=np.float32)
    heat[1:4, 1:4, 1:4] = 1.0  # 27 saturated voxels
    heat[7, 7, 7] = 1.0  # one saturated voxel: the same peak, a twenty-seventh of the mass
    _, peaks = component_centroids(heat, 0.5)
    assert peaks.tolist() == [1.0, 1.0]  # tied
    zyx, scores = component_centroids(heat, 0.5, mass_scale=9.0)
    np.testing.assert_allclose(scores, [27 / 36, 1 / 10])
    np.testing.assert_allclose(zyx[0], [2, 2, 2])
    probs = torch.zeros(6, 10, 10, 10)
    probs[CZII_PARTICLES.get("apo-ferritin").channel] = torch.from_numpy(heat)
    picks = pick_components(probs, "run", 0.5, spacing=20.0, output_stride=1, particles=CZII_PARTICLES, score="mass")
    scale = (CZII_PARTICLES.get("apo-ferritin").radius / 20.0) ** 3  # the class's sphere radius cubed, voxels
    np.testing.assert_allclose(picks["score"], [27 / (27 + scale), 1 / (1 + scale)])
    with pytest.raises(ValueError, match="unknown component score 'area'"):
        pick_components(probs, "run", 0.5, spacing=20.0, particles=CZII_PARTICLES, score="area")


def test_component_picks_are_in_angstrom_at_the_output_stride() -> None:
    probs = torch.zeros(6, 8, 8, 8)
    probs[CZII_PARTICLES.get("ribosome").channel, 4, 5, 6] = 0.8
    picks = pick_components(probs, "run", 0.5, spacing=VOXEL_SPACING, output_stride=2, particles=CZII_PARTICLES)
    assert list(picks["particle_type"]) == ["ribosome"] and picks["score"].iloc[0] == pytest.approx(0.8)
    np.testing.assert_allclose(picks[["x", "y", "z"]].to_numpy()[0], np.array([12, 10, 8]) * VOXEL_SPACING)
    with pytest.raises(ValueError, match="level"):
        pick_components(probs, "run", 1.5, spacing=VOXEL_SPACING, particles=CZII_PARTICLES)


@pytest.mark.slow
def test_the_options_train_pair_models_fit_oof_thresholds_and_ensemble(tiny_dataset, tmp_path, one_torch_thread,
                                                                        capsys) -> None:
    """Sphere targets + tversky_ce + deep supervision train three pair models; the ensemble fits thresholds out
    of fold and picks by components, and the written submission scores with the metric."""
    import ensemble
    from config.resolve import resolve_config
    from lightning_modules.training_run import fit
    from postprocess.metric import read_submission
    from tests.training_fixtures import tiny_overrides

    runs = tmp_path / "runs"
    for fold in ("0+1", "1+2", "2+0"):
        cfg = resolve_config(None, None, tiny_overrides(
            tiny_dataset, fold=fold, steps=2, data={"target_kind": "sphere", "sphere_scale": 0.6},
            loss={"kind": "tversky_ce"}, model={"deep_supervision": [0.5]},
            inference={"window": [48, 96, 96], "picker": "cc3d", "component_threshold": 0.2}))
        assert cfg.model.out_channels == 7 and cfg.experiment.startswith("unet-tiny_32x32x32_tversky_ce_os2")
        fit(cfg, runs)
    out = tmp_path / "sub.csv"
    code = ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--out", str(out), "--score",
                          "--tta", "identity", "flip_y", "--precision", "fp32"])
    printed = capsys.readouterr().out
    assert code == 0 and "out-of-fold CV over" in printed and "test score against the ground truth" in printed
    saved = next(runs.glob("*.thresholds.json"))
    thresholds = saved.read_text()
    assert '"picker": "cc3d"' in thresholds and '"component_threshold": 0.2' in thresholds
    levels = load_component_levels(saved, particles=CZII_PARTICLES)  # each class's, fitted out of fold from the grid
    assert levels is not None and set(levels.values()) <= set(InferenceSettings().component_levels)
    assert "component levels fitted out of fold: apo-ferritin" in printed
    table = read_submission(out, particles=CZII_PARTICLES)
    assert isinstance(table, pd.DataFrame) and set(table.columns) >= {"experiment", "particle_type", "x", "y", "z"}
    again = tmp_path / "again.csv"  # the saved thresholds and levels are reused: the same picks
    assert ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--out", str(again),
                          "--tta", "identity", "flip_y", "--precision", "fp32"]) == 0
    assert "thresholds from" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_submission(again, particles=CZII_PARTICLES), table)
    calibrated = tmp_path / "calibrated.csv"  # one class per location by calibrated scores: fitted, saved, reused
    flags = ["--tta", "identity", "flip_y", "--precision", "fp32", "--class-decision", "calibrated"]
    assert ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--out", str(calibrated), *flags]) == 0
    assert "fitting again" in capsys.readouterr().out
    doc = json.loads(saved.read_text())
    assert set(doc["calibration"]) == set(CZII_PARTICLES.names) and doc["fitted_with"]["settings"][
        "class_decision"] == "calibrated"
    picks = read_submission(calibrated, particles=CZII_PARTICLES)
    repeat = tmp_path / "calibrated_again.csv"
    assert ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--out", str(repeat), *flags]) == 0
    assert "thresholds from" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_submission(repeat, particles=CZII_PARTICLES), picks)
    competing = tmp_path / "competing.csv"  # weighed against rivals, nothing dropped: fitted, saved with its weights
    flags[-1] = "competing"
    assert ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--out", str(competing), *flags]) == 0
    doc = json.loads(saved.read_text())
    assert set(doc["calibration"]) == {*CZII_PARTICLES.names, "competition"}
    assert set(doc["calibration"]["competition"]["weights"]) == set(CZII_PARTICLES.names)
    again = tmp_path / "competing_again.csv"
    assert ensemble.main(["--runs", str(runs), "--data", str(tiny_dataset), "--out", str(again), *flags]) == 0
    pd.testing.assert_frame_equal(read_submission(again, particles=CZII_PARTICLES),
                                  read_submission(competing, particles=CZII_PARTICLES))
