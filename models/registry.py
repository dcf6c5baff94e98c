"""Model names -> builders: an explicit table, no string imports (the config is ``config.experiment.ModelConfig``)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from choices import OutputStride, check_choice
from config.experiment import ModelConfig
from models.basic_unet import BasicUNet3d

SMP_ENCODERS: dict[str, str] = {
    "unet-resnet18": "resnet18",
    "unet-resnet34": "resnet34",
    "unet-resnet50": "resnet50",
    "unet-resnet101": "resnet101",
    "unet-effb0": "efficientnet-b0",
    "unet-effb1": "efficientnet-b1",
    "unet-effb2": "efficientnet-b2",
    "unet-effb3": "efficientnet-b3",
}
"""Registry name -> segmentation-models-pytorch-3d encoder name."""


def _build_smp(cfg: ModelConfig) -> nn.Module:
    from models.smp_unet import SmpUnet3d  # imported when used: smp-3d and timm take ~5 s to import

    return SmpUnet3d(SMP_ENCODERS[cfg.name], cfg.out_channels, cfg.output_stride, cfg.encoder_weights,
                     tuple(cfg.decoder_channels), deep_supervision=len(cfg.deep_supervision))


def _build_tiny(cfg: ModelConfig) -> nn.Module:
    if cfg.encoder_weights is not None:
        raise ValueError("unet-tiny has no encoder to load weights into; set encoder_weights to None")
    return BasicUNet3d(cfg.out_channels, tuple(cfg.widths), cfg.output_stride,
                       deep_supervision=len(cfg.deep_supervision))


_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    **{name: _build_smp for name in SMP_ENCODERS},
    "unet-tiny": _build_tiny,
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def build_model(cfg: ModelConfig) -> nn.Module:
    """``[B, 1, D, H, W]`` -> ``[B, out_channels, D/s, H/s, W/s]``; exposes ``output_stride``, ``size_divisor``."""
    if cfg.name not in _BUILDERS:
        raise ValueError(f"unknown model name {cfg.name!r}; known: {', '.join(MODEL_NAMES)}")
    check_choice(cfg.output_stride, OutputStride, "model.output_stride")  # the one check (configs are checked too)
    if cfg.out_channels < 1:
        raise ValueError(f"out_channels must be positive, got {cfg.out_channels}")
    return _BUILDERS[cfg.name](cfg)
