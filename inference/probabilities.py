"""One tomogram -> averaged class probabilities from an ensemble of fold models with TTA."""
from __future__ import annotations

import math
from functools import partial
from collections.abc import Sequence

import torch
from torch import nn

from inference.activation import activation_channels, logits_to_probabilities
from inference.sliding_window import ensemble_window_logits
from inference.tta import get_transforms
from choices import Average, values

AVERAGES: tuple[str, ...] = values(Average)


def _shared_stride(models: Sequence[nn.Module], out_channels: int) -> int:
    """The one output stride all models share; mixed strides or channel counts cannot be averaged."""
    if not models:
        raise ValueError("predict_probabilities needs at least one model")
    strides = {int(getattr(m, "output_stride", 1)) for m in models}
    if len(strides) != 1:
        raise ValueError(f"models disagree on output_stride: {sorted(strides)}; an ensemble must share one")
    for i, m in enumerate(models):
        declared = getattr(m, "out_channels", out_channels)
        if declared != out_channels:
            raise ValueError(f"model {i} has out_channels={declared} but the activation needs {out_channels}")
    return strides.pop()


def predict_probabilities(models: Sequence[nn.Module], volume: torch.Tensor, activation_kind: str,
                          window: Sequence[int], overlap: float, batch_size: int,
                          tta: Sequence[str] = ("identity",), average: str = "logits",
                          autocast_dtype: torch.dtype | None = None, blend: str = "gaussian",
                          pad_mode: str = "mirror", *, num_classes: int) -> torch.Tensor:
    """``[D, H, W]`` volume -> ``[num_classes, D/s, H/s, W/s]`` probabilities on the volume's device.

    Averages over models x TTA transforms either the logits (default: the activation is applied once to
    the mean) or the probabilities, in one pass over the volume (``ensemble_window_logits``): memory holds
    about one output. Models are put in eval mode for the call and restored afterwards.
    """
    total = mean_terms(models, volume, activation_kind, window, overlap, batch_size, tta, average, autocast_dtype,
                       blend, pad_mode, num_classes=num_classes)
    return finished_probabilities(total, activation_kind, average, num_classes=num_classes)


def member_terms(models: Sequence[nn.Module], volume: torch.Tensor, activation_kind: str, window: Sequence[int],
                 overlap: float, batch_size: int, tta: Sequence[str] = ("identity",), average: str = "logits",
                 autocast_dtype: torch.dtype | None = None, blend: str = "gaussian", pad_mode: str = "mirror", *,
                 num_classes: int) -> torch.Tensor:
    """``[M, C', D/s, H/s, W/s]``: each model's mean over the TTA views of what the ensemble averages (logits
    or probabilities), so that the ensemble of any subset of the models is ``members_probabilities`` of
    its rows without predicting again (what ensemble size buys, measured on the same passes)."""
    return torch.stack([mean_terms([model], volume, activation_kind, window, overlap, batch_size, tta, average,
                                   autocast_dtype, blend, pad_mode, num_classes=num_classes) for model in models])


def members_probabilities(terms: torch.Tensor, activation_kind: str, average: str = "logits", *,
                          num_classes: int) -> torch.Tensor:
    """The probabilities of the ensemble of the members whose ``member_terms`` are the rows of ``terms``: the
    mean of equal-weight members' means equals the mean over all their views, as in one pass."""
    return finished_probabilities(terms.mean(dim=0), activation_kind, average, num_classes=num_classes)


def finished_probabilities(mean: torch.Tensor, activation_kind: str, average: str, *, num_classes: int) -> torch.Tensor:
    """Probabilities from a mean of terms: the activation of mean logits, or the mean probabilities as they are."""
    return logits_to_probabilities(mean, activation_kind, num_classes=num_classes) if average == "logits" else mean


def mean_terms(models: Sequence[nn.Module], volume: torch.Tensor, activation_kind: str, window: Sequence[int],
               overlap: float, batch_size: int, tta: Sequence[str], average: str,
               autocast_dtype: torch.dtype | None, blend: str, pad_mode: str, *, num_classes: int) -> torch.Tensor:
    """Mean over models x TTA views of the logits (``average`` logits) or probabilities, one pass."""
    if average not in AVERAGES:
        raise ValueError(f"unknown average {average!r}; expected one of {AVERAGES}")
    out_channels = activation_channels(activation_kind, num_classes=num_classes)
    stride = _shared_stride(models, out_channels)
    transforms = get_transforms(tta)
    out_shape = tuple(math.ceil(n / stride) for n in volume.shape)
    was_training = [model.training for model in models]
    for model in models:
        model.eval()
    term = None if average == "logits" else partial(logits_to_probabilities, kind=activation_kind,
                                                      num_classes=num_classes)
    try:
        total = ensemble_window_logits(models, volume, window, overlap, batch_size, out_channels, stride, blend,
                                       autocast_dtype, pad_mode, views=transforms, term=term)
    finally:
        for model, mode in zip(models, was_training):
            model.train(mode)
    assert tuple(total.shape[1:]) == out_shape
    return total
