"""Finding a recipe's fold checkpoints by their saved config (never by file name) and loading plain models."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from inference.checkpoint_reader import model_weights, read_checkpoint
from config.experiment import ExperimentConfig, activation_kind
from config.resolve import experiment_config
from config.checks import check_inference_settings
from config.yaml_cli import merge, to_dict
from inference.run_folder import CONFIG_NAME, RunFolder, fold_label
from choices import is_slice_detector
from models.registry import build_model
from inference.predict import EnsembleSettings


@dataclass
class FoldRun:
    """One trained fold: its config, the checkpoint to use (``validation.checkpoint``: the last epoch's
    weights.ckpt, or best.ckpt by validation when it exists; last.ckpt for runs older than weights.ckpt) and
    its run folder (None for a checkpoint given on its own)."""

    config: ExperimentConfig
    checkpoint: Path
    folder: RunFolder | None = None

    @property
    def fold(self) -> str:
        return str(self.config.data.fold)

    @property
    def run_dir(self) -> Path | None:
        return None if self.folder is None else self.folder.run_dir


def find_fold_runs(runs_dir: str | Path, experiment: str | None = None,
                   allow_unfinished: bool = False) -> list[FoldRun]:
    """Every fold run of one experiment under ``runs_dir`` (those leaving several folds out, ``--fold 2+5``,
    included), read from each folder's ``config.yaml``. A run whose ``run.json`` does not say it finished
    (interrupted, failed, still training, or older than run.json) is refused by name unless
    ``allow_unfinished``, when it is used with its last weights (and skipped, with a word, if it has none)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs folder {runs_dir} does not exist")
    by_experiment: dict[str, list[tuple[FoldRun | None, str]]] = {}
    for folder in RunFolder.found_under(runs_dir):
        cfg = folder.read_config()
        checkpoint = folder.checkpoint(cfg.validation.checkpoint)
        state = folder.state()
        if checkpoint is None and state == "finished":
            raise FileNotFoundError(f"run {folder.run_dir} has no checkpoint (looked for "
                                    f"{', '.join(p.name for p in (folder.best, folder.weights, folder.last))} in "
                                    f"{folder.checkpoint_dir})")
        run = FoldRun(cfg, checkpoint, folder) if checkpoint is not None else None
        by_experiment.setdefault(cfg.experiment, []).append((run, f"{folder.run_dir} ({state})"))
    if not by_experiment:
        raise FileNotFoundError(f"no trained runs (*/{CONFIG_NAME}) under {runs_dir}")
    if experiment is None:
        if len(by_experiment) > 1:
            raise ValueError(f"{runs_dir} holds several experiments {sorted(by_experiment)}; choose one "
                             "with --experiment")
        experiment = next(iter(by_experiment))
    if experiment not in by_experiment:
        raise ValueError(f"no runs of experiment {experiment!r} under {runs_dir}; found {sorted(by_experiment)}")
    found_runs = by_experiment[experiment]
    check_one_folder_per_fold([run for run, _ in found_runs if run is not None], experiment)
    unfinished = [label for run, label in found_runs if not label.endswith("(finished)")]
    if unfinished and not allow_unfinished:
        raise ValueError(f"runs of experiment {experiment!r} that did not finish: {'; '.join(unfinished)}. "
                         "Resume them (train.py ... --resume), or pass --allow-unfinished to use their last "
                         "weights as they are")
    for run, label in found_runs:
        if run is None:
            print(f"--allow-unfinished: skipping {label}: it wrote no checkpoint")
        elif not label.endswith("(finished)"):
            print(f"--allow-unfinished: using {run.checkpoint} of {label} as it is")
    usable = [run for run, _ in found_runs if run is not None]
    if not usable:
        raise ValueError(f"no run of experiment {experiment!r} under {runs_dir} wrote a checkpoint")
    check_distinct([run.checkpoint for run in usable], "run folder checkpoint")
    return sorted(usable, key=lambda r: r.fold)


def check_one_folder_per_fold(runs: list[FoldRun], experiment: str) -> None:
    """Two folders of one recipe and fold (a ``cp -r`` backup, a renamed copy) would be averaged in twice, in
    the ensemble and in the out-of-fold fit: refuse them, naming both."""
    seen: dict[str, Path] = {}
    for run in runs:
        label = fold_label(run.fold)
        if label in seen:
            raise ValueError(f"run folders {seen[label]} and {run.run_dir} both hold fold {label} of experiment "
                             f"{experiment!r} (is one a copy?): each model would be averaged in twice; move one "
                             "out of --runs")
        seen[label] = run.run_dir


def check_distinct(paths: list[Path], what: str = "--checkpoints") -> None:
    """The same weights given twice would count twice in the average: refuse repeats (the same file, or
    files of identical content)."""
    sizes = [Path(p).stat().st_size if Path(p).is_file() else -1 for p in paths]
    seen: dict[str, Path] = {}
    for path, size in zip(paths, sizes):
        if sizes.count(size) == 1:  # a file of a size no other has cannot repeat one: no need to read it
            continue
        digest = hashlib.sha1(Path(path).read_bytes()).hexdigest() if size >= 0 else str(path)
        if digest in seen:
            raise ValueError(f"{what} {path} repeats {seen[digest]} (the same weights): each model "
                             "would be averaged in twice")
        seen[digest] = Path(path)


def fold_run_from_checkpoint(path: str | Path) -> FoldRun:
    """A checkpoint given on the command line: its config comes from the hyperparameters inside it."""
    path = Path(path)
    checkpoint = read_checkpoint(path, "--checkpoints")
    config = (checkpoint.get("hyper_parameters") or {}).get("config") if isinstance(checkpoint, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"--checkpoints {path} holds no config (hyper_parameters.config): it was not written by "
                         "train.py")
    return FoldRun(experiment_config(config, f"config inside --checkpoints {path}"), path)


def check_compatible(runs: list[FoldRun]) -> None:
    """Fold logits can only be averaged when every model has the same head and output grid."""
    if not runs:
        raise ValueError("no checkpoints to ensemble")
    first = runs[0].config
    for run in runs[1:]:
        cfg = run.config
        mismatch = [what for what, a, b in (
            ("activation", activation_kind(first.loss), activation_kind(cfg.loss)),
            ("out_channels", first.model.out_channels, cfg.model.out_channels),
            ("output_stride", first.model.output_stride, cfg.model.output_stride),
            ("model family", is_slice_detector(first.model.name), is_slice_detector(cfg.model.name)),
            ("slice stack", first.model.slice_half_depth, cfg.model.slice_half_depth),
            ("normalization", first.data.normalization, cfg.data.normalization),
            ("particle classes", first.particle_set, cfg.particle_set)) if a != b]
        if mismatch:
            raise ValueError(f"checkpoint {run.checkpoint} is of another model than {runs[0].checkpoint}: "
                             f"different {', '.join(mismatch)}")


def check_soupable(runs: list[FoldRun]) -> None:
    """A weight soup averages tensors name by name: every fold must be the very same network."""
    first = runs[0]
    for run in runs[1:]:
        a, b = to_dict(first.config)["model"], to_dict(run.config)["model"]
        differ = {key: (a[key], b[key]) for key in a if a[key] != b.get(key)}
        if differ:
            raise ValueError(f"--soup averages weights, so every checkpoint must be the same network: "
                             f"{run.checkpoint} differs from {first.checkpoint} in model "
                             + ", ".join(f"{k} ({x} vs {y})" for k, (y, x) in differ.items()))


def ensemble_settings(cfg: ExperimentConfig, autocast_dtype: torch.dtype | None = None,
                      **overrides: object) -> EnsembleSettings:
    """How an ensemble of this recipe predicts: what the models fix from its config, its ``inference``
    settings with ``overrides`` laid over them (an override given as None keeps the recipe's value)."""
    settings = merge(cfg.inference, {k: v for k, v in overrides.items() if v is not None})
    check_inference_settings(settings)
    detector = is_slice_detector(cfg.model.name)
    if detector:
        for key, value in (("picker", "nms"), ("tta", ("identity",))):
            if getattr(settings, key) != value:
                raise ValueError(f"{key} {getattr(settings, key)!r} does not apply to {cfg.model.name} runs "
                                 f"(slice detectors are merged in 3D and predict each slice once)")
    return EnsembleSettings(activation_kind(cfg.loss), cfg.model.output_stride, cfg.data.normalization, settings,
                            autocast_dtype, particles=cfg.particle_set,
                            slice_half_depth=cfg.model.slice_half_depth if detector else None)


def load_model(run: FoldRun, device: torch.device | str = "cpu") -> nn.Module:
    """The plain network with the checkpoint's weights (the EMA weights when EMA was on), in eval mode."""
    weights = model_weights(read_checkpoint(run.checkpoint, f"fold {run.fold}"))
    # the checkpoint holds every weight: the encoder file the training started from is neither needed nor read
    model = build_model(dataclasses.replace(run.config.model, encoder_weights=None))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {run.checkpoint} does not fit model {run.config.model.name!r}: "
                         f"{str(err).splitlines()[0]}") from None
    if run.config.trainer.channels_last and not is_slice_detector(run.config.model.name):
        model = model.to(memory_format=torch.channels_last_3d)
    return model.to(device).eval()


def weight_soup(models: list[nn.Module]) -> nn.Module:
    """One model whose weights are the mean of the folds' (a "soup"): one forward instead of K."""
    soup = copy.deepcopy(models[0])
    states = [m.state_dict() for m in models]
    averaged = {k: (torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point()
                    else v) for k, v in states[0].items()}
    soup.load_state_dict(averaged)
    return soup.eval()

