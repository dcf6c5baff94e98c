"""One trial of a W&B sweep: train the pair models of one recipe, ensemble them, report the OOF CV.

``wandb agent`` runs ``python sweeps/trial.py --data ROOT --out RUNS --folds 0+1 1+2 2+0 --optim.lr=0.004 ...``
(the command in ``sweeps/*.yaml``). Every flag this script does not know is a ``train.py`` flag: the sweep's
parameters are recipe fields. Each trial is its own experiment (``<sweep>-<trial run id>``), so its training
runs (job type ``train``) and its ensemble (``ensemble``) form one W&B group; the trial's own run, the one
the agent created, gets the ensemble's ``oof/score`` (the objective) and per-class scores. Children are
started without the agent's run variables, so each logs its own run instead of writing into the trial's.
Runs without an agent too (then the trial's run is a plain one, offline without an API key).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script by the agent: the project's packages live one level up
    sys.path.insert(0, str(REPO))

from runtime.cli_errors import run_tool  # noqa: E402
from runtime.wandb_runs import child_environment, flatten_config, wandb_mode  # noqa: E402
from postprocess.thresholds import load_oof_scores  # noqa: E402
from postprocess.wandb_report import OBJECTIVE  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset root (copick layout) the trials train on")
    p.add_argument("--out", required=True, help="runs folder shared by the trials (one experiment each)")
    p.add_argument("--folds", nargs="+", default=["0+1", "1+2", "2+0"],
                   help="models per trial (train.py --fold forms); the OOF CV needs every validation run "
                        "held out by at least one of them")
    p.add_argument("--split", default="test", help="split the ensemble predicts (scored when it has truth)")
    p.add_argument("--project", default="czii-picker", help="W&B project of the trial's own run")
    return p


RECIPE_FLAGS_WITHOUT_A_DOT: tuple[str, ...] = ("--preset", "--seed")
"""The only train.py flags without a dot a sweep may set: everything else it sets is a recipe field."""


def check_recipe_flags(recipe_flags: list[str]) -> None:
    """A sweep sets recipe fields (``--section.key``, ``--preset``, ``--seed``), never the trial's own flags:
    ``--out``/``--data``/``--experiment`` after ours would move the trial's runs or data, ``--overwrite``
    would delete runs, ``--config`` could do any of these from a file."""
    for flag in (f.split("=", 1)[0] for f in recipe_flags if f.startswith("--")):
        if "." not in flag and flag not in RECIPE_FLAGS_WITHOUT_A_DOT:
            raise ValueError(f"sweep parameter {flag} is not a recipe field: a sweep may set --section.key "
                             f"fields and {', '.join(RECIPE_FLAGS_WITHOUT_A_DOT)}; where runs and data go is the "
                             "trial's own (--data, --out on sweeps/trial.py)")


def run_trial(args: argparse.Namespace, recipe_flags: list[str]) -> int:
    check_recipe_flags(recipe_flags)  # before any W&B run or training starts
    mode = wandb_mode()
    import wandb

    trial = wandb.init(project=args.project, dir=str(Path(args.out).resolve()), mode=mode, job_type="trial",
                       config=flatten_config({"trial": {"folds": args.folds, "data": args.data,
                                                        "recipe_flags": recipe_flags}}))
    sweep = os.environ.get("WANDB_SWEEP_ID") or "trial"
    experiment = f"{sweep}-{trial.id}"
    env = child_environment()
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for fold in args.folds:
            subprocess.run([sys.executable, str(REPO / "train.py"), "--fold", fold, "--data", args.data,
                            "--out", args.out, "--experiment", experiment, *recipe_flags], env=env, check=True)
        has_truth = (Path(args.data) / f"{args.split}_truth").is_dir()
        subprocess.run([sys.executable, str(REPO / "ensemble.py"), "--runs", args.out, "--experiment", experiment,
                        "--split", args.split, "--out", str(Path(args.out) / f"{experiment}.submission.csv"),
                        *(["--score"] if has_truth else [])], env=env, check=True)
        scores = load_oof_scores(Path(args.out) / f"{experiment}.thresholds.json")
        if OBJECTIVE not in scores:
            raise ValueError(f"the ensemble of {experiment} recorded no out-of-fold CV")
        trial.log(scores)
        trial.summary.update({**scores, "experiment": experiment})
        print(f"trial {experiment}: {OBJECTIVE} {scores[OBJECTIVE]:.6f}")
        return 0
    except subprocess.CalledProcessError as err:
        trial.summary.update({"failed": " ".join(map(str, err.cmd[1:3]))})
        raise ValueError(f"trial {experiment}: {Path(err.cmd[1]).name} exited with {err.returncode}") from None
    finally:
        trial.finish()


def check_own_flags_once(argv: list[str]) -> None:
    """The sweep's parameters come after the command's own flags, and argparse keeps the last of a repeated
    flag: a parameter named like one of the trial's flags (``--out``) would silently replace it."""
    own = {a for action in build_parser()._actions for a in action.option_strings if a.startswith("--")}
    given = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    twice = sorted({flag for flag in given if flag in own and given.count(flag) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)} given more than once: a sweep parameter may not replace the "
                         "trial's own flags")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, recipe_flags = build_parser().parse_known_args(argv)

    def trial() -> int:
        check_own_flags_once(argv)
        return run_trial(args, recipe_flags)

    return run_tool("sweeps/trial.py", trial)


if __name__ == "__main__":
    sys.exit(main())
