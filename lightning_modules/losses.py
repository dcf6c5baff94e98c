"""Losses on dense targets. Pure functions of (logits, targets) so tests call them on tiny tensors."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from config.experiment import LossConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def voxel_weights(target: torch.Tensor, pos_weight: float, class_contrast: bool) -> torch.Tensor:
    """Per-voxel, per-channel loss weights ``1 + (pos_weight - 1) * t``.

    ``t`` is the channel's own target, or with ``class_contrast`` the largest target of any channel at that
    voxel: near a particle every channel's answer is weighted, so firing the wrong class there costs as much
    as missing the right one (with the own target only, wrong-class voxels weigh like empty ice, and a small
    network learns "a particle is here" in all six channels long before "which one").
    """
    drive = target.amax(dim=1, keepdim=True) if class_contrast else target
    return 1.0 + (pos_weight - 1.0) * drive.expand_as(target)


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float,
                 class_contrast: bool = False) -> torch.Tensor:
    """BCE on heatmaps, each voxel weighted by ``voxel_weights``.

    Particles fill well under 1 % of a tomogram; without the weight the net learns to predict nothing.
    logits, target: [B, C, D, H, W]; target in [0, 1].
    """
    weight = voxel_weights(target.float(), pos_weight, class_contrast)
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return (loss * weight).sum() / weight.sum()


def quality_focal(logits: torch.Tensor, target: torch.Tensor, gamma: float, pos_weight: float) -> torch.Tensor:
    """Focal loss for soft targets: BCE scaled by ``|target - p|^gamma`` (easy voxels fade out)."""
    prob = torch.sigmoid(logits.float())
    modulation = (target - prob).abs().pow(gamma)
    weight = (1.0 + (pos_weight - 1.0) * target) * modulation
    loss = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return (loss * weight).sum() / (1.0 + (pos_weight - 1.0) * target).sum()


def weighted_ce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Cross-entropy over background + C classes, particle classes weighted ``pos_weight`` : 1.

    The 1st place trained single-voxel targets with CE weighted 256:1 for positives. Mixed-up targets
    are soft: the class distribution is (1 - sum(t), t_1, ..., t_C) and the CE is taken against it.
    logits: [B, C+1, ...], target: [B, C, ...].
    """
    background = (1.0 - target.sum(dim=1, keepdim=True)).clamp_min(0.0)
    distribution = torch.cat([background, target], dim=1)
    class_weight = torch.full((distribution.shape[1],), pos_weight, device=logits.device)
    class_weight[0] = 1.0
    shape = (1, -1) + (1,) * (logits.ndim - 2)
    log_prob = F.log_softmax(logits.float(), dim=1)
    voxel_weight = (distribution * class_weight.view(shape)).sum(dim=1)  # [B, ...]
    loss = -(distribution * class_weight.view(shape) * log_prob).sum(dim=1)
    return loss.sum() / voxel_weight.sum()


REGION_SMOOTH: float = 1e-5
"""Added to the numerator and denominator of the overlap ratio: a class absent from the batch scores 1 when
nothing of it is predicted, and its gradient stays finite."""


def tversky_index(prob: torch.Tensor, target: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Per channel ``TP / (TP + alpha FP + beta FN)`` of soft predictions, summed over the batch and space
    (summing over the batch keeps a rare class's ratio stable when a patch holds none of it).
    alpha = beta = 0.5 is the Dice coefficient. prob, target: [B, C, ...] -> [C]."""
    dims = [0, *range(2, prob.ndim)]
    true_pos = (prob * target).sum(dims)
    false_pos = (prob * (1.0 - target)).sum(dims)
    false_neg = ((1.0 - prob) * target).sum(dims)
    return (true_pos + REGION_SMOOTH) / (true_pos + alpha * false_pos + beta * false_neg + REGION_SMOOTH)


def region_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """1 - the Tversky index of sigmoid probabilities, averaged over the classes (the Dice loss at 0.5, 0.5).
    logits, target: [B, C, ...]."""
    return 1.0 - tversky_index(torch.sigmoid(logits.float()), target.float(), alpha, beta).mean()


def ce_with_region(logits: torch.Tensor, target: torch.Tensor, pos_weight: float, alpha: float, beta: float,
                   region_weight: float) -> torch.Tensor:
    """The weighted softmax CE plus ``region_weight`` x (1 - Tversky index) of the particle channels' softmax
    probabilities (background left out: it would dominate the overlap). logits: [B, C+1, ...], target: [B, C, ...]."""
    prob = torch.softmax(logits.float(), dim=1)[:, 1:]
    region = 1.0 - tversky_index(prob, target.float(), alpha, beta).mean()
    return weighted_ce(logits, target, pos_weight) + region_weight * region


def deep_supervision_loss(loss_fn: LossFn, outputs: list[torch.Tensor], target: torch.Tensor,
                          weights: tuple[float, ...]) -> torch.Tensor:
    """The loss of the output plus ``weights[i-1]`` x the loss of level ``i`` (at 2^i x the output's stride)
    against the target max-pooled to it: max-pooling keeps every particle's peak and every point target."""
    if len(outputs) != len(weights) + 1:
        raise ValueError(f"{len(outputs)} outputs for {len(weights)} deep-supervision weights")
    total = loss_fn(outputs[0], target)
    for level, (logits, weight) in enumerate(zip(outputs[1:], weights), 1):
        total = total + weight * loss_fn(logits, F.max_pool3d(target, 2 ** level))
    return total


def build_loss(cfg: LossConfig) -> LossFn:
    """The loss function named by the config (a partial, not a lambda: ddp_spawn pickles the module)."""
    if cfg.kind == "bce":
        return partial(weighted_bce, pos_weight=cfg.pos_weight, class_contrast=cfg.class_contrast)
    if cfg.kind == "focal":
        return partial(quality_focal, gamma=cfg.focal_gamma, pos_weight=cfg.pos_weight)
    if cfg.kind == "ce":
        return partial(weighted_ce, pos_weight=cfg.pos_weight)
    alpha, beta = (0.5, 0.5) if cfg.kind.startswith("dice") else (cfg.tversky_alpha, cfg.tversky_beta)
    if cfg.kind in ("dice", "tversky"):
        return partial(region_loss, alpha=alpha, beta=beta)
    if cfg.kind in ("dice_ce", "tversky_ce"):
        return partial(ce_with_region, pos_weight=cfg.pos_weight, alpha=alpha, beta=beta,
                       region_weight=cfg.region_weight)
    raise ValueError(f"unknown loss kind {cfg.kind!r}; choose bce, focal, ce, dice, tversky, dice_ce or tversky_ce")
