"""Training items of the 2D slice detectors: 2.5D slice stacks with one box per particle the middle slice cuts.

The patches are drawn and augmented as the U-Nets' are (class-balanced positives near picks, flips, rot90,
small rotations, intensity), as stacks of ``2k+1`` slices. A positive draw is then moved in depth by up to its
particle's radius, so the detected slice lands anywhere through the sphere, caps included, as in prediction,
where every slice is detected.
"""
from __future__ import annotations

import numpy as np
import torch

from datamodules.augmentation import draw_params, extract_patch
from datamodules.patch_dataset import TrainPatchDataset
from datamodules.slice_boxes import slice_boxes


class SlicePatchDataset(TrainPatchDataset):
    """Items ``{"image": [2k+1, H, W], "boxes": [M, 4] (x1, y1, x2, y2 pixels), "labels": [M] (channels)}``;
    the picks' ``sizes`` are the particles' radii in voxels. Item (epoch, i) is a pure function of (seed,
    epoch, i), as for the U-Nets."""

    def __init__(self, *args: object, channel_radii: np.ndarray, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.channel_radii = np.asarray(channel_radii, dtype=np.float64)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        draw = self.sampler.sample(rng)
        start = list(draw.start)
        if draw.channel >= 0:  # through the whole sphere, not only near its equator
            reach = int(np.floor(self.channel_radii[draw.channel]))
            depth = self.volumes[draw.run].shape[0]
            start[0] = int(np.clip(start[0] + rng.integers(-reach, reach + 1), 0, depth - self.patch_size[0]))
        params = draw_params(rng, self.augment, square_xy=self.patch_size[1] == self.patch_size[2])
        run = self.picks[draw.run]
        patch, centres = extract_patch(self.volumes[draw.run], run.centers_zyx, tuple(start), self.patch_size, params)
        boxes, labels = slice_boxes(centres, run.sizes, run.channels, z=self.patch_size[0] // 2,
                                    shape_yx=self.patch_size[1:])
        return {"image": torch.from_numpy(patch), "boxes": torch.from_numpy(boxes),
                "labels": torch.from_numpy(labels.astype(np.int64))}


def collate_slices(items: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    """Stacked images ``[B, 2k+1, H, W]`` and one target dict per image (their box counts differ)."""
    return {"image": torch.stack([item["image"] for item in items]),
            "targets": [{"boxes": item["boxes"], "labels": item["labels"]} for item in items]}
