"""The 2D detector family: an anchor-free FCOS detector (torchvision's model and loss) on 2.5D slice stacks.

Why FCOS rather than YOLO: torchvision's detection models are BSD-licensed, already installed with the pinned
torchvision, train from scratch with no weights, fonts or checks fetched at run time, and expose the model and
its loss to the project's own Lightning loop; ``ultralytics`` (the write-ups' YOLO) is AGPL and brings its own
trainer. FCOS is anchor-free like YOLOv8/11 (one centre-ness-weighted box per location, no anchor shapes to
tune for spheres), unlike the Faster R-CNN that lost small particles in the write-ups.

The backbone is small and random-initialised (a few strided convolution stages and a feature pyramid at
strides 4, 8 and 16): particle boxes are 2-30 pixels at 10 Å, so the stride-4 level carries almost all of
them; no ImageNet weights exist for a 2k+1-channel tomogram slice stack anyway.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOS
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork

STRIDES: tuple[int, ...] = (4, 8, 16)
"""Feature-pyramid strides (pixels): FCOS assigns a box to the level whose range holds its half-size."""


class KeepSize(GeneralizedRCNNTransform):
    """torchvision's detection transform without its resizing: slices are at the tomogram's own spacing, and
    particle sizes in pixels are what the detector must learn (a resize would change them per image)."""

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None):
        return image, target


def conv_stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SliceBackbone(nn.Module):
    """``[B, C, H, W]`` -> feature maps at ``STRIDES`` (an ordered dict), each with ``out_channels``."""

    def __init__(self, in_channels: int, widths: tuple[int, ...] = (24, 48, 96, 192), out_channels: int = 64):
        super().__init__()
        if len(widths) != len(STRIDES) + 1:
            raise ValueError(f"slice backbone widths: one stem width and one per pyramid level "
                             f"({len(STRIDES) + 1} in all), got {list(widths)}")
        self.stem = conv_stage(in_channels, widths[0], 2)
        self.stages = nn.ModuleList(conv_stage(a, b, 2) for a, b in zip(widths[:-1], widths[1:]))
        self.fpn = FeaturePyramidNetwork(list(widths[1:]), out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(x)
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for index, stage in enumerate(self.stages):
            x = stage(x)
            features[str(index)] = x
        return self.fpn(features)


def build_slice_detector(in_channels: int, num_classes: int, widths: tuple[int, ...] = (24, 48, 96, 192),
                         score_thresh: float = 0.05, detections_per_img: int = 300) -> FCOS:
    """An FCOS detector of ``num_classes`` particle classes (class ``c`` is ``Particle.channel``: no
    background class) on ``in_channels`` stacked slices already normalised by the data module."""
    if in_channels < 1 or num_classes < 1:
        raise ValueError(f"a slice detector needs channels and classes, got {in_channels} and {num_classes}")
    backbone = SliceBackbone(in_channels, widths)
    anchors = AnchorGenerator(sizes=tuple((s,) for s in STRIDES), aspect_ratios=((1.0,),) * len(STRIDES))
    model = FCOS(backbone, num_classes, anchor_generator=anchors, score_thresh=score_thresh,
                 detections_per_img=detections_per_img, topk_candidates=1000)
    model.transform = KeepSize(min_size=1, max_size=1, image_mean=[0.0] * in_channels,
                               image_std=[1.0] * in_channels, size_divisible=max(STRIDES) * 2)
    return model
