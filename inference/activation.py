"""Logits to per-class probabilities, so every consumer agrees on channel order and background handling."""
from __future__ import annotations

import torch
from choices import Activation, values


ACTIVATION_KINDS: tuple[str, ...] = values(Activation)


def activation_channels(kind: str, *, num_classes: int) -> int:
    """Number of logit channels a model must emit for ``kind``: one per class for sigmoid, one more (the
    background) for softmax."""
    if kind == "sigmoid":
        return num_classes
    if kind == "softmax":
        return num_classes + 1
    raise ValueError(f"unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}")


def logits_to_probabilities(logits: torch.Tensor, kind: str,
                            *, num_classes: int) -> torch.Tensor:
    """``[..., C, D, H, W]`` logits -> ``[..., N, D, H, W]`` probabilities; channel c is particle label c + 1.

    ``softmax`` expects N + 1 channels with background at channel 0 and drops it after normalising.
    """
    expected = activation_channels(kind, num_classes=num_classes)
    if logits.ndim < 4 or logits.shape[-4] != expected:
        raise ValueError(f"{kind} activation expects logits [..., {expected}, D, H, W]; got {tuple(logits.shape)}")
    logits = logits.float()
    if kind == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-4)[..., 1:, :, :, :]
