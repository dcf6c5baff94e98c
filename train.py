"""Train one model: ``python train.py --fold K[+L] --data ROOT [--preset gpu|cpu] [--section.key value ...]``.

Every hyperparameter of ``config.experiment.ExperimentConfig`` is a flag (``--optim.lr 3e-4``,
``--data.patch_size 96 96 96``, ``--trainer.devices 4 --trainer.strategy ddp``); ``--help`` lists them
with their defaults. Precedence: defaults < preset < ``--config FILE.yaml`` < flags.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from config.experiment import ExperimentConfig
from config.flags import add_config_flags, given_config_values
from config.yaml_cli import dotted_to_nested, load_yaml, parse_cli_value
from config.presets import PRESETS
from runtime.cli_errors import run_tool
from dataio.particle_sets import particles_from_source
from config.resolve import resolve_config
from lightning_modules.training_run import TrainingInterrupted, best_metrics, fit

SHORTCUTS = {"fold": "data.fold", "data": "data.data_root", "seed": "seed", "experiment": "experiment",
             "init_from": "init_from"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     usage="python train.py --fold K[+L] --data ROOT [--preset gpu|cpu] "
                                           "[--section.key VALUE ...]",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fold", help="fold(s) of folds.yaml to hold out: K, or K+L (the CPU design: seven "
                        "models 0+1, 1+2, ..., 6+0, each held-out run then predicted by two); -1 or 'all' "
                        "trains on every run")
    parser.add_argument("--data", help="dataset root (copick layout), e.g. one written by simulate.py")
    parser.add_argument("--out", default="runs", help="runs folder; each run gets <out>/<experiment>_fold<k>/")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="named recipe; default: gpu when a GPU is visible, else cpu")
    parser.add_argument("--config", help="YAML file laid over the preset (same keys as config.yaml)")
    parser.add_argument("--seed", help="global seed (also part of the run name)")
    parser.add_argument("--experiment", help="experiment (group) name; default derived from the config")
    parser.add_argument("--particles", help="the classes: data (the default: the data's own, those of its copick "
                        "config, --data CONFIG.json or ROOT/copick_config.json, with the CZII radius and weight for "
                        "the six under any name; the CZII six without a config), czii (the challenge's six), "
                        "copick (the config's, or an error without one), or a particles file (YAML/JSON: particles: "
                        "[{name, radius, weight, ...}]); recorded in the run's config")
    parser.add_argument("--resume", action="store_true", help="continue this run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start an existing run folder again")
    parser.add_argument("--init-from", help="start from another run's weights: a checkpoint file or a run folder "
                        "(its weights.ckpt), e.g. a model pre-trained on simulated data (README, Pre-training); "
                        "recorded in the run's config")
    group = parser.add_argument_group("hyperparameters (every field of ExperimentConfig)")
    add_config_flags(group, ExperimentConfig, skip=(*SHORTCUTS.values(), "particles", "version"))
    return parser


def overrides_from(args: argparse.Namespace) -> dict:
    """Dotted flags that were given, parsed as YAML values, as a nested dict."""
    given = given_config_values(args, ExperimentConfig, skip=(*SHORTCUTS.values(), "particles", "version"))
    for short, dotted in SHORTCUTS.items():
        value = getattr(args, short)
        if value is not None:
            given[dotted] = (str(Path(value).absolute()) if short == "init_from"
                             else value if short in ("fold", "experiment") else parse_cli_value(value))
    if isinstance(given.get("data.fold"), str) and given["data.fold"].strip().lstrip("-").isdigit():
        given["data.fold"] = int(given["data.fold"])
    if "seed" in given and "data.seed" not in given:  # a seed ensemble must see different patches too
        given["data.seed"] = given["seed"]
    return dotted_to_nested(given)


def config_sets_particles(config_file: str | None) -> bool:
    """Whether a ``--config`` file chooses the particle classes itself (then it, not the data, decides)."""
    return bool(config_file) and "particles" in load_yaml(config_file)


def fold_is_given(args: argparse.Namespace) -> bool:
    """--fold, --data.fold or a config file's data.fold: leaving it out must not silently train fold 0."""
    if args.fold is not None or getattr(args, "data.fold", None) is not None:
        return True
    return bool(args.config) and "fold" in ((load_yaml(args.config) or {}).get("data") or {})


def joined_negative_values(argv: list[str]) -> list[str]:
    """``--fold -1+2`` as ``--fold=-1+2``, ``--optim.lr -1e-3`` as ``--optim.lr=-1e-3``: argparse takes a value
    starting with '-' (other than a plain -1 or -0.5) for a flag, and would answer "expected one argument"
    instead of saying what is wrong with the value."""
    out: list[str] = []
    for arg in argv:
        follows_flag = bool(out) and out[-1].startswith("--") and "=" not in out[-1]
        if follows_flag and arg.startswith("-") and (arg[1:2].isdigit() or arg[1:2] == "."):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(joined_negative_values(sys.argv[1:] if argv is None else list(argv)))
    try:
        return run_tool("train.py", lambda: train(args), passthrough=(TrainingInterrupted,))
    except TrainingInterrupted as stop:
        print(f"train.py: {stop}; continue it with the same command and --resume", file=sys.stderr)
        return 130


def train(args: argparse.Namespace) -> int:
    preset = args.preset or ("gpu" if torch.cuda.is_available() else "cpu")
    overrides = overrides_from(args)
    cfg = resolve_config(preset, args.config, overrides)
    choice = args.particles or (None if config_sets_particles(args.config) else "data")
    if choice:  # read from the data the config names (by default its own classes), then recorded in the config
        chosen = particles_from_source(choice, cfg.data.data_root)
        cfg = resolve_config(preset, args.config, {**overrides, "particles": chosen.to_records()})
    if not fold_is_given(args):
        raise ValueError("--fold is required: a fold of folds.yaml to hold out (0..6 for the CZII runs), "
                         "two joined by '+' (0+1: the CPU design), or -1 / all to train on every run")
    paths = fit(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    metrics = best_metrics(paths)
    print(f"run folder: {paths.run_dir}")
    if metrics is not None:
        print(f"best validation (epoch {metrics['epoch']}), thresholds fitted on the held-out run:")
        for row in metrics["per_class"]:
            print(f"  {row['particle_type']:<20} P {row['precision']:.3f}  R {row['recall']:.3f}  "
                  f"F4 {row['f4']:.3f}")
        print(f"val score {metrics['score']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
