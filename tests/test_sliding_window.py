"""Sliding-window stitching reproduces an identity-like model exactly across window borders."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from inference.sliding_window import importance_map, sliding_window_logits, window_starts
from particles import CZII_PARTICLES, VOXEL_SPACING


class DeltaConv(nn.Module):
    """Stride-1 stand-in: channel c = input + c (a Conv3d with a centred delta kernel)."""

    output_stride = 1

    def __init__(self, channels: int = 3, size_divisor: int = 4) -> None:
        super().__init__()
        self.size_divisor = size_divisor
        self.conv = nn.Conv3d(1, channels, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 1, 1, 1] = 1.0
            self.conv.bias.copy_(torch.arange(channels, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Subsample(nn.Module):
    """Stride-2 stand-in: output voxel j is input voxel 2j, channel c offset by c."""

    output_stride = 2
    size_divisor = 4

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sub = x[:, :, ::2, ::2, ::2]
        return sub.repeat(1, self.channels, 1, 1, 1) + torch.arange(self.channels).view(1, -1, 1, 1, 1)


def expected(volume: torch.Tensor, channels: int, stride: int) -> torch.Tensor:
    sub = volume[::stride, ::stride, ::stride]
    return sub[None].repeat(channels, 1, 1, 1) + torch.arange(channels, dtype=torch.float32).view(-1, 1, 1, 1)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("shape", [(16, 24, 32), (13, 27, 30), (5, 7, 9)])
@pytest.mark.parametrize("blend", ["gaussian", "constant"])
def test_identity_model_reproduced_stride1(overlap: float, shape: tuple[int, int, int], blend: str) -> None:
    torch.manual_seed(0)
    volume = torch.randn(shape)
    out = sliding_window_logits(DeltaConv(), volume, (8, 8, 12), overlap, 3, 3, 1, blend)
    assert out.shape == (3, *shape) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected(volume, 3, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("shape", [(16, 24, 32), (13, 27, 30), (5, 6, 3)])
def test_identity_model_reproduced_stride2(overlap: float, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(1)
    volume = torch.randn(shape)
    out = sliding_window_logits(Subsample(), volume, (8, 8, 12), overlap, 2, 3, 2, "gaussian")
    want = expected(volume, 3, 2)
    assert out.shape == want.shape
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)


def test_reflect_padding_and_autocast_run() -> None:
    volume = torch.randn(10, 10, 10)
    out = sliding_window_logits(DeltaConv(), volume, (12, 12, 12), 0.5, 1, 3, 1, pad_mode="reflect",
                                autocast_dtype=torch.bfloat16)
    torch.testing.assert_close(out, expected(volume, 3, 1), rtol=1e-2, atol=3e-2)  # bf16 conv


def test_window_starts_cover_and_align() -> None:
    for size, window, overlap, stride in [(100, 32, 0.0, 1), (102, 32, 0.25, 2), (64, 64, 0.5, 2), (70, 16, 0.5, 2)]:
        starts = window_starts(size, window, overlap, stride)
        assert starts[0] == 0 and starts[-1] == size - window
        assert all(s % stride == 0 for s in starts)
        assert all(b - a <= window for a, b in zip(starts, starts[1:]))  # no gap between windows
    assert window_starts(96, 32, 0.0, 1) == [0, 32, 64]


def test_gaussian_map_peaks_in_centre() -> None:
    w = importance_map((8, 8, 8), "gaussian", torch.device("cpu"))
    assert w.min() > 0 and w[3:5, 3:5, 3:5].min() == w.max()


@pytest.mark.parametrize("window, match", [((6, 8, 8), "size_divisor"), ((8, 8), "three positive")])
def test_bad_window_is_clear_error(window: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sliding_window_logits(DeltaConv(), torch.zeros(8, 8, 8), window, 0.25, 1, 3)


def test_wrong_stride_or_channels_is_clear_error() -> None:
    with pytest.raises(ValueError, match="output_stride"):
        sliding_window_logits(Subsample(), torch.zeros(8, 8, 8), (8, 8, 8), 0.0, 1, 3, output_stride=1)
    with pytest.raises(ValueError, match="out_channels=4"):
        sliding_window_logits(DeltaConv(3), torch.zeros(8, 8, 8), (8, 8, 8), 0.0, 1, 4)
    with pytest.raises(ValueError, match="reflect"):
        sliding_window_logits(DeltaConv(size_divisor=8), torch.zeros(3, 8, 8), (8, 8, 8), 0.0, 1, 3,
                              pad_mode="reflect")


class Flatness(nn.Module):
    """Fires where the input does not change from voxel to voxel: what a featureless pad region looks like."""

    output_stride = 1
    size_divisor = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = sum((x - torch.roll(x, 1, dims=d)).abs() for d in (2, 3, 4))  # [B, 1, D, H, W]
        smooth = nn.functional.avg_pool3d(step, 3, stride=1, padding=1, count_include_pad=False)
        return (-smooth).expand(-1, 6, -1, -1, -1) * 10.0  # [B, 6, D, H, W]


def test_far_faces_attract_no_picks_with_mirror_padding():
    """Border handling: a volume padded up to whole windows with zeros grows a flat slab along its far faces
    that an edge-sensitive network fires on; mirror padding keeps the texture, so picks stay spread out."""
    from postprocess.heatmap_nms import pick_particles

    volume = torch.randn(29, 37, 45, generator=torch.Generator().manual_seed(0))  # not multiples of 8
    far_face_share = {}
    for mode in ("constant", "mirror"):
        logits = sliding_window_logits(Flatness(), volume, (32, 40, 48), 0.0, 1, 6, pad_mode=mode)
        picks = pick_particles(torch.sigmoid(logits), "run", 0.0, spacing=VOXEL_SPACING, kernel_fraction=0.3,
                               max_per_class=100, particles=CZII_PARTICLES)
        zyx = picks[["z", "y", "x"]].to_numpy() / 10.012
        near_far = (zyx > torch.tensor(volume.shape).numpy() - 3).any(axis=1)
        far_face_share[mode] = near_far.mean()
    assert far_face_share["constant"] > 0.8  # the zero pad drags the strongest picks to the far faces
    assert far_face_share["mirror"] < 0.35  # a uniform spread puts 23 % of the picks there
