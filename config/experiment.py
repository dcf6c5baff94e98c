"""The experiment config: one typed tree (data, model, loss, optimiser, mixup, EMA, inference, validation,
trainer, logging) saved beside every run, so a run is reproduced from its folder alone. Every field's help is
its metadata (``config.fields.option``); ``train.py --help`` and ``ensemble.py --help`` print it."""
from __future__ import annotations

from dataclasses import dataclass

from choices import (Average, CheckpointChoice, ClassDecision, ComponentScore, LossKind, NormalizationMode, OutputStride, PadMode,
                     PickerKind, SoftmaxLoss, TargetKind, ThresholdRule, TTAName, values)
from config.fields import option
from config.migrations import CONFIG_VERSION
from particles import PARTICLES, Particle, ParticleSet

SOFTMAX_LOSSES: tuple[str, ...] = values(SoftmaxLoss)

DIFFICULTY_FACTOR: dict[str, float] = {"easy": 1.0, "medium": 1.0, "hard": 2.0, "impossible": 1.0}
"""Hard classes (score weight 2) are drawn twice as often; classes, not picks, are drawn first, which
already favours rare classes over frequent ones."""

DEFAULT_DECODER_CHANNELS: tuple[int, ...] = (256, 128, 64, 32, 16)
"""smp-3d decoder widths, deepest first; their number is the encoder depth."""


def default_class_weights(particles: tuple[Particle, ...] = PARTICLES) -> dict[str, float]:
    """Sampling weight per particle name, from the particles' difficulty."""
    return {p.name: DIFFICULTY_FACTOR[p.difficulty] for p in particles}


@dataclass
class AugmentConfig:
    """Which augmentations a training patch may get (each drawn independently per patch)."""

    flip: bool = option(True, "flip each of z, y, x with probability 1/2")
    rot90: bool = option(True, "rotate by k * 90 degrees in the xy plane, k uniform in 0..3")
    rotate_prob: float = option(0.5, "probability of a small arbitrary rotation in the xy plane")
    rotate_max_deg: float = option(15.0, "its angle is uniform in [-max, max] degrees")
    intensity_scale: float = option(0.1, "image * U(1 - s, 1 + s)")
    intensity_shift: float = option(0.1, "image + U(-b, b)")


@dataclass
class DataConfig:
    """Where the data is, which fold, and how training patches are drawn, augmented and targeted."""

    data_root: str = option("data/synthetic", "dataset: a copick-layout root, a copick config JSON, or MRC/zarr "
                                              "files")
    split: str = option("train", "split of a copick-layout root to train on")
    tomo_type: str = option("denoised", "tomogram type: denoised, wbp, ctfdeconvolved, isonetcorrected")
    picks_csv: str | None = option(None, "CSV of picks (experiment, particle_type, x, y, z in Å): MRC tomograms "
                                         "only")
    picks_user: str = option("curation", "copick user id whose picks are the truth (copick's curated picks by "
                                         "default)")
    picks_session: str | None = option(None, "copick session id of those picks; None: the user's only session")
    voxel_spacing: float | None = option(None, "copick projects: which voxel spacing (Å) to read; None: the "
                                               "only one")
    folds_file: str = option("folds.yaml", "fold -> held-out runs; relative paths: the working directory, then "
                                           "the repository")
    fold: int | str = option(0, "fold(s) to hold out: K, K+L, or -1 / all (train on every run, no validation)")
    patch_size: tuple[int, int, int] = option((64, 64, 64), "training patch size (z y x)")
    batch_size: int = option(2, "patches per optimiser step (per process)")
    num_workers: int = option(2, "data-loader worker processes")
    patches_per_epoch: int = option(256, "patches drawn per epoch (split over the DDP processes)")
    positive_fraction: float = option(0.7, "share of patches centred near a particle")
    class_sampling_weights: dict[str, float] = option(help="relative chance of centring a positive patch on "
                                                           "each class", factory=default_class_weights)
    normalization: NormalizationMode = option("zscore", "per-tomogram intensity normalisation")
    augment: AugmentConfig = option(help="training augmentations", factory=AugmentConfig)
    target_kind: TargetKind = option("gaussian", "gaussian heatmaps, single-voxel points, or spheres (1 inside "
                                                 "sphere_scale x the particle radius)")
    sphere_scale: float = option(1.0, "sphere targets: radius = sphere_scale * particle radius")
    sigma_scale: float = option(0.4, "Gaussian sigma = sigma_scale * particle radius (voxels)")
    target_stride: int = option(1, "render targets at the model's output_stride (voxel j <-> patch voxel j * s); "
                                   "set from model.output_stride")
    seed: int = option(0, "patch-sampling seed (follows --seed unless given)")


@dataclass
class ModelConfig:
    """Which network and its output: ``out_channels`` 6 for heatmap losses, 7 (with background) for CE."""

    name: str = option("unet-resnet34", "network (models.registry.MODEL_NAMES): 3D U-Nets unet-tiny, "
                                        "unet-resnet18, unet-resnet34, unet-resnet50, unet-resnet101, unet-effb0, "
                                        "unet-effb1, unet-effb2, unet-effb3; or the 2D slice detector "
                                        "fcos-slices (torchvision FCOS on 2.5D slice stacks, merged in 3D)")
    out_channels: int = option(6, "output channels (set from the loss: 6, or 7 with a background for ce)")
    output_stride: OutputStride = option(1, "1: full resolution; 2: head on the stride-2 decoder level")
    encoder_weights: str | None = option(None, "None (random init) or a local state-dict file for the encoder")
    decoder_channels: tuple[int, ...] = option(DEFAULT_DECODER_CHANNELS, "smp decoder widths, deepest first; "
                                                                         "their number is the encoder depth")
    widths: tuple[int, ...] = option((8, 16, 32, 64), "unet-tiny: channels per level; fcos-slices: the stem's "
                                                      "and its three pyramid levels' (strides 4, 8, 16)")
    slice_half_depth: int = option(2, "fcos-slices only: slices on each side of the detected one, stacked as "
                                      "channels (a 2.5D input of 2k+1 slices; data.patch_size's z is set to it)")
    deep_supervision: tuple[float, ...] = option((), "deep supervision: loss weights of extra heads on the next "
                                                     "coarser decoder levels, finest first (e.g. 0.5 0.25; the "
                                                     "1st place used one); empty: off. Training only")


@dataclass
class LossConfig:
    """``bce``/``focal`` train sigmoid heatmaps (6 channels); ``ce`` trains softmax point targets (7)."""

    kind: LossKind = option("bce", "bce (sigmoid per class), focal, ce (softmax with a background channel), dice "
                                   "or tversky (sigmoid, region overlap), dice_ce or tversky_ce (softmax: ce + "
                                   "region_weight x the overlap loss of the particle channels)")
    pos_weight: float = option(32.0, "extra weight of voxels inside a target blob (bce) or of particle classes "
                                     "(ce)")
    focal_gamma: float = option(2.0, "modulation |y - p|^gamma of the (quality) focal loss")
    class_contrast: bool = option(False, "bce: weight every channel near any particle, so wrong-class firing "
                                         "costs")
    tversky_alpha: float = option(0.3, "tversky: weight of false positives")
    tversky_beta: float = option(0.7, "tversky: weight of false negatives (above alpha favours recall, as F4 does)")
    region_weight: float = option(1.0, "dice_ce / tversky_ce: weight of the overlap term beside the ce term")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``."""

    lr: float = option(1e-3, "peak AdamW learning rate (after warm-up, then cosine decay)")
    weight_decay: float = option(1e-2, "AdamW weight decay")
    warmup_fraction: float = option(0.05, "share of all steps spent warming the learning rate up linearly")
    min_lr_ratio: float = option(0.01, "final learning rate of the cosine decay, as a fraction of lr")
    gradient_clip: float = option(1.0, "clip the gradient norm to this (0: off)")


@dataclass
class MixupConfig:
    """Mix pairs of patches and their targets with lambda ~ Beta(alpha, alpha)."""

    prob: float = option(0.5, "probability that a batch is mixed up")
    alpha: float = option(1.0, "Beta(alpha, alpha) of the mixup weight")


@dataclass
class EMAConfig:
    """Exponential moving average of the weights: used for validation and stored in checkpoints."""

    enabled: bool = option(True, "keep an exponential moving average of the weights; validate and save it")
    decay: float = option(0.995, "EMA decay per step")
    start_step: int = option(0, "steps before the average starts (until then it follows the raw weights)")


@dataclass
class InferenceSettings:
    """How a tomogram is predicted and its peaks picked: by fold validation during training, by the OOF
    threshold fit and by ``ensemble.py`` (whose flags override each field). Defined once, so they cannot drift."""

    window: tuple[int, int, int] = option((64, 128, 128), "sliding-window size (z y x)")
    overlap: float = option(0.25, "sliding-window overlap fraction")
    batch_size: int = option(2, "windows per forward pass")
    pad_mode: PadMode = option("mirror", "padding of a volume up to whole windows")
    tta: tuple[TTAName, ...] = option(("identity",), "test-time transforms whose inverted logits the ensemble "
                                                 "averages (identity, flip_z, flip_y, flip_x, rot90_1..3), OOF "
                                                 "threshold fit included; fold validation always predicts "
                                                 "without them")
    average: Average = option("logits", "average the models' logits (then one activation) or probabilities")
    smooth_sigma: float | None = option(None, "light Gaussian smoothing of the probabilities before NMS (voxels)")
    picker: PickerKind = option("nms", "nms: local maxima (max-pool NMS); cc3d: centroids of connected components "
                                       "above component_threshold, scored by their peak")
    component_threshold: float = option(0.3, "cc3d: probability a voxel needs to join a component (fold "
                                             "validation's level; the ensemble's when component_levels is empty)")
    component_levels: tuple[float, ...] = option((0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
                                                 "cc3d: levels the OOF fit tries for each class, keeping the one "
                                                 "whose components reach the best F4 (saved with the thresholds; "
                                                 "empty: component_threshold for every class)")
    component_score: ComponentScore = option("peak", "cc3d: score a component by its peak probability, or by its "
                                                     "mass m (summed probability) as m / (m + the volume of the "
                                                     "class's sphere): graded where peaks saturate at 1")
    kernel_fraction: float = option(0.5, "max-pool NMS kernel ≈ this × class radius")
    candidate_threshold: float = option(0.05, "peaks kept as candidates (for threshold fitting and class "
                                              "suppression)")
    max_candidates_per_class: int = option(1000, "best candidates kept per run and class (real runs hold <= "
                                                 "~100 particles of a class)")
    class_suppression: float = option(0.0, "drop a pick near a higher-scoring pick of another class (x sum of "
                                           "radii; 0: off; with class_decision calibrated, 0 means 0.5)")
    class_decision: ClassDecision = option("independent", "independent: each class's channel thresholded on its "
                                                          "own; calibrated: each channel's scores calibrated out of "
                                                          "fold (Platt), one class per location (the most probable "
                                                          "where candidates of different classes overlap), then "
                                                          "per-class thresholds on the calibrated scores; "
                                                          "competing: calibrated, then each candidate's probability "
                                                          "given its strongest rival of another class (fitted out "
                                                          "of fold), nothing dropped, then thresholds")
    threshold_tolerance: float = option(0.02, "fit each class's threshold at the lowest score whose OOF F4 is "
                                              "within this of the best (0: the best)")
    threshold_rule: ThresholdRule = option("plateau", "plateau: within threshold_tolerance of the best OOF F4; "
                                                      "one-se: within one standard error of it where larger")


@dataclass
class ValidationConfig:
    """What fold validation during training keeps: which weights, and what it writes."""

    checkpoint: CheckpointChoice = option("last", "weights the ensemble uses and OOF candidates come from: last "
                                                  "(the final epoch) or best (on the held-out run)")
    save_heatmaps: bool = option(False, "also save the best epoch's probabilities (float16 .npy)")
    picture: bool = option(True, "a PNG of validation slices with true and predicted picks")


@dataclass
class TrainerConfig:
    """Lightning Trainer flags (devices, nodes, strategy, precision, length)."""

    accelerator: str = option("auto", "cpu, gpu or auto (Lightning's)")
    devices: str = option("auto", "\"auto\", a count (\"2\") or a list (\"0,1\")")
    num_nodes: int = option(1, "nodes for DDP (SLURM/torchrun)")
    strategy: str = option("auto", "\"ddp\", \"ddp_spawn\", ...")
    precision: str = option("auto", "\"auto\": bf16-mixed on a GPU, 32 on the CPU")
    max_epochs: int = option(20, "epochs of data.patches_per_epoch patches")
    max_steps: int = option(-1, "stop after this many optimiser steps (-1: by max_epochs)")
    check_val_every_n_epoch: int = option(1, "validate (and write the OOF record) every n epochs")
    log_every_n_steps: int = option(10, "logging interval (steps)")
    num_sanity_val_steps: int = option(0, "Lightning's validation sanity steps before training")
    sync_batchnorm: bool = option(False, "synchronise BatchNorm statistics across DDP processes")
    channels_last: bool = option(True, "channels_last_3d weights and inputs: ~1.5x faster CPU steps "
                                       "(BENCHMARKS.md)")


@dataclass
class LoggingConfig:
    """W&B (offline without an API key) plus a CSV logger that always works."""

    wandb: bool = option(True, "log to Weights & Biases too (offline without an API key or network)")
    project: str = option("czii-picker", "W&B project")
    entity: str | None = option(None, "W&B entity (team); None: the key's default")


@dataclass
class ExperimentConfig:
    """Everything a training run depends on. ``experiment`` groups the folds of one recipe."""

    version: int = option(CONFIG_VERSION, "the config layout's version (config/migrations.py): older saved configs "
                                          "are migrated when read")
    experiment: str = option("", "experiment (group) name; empty: derived from the config, with a hash of it")
    particles: tuple[Particle, ...] = option(PARTICLES, "the classes in channel order (name, label, radius Å, "
                                                        "F-beta weight, difficulty, pdb_id): the CZII six unless "
                                                        "train.py --particles reads a copick config or a "
                                                        "particles file")
    seed: int = option(42, "global seed (initialisation; patch sampling too unless data.seed is given)")
    init_from: str | None = option(None, "start from another run's weights, a checkpoint file or a run folder "
                                         "(its weights.ckpt): fine-tuning after pre-training (README)")
    data: DataConfig = option(help="data, folds, patches, targets", factory=DataConfig)
    model: ModelConfig = option(help="network", factory=ModelConfig)
    loss: LossConfig = option(help="loss", factory=LossConfig)
    optim: OptimConfig = option(help="optimiser and schedule", factory=OptimConfig)
    mixup: MixupConfig = option(help="mixup", factory=MixupConfig)
    ema: EMAConfig = option(help="weight averaging", factory=EMAConfig)
    inference: InferenceSettings = option(help="prediction and peak picking", factory=InferenceSettings)
    validation: ValidationConfig = option(help="fold validation", factory=ValidationConfig)
    trainer: TrainerConfig = option(help="Lightning Trainer", factory=TrainerConfig)
    logging: LoggingConfig = option(help="loggers", factory=LoggingConfig)

    @property
    def particle_set(self) -> ParticleSet:
        """The classes as a checked set (what every stage after the config takes)."""
        return ParticleSet(tuple(self.particles))


def activation_kind(loss: LossConfig) -> str:
    """How logits become per-class probabilities for this loss (``inference.activation``)."""
    return "softmax" if loss.kind in SOFTMAX_LOSSES else "sigmoid"


def out_channels_for(loss: LossConfig, num_classes: int) -> int:
    """Softmax losses need a background channel; sigmoid heatmaps do not."""
    return num_classes + 1 if loss.kind in SOFTMAX_LOSSES else num_classes
