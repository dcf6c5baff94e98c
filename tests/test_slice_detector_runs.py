"""The slice-detector family end to end at tiny sizes: trained by train.py in the usual run folders, predicted
by ensemble.py alone, and voted with U-Nets of the same folds (``inference.family_vote``)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

import ensemble
import train
from config.resolve import resolve_config
from dataio.sources import open_source
from inference.family_vote import FamilyVote
from inference.predictor import EnsemblePredictor
from inference.run_folder import RunFolder
from lightning_modules.training_run import fit
from particles import CZII_PARTICLES
from postprocess.family_fusion import fuse_picks
from postprocess.metric import load_ground_truth, read_submission, score_picks
from postprocess.thresholds import apply_thresholds
from tests.training_fixtures import cli_args, tiny_overrides

pytestmark = pytest.mark.slow  # trains four tiny models, then ensembles and votes them


def detector_overrides(root: Path, fold: int, steps: int = 3) -> dict:
    cfg = tiny_overrides(root, fold=fold, steps=steps, model={"name": "fcos-slices", "widths": [8, 16, 32, 32]},
                         data={"patch_size": [5, 48, 48]})
    del cfg["model"]["output_stride"]  # a detector detects at every pixel: a stride of 2 is refused
    return cfg


@pytest.fixture(scope="module")
def family_runs(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Folds 0 and 1 of a slice detector (through train.py's command line) and of a U-Net, in one runs folder."""
    torch.set_num_threads(1)
    runs = tmp_path_factory.mktemp("family_runs")
    for fold in (0, 1):
        assert train.main(["--out", str(runs), *cli_args(detector_overrides(tiny_dataset, fold))]) == 0
        fit(resolve_config(None, None, tiny_overrides(tiny_dataset, fold=fold, steps=3,
                                                      inference={"window": [48, 96, 96]})), runs)
    experiments = sorted({f.read_config().experiment for f in RunFolder.found_under(runs)})
    detector = next(e for e in experiments if e.startswith("fcos-slices"))
    unet = next(e for e in experiments if e.startswith("unet-tiny"))
    return runs, unet, detector


def test_a_detector_run_folder_is_like_any_other(family_runs) -> None:
    runs, _, detector = family_runs
    assert detector.startswith("fcos-slices_5x48x48_s42_")  # no loss in the name: FCOS trains its own
    folders = [f for f in RunFolder.found_under(runs) if f.read_config().experiment == detector]
    assert len(folders) == 2
    for folder in folders:
        assert folder.state() == "finished" and folder.weights.is_file() and folder.read_split() is not None
        cfg = folder.read_config()
        assert cfg.model.out_channels == 6 and cfg.data.patch_size == (5, 48, 48) and cfg.inference.tta == ("identity",)
        oof = pd.read_csv(folder.oof_candidates)
        assert set(oof.columns) >= {"experiment", "particle_type", "x", "y", "z", "score"}
        assert set(oof["experiment"]) <= set(folder.read_split().val_runs)


def test_a_stride_or_tta_that_does_not_apply_to_a_detector_is_refused(tiny_dataset) -> None:
    cfg = detector_overrides(tiny_dataset, 0)
    cfg["model"]["output_stride"] = 2
    with pytest.raises(ValueError, match="model.output_stride 2 does not apply to fcos-slices"):
        resolve_config(None, None, cfg)
    cfg = detector_overrides(tiny_dataset, 0)
    cfg["data"]["patch_size"] = [4, 48, 48]
    with pytest.raises(ValueError, match="the patch's z must be 5"):
        resolve_config(None, None, cfg)


def test_ensemble_py_predicts_and_scores_detector_runs(family_runs, tiny_dataset, tmp_path, capsys) -> None:
    runs, _, detector = family_runs
    out = tmp_path / "detectors.csv"
    code = ensemble.main(["--runs", str(runs), "--experiment", detector, "--data", str(tiny_dataset),
                          "--split", "test", "--out", str(out), "--score", "--pictures", str(tmp_path / "pics")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "out-of-fold CV over TS_5_4, TS_6_4" in printed
    table = read_submission(out, particles=CZII_PARTICLES)
    truth = load_ground_truth(tiny_dataset / "test_truth", particles=CZII_PARTICLES)
    expected = score_picks(table, truth, particles=CZII_PARTICLES).score
    assert f"score {expected:.6f}" in printed
    saved = json.loads((runs / f"{detector}.thresholds.json").read_text())
    assert set(saved["thresholds"]) == set(CZII_PARTICLES.names)
    assert (tmp_path / "pics" / "TS_sim_test_0_slices.png").stat().st_size > 0
    assert ensemble.main(["--runs", str(runs), "--experiment", detector, "--data", str(tiny_dataset), "--out",
                          str(tmp_path / "x.csv"), "--picker", "cc3d"]) == 2
    assert "picker 'cc3d' does not apply to fcos-slices runs" in capsys.readouterr().err


def test_the_vote_of_both_families_is_fitted_out_of_fold_and_predicts(family_runs, tiny_dataset) -> None:
    runs, unet, detector = family_runs
    unets = EnsemblePredictor.from_runs(runs, unet, device="cpu", thresholds_file=None)
    detectors = EnsemblePredictor.from_runs(runs, detector, device="cpu", thresholds_file=None)
    vote = FamilyVote.fit(unets, detectors)
    assert vote.weight in vote.oof_scores and vote.oof_scores[vote.weight] == max(vote.oof_scores.values())
    source = open_source(tiny_dataset, "test", particles=CZII_PARTICLES)
    name = source.run_names()[0]
    volume = source.load_tomogram(name)
    picks = vote.predict(volume, source.voxel_spacing, name)
    fused = fuse_picks(unets.candidates(volume, source.voxel_spacing, name),
                       detectors.candidates(volume, source.voxel_spacing, name), vote.weight, particles=CZII_PARTICLES)
    pd.testing.assert_frame_equal(picks, apply_thresholds(fused, vote.thresholds, particles=CZII_PARTICLES))
    honest = vote.oof_report()  # both held-out runs scored, each with a weight fitted on the other
    oof_truth = unets.prepare_thresholds().oof.truth
    assert int((honest.table["tp"] + honest.table["fn"]).sum()) == len(oof_truth)
    assert set(oof_truth["experiment"]) == {"TS_5_4", "TS_6_4"}
    every = vote.predict_source(source, progress=False)
    assert set(every["experiment"]) <= set(source.run_names())


def test_ensemble_py_votes_the_two_families(family_runs, tiny_dataset, tmp_path, capsys) -> None:
    runs, unet, detector = family_runs
    out = tmp_path / "vote.csv"
    code = ensemble.main(["--runs", str(runs), "--experiment", unet, "--vote-with", detector, "--data",
                          str(tiny_dataset), "--split", "test", "--out", str(out), "--score"])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"vote with {detector}: weight of {unet} " in printed and "its cross-fitted OOF CV" in printed
    vote = FamilyVote.fit(EnsemblePredictor.from_runs(runs, unet, device="cpu", thresholds_file=None),
                          EnsemblePredictor.from_runs(runs, detector, device="cpu", thresholds_file=None))
    assert f"weight of {unet} {vote.weight:g} " in printed
    expected = vote.predict_source(open_source(tiny_dataset, "test", particles=CZII_PARTICLES), progress=False)
    written = read_submission(out, particles=CZII_PARTICLES)
    key = ["experiment", "particle_type", "x", "y", "z"]

    def rows(table: pd.DataFrame) -> pd.DataFrame:  # as the CSV writes them: "%.3f"
        table = table[key].copy()
        for axis in ("x", "y", "z"):
            table[axis] = table[axis].map(lambda v: float(f"{v:.3f}"))
        return table.sort_values(key).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(written), rows(expected), check_dtype=False)
