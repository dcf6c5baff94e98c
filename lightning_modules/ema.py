"""Lightning's EMA callback with an averaging function that pickles, so ``ddp_spawn`` can ship it."""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging


class EMAUpdate:
    """``ema <- decay * ema + (1 - decay) * current`` (what torch's ``get_ema_avg_fn`` does, as a class)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, ema: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        return self.decay * ema + (1.0 - self.decay) * current


class PicklableEMA(EMAWeightAveraging):
    """``EMAWeightAveraging`` whose ``avg_fn`` is a top-level class instead of torch's closure."""

    def __init__(self, decay: float, update_starting_at_step: int | None = None) -> None:
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)
        self._kwargs["avg_fn"] = EMAUpdate(decay)
