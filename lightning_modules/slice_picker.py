"""The slice-detector LightningModule: FCOS's own loss on 2.5D slice stacks in the project's training loop,
validated like the U-Nets (every slice of the held-out runs detected, merged in 3D, scored by the metric)."""
from __future__ import annotations

from typing import Any

import torch

from inference.slice_detection import slice_detector_candidates
from lightning_modules.picker import PickerModule
from models.registry import build_model


class SliceDetectorPicker(PickerModule):
    """A ``fcos-slices`` detector (``models.slice_detector``); its outputs are boxes, its loss FCOS's
    (focal classification, GIoU boxes, centre-ness), so ``loss.*`` and mixup do not apply."""

    def build_network(self) -> torch.nn.Module:
        if self.cfg.model.out_channels != self.particles.num_classes:
            raise ValueError(f"{self.cfg.model.name} needs model.out_channels={self.particles.num_classes} (one "
                             f"per class), config has {self.cfg.model.out_channels}")
        return build_model(self.cfg.model)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        images = list(batch["image"])  # [2k+1, H, W] each
        losses = self.model(images, batch["targets"])
        loss = torch.stack(list(losses.values())).sum()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(images))
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=len(images))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        run, volume = batch["run"], batch["volume"].to(self.device)  # volume [D, H, W]
        infer = self.cfg.inference
        candidates = slice_detector_candidates(
            [self.model], volume, run, spacing=float(batch["spacing"]), particles=self.particles,
            half_depth=self.cfg.model.slice_half_depth, batch_size=max(1, infer.batch_size),
            max_per_class=infer.max_candidates_per_class, autocast_dtype=self._autocast_dtype())
        self._val_candidates.append(candidates)
