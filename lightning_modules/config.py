"""The experiment config: one typed tree (data, model, loss, optimiser, mixup, EMA, validation, trainer,
logging) saved beside every run, so a run is reproduced from its folder alone."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from datamodules.datamodule import DataConfig
from models.registry import ModelConfig

LossKind = Literal["bce", "focal", "ce"]
CheckpointChoice = Literal["last", "best"]
ThresholdRule = Literal["plateau", "one-se"]  # postprocess.thresholds.THRESHOLD_RULES


@dataclass
class LossConfig:
    """``bce``/``focal`` train sigmoid heatmaps (6 channels); ``ce`` trains softmax point targets (7)."""

    kind: LossKind = "bce"  # bce (sigmoid per class), focal, or ce (softmax with a background channel)
    pos_weight: float = 32.0  # extra weight of voxels inside a target blob (bce) or of particle classes (ce)
    focal_gamma: float = 2.0  # modulation |y - p|^gamma of the (quality) focal loss
    class_contrast: bool = False  # bce: weight every channel near any particle, so wrong-class firing costs


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 1e-3  # peak AdamW learning rate (after warm-up, then cosine decay)
    weight_decay: float = 1e-2  # AdamW weight decay
    warmup_fraction: float = 0.05  # share of all steps spent warming the learning rate up linearly
    min_lr_ratio: float = 0.01  # final learning rate of the cosine decay, as a fraction of lr
    gradient_clip: float = 1.0  # clip the gradient norm to this (0: off)


@dataclass
class MixupConfig:
    """Mix pairs of patches and their targets with lambda ~ Beta(alpha, alpha)."""

    prob: float = 0.5  # probability that a batch is mixed up
    alpha: float = 1.0  # Beta(alpha, alpha) of the mixup weight


@dataclass
class EMAConfig:
    """Exponential moving average of the weights: used for validation and stored in checkpoints."""

    enabled: bool = True  # keep an exponential moving average of the weights; validate and save it
    decay: float = 0.995  # EMA decay per step
    start_step: int = 0  # steps before the average starts (until then it follows the raw weights)


@dataclass
class ValidationConfig:
    """Sliding-window inference over the held-out tomogram and peak picking for the official metric."""

    window: tuple[int, int, int] = (64, 128, 128)  # sliding-window size (z y x) for validation and inference
    overlap: float = 0.25  # sliding-window overlap fraction
    tta: tuple[str, ...] = ("identity",)
    """test-time transforms the ensemble averages (postprocess.tta names), OOF threshold fit included; fold
    validation during training always predicts without them"""
    batch_size: int = 2  # windows per forward pass
    candidate_threshold: float = 0.05  # peaks kept for threshold fitting (OOF candidates)
    max_candidates_per_class: int = 1000  # per run; real runs hold <= ~100 particles of a class
    kernel_fraction: float = 0.5  # max-pool NMS kernel ≈ this × class radius
    threshold_tolerance: float = 0.02
    """fit each class's threshold at the lowest score whose OOF F4 is within this of the best (0: the best)"""
    threshold_rule: ThresholdRule = "plateau"
    """plateau: within threshold_tolerance of the best OOF F4; one-se: within one standard error of it where
    larger (lower thresholds for classes resting on few particles; measured in BENCHMARKS.md, not the default)"""
    class_suppression: float = 0.0  # drop a pick near a higher-scoring pick of another class (x sum of radii; 0: off)
    pad_mode: str = "mirror"  # padding of a volume up to whole windows (postprocess.sliding_window.PAD_MODES)
    checkpoint: CheckpointChoice = "last"
    """weights the ensemble uses and OOF candidates come from: last (the final epoch) or best (on the held-out run)"""
    save_heatmaps: bool = False  # also save the best epoch's probabilities (float16 .npy)
    picture: bool = True  # a PNG of validation slices with true and predicted picks


@dataclass
class TrainerConfig:
    """Lightning Trainer flags (devices, nodes, strategy, precision, length)."""

    accelerator: str = "auto"  # cpu, gpu or auto (Lightning's)
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    num_nodes: int = 1  # nodes for DDP (SLURM/torchrun)
    strategy: str = "auto"  # "ddp", "ddp_spawn", ...
    precision: str = "auto"  # "auto": bf16-mixed on a GPU, 32 on the CPU
    max_epochs: int = 20  # epochs of data.patches_per_epoch patches
    max_steps: int = -1  # stop after this many optimiser steps (-1: by max_epochs)
    check_val_every_n_epoch: int = 1  # validate (and write the OOF record) every n epochs
    log_every_n_steps: int = 10  # logging interval (steps)
    num_sanity_val_steps: int = 0  # Lightning's validation sanity steps before training
    sync_batchnorm: bool = False  # synchronise BatchNorm statistics across DDP processes
    channels_last: bool = True  # channels_last_3d weights and inputs: ~1.5x faster CPU steps (BENCHMARKS.md)


@dataclass
class LoggingConfig:
    """W&B (offline without an API key) plus a CSV logger that always works."""

    wandb: bool = True  # log to Weights & Biases too (offline without an API key or network)
    project: str = "czii-picker"  # W&B project
    entity: str | None = None  # W&B entity (team); None: the key's default


@dataclass
class ExperimentConfig:
    """Everything a training run depends on. ``experiment`` groups the folds of one recipe."""

    experiment: str = ""  # experiment (group) name; empty: derived from the config, with a hash of it
    seed: int = 42  # global seed (initialisation; patch sampling too unless data.seed is given)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def activation_kind(loss: LossConfig) -> str:
    """How logits become per-class probabilities for this loss (``postprocess.activation``)."""
    return "softmax" if loss.kind == "ce" else "sigmoid"


def out_channels_for(loss: LossConfig, num_classes: int) -> int:
    """Softmax losses need a background channel; sigmoid heatmaps do not."""
    return num_classes + 1 if loss.kind == "ce" else num_classes
