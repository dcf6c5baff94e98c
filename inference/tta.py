"""Test-time augmentation: flips and xy rot90 with exact inverses on the logits, also on a stride-2 grid.

The ensemble applies the views window by window (``inference.sliding_window.ensemble_window_logits``, which
keeps a reversed axis on the stride grid by where it cuts the crop); ``forward(volume, stride)`` turns a whole
volume, for code that predicts each view over the whole tomogram.

Stride-s grid convention: output voxel ``j`` stands for input voxel ``s * j`` (see ``sliding_window``).
A plain flip of an axis of length N maps input voxel ``s*j`` to ``N - 1 - s*j``, which lies on the stride
grid only when ``N - 1`` is a multiple of ``s``; for s = 2 and even N it falls half a coarse voxel off.
So before reversing an axis we pad it at the far end (replicate) to length ``M + 1`` with ``M`` the
smallest multiple of ``s`` >= N - 1: then ``s*j`` maps to ``M - s*j = s*(M/s - j)``, on the grid, and the
inverse is an exact reversal of the output followed by a crop to ``ceil(N / s)``. For s = 1 no padding
is needed and the transforms are the plain flips / rotations.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from choices import TTAName, values


@dataclass(frozen=True)
class Transform:
    """A flip of some axes (of ``[D, H, W]``) followed by ``k`` quarter turns in the (y, x) plane."""

    name: str
    flips: tuple[int, ...] = ()  # axes 0=z, 1=y, 2=x reversed before rotating
    rot90: int = 0

    def reversed_axes(self) -> tuple[int, ...]:
        """Input axes (z, y, x order) whose index runs backwards in the transformed volume."""
        axes = set(self.flips)
        # torch.rot90(k=1, dims=(y, x)) reverses x; k=2 reverses both; k=3 reverses y
        rot_rev = {0: set(), 1: {2}, 2: {1, 2}, 3: {1}}[self.rot90 % 4]
        return tuple(sorted(axes ^ rot_rev))

    def forward(self, volume: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """``[..., D, H, W]`` input -> transformed input, padded so the stride grid maps onto itself."""
        pads = [0, 0, 0]
        for axis in self.reversed_axes():
            n = volume.shape[-3 + axis]
            pads[axis] = stride * math.ceil((n - 1) / stride) - (n - 1)
        if any(pads):
            lead = volume.shape[:-3]
            flat = volume.reshape(-1, 1, *volume.shape[-3:])
            flat = F.pad(flat, [0, pads[2], 0, pads[1], 0, pads[0]], mode="replicate")
            volume = flat.reshape(*lead, *flat.shape[-3:])
        if self.flips:
            volume = torch.flip(volume, dims=[a - 3 for a in self.flips])
        if self.rot90 % 4:
            volume = torch.rot90(volume, self.rot90, dims=(-2, -1))
        return volume

    def inverse(self, output: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
        """Model output ``[..., d', h', w']`` on the transformed input -> ``[..., *out_shape]`` in the original frame."""
        if self.rot90 % 4:
            output = torch.rot90(output, -self.rot90, dims=(-2, -1))
        if self.flips:
            output = torch.flip(output, dims=[a - 3 for a in self.flips])
        d, h, w = out_shape
        if output.shape[-3] < d or output.shape[-2] < h or output.shape[-1] < w:
            raise ValueError(f"inverse {self.name}: output {tuple(output.shape)} is smaller than {tuple(out_shape)}")
        return output[..., :d, :h, :w]


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("identity"),
    Transform("flip_z", flips=(0,)),
    Transform("flip_y", flips=(1,)),
    Transform("flip_x", flips=(2,)),
    Transform("rot90_1", rot90=1),
    Transform("rot90_2", rot90=2),
    Transform("rot90_3", rot90=3),
)}
TRANSFORM_NAMES: tuple[str, ...] = values(TTAName)
if set(TRANSFORMS) != set(TRANSFORM_NAMES):  # the implementation and the config's names are one list
    raise ImportError(f"inference.tta implements {sorted(TRANSFORMS)} but choices.TTAName names {TRANSFORM_NAMES}")
IDENTITY = TRANSFORMS["identity"]


def get_transforms(names: Sequence[str]) -> list[Transform]:
    """Resolve transform names; unknown or empty lists are an error rather than a silent no-TTA."""
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("TTA transform list is empty; use ['identity'] for no TTA")
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown TTA transforms {unknown}; known: {', '.join(TRANSFORM_NAMES)}")
    return [TRANSFORMS[n] for n in names]
