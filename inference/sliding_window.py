"""Whole-tomogram logits from a patch model: overlapping windows, batched, blended with a weight map."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

BLENDS: tuple[str, ...] = ("gaussian", "constant")
PAD_MODES: tuple[str, ...] = ("mirror", "constant", "reflect", "replicate")
"""How a volume is padded up to whole windows at its far end. ``mirror`` (the default) reflects where the
volume is long enough and replicates where not: a flat ``constant`` pad shows the network a featureless
slab it never met in training, and its picks pile up along those faces."""


def window_starts(size: int, window: int, overlap: float, stride: int) -> list[int]:
    """Start offsets along one axis of padded length ``size``: first at 0, last flush with the end, all multiples of ``stride``."""
    if size == window:
        return [0]
    step = max(stride, int(window * (1.0 - overlap)) // stride * stride)
    n = math.ceil((size - window) / step) + 1
    return [int(round(i * (size - window) / (n - 1))) // stride * stride for i in range(n - 1)] + [size - window]


def importance_map(shape: Sequence[int], blend: str, device: torch.device) -> torch.Tensor:
    """``[d, h, w]`` blending weights: a Gaussian (sigma = size / 8) peaking at the window centre, or ones."""
    if blend == "constant":
        return torch.ones(tuple(shape), dtype=torch.float32, device=device)
    if blend != "gaussian":
        raise ValueError(f"unknown blend {blend!r}; expected one of {BLENDS}")
    axes = []
    for n in shape:
        coords = torch.arange(n, dtype=torch.float32, device=device) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (coords / (n / 8.0)) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return (weight / weight.max()).clamp_min(1e-4)  # never zero: border voxels of a lone window keep a weight


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """Device of the model's parameters (parameter-free models run where the volume lives)."""
    param = next(model.parameters(), None)
    return fallback if param is None else param.device


def _check_geometry(model: nn.Module, window: Sequence[int], overlap: float, output_stride: int) -> tuple[int, int, int]:
    """Validate window/overlap/stride against the model so misuse fails before any compute."""
    window = tuple(int(w) for w in window)
    if len(window) != 3 or min(window) < 1:
        raise ValueError(f"window must be three positive ints (d, h, w); got {window}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1); got {overlap}")
    if output_stride not in (1, 2, 4):
        raise ValueError(f"output_stride must be 1, 2 or 4; got {output_stride}")
    model_stride = getattr(model, "output_stride", output_stride)
    if model_stride != output_stride:
        raise ValueError(f"output_stride={output_stride} but the model has output_stride={model_stride}")
    divisor = int(getattr(model, "size_divisor", 1))
    for w in window:
        if w % divisor or w % output_stride:
            raise ValueError(f"window {window} must be a multiple of the model's size_divisor {divisor} "
                             f"and of output_stride {output_stride} in every dimension")
    return window  # type: ignore[return-value]


def _pad_volume(volume: torch.Tensor, target: Sequence[int], pad_mode: str) -> torch.Tensor:
    """Pad ``[D, H, W]`` at the far end of each axis up to ``target`` (origin unchanged, so indices stay valid)."""
    pads = [t - s for s, t in zip(volume.shape, target)]
    if not any(pads):
        return volume
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad_mode {pad_mode!r}; expected one of {PAD_MODES}")
    if pad_mode == "mirror":
        pad_mode = "reflect" if all(p < s for p, s in zip(pads, volume.shape)) else "replicate"
    if pad_mode == "reflect" and any(p >= s for p, s in zip(pads, volume.shape)):
        raise ValueError(f"reflect padding of a volume {tuple(volume.shape)} up to {tuple(target)} needs "
                         f"pads smaller than the volume; use pad_mode='constant' or 'replicate'")
    flat = [0, pads[2], 0, pads[1], 0, pads[0]]
    return F.pad(volume[None, None], flat, mode=pad_mode)[0, 0]


def sliding_window_logits(model: nn.Module, volume: torch.Tensor, window: Sequence[int], overlap: float,
                          batch_size: int, out_channels: int, output_stride: int = 1, blend: str = "gaussian",
                          autocast_dtype: torch.dtype | None = None, pad_mode: str = "mirror") -> torch.Tensor:
    """``[D, H, W]`` volume -> ``[C, ceil(D/s), ceil(H/s), ceil(W/s)]`` float32 logits on the volume's device.

    Output voxel ``j`` at stride ``s`` is the model's output for input voxel ``s * j`` (windows start at
    multiples of ``s``). Volumes smaller than the window (or not a multiple of ``s``) are padded at the far
    end and the result cropped back. The model runs under ``torch.inference_mode`` in whatever train/eval
    mode the caller left it.
    """
    if volume.ndim != 3:
        raise ValueError(f"volume must be [D, H, W]; got shape {tuple(volume.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    window = _check_geometry(model, window, overlap, output_stride)
    s = output_stride
    out_shape = tuple(math.ceil(n / s) for n in volume.shape)
    padded_shape = tuple(max(w, o * s) for w, o in zip(window, out_shape))
    device = volume.device
    run_device = _model_device(model, device)
    padded = _pad_volume(volume.float(), padded_shape, pad_mode)

    starts = [window_starts(n, w, overlap, s) for n, w in zip(padded_shape, window)]
    corners = torch.cartesian_prod(*(torch.tensor(a, dtype=torch.long) for a in starts)).reshape(-1, 3).tolist()
    out_win = tuple(w // s for w in window)
    weight = importance_map(out_win, blend, device)  # [d/s, h/s, w/s]
    acc = torch.zeros((out_channels, *(n // s for n in padded_shape)), dtype=torch.float32, device=device)
    weight_sum = torch.zeros(acc.shape[1:], dtype=torch.float32, device=device)
    autocast = (torch.autocast(device_type=run_device.type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext())

    with torch.inference_mode():
        for first in range(0, len(corners), batch_size):
            batch_corners = corners[first:first + batch_size]
            crops = torch.stack([padded[z:z + window[0], y:y + window[1], x:x + window[2]]
                                 for z, y, x in batch_corners])[:, None].to(run_device)  # [B, 1, d, h, w]
            with autocast:
                logits = model(crops)
            expected = (len(batch_corners), out_channels, *out_win)
            if tuple(logits.shape) != expected:
                raise ValueError(f"model returned {tuple(logits.shape)} for windows {tuple(crops.shape)}; "
                                 f"expected {expected} (out_channels={out_channels}, output_stride={s})")
            logits = logits.to(device=device, dtype=torch.float32)
            for (z, y, x), patch in zip(batch_corners, logits):
                region = (slice(z // s, z // s + out_win[0]), slice(y // s, y // s + out_win[1]),
                          slice(x // s, x // s + out_win[2]))
                acc[(slice(None), *region)].addcmul_(patch, weight)
                weight_sum[region].add_(weight)
    acc.div_(weight_sum)
    return acc[:, :out_shape[0], :out_shape[1], :out_shape[2]].contiguous()
