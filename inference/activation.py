"""Logits to per-class probabilities, so every consumer agrees on channel order and background handling."""
from __future__ import annotations

import torch

from particles import NUM_CLASSES

ACTIVATION_KINDS: tuple[str, ...] = ("sigmoid", "softmax")


def activation_channels(kind: str) -> int:
    """Number of logit channels a model must emit for ``kind`` (6 for sigmoid, 7 with background for softmax)."""
    if kind == "sigmoid":
        return NUM_CLASSES
    if kind == "softmax":
        return NUM_CLASSES + 1
    raise ValueError(f"unknown activation kind {kind!r}; expected one of {ACTIVATION_KINDS}")


def logits_to_probabilities(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """``[..., C, D, H, W]`` logits -> ``[..., 6, D, H, W]`` probabilities; channel c is particle label c + 1.

    ``softmax`` expects 7 channels with background at channel 0 and drops it after normalising.
    """
    expected = activation_channels(kind)
    if logits.ndim < 4 or logits.shape[-4] != expected:
        raise ValueError(f"{kind} activation expects logits [..., {expected}, D, H, W]; got {tuple(logits.shape)}")
    logits = logits.float()
    if kind == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-4)[..., 1:, :, :, :]
