"""One training run: prepare its folder, build the Trainer, fit, and record how it ended."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from config.experiment import ExperimentConfig, TrainerConfig
from config.yaml_cli import to_dict
from datamodules.datamodule import CryoETDataModule
from runtime.run_status import RUN_STATUS_NAME
from dataio.torch_files import load_tensors
from inference.checkpoint_reader import read_checkpoint
from inference.run_folder import RunFolder
from lightning_modules.checkpoint_files import AtomicCheckpointIO, SlimCheckpoint, remove_stale_temporaries
from lightning_modules.ema import PicklableEMA
from runtime.launch import Launch, current_launch, wait_for_run_folder, with_unique_token
from lightning_modules.loggers import build_loggers
from choices import is_slice_detector
from lightning_modules.picker import ParticlePicker, PickerModule
from lightning_modules.slice_picker import SliceDetectorPicker


def prepare_run_dir(paths: RunFolder, cfg: ExperimentConfig, resume: bool, overwrite: bool, launch: str) -> bool:
    """Create the run folder and mark it as train.py's (``run.json``); never clobber an earlier run unless asked
    to, and then only a folder that marker proves train.py created (a resumed one is kept as it is:
    ``check_resumable`` has checked it). Returns whether the folder is new, i.e. this run may remove it."""
    if resume:
        paths.write_status("running", launch=launch, resumed=True)
        return False
    if paths.run_dir.is_symlink() or (paths.run_dir.exists() and not paths.run_dir.is_dir()):
        raise FileExistsError(f"run folder {paths.run_dir} is a file or a symbolic link; refusing to use it")
    if paths.run_dir.exists() and any(paths.run_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"run folder {paths.run_dir} already exists; pass --resume to continue it, "
                                  "--overwrite to start it again, or change --seed / --experiment")
        if not paths.made_by_train():
            raise FileExistsError(f"--overwrite: {paths.run_dir} has no {RUN_STATUS_NAME} marking it as a run "
                                  "folder train.py created (an older run, or someone else's folder); refusing "
                                  "to delete it: remove it yourself or choose another --experiment / --out")
        shutil.rmtree(paths.run_dir)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.write_config(cfg)
    paths.write_status("running", launch=launch)  # last: the other ranks wait for it
    return True


def check_resumable(paths: RunFolder, cfg: ExperimentConfig, clean: bool = True) -> None:
    """Refuse, by name, a last.ckpt that cannot continue this run (missing, truncated, slim, of another model),
    and clear the temporary files a killed save left beside it."""
    if not paths.last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint to resume from at {paths.last}")
    for stale in remove_stale_temporaries(paths.last.parent) if clean else []:
        print(f"removed {stale}: a checkpoint save that was interrupted")
    state = read_checkpoint(paths.last, "--resume", for_resume=True)
    saved = state["hyper_parameters"]["config"].get("model")
    if saved != to_dict(cfg)["model"]:
        raise ValueError(f"--resume checkpoint {paths.last} holds another model than {paths.config_file} describes "
                         f"({saved} vs {to_dict(cfg)['model']})")


def _devices(text: str) -> Any:
    if text == "auto":
        return "auto"
    if "," in text:
        return [int(t) for t in text.split(",") if t.strip()]
    return int(text)


def _on_gpu(tcfg: TrainerConfig) -> bool:
    return tcfg.accelerator in ("gpu", "cuda") or (tcfg.accelerator == "auto" and torch.cuda.is_available())


def build_trainer(cfg: ExperimentConfig, paths: RunFolder, has_validation: bool) -> L.Trainer:
    """The Lightning Trainer with checkpoints (last, best by val/score), EMA, loggers."""
    tcfg = cfg.trainer
    on_gpu = _on_gpu(tcfg)
    precision = tcfg.precision if tcfg.precision != "auto" else ("bf16-mixed" if on_gpu else "32-true")
    # after every epoch last.ckpt (the full state --resume continues) and weights.ckpt (its EMA weights and
    # config: what the ensemble reads by default); best.ckpt (weights and config) when the ensemble is to use
    # the epoch that scored best on the held-out run; each written beside itself, fsynced, then renamed
    callbacks: list[L.Callback] = [
        ModelCheckpoint(dirpath=paths.last.parent, filename=paths.last.stem, monitor=None, save_top_k=1,
                        save_on_train_epoch_end=True, enable_version_counter=False),
        SlimCheckpoint(dirpath=paths.weights.parent, filename=paths.weights.stem, monitor=None, save_top_k=1,
                       save_on_train_epoch_end=True, enable_version_counter=False)]
    if has_validation and cfg.validation.checkpoint == "best":
        callbacks.append(SlimCheckpoint(dirpath=paths.best.parent, filename=paths.best.stem, monitor="val/score",
                                        mode="max", save_top_k=1, enable_version_counter=False))
    if cfg.ema.enabled:
        callbacks.append(PicklableEMA(decay=cfg.ema.decay, update_starting_at_step=cfg.ema.start_step))
    loggers = build_loggers(cfg.logging, paths.run_dir, paths.run_dir.name, cfg.experiment, to_dict(cfg))
    if any(hasattr(lg, "log_image") for lg in loggers):
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    try:
        return L.Trainer(
            default_root_dir=str(paths.run_dir), logger=loggers, callbacks=callbacks,
            plugins=[AtomicCheckpointIO()], accelerator=tcfg.accelerator, devices=_devices(tcfg.devices),
            num_nodes=tcfg.num_nodes, strategy=tcfg.strategy, precision=precision, max_epochs=tcfg.max_epochs,
            max_steps=tcfg.max_steps, gradient_clip_val=cfg.optim.gradient_clip,
            check_val_every_n_epoch=tcfg.check_val_every_n_epoch, log_every_n_steps=tcfg.log_every_n_steps,
            num_sanity_val_steps=tcfg.num_sanity_val_steps, deterministic=not on_gpu,
            sync_batchnorm=tcfg.sync_batchnorm, limit_val_batches=1.0 if has_validation else 0)
    except MisconfigurationException as err:  # no GPU for accelerator gpu, an unknown strategy, ...
        raise ValueError(f"trainer settings (accelerator {tcfg.accelerator!r}, devices {tcfg.devices!r}, "
                         f"strategy {tcfg.strategy!r}, precision {precision!r}): {err}") from None


def fit(cfg: ExperimentConfig, runs_dir: str | Path, resume: bool = False, overwrite: bool = False) -> RunFolder:
    """Train one fold; returns the run's paths. The datamodule checks folds and shapes before training.

    Under a multi-process launch (torchrun, SLURM, Lightning's own) only global rank 0 takes the run folder's
    lock and creates, overwrites or writes the folder; the other ranks wait until it has, then train."""
    launch = with_unique_token(current_launch())
    paths = RunFolder.of(runs_dir, cfg)
    if launch.prepares_run_folder:
        paths.acquire(launch.token)  # a second job on this folder is refused here, by name
    try:
        return _fit(cfg, paths, launch, resume, overwrite)
    finally:
        if launch.prepares_run_folder:
            paths.release(launch.token)


def _fit(cfg: ExperimentConfig, paths: RunFolder, launch: Launch, resume: bool, overwrite: bool) -> RunFolder:
    if resume and paths.config_file.is_file():
        saved = paths.read_config()
        saved.trainer = cfg.trainer  # a resumed run may be given more epochs or other devices
        cfg = saved
    if resume:  # before reading any tomogram: a bad checkpoint is refused at once
        check_resumable(paths, cfg, clean=launch.prepares_run_folder)
    L.seed_everything(cfg.seed, workers=True)
    detector = is_slice_detector(cfg.model.name)
    datamodule = CryoETDataModule(cfg.data, particles=cfg.particle_set, slice_detector=detector)
    datamodule.setup("fit")
    has_validation = bool(datamodule.val_runs)
    module = (SliceDetectorPicker if detector else ParticlePicker).from_config(cfg)
    if cfg.init_from and not resume:  # a resumed run continues from its own last checkpoint
        module.load_weights_from(cfg.init_from)
    if not launch.prepares_run_folder:
        if not launch.spawned_by_lightning:
            wait_for_run_folder(paths.run_dir, launch)
        trainer = build_trainer(cfg, paths, has_validation)
        run_trainer(trainer, module, datamodule, paths, resume)
        return paths
    created = prepare_run_dir(paths, cfg, resume, overwrite, launch.token)  # once a model is built: no stray folders
    try:
        if not resume:  # the split as trained: the OOF record stays right whatever folds.yaml says later
            paths.write_split(cfg.data.fold, datamodule.train_runs, datamodule.val_runs,
                              datamodule.source.voxel_spacing)
        trainer = build_trainer(cfg, paths, has_validation)
        run_trainer(trainer, module, datamodule, paths, resume)
    except BaseException as err:
        record_failure(paths, created, err)
        raise
    return paths


class TrainingInterrupted(Exception):
    """Ctrl-C (or SIGTERM from a scheduler) stopped the run; its last checkpoint can be resumed."""


def run_trainer(trainer: L.Trainer, module: PickerModule, datamodule: CryoETDataModule, paths: RunFolder,
                resume: bool) -> None:
    """``trainer.fit`` (a resume reads last.ckpt with ``weights_only=True`` too), then the run's status: finished
    only when training reached its end, took steps and left weights an ensemble can read."""
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(paths.last) if resume else None,
                    weights_only=True)
    except SystemExit:  # Lightning answers Ctrl-C with a graceful shutdown and sys.exit(1)
        if not trainer.interrupted:
            raise
        raise TrainingInterrupted(f"training of {paths.run_dir} was interrupted at epoch {trainer.current_epoch}, "
                                  f"step {trainer.global_step}") from None
    if trainer.interrupted:
        raise TrainingInterrupted(f"training of {paths.run_dir} was interrupted at epoch {trainer.current_epoch}, "
                                  f"step {trainer.global_step}")
    # the weights file, not the trainer, says how far training went: under ddp_spawn the steps were taken in
    # the worker processes and this trainer's counters stay at 0
    steps = (load_tensors(paths.weights, "weights checkpoint", mmap=True).get("global_step", 0)
             if paths.weights.is_file() else 0)  # mmap: only the step is read, not a GPU model's weights
    if not steps:
        raise ValueError(f"training of {paths.run_dir} took no optimiser step and wrote no weights: check "
                         "data.patches_per_epoch (per process) against data.batch_size and the number of "
                         "processes, and trainer.max_epochs / max_steps")
    if trainer.is_global_zero:
        paths.write_status("finished", global_step=int(steps))


def record_failure(paths: RunFolder, created: bool, err: BaseException) -> None:
    """A run that stopped before writing any checkpoint leaves nothing behind when this call created its folder
    (so it blocks no ensemble and no later start); otherwise its status says how it ended."""
    if created and not any(p.is_file() for p in (paths.last, paths.weights, paths.best)):
        shutil.rmtree(paths.run_dir, ignore_errors=True)
        return
    if paths.run_dir.is_dir():
        interrupted = isinstance(err, (TrainingInterrupted, KeyboardInterrupt))
        paths.write_status("interrupted" if interrupted else "failed",
                           reason=" ".join(str(err).split())[:500] or type(err).__name__)


def best_metrics(paths: RunFolder) -> dict[str, Any] | None:
    """The best validation epoch's metrics written by the run, if it validated."""
    return paths.metrics()
