"""Losses and mixup on tiny tensors with known answers."""
from __future__ import annotations

import math

import pytest
import torch

from config.experiment import LossConfig
from lightning_modules.losses import (build_loss, quality_focal, voxel_weights, weighted_bce,
                                     weighted_ce)
from lightning_modules.mixup import mixup_batch


def test_weighted_bce_equals_plain_bce_when_weight_is_one() -> None:
    logits = torch.randn(2, 6, 4, 4, 4)
    target = torch.rand(2, 6, 4, 4, 4)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert torch.allclose(weighted_bce(logits, target, pos_weight=1.0), plain, atol=1e-6)


def test_weighted_bce_upweights_positive_voxels() -> None:
    target = torch.zeros(1, 1, 2, 2, 2)
    target[0, 0, 0, 0, 0] = 1.0
    logits = torch.zeros_like(target)  # every voxel costs log 2
    # the value is a weighted mean of equal per-voxel losses: still log 2 whatever the weight
    assert weighted_bce(logits, target, 50.0).item() == pytest.approx(math.log(2), rel=1e-6)
    logits[0, 0, 0, 0, 0] = 5.0  # fix only the positive voxel: the weighted loss drops far more
    drop_weighted = math.log(2) - weighted_bce(logits, target, 50.0).item()
    drop_plain = math.log(2) - weighted_bce(logits, target, 1.0).item()
    assert drop_weighted > 5 * drop_plain


def test_focal_ignores_perfect_voxels() -> None:
    target = torch.tensor([0.0, 1.0]).view(1, 1, 2, 1, 1)
    good = torch.tensor([-20.0, 20.0]).view(1, 1, 2, 1, 1)
    bad = torch.tensor([20.0, -20.0]).view(1, 1, 2, 1, 1)
    assert quality_focal(good, target, 2.0, 1.0).item() < 1e-6
    assert quality_focal(bad, target, 2.0, 1.0).item() > 1.0


def test_weighted_ce_is_plain_ce_for_hard_targets_with_unit_weight() -> None:
    logits = torch.randn(2, 7, 3, 3, 3)
    target = torch.zeros(2, 6, 3, 3, 3)
    target[0, 1, 1, 1, 1] = 1.0
    target[1, 4, 0, 2, 1] = 1.0
    labels = torch.where(target.amax(dim=1) >= 0.5, target.argmax(dim=1) + 1, 0)  # 0: background, c + 1: channel c
    plain = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(weighted_ce(logits, target, pos_weight=1.0), plain, atol=1e-5)


def test_build_loss_rejects_unknown_kind() -> None:
    cfg = LossConfig()
    cfg.kind = "lovasz"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unknown loss kind 'lovasz'"):
        build_loss(cfg)


def test_mixup_keeps_targets_in_unit_interval_and_mixes_consistently() -> None:
    torch.manual_seed(0)
    image = torch.randn(4, 1, 4, 4, 4)
    target = (torch.rand(4, 6, 4, 4, 4) > 0.7).float()
    mixed_image, mixed_target, lam = mixup_batch(image, target, alpha=0.4)
    assert mixed_target.min() >= 0.0 and mixed_target.max() <= 1.0
    assert not torch.equal(mixed_image, image)
    # each mixed sample is lam * own + (1 - lam) * some partner: recover the partner and check the target
    for i in range(4):
        candidates = [j for j in range(4) if torch.allclose(
            mixed_image[i], lam[i] * image[i] + (1 - lam[i]) * image[j], atol=1e-5)]
        assert any(torch.allclose(mixed_target[i], lam[i] * target[i] + (1 - lam[i]) * target[j], atol=1e-5)
                   for j in candidates)


def test_class_contrast_weights_every_channel_near_a_particle() -> None:
    target = torch.zeros(1, 2, 1, 1, 2)
    target[0, 0, 0, 0, 0] = 1.0  # a class-0 particle at voxel 0; voxel 1 is empty ice
    own = voxel_weights(target, 9.0, class_contrast=False)
    contrast = voxel_weights(target, 9.0, class_contrast=True)
    assert own[0, :, 0, 0, 0].tolist() == [9.0, 1.0]  # the wrong channel weighs like ice
    assert contrast[0, :, 0, 0, 0].tolist() == [9.0, 9.0]  # firing class 1 on a class-0 particle costs
    assert contrast[0, :, 0, 0, 1].tolist() == [1.0, 1.0]
    wrong = torch.zeros_like(target)
    wrong[0, 1, 0, 0, 0] = 6.0  # class 1 fires on the class-0 particle
    assert weighted_bce(wrong, target, 9.0, True) > weighted_bce(wrong, target, 9.0, False)
    assert build_loss(LossConfig(class_contrast=True)).keywords["class_contrast"] is True
