"""A small hand-written 3D U-Net with configurable widths: fast enough for CPU tests and the demo."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


def _norm(channels: int) -> nn.BatchNorm3d:
    """BatchNorm, as in the smp nets: at eval it uses running statistics, so the output of a voxel does
    not depend on the size of the window it is predicted in (GroupNorm's would)."""
    return nn.BatchNorm3d(channels)


class DoubleConv(nn.Sequential):
    """Two 3x3x3 conv -> BatchNorm -> ReLU layers."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False), _norm(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False), _norm(out_channels),
            nn.ReLU(inplace=True),
        )


class BasicUNet3d(nn.Module):
    """U-Net with ``len(widths)`` levels; ``output_stride=2`` starts with a strided stem."""

    def __init__(self, out_channels: int, widths: tuple[int, ...] = (8, 16, 32, 64),
                 output_stride: int = 1, in_channels: int = 1, deep_supervision: int = 0) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths needs at least 2 levels, got {widths}")
        # output_stride 2: a strided 3x3x3 stem (output voxel j is centred on input voxel 2j) so no
        # convolution runs at full resolution: ~8x less work on the most expensive level.
        stem = (nn.Sequential(nn.Conv3d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
                              _norm(widths[0]), nn.ReLU(inplace=True), DoubleConv(widths[0], widths[0]))
                if output_stride == 2 else DoubleConv(in_channels, widths[0]))
        self.down = nn.ModuleList([stem] + [DoubleConv(a, b) for a, b in zip(widths[:-1], widths[1:])])
        # decoder level i (from deep to shallow) upsamples widths[i+1] -> widths[i] and merges skip i
        levels = list(range(len(widths) - 2, -1, -1))
        self.up = nn.ModuleList([nn.ConvTranspose3d(widths[i + 1], widths[i], 2, stride=2) for i in levels])
        self.merge = nn.ModuleList([DoubleConv(2 * widths[i], widths[i]) for i in levels])
        self.head = nn.Conv3d(widths[0], out_channels, 1)
        if not 0 <= deep_supervision < len(widths) - 1:
            raise ValueError(f"deep supervision on {deep_supervision} coarser levels needs more than "
                             f"{deep_supervision + 1} decoder levels; widths {widths} give {len(widths) - 1}")
        # extra heads on decoder levels 1..k (level i at 2^i x the output stride), used by training only
        self.aux_heads = nn.ModuleList([nn.Conv3d(widths[i], out_channels, 1) for i in range(1, deep_supervision + 1)])
        self.output_stride = output_stride
        self.size_divisor = output_stride * 2 ** (len(widths) - 1)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, D, H, W]`` -> logits ``[B, C, D/s, H/s, W/s]``."""
        return self.head(self._decode(x)[-1])

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output, then one per deep-supervision head, each level half the resolution of the one before."""
        decoded = self._decode(x)  # coarsest first
        return [self.head(decoded[-1])] + [head(decoded[-1 - i]) for i, head in enumerate(self.aux_heads, 1)]

    def _decode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every decoder level's features, coarsest first."""
        shape = x.shape[-3:]
        if any(n % self.size_divisor for n in shape):
            raise ValueError(f"input spatial shape {tuple(shape)} must be a multiple of {self.size_divisor}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool3d(x, 2))
            skips.append(x)
        x = skips.pop()  # deepest features
        decoded = []
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
            decoded.append(x)
        return decoded
