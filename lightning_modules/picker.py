"""The particle-picking LightningModule: heatmap training with mixup, validation with the official metric."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from inference.checkpoint_reader import model_weights, read_checkpoint
from inference.run_folder import RunFolder
from lightning_modules.checkpoint_files import restore_rng_states, rng_states
from config.experiment import ExperimentConfig, activation_kind, out_channels_for
from config.yaml_cli import from_dict, to_dict
from lightning_modules.fold_validation import FoldValidation
from lightning_modules.losses import build_loss, deep_supervision_loss
from lightning_modules.mixup import mixup_batch
from models.registry import build_model
from inference.candidates import pick_candidates
from inference.probabilities import predict_probabilities


class PickerModule(L.LightningModule):
    """What every model family's training shares: the config (a plain dict of ``ExperimentConfig``, saved in
    checkpoints), the network as ``self.model`` (what the ensemble loads), fold validation with the official
    metric, the optimiser and schedule, exact resume and ``--init-from``."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)  # the loggers get the flattened config instead
        self.cfg: ExperimentConfig = from_dict(ExperimentConfig, config)
        self.particles = self.cfg.particle_set
        self.model = self.build_network()
        self.fold_validation = FoldValidation(self.cfg.validation, particles=self.particles)
        self._val_candidates: list[pd.DataFrame] = []
        self._val_probs: dict[str, torch.Tensor] = {}

    def build_network(self) -> torch.nn.Module:
        """The family's network (and whatever it needs set on ``self``, a loss say); each subclass has its own:
        ``ParticlePicker`` a U-Net, ``SliceDetectorPicker`` a slice detector."""
        raise NotImplementedError(f"{type(self).__name__} must define build_network: PickerModule is not trained "
                                  "on its own")

    @classmethod
    def from_config(cls, cfg: ExperimentConfig) -> "PickerModule":
        return cls(to_dict(cfg))


    def on_validation_epoch_start(self) -> None:
        self._val_candidates, self._val_probs = [], {}

    def on_validation_epoch_end(self) -> None:
        if not self._val_candidates or self.trainer.sanity_checking:
            return
        candidates = self.fold_validation.gather(self._val_candidates)
        datamodule = self.trainer.datamodule
        result = self.fold_validation.evaluate(candidates, datamodule.val_picks, datamodule.val_runs,
                                               self.cfg.inference.class_suppression)
        self.log("val/score", result.report.score, prog_bar=True, sync_dist=False)
        for name, row in result.report.table.iterrows():
            for column in ("precision", "recall", "f4"):
                self.log(f"val/{column}/{name}", float(row[column]), sync_dist=False)
        run_dir = Path(self.trainer.default_root_dir)
        if self.fold_validation.should_save(result.report.score) and self.trainer.is_global_zero:
            final = self.current_epoch + 1 >= self.trainer.max_epochs
            self.fold_validation.save(run_dir, result, self.current_epoch, self._val_probs, datamodule,
                                      self.loggers, final=final)

    def configure_optimizers(self) -> dict[str, Any]:
        ocfg = self.cfg.optim
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=ocfg.lr, weight_decay=ocfg.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(ocfg.warmup_fraction * total))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return ocfg.min_lr_ratio + (1 - ocfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["best_val_score"] = self.fold_validation.best_score
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resume exactly: the best score so far and the generators mixup draws from (Lightning restores the
        step, schedule, optimizer and EMA; patches are a pure function of seed, epoch and index)."""
        self.fold_validation.best_score = checkpoint.get("best_val_score", -math.inf)
        if "rng_states" in checkpoint:
            restore_rng_states(checkpoint["rng_states"])

    def load_weights_from(self, checkpoint_path: str | Path) -> None:
        """Start from another run's (EMA) weights, e.g. pretraining on simulated data then fine-tuning; a run
        folder stands for its weights.ckpt (the final EMA weights)."""
        path = Path(checkpoint_path)
        if path.is_dir():
            path = RunFolder(path).weights
        weights = model_weights(read_checkpoint(path, "--init-from"))
        try:
            self.model.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ValueError(f"--init-from checkpoint {path} is of another model than {self.cfg.model.name!r}: "
                             f"{str(err).splitlines()[0]}") from None

    def _autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.device.type == "cuda" and "bf16" in str(self.trainer.precision) else None


class ParticlePicker(PickerModule):
    """A plain 3D U-Net trained on heatmap targets."""

    def build_network(self) -> torch.nn.Module:
        expected = out_channels_for(self.cfg.loss, self.particles.num_classes)
        if self.cfg.model.out_channels != expected:
            raise ValueError(f"loss {self.cfg.loss.kind!r} needs model.out_channels={expected}, "
                             f"config has {self.cfg.model.out_channels}")
        model = build_model(self.cfg.model)
        self.memory_format = torch.channels_last_3d if self.cfg.trainer.channels_last else torch.contiguous_format
        model.to(memory_format=self.memory_format)
        self.loss_fn = build_loss(self.cfg.loss)
        self.activation = activation_kind(self.cfg.loss)
        return model

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # [B, 1, D, H, W] -> [B, C, D/s, H/s, W/s]
        return self.model(image)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        image, target = batch["image"], batch["target"]  # [B, 1, D, H, W], [B, 6, D/s, H/s, W/s]
        if self.cfg.mixup.prob > 0 and torch.rand(()) < self.cfg.mixup.prob:
            image, target, _ = mixup_batch(image, target, self.cfg.mixup.alpha)
        image = image.contiguous(memory_format=self.memory_format)
        supervision = tuple(self.cfg.model.deep_supervision)
        outputs = self.model.forward_levels(image) if supervision else [self.model(image)]
        logits = outputs[0]  # [B, C, D/s, H/s, W/s]; the data module renders targets at stride s
        if logits.shape[2:] != target.shape[2:]:
            raise ValueError(f"targets {tuple(target.shape[2:])} do not match the model output "
                             f"{tuple(logits.shape[2:])}: data.target_stride must equal model.output_stride")
        loss = deep_supervision_loss(self.loss_fn, outputs, target, supervision)
        self.log("train/loss", loss, prog_bar=True, batch_size=image.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        run, volume = batch["run"], batch["volume"].to(self.device)  # volume [D, H, W]
        infer = self.cfg.inference  # the ensemble's settings, but one model and no TTA
        probs = predict_probabilities(
            [self.model], volume, self.activation, window=infer.window, overlap=infer.overlap,
            batch_size=infer.batch_size, tta=("identity",), autocast_dtype=self._autocast_dtype(),
            pad_mode=infer.pad_mode, num_classes=self.particles.num_classes)
        candidates = pick_candidates(probs, run, infer, infer.candidate_threshold, spacing=float(batch["spacing"]),
                                     output_stride=self.model.output_stride, particles=self.particles)
        self._val_candidates.append(candidates)
        if self.cfg.validation.save_heatmaps:
            self._val_probs[run] = probs.to(torch.float16).cpu()
