"""Fold checkpoints -> OOF thresholds -> submission: ``python ensemble.py --runs RUNS --data ROOT --out sub.csv``.

Finds the folds of one experiment by their saved config (those leaving two folds out, ``--fold 0+1``,
included), fits per-class thresholds on their out-of-fold predictions (each held-out run predicted by every
model that never trained on it) made with the very settings given here (TTA, window, smoothing; or reuses
thresholds saved for the same settings and checkpoints), averages the folds' logits (with optional TTA) over
every tomogram of the split, picks peaks, and writes the submission CSV, copick pick files, pictures and
thresholds together or not at all (every target is checked writable before inference starts). Under torchrun
each process predicts a share of the tomograms. ``--score`` prints the official metric.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from config.experiment import InferenceSettings
from config.flags import add_config_flags, given_config_values
from config.yaml_cli import to_dict
from runtime.atomic import OutputBatch, check_writable
from runtime.cli_errors import run_tool
from dataio.layout import TRUTH_USER, check_path_name, check_pick_owner
from dataio.pick_readers import PickSelection
from dataio.pick_writers import DEFAULT_PICKS_USER, check_copick_targets, write_copick_picks, write_submission
from dataio.sources import TomogramSource, open_source
from inference.export import export_ensemble, export_suffix
from inference.family_vote import FamilyVote
from inference.fold_runs import FoldRun
from inference.precision import PRECISIONS
from inference.predictor import EnsemblePredictor
from inference.sharding import close_process_group, gather_objects, gather_tables, init_from_env
from postprocess.metric import format_report, report_scores, score_picks
from postprocess.plots import pr_curves_figure, slice_figure
from postprocess.wandb_report import log_ensemble_run, pr_curve_rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", help="runs folder written by train.py (folds found by their config.yaml)")
    p.add_argument("--experiment", help="which experiment under --runs (needed when there are several)")
    p.add_argument("--vote-with", metavar="EXPERIMENT",
                   help="vote this ensemble with the runs of another experiment under --runs (the other model "
                        "family: slice detectors beside U-Nets, or the reverse), trained on the same folds; the "
                        "weight and the thresholds of the vote are fitted on both families' out-of-fold "
                        "predictions, which are made again")
    p.add_argument("--checkpoints", nargs="+", help="explicit checkpoints instead of --runs")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="use runs whose training did not finish (interrupted, failed, still running) with their "
                        "last weights; by default they are refused by name")
    p.add_argument("--data", nargs="+", help="copick root (default: the folds' training root), or MRC files")
    p.add_argument("--split", default="test", help="split of a copick root to predict (default: test)")
    p.add_argument("--out", required=True, help="submission CSV to write")
    p.add_argument("--overlay", help="copick overlay root for the pick JSONs (default: <out>_copick/); it may be "
                                     "a dataset's own overlay: files of other users or sessions are never touched")
    p.add_argument("--user-id", default=DEFAULT_PICKS_USER,
                   help="copick user id of the written picks (default: %(default)s; 'curation' is refused)")
    p.add_argument("--session-id", help="copick session id of the written picks (default: the experiment name)")
    p.add_argument("--thresholds", help="thresholds JSON (default: <runs>/<experiment>.thresholds.json)")
    p.add_argument("--refit-thresholds", action="store_true",
                   help="fit thresholds again out of fold even when saved ones match these settings")
    p.add_argument("--soup", action="store_true", help="average the folds' weights into one model first")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): bf16 on a GPU and on CPUs with native bf16 (AVX512-BF16, AMX), else fp32")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: the GPU of this rank, else the CPU)")
    p.add_argument("--score", action="store_true", help="score the picks against the split's ground truth")
    p.add_argument("--pictures", help="folder for PNGs: slices with picks per run, OOF precision-recall curves")
    p.add_argument("--export", help="also save the logit-averaging ensemble for deployment: FILE.onnx (ONNX, for ONNX "
                                    "Runtime or TensorRT) or FILE.pt2 (torch.export); checked against PyTorch first")
    p.add_argument("--no-wandb", action="store_true",
                   help="do not log this ensemble to W&B (default: a run of job type 'ensemble' in the experiment's "
                        "group when the recipe logs to W&B: OOF CV, thresholds, PR curves, score, pictures)")
    add_config_flags(p.add_argument_group("prediction settings (each defaults to the recipe's inference.*)"),
                     InferenceSettings, dashed=True, default_note="default without a recipe")
    return p


def picks_owner(args: argparse.Namespace, experiment: str) -> tuple[str, str]:
    """copick (user, session) of the written picks: never the curators', checked before any prediction."""
    if args.user_id == TRUTH_USER:
        raise ValueError(f"--user-id {TRUTH_USER!r} is the curated truth's user id; model picks need their own")
    session_id = args.session_id or experiment.replace("_", "-")
    check_pick_owner(args.user_id, session_id)
    return args.user_id, session_id


def predictor_from(args: argparse.Namespace, device: torch.device) -> EnsemblePredictor:
    """The ensemble the flags name, its thresholds not yet fitted (outputs are checked first)."""
    if bool(args.runs) == bool(args.checkpoints):
        raise ValueError("give either --runs or --checkpoints")
    options = dict(device=device, precision=args.precision, soup=args.soup,
                   refit_thresholds=args.refit_thresholds or bool(args.vote_with),  # a vote is fitted on OOF
                   fit=False, **given_config_values(args, InferenceSettings))
    if args.thresholds:  # the user's own file: used as given, with a word when it was fitted otherwise
        options.update(thresholds_file=Path(args.thresholds), user_thresholds=True)
    if args.checkpoints:
        return EnsemblePredictor.from_checkpoints(args.checkpoints, **options)
    return EnsemblePredictor.from_runs(args.runs, args.experiment, allow_unfinished=args.allow_unfinished, **options)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("ensemble.py", lambda: run_closing(args))


def run_closing(args: argparse.Namespace) -> int:
    """``run``, leaving no process group behind on any rank, whether it returns or fails."""
    try:
        return run(args)
    finally:
        close_process_group()


def check_outputs(args: argparse.Namespace, predictor: EnsemblePredictor, names: list[str], overlay: Path,
                  user_id: str, session_id: str) -> None:
    """Every output target, checked before any inference: a refusal after an hour of inference helps no one."""
    check_writable(Path(args.out), "--out")
    check_copick_targets(overlay, names, user_id, session_id, particles=predictor.particles)
    if args.pictures:
        for name in names:
            check_path_name(name, "run name")
        check_writable(Path(args.pictures) / "oof_pr_curves.png", "--pictures")
    if args.export:
        if predictor.settings.slice_half_depth is not None:
            raise ValueError("--export writes the U-Nets' logit-averaging network; slice detector runs "
                             "(boxes merged in 3D) have no such single network to export")
        export_suffix(args.export)
        check_writable(Path(args.export), "--export")
    if predictor.thresholds_file is not None:
        check_writable(predictor.thresholds_file, "thresholds file")


def resolve_device(args: argparse.Namespace, default: torch.device) -> torch.device:
    """``--device`` as given, refused by name when it names a GPU this machine does not have."""
    if not args.device:
        return default
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ValueError(f"--device {args.device!r}: expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"--device {args.device}: no such CUDA GPU is visible here "
                         f"({torch.cuda.device_count()} GPUs); use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {args.device!r}: expected cpu, cuda or cuda:N")
    return device


def warn_training_runs(runs: list[FoldRun], names: list[str]) -> None:
    """Scoring runs that models trained on measures memory, not skill: say so, naming them."""
    splits = [run.folder.read_split() for run in runs if run.folder is not None]
    seen = sorted({name for split in splits if split is not None for name in split.train_runs if name in names})
    if seen:
        print(f"warning: --score includes runs some models trained on ({', '.join(seen)}): that part of the "
              "score is a training score, not a test of unseen data")


def open_data(args: argparse.Namespace, predictor: EnsemblePredictor) -> TomogramSource:
    """The tomograms to predict (``--data``, default the folds' training root), checked against the models."""
    cfg, particles = predictor.runs[0].config, predictor.particles
    data = args.data or [cfg.data.data_root]
    source = (open_source(data[0], args.split, cfg.data.tomo_type,
                          selection=PickSelection(cfg.data.picks_user, cfg.data.picks_session),
                          voxel_spacing=cfg.data.voxel_spacing, particles=particles)
              if len(data) == 1 else open_source([Path(d) for d in data], particles=particles))
    predictor.check_spacing(source.voxel_spacing, f"--data {data[0]}")
    if not source.run_names():
        raise ValueError(f"{data[0]} has no runs in split {args.split!r}")
    if args.score and not source.has_picks:
        raise ValueError(f"--score: {data[0]} has no ground truth for split {args.split!r}")
    for name in source.run_names():  # every tomogram's metadata checked (codecs, dtype, shape) before inference
        source.tomogram(name)
    return source


def run(args: argparse.Namespace) -> int:
    rank, world, device = init_from_env()
    predictor = predictor_from(args, resolve_device(args, device))
    cfg, particles = predictor.runs[0].config, predictor.particles
    user_id, session_id = picks_owner(args, cfg.experiment)
    source = open_data(args, predictor)
    names = source.run_names()
    overlay = Path(args.overlay) if args.overlay else Path(args.out).with_name(f"{Path(args.out).stem}_copick")
    check_outputs(args, predictor, names, overlay, user_id, session_id)
    truth = {n: source.picks(n) for n in names} if source.has_picks else {}  # read (and checked) once, early
    if args.score:
        warn_training_runs(predictor.runs, names)
    fitted = predictor.prepare_thresholds()  # fitted once, by rank 0, and shared
    if rank == 0 and fitted.oof is None:
        print(fitted.source)
    if fitted.levels is not None:
        print("component levels fitted out of fold: " + ", ".join(f"{n} {v:g}" for n, v in fitted.levels.items()))
    oof_scores = report_oof(predictor) if rank == 0 else {}
    vote = voting(args, predictor, rank) if args.vote_with else None
    if args.export:
        predictor.models  # noqa: B018 (loaded before the batch: an export failure is a clear error first)

    def draw(name: str, volume: np.ndarray, picks: pd.DataFrame) -> None:
        if args.pictures:
            slice_figure(volume, truth.get(name, picks.iloc[:0]), picks, Path(args.pictures) / f"{name}_slices.png",
                         spacing=source.voxel_spacing, batch=batch, particles=particles)

    with OutputBatch() as batch:  # pictures, thresholds, pick files, then the CSV: all renamed at the end
        table = gather_tables((vote or predictor).predict_source(source, names, rank, world, each=draw))
        staged = gather_objects(batch.staged())  # every rank's pictures: rank 0 commits them with its own
        if rank != 0:
            batch.hand_over()  # committed by rank 0 with everything else, or removed by it when it fails
            return 0
        for target, tmp in (item for other in staged[1:] for item in other):
            batch.adopt(target, tmp)
        saved = write_outputs(args, predictor, table, names, overlay, (user_id, session_id), source.voxel_spacing,
                              oof_scores, batch)
    if saved is not None:
        print(f"thresholds fitted out of fold, saved to {saved}")
    print(f"wrote {len(table)} picks over {len(names)} tomograms to {args.out} (copick JSONs of user {user_id!r} "
          f"session {session_id!r} under {overlay})")
    split_scores = {}
    if args.score:
        report = score_picks(table, pd.concat(truth.values(), ignore_index=True), runs=names, particles=particles)
        print(f"{args.split} score against the ground truth:")
        print(format_report(report))
        split_scores = report_scores(report, args.split)
    if cfg.logging.wandb and not args.no_wandb:
        log_to_wandb(args, predictor, {**oof_scores, **split_scores}, names)
    return 0


def write_outputs(args: argparse.Namespace, predictor: EnsemblePredictor, table: pd.DataFrame, names: list[str],
                  overlay: Path, owner: tuple[str, str], spacing: float, oof_scores: dict[str, float],
                  batch: OutputBatch) -> Path | None:
    """Rank 0's share of the batch: the PR curves, the export, fitted thresholds, the pick files, the CSV.
    Returns where thresholds fitted now are saved (None when they were read)."""
    fitted, particles = predictor.fitted, predictor.particles
    if args.pictures and fitted.oof is not None:
        pr_curves_figure(predictor.oof_scores_space(), fitted.oof.truth, fitted.values,
                         Path(args.pictures) / "oof_pr_curves.png", batch=batch, particles=particles)
    if args.export:
        export_ensemble(predictor.models, Path(args.export), batch)
    saved = None
    if fitted.record is not None and predictor.thresholds_file is not None:
        saved = predictor.save_thresholds(batch, oof_scores)
    write_copick_picks(table, overlay, runs=names, user_id=owner[0], session_id=owner[1], voxel_spacing=spacing,
                       batch=batch, particles=particles)
    write_submission(table, args.out, batch=batch, particles=particles)
    return saved


def report_oof(predictor: EnsemblePredictor) -> dict[str, float]:
    """Print the out-of-fold CV of thresholds fitted now; the one recorded with reused thresholds otherwise."""
    report = predictor.oof_report()
    if report is None:
        scores = predictor.saved_oof_scores()
        if "oof/score" in scores:
            print(f"out-of-fold CV when these thresholds were fitted: {scores['oof/score']:.6f}")
        return scores
    oof, runs = predictor.fitted.oof, predictor.runs
    counts, plural = sorted(set(oof.models_per_run.values())), "s" * (len(runs) != 1)
    print(f"out-of-fold CV over {', '.join(oof.runs)} ({len(runs)} model{plural}; each run predicted by "
          f"the {'–'.join(map(str, counts))} of them that never trained on it; each run's levels and thresholds "
          "fitted on the other runs):")
    print(format_report(report))
    in_sample = predictor.oof_report(cross_fitted=False)
    print(f"in-sample (levels and thresholds fitted on every OOF run, the scored one included): "
          f"{in_sample.score:.6f}")
    scores = {**report_scores(report, "oof"), "oof/score_in_sample": in_sample.score}
    carried = predictor.carried_oof()
    if carried is not None:
        print(f"carried to this ensemble's {carried.size} models: {carried.score:.6f} cross-fitted, "
              f"{carried.score_in_sample:.6f} in-sample (estimates: S(m) = a - b/m through the OOF CV of single "
              f"models, {carried.single:.6f} / {carried.single_in_sample:.6f}, and of the OOF ensembles of "
              f"{carried.members}; how well they predict a test: BENCHMARKS.md, \"The OOF CV\")")
        scores |= {"oof/score_carried": carried.score, "oof/score_carried_in_sample": carried.score_in_sample}
        print(f"expected test score of this ensemble's {carried.size} models: {carried.score_in_sample:.6f} (the "
              "carried in-sample figure, the estimate that came closest to 20-run tests: BENCHMARKS.md, \"The OOF "
              "CV\"; recipes are compared by the cross-fitted OOF CV above)")
    return scores


def voting(args: argparse.Namespace, predictor: EnsemblePredictor, rank: int) -> FamilyVote:
    """The vote of ``predictor`` and the runs of ``--vote-with``, fitted out of fold; its OOF CV printed."""
    if not args.runs:
        raise ValueError("--vote-with names an experiment under --runs: give --runs")
    other = EnsemblePredictor.from_runs(args.runs, args.vote_with, allow_unfinished=args.allow_unfinished,
                                        device=predictor.device, precision=args.precision,
                                        refit_thresholds=True, fit=False, thresholds_file=None)
    other.prepare_thresholds()
    vote = FamilyVote.fit(predictor, other)
    if rank == 0:
        tried = ", ".join(f"{w:g}: {s:.3f}" for w, s in vote.oof_scores.items())
        print(f"vote with {args.vote_with}: weight of {predictor.experiment} {vote.weight:g} (in-sample OOF CV by "
              f"weight {tried}); its cross-fitted OOF CV {vote.oof_report().score:.6f}")
    return vote


def log_to_wandb(args: argparse.Namespace, predictor: EnsemblePredictor, scores: dict[str, float],
                 names: list[str]) -> None:
    """The ensemble's W&B run, in the folds' experiment group beside their training runs."""
    folds, fitted = predictor.runs, predictor.fitted
    cfg = folds[0].config
    config = {**to_dict(cfg), "inference": to_dict(predictor.settings.inference),
              "ensemble": {"models": [f.run_dir.name if f.run_dir else str(f.checkpoint) for f in folds],
                           "split": args.split, "runs": names, "soup": args.soup, "precision": args.precision,
                           "component_levels": fitted.levels}}
    oof = fitted.oof
    curves = pr_curve_rows(predictor.oof_scores_space(), oof.truth, cfg.particle_set) if oof is not None else None
    written = [f"{name}_slices.png" for name in names] + (["oof_pr_curves.png"] if oof is not None else [])
    pictures = [Path(args.pictures) / png for png in written
                if args.pictures and (Path(args.pictures) / png).is_file()]  # this run's, not older files
    directory = Path(args.runs) if args.runs else Path(args.out).resolve().parent
    where = log_ensemble_run(project=cfg.logging.project, entity=cfg.logging.entity, group=cfg.experiment,
                             name=f"ensemble-{args.split}", config=config, directory=directory, scores=scores,
                             thresholds=fitted.values, pr_curves=curves, pictures=pictures)
    if where:
        print(f"W&B: ensemble run of group {cfg.experiment!r} logged ({where})")


if __name__ == "__main__":
    sys.exit(main())
