"""Several fold networks as one module that averages their logits: what gets exported for deployment."""
from __future__ import annotations

import torch
from torch import nn


class LogitAverage(nn.Module):
    """``[B, 1, D, H, W]`` -> mean of the members' ``[B, C, D/s, H/s, W/s]`` logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        strides = {int(m.output_stride) for m in members}
        if len(strides) != 1:
            raise ValueError(f"members have different output strides {sorted(strides)}")
        self.members = nn.ModuleList(members)
        self.output_stride = strides.pop()
        self.size_divisor = max(int(m.size_divisor) for m in members)
        self.out_channels = int(getattr(members[0], "out_channels", 0)) or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.members[0](x)
        for member in self.members[1:]:
            total = total + member(x)
        return total / len(self.members)
