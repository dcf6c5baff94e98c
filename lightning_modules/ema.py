"""Lightning's EMA callback with an averaging function that pickles, so ``ddp_spawn`` can ship it, and an
average that follows the raw weights until its start step."""
from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging


class EMAUpdate:
    """``ema <- decay * ema + (1 - decay) * current`` (what torch's ``get_ema_avg_fn`` does, as a class)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, ema: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        return self.decay * ema + (1.0 - self.decay) * current


class PicklableEMA(EMAWeightAveraging):
    """``EMAWeightAveraging`` whose ``avg_fn`` is a top-level class instead of torch's closure.

    Before ``update_starting_at_step`` the average is a copy of the raw weights after every step (Lightning's
    own would keep the initial weights), so a run that ends early, validates early or is saved early holds
    the weights it trained, never the untrained initialisation.
    """

    def __init__(self, decay: float, update_starting_at_step: int | None = None) -> None:
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)
        self._kwargs["avg_fn"] = EMAUpdate(decay)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step_idx = trainer.global_step - 1
        if self._average_model is not None and step_idx < (self.update_starting_at_step or 0):
            self._average_model.n_averaged.zero_()  # AveragedModel copies the weights when it has averaged none
            self._average_model.update_parameters(pl_module)
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
