"""Mixup of 3D patches and their dense targets (the 1st place mixed every batch)."""
from __future__ import annotations

import torch


def mixup_batch(image: torch.Tensor, target: torch.Tensor,
                alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix each sample with a random partner: ``x = lam x_i + (1 - lam) x_j``, same lam for its target.

    One lambda per sample from Beta(alpha, alpha), drawn from torch's global RNG (seeded by the
    Trainer's seed). Targets stay in [0, 1]: each is a convex combination of two targets in [0, 1].
    image: [B, 1, D, H, W], target: [B, C, D, H, W]. Returns (image, target, lam [B]).
    """
    batch = image.shape[0]
    concentration = torch.tensor(float(alpha))
    lam = torch.distributions.Beta(concentration, concentration).sample((batch,))
    partner = torch.randperm(batch).to(image.device)
    shape = (batch,) + (1,) * (image.ndim - 1)
    lam_image = lam.to(image.device, image.dtype).view(shape)
    lam_target = lam.to(target.device, target.dtype).view(shape)
    mixed_image = lam_image * image + (1 - lam_image) * image[partner]
    mixed_target = lam_target * target + (1 - lam_target) * target[partner]
    return mixed_image, mixed_target, lam
