"""Whole-tomogram logits from an ensemble of patch models with test-time views: overlapping windows, one pass,
batched, blended with a weight map."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inference.tta import IDENTITY, Transform
from choices import Blend, PadMode, values

BLENDS: tuple[str, ...] = values(Blend)
PAD_MODES: tuple[str, ...] = values(PadMode)
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


def _check_geometry(model: nn.Module, window: Sequence[int], overlap: float, output_stride: int) -> tuple[int, int,
                                                                                                          int]:
    """Validate window/overlap/stride against the model so misuse fails before any compute."""
    window = tuple(int(w) for w in window)
    if len(window) != 3 or min(window) < 1:
        raise ValueError(f"window must be three positive ints (d, h, w); got {window}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1); got {overlap}")
    model_stride = getattr(model, "output_stride", output_stride)
    if model_stride != output_stride:
        raise ValueError(f"output_stride={output_stride} but the model has output_stride={model_stride}")
    divisor = int(getattr(model, "size_divisor", 1))
    for w in window:
        if w % divisor or w % output_stride:
            raise ValueError(f"window {window} must be a multiple of the model's size_divisor {divisor} "
                             f"and of output_stride {output_stride} in every dimension")
    return window  # type: ignore[return-value]


def fitted_window(window: Sequence[int], shape: Sequence[int], multiple: int) -> tuple[int, int, int]:
    """The window, shrunk along each axis to the volume's length rounded up to ``multiple``: a window larger
    than the volume only pads it (with compute on the padding); the whole tomogram in one window wastes none."""
    return tuple(min(int(w), math.ceil(n / multiple) * multiple) for w, n in zip(window, shape))  # type: ignore


def _pad_volume(volume: torch.Tensor, target: Sequence[int], pad_mode: str, lead: int = 0) -> torch.Tensor:
    """Pad ``[D, H, W]`` at the far end of each axis up to ``target``, and by ``lead`` voxels before each axis
    (index ``i`` of the volume is then ``i + lead`` of the result)."""
    after = [t - s for s, t in zip(volume.shape, target)]
    if not any(after) and not lead:
        return volume
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad_mode {pad_mode!r}; expected one of {PAD_MODES}")
    if pad_mode == "mirror":
        pad_mode = "reflect" if all(max(p, lead) < s for p, s in zip(after, volume.shape)) else "replicate"
    if pad_mode == "reflect" and any(max(p, lead) >= s for p, s in zip(after, volume.shape)):
        raise ValueError(f"reflect padding of a volume {tuple(volume.shape)} up to {tuple(target)} needs "
                         f"pads smaller than the volume; use pad_mode='constant' or 'replicate'")
    flat = [lead, after[2], lead, after[1], lead, after[0]]
    return F.pad(volume[None, None], flat, mode=pad_mode)[0, 0]


def _view_shift(view: Transform, stride: int) -> tuple[int, int, int]:
    """Where a view's crop starts relative to the window, per axis, in a volume padded by ``stride - 1`` in front.

    Output voxel ``j`` stands for input voxel ``s*j``. Reversing an axis of a window of length ``w`` (a
    multiple of ``s``) maps window voxel ``i`` to ``w - 1 - i``, off the stride grid by ``s - 1``; reading
    that axis's crop ``s - 1`` voxels earlier puts every output of the reversed view back on the identity
    view's grid points, the same ``w / s`` of them. Axes kept in order read the window itself.
    """
    lead = stride - 1
    reversed_axes = set(view.reversed_axes())
    return tuple(0 if axis in reversed_axes else lead for axis in range(3))  # type: ignore[return-value]


def ensemble_window_logits(models: Sequence[nn.Module], volume: torch.Tensor, window: Sequence[int],
                           overlap: float, batch_size: int, out_channels: int, output_stride: int = 1,
                           blend: str = "gaussian", autocast_dtype: torch.dtype | None = None,
                           pad_mode: str = "mirror", views: Sequence[Transform] = (IDENTITY,),
                           term: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``[D, H, W]`` volume -> mean over models x test-time views of ``term(logits)`` (the logits themselves
    by default), ``[C', ceil(D/s), ceil(H/s), ceil(W/s)]`` float32 on the volume's device.

    One pass over the volume: each window is cut once from the volume (padded once), every view of it is
    made from that crop and goes through every model, and the views' outputs, turned back to the window's
    orientation, are summed in the window before it is blended into the whole with the weight map. Output
    voxel ``j`` at stride ``s`` is the models' output for input voxel ``s * j`` in every view. The window is
    never larger than the volume needs (``fitted_window``). Up to ``batch_size`` crops of equal shape go
    through a model at once, under ``torch.inference_mode``, in the train/eval mode the caller left it in.
    """
    if volume.ndim != 3:
        raise ValueError(f"volume must be [D, H, W]; got shape {tuple(volume.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if not models or not views:
        raise ValueError("ensemble_window_logits needs at least one model and one view")
    s = output_stride
    window, out_shape, padded_shape = _geometry(models, volume.shape, window, overlap, s)
    device = volume.device
    run_device = _model_device(models[0], device)
    lead = s - 1 if any(v.reversed_axes() for v in views) else 0
    padded = _pad_volume(volume.float(), padded_shape, pad_mode, lead)
    shifts = [_view_shift(v, s) if lead else (0, 0, 0) for v in views]

    starts = [window_starts(n, w, overlap, s) for n, w in zip(padded_shape, window)]
    corners = torch.cartesian_prod(*(torch.tensor(a, dtype=torch.long) for a in starts)).reshape(-1, 3).tolist()
    out_win = tuple(w // s for w in window)
    weight = importance_map(out_win, blend, device)  # [d/s, h/s, w/s]
    weight_sum = torch.zeros(tuple(n // s for n in padded_shape), dtype=torch.float32, device=device)
    acc: torch.Tensor | None = None
    autocast = (torch.autocast(device_type=run_device.type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext())
    per_chunk = max(1, batch_size // len(views))  # windows whose views fill about one batch

    with torch.inference_mode():
        for first in range(0, len(corners), per_chunk):
            chunk = corners[first:first + per_chunk]
            inputs: list[tuple[int, Transform, torch.Tensor]] = []  # (window in chunk, view, model input)
            for k, (z, y, x) in enumerate(chunk):
                crop = padded[z:z + window[0] + lead, y:y + window[1] + lead, x:x + window[2] + lead].to(run_device)
                for view, (a, b, c) in zip(views, shifts):
                    inputs.append((k, view, view.forward(crop[a:a + window[0], b:b + window[1], c:c + window[2]])))
            sums = _window_sums(models, inputs, len(chunk), batch_size, out_channels, s, out_win, autocast, device,
                                term)
            for (z, y, x), total in zip(chunk, sums):
                if acc is None:  # channels of term's output; a normal tensor, so callers may change it in place
                    with torch.inference_mode(False):
                        acc = torch.zeros((total.shape[0], *weight_sum.shape), dtype=torch.float32, device=device)
                region = (slice(z // s, z // s + out_win[0]), slice(y // s, y // s + out_win[1]),
                          slice(x // s, x // s + out_win[2]))
                acc[(slice(None), *region)].addcmul_(total, weight)
                weight_sum[region].add_(weight)
    assert acc is not None
    acc.div_(weight_sum * (len(models) * len(views)))
    return acc[:, :out_shape[0], :out_shape[1], :out_shape[2]].contiguous()


def _geometry(models: Sequence[nn.Module], shape: Sequence[int], window: Sequence[int], overlap: float,
              s: int) -> tuple[tuple[int, int, int], tuple[int, ...], tuple[int, ...]]:
    """(window fitted to the volume, output shape at stride ``s``, padded input shape), checked against every
    model."""
    for model in models:
        window = _check_geometry(model, window, overlap, s)
    divisor = max(int(getattr(m, "size_divisor", 1)) for m in models)
    window = fitted_window(window, shape, math.lcm(divisor, s))
    out_shape = tuple(math.ceil(n / s) for n in shape)
    return window, out_shape, tuple(max(w, o * s) for w, o in zip(window, out_shape))


def _window_sums(models: Sequence[nn.Module], inputs: list[tuple[int, Transform, torch.Tensor]], n_windows: int,
                 batch_size: int, out_channels: int, s: int, out_win: tuple[int, ...],
                 autocast: contextlib.AbstractContextManager, device: torch.device,
                 term: Callable[[torch.Tensor], torch.Tensor] | None) -> list[torch.Tensor]:
    """Per window of a chunk, the sum over models and views of ``term`` of the logits, turned back to the
    window's orientation (``inputs``: window index, view, the view's crop)."""
    sums = [torch.zeros(0, device=device)] * n_windows
    for model in models:
        for batch in _equal_shape_batches(inputs, batch_size):
            crops = torch.stack([item[2] for item in batch])[:, None]  # [B, 1, d', h', w']
            with autocast:
                logits = model(crops)
            want = (len(batch), out_channels, *(n // s for n in crops.shape[-3:]))
            if tuple(logits.shape) != want:
                raise ValueError(f"model returned {tuple(logits.shape)} for windows {tuple(crops.shape)}; "
                                 f"expected {want} (out_channels={out_channels}, output_stride={s})")
            logits = logits.to(device=device, dtype=torch.float32)
            for (k, view, _), out in zip(batch, logits):
                back = view.inverse(out, out_win)
                back = term(back) if term is not None else back
                sums[k] = back if not sums[k].numel() else sums[k].add_(back)
    return sums


def _equal_shape_batches(inputs: list[tuple[int, Transform, torch.Tensor]],
                         batch_size: int) -> list[list[tuple[int, Transform, torch.Tensor]]]:
    """The inputs in groups of one shape (a quarter turn swaps y and x), at most ``batch_size`` each."""
    by_shape: dict[tuple[int, ...], list[tuple[int, Transform, torch.Tensor]]] = {}
    for item in inputs:
        by_shape.setdefault(tuple(item[2].shape), []).append(item)
    return [group[i:i + batch_size] for group in by_shape.values() for i in range(0, len(group), batch_size)]


def sliding_window_logits(model: nn.Module, volume: torch.Tensor, window: Sequence[int], overlap: float,
                          batch_size: int, out_channels: int, output_stride: int = 1, blend: str = "gaussian",
                          autocast_dtype: torch.dtype | None = None, pad_mode: str = "mirror") -> torch.Tensor:
    """One model, no test-time views: ``[D, H, W]`` -> ``[C, ceil(D/s), ceil(H/s), ceil(W/s)]`` logits."""
    return ensemble_window_logits([model], volume, window, overlap, batch_size, out_channels, output_stride, blend,
                                  autocast_dtype, pad_mode)
