"""Model names -> builders: an explicit table, no string imports (the config is ``config.experiment.ModelConfig``)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from choices import OutputStride, SliceDetectorName, check_choice, values
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


def _build_slice_detector(cfg: ModelConfig) -> nn.Module:
    from models.slice_detector import build_slice_detector

    if cfg.encoder_weights is not None:
        raise ValueError(f"{cfg.name} trains from scratch (or --init-from a run); set encoder_weights to None")
    return build_slice_detector(slice_stack_depth(cfg), cfg.out_channels, tuple(cfg.widths))


def _build_tiny(cfg: ModelConfig) -> nn.Module:
    if cfg.encoder_weights is not None:
        raise ValueError("unet-tiny has no encoder to load weights into; set encoder_weights to None")
    return BasicUNet3d(cfg.out_channels, tuple(cfg.widths), cfg.output_stride,
                       deep_supervision=len(cfg.deep_supervision))


_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    **{name: _build_smp for name in SMP_ENCODERS},
    "unet-tiny": _build_tiny,
    **{name: _build_slice_detector for name in values(SliceDetectorName)},
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def slice_stack_depth(cfg: ModelConfig) -> int:
    """Slices a slice detector sees at once: the detected one and ``slice_half_depth`` on each side."""
    return 2 * cfg.slice_half_depth + 1


def build_model(cfg: ModelConfig) -> nn.Module:
    """A U-Net: ``[B, 1, D, H, W]`` -> ``[B, out_channels, D/s, H/s, W/s]``, exposing ``output_stride`` and
    ``size_divisor``; a slice detector (``is_slice_detector``): torchvision's detection interface on
    ``[2k+1, H, W]`` slice stacks, ``out_channels`` classes."""
    if cfg.name not in _BUILDERS:
        raise ValueError(f"unknown model name {cfg.name!r}; known: {', '.join(MODEL_NAMES)}")
    check_choice(cfg.output_stride, OutputStride, "model.output_stride")  # the one check (configs are checked too)
    if cfg.out_channels < 1:
        raise ValueError(f"out_channels must be positive, got {cfg.out_channels}")
    return _BUILDERS[cfg.name](cfg)
