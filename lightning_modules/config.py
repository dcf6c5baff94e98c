"""The experiment config: one typed tree (data, model, loss, optimiser, mixup, EMA, validation, trainer,
logging) saved beside every run, so a run is reproduced from its folder alone."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from datamodules.datamodule import DataConfig
from models.registry import ModelConfig

LossKind = Literal["bce", "focal", "ce"]
CheckpointChoice = Literal["last", "best"]


@dataclass
class LossConfig:
    """``bce``/``focal`` train sigmoid heatmaps (6 channels); ``ce`` trains softmax point targets (7)."""

    kind: LossKind = "bce"
    pos_weight: float = 32.0  # extra weight of voxels inside a target blob (bce) or of particle classes (ce)
    focal_gamma: float = 2.0  # modulation |y - p|^gamma of the (quality) focal loss
    class_contrast: bool = False  # bce: weight every channel near any particle, so wrong-class firing costs


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01
    gradient_clip: float = 1.0


@dataclass
class MixupConfig:
    """Mix pairs of patches and their targets with lambda ~ Beta(alpha, alpha)."""

    prob: float = 0.5
    alpha: float = 1.0


@dataclass
class EMAConfig:
    """Exponential moving average of the weights: used for validation and stored in checkpoints."""

    enabled: bool = True
    decay: float = 0.995
    start_step: int = 0


@dataclass
class ValidationConfig:
    """Sliding-window inference over the held-out tomogram and peak picking for the official metric."""

    window: tuple[int, int, int] = (64, 128, 128)
    overlap: float = 0.25
    batch_size: int = 2
    candidate_threshold: float = 0.05  # peaks kept for threshold fitting (OOF candidates)
    max_candidates_per_class: int = 1000  # per run; real runs hold <= ~100 particles of a class
    kernel_fraction: float = 0.5  # max-pool NMS kernel ≈ this × class radius
    class_suppression: float = 0.0  # drop a pick near a higher-scoring pick of another class (x sum of radii; 0: off)
    pad_mode: str = "mirror"  # padding of a volume up to whole windows (postprocess.sliding_window.PAD_MODES)
    checkpoint: CheckpointChoice = "last"  # weights the ensemble uses and OOF candidates come from: "last" (the final epoch: an unbiased OOF CV) or "best" (the epoch scoring best on the held-out run)
    save_heatmaps: bool = False  # also save the best epoch's probabilities (float16 .npy)
    picture: bool = True  # a PNG of validation slices with true and predicted picks


@dataclass
class TrainerConfig:
    """Lightning Trainer flags (devices, nodes, strategy, precision, length)."""

    accelerator: str = "auto"
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    num_nodes: int = 1
    strategy: str = "auto"  # "ddp", "ddp_spawn", ...
    precision: str = "auto"  # "auto": bf16-mixed on a GPU, 32 on the CPU
    max_epochs: int = 20
    max_steps: int = -1
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    num_sanity_val_steps: int = 0
    sync_batchnorm: bool = False
    channels_last: bool = True  # channels_last_3d weights and inputs: ~1.5x faster CPU steps (BENCHMARKS.md)


@dataclass
class LoggingConfig:
    """W&B (offline without an API key) plus a CSV logger that always works."""

    wandb: bool = True
    project: str = "czii-picker"
    entity: str | None = None


@dataclass
class ExperimentConfig:
    """Everything a training run depends on. ``experiment`` groups the folds of one recipe."""

    experiment: str = ""
    seed: int = 42
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
