"""ensemble.py end to end on tiny synthetic data: folds -> OOF thresholds -> submission -> metric."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import ensemble
from dataio.copick_config import write_copick_configs
from dataio.copick_source import CopickSource
from dataio.sources import open_source
from inference.fold_runs import ensemble_settings, find_fold_runs, load_model
from inference.oof import predict_oof
from config.resolve import resolve_config
from lightning_modules.training_run import fit
from models.logit_average import LogitAverage
from particles import CZII_PARTICLES, PARTICLE_NAMES
from inference.predict import predict_run
from postprocess.component_levels import LEVEL_COLUMN
from postprocess.metric import load_ground_truth, read_submission, score_picks
from inference.sharding import shard_runs
from tests.pick_asserts import assert_same_picks, assert_same_picks_per
from tests.training_fixtures import tiny_overrides

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # trains two folds, then runs the whole ensemble many times


@pytest.fixture(scope="module")
def trained_runs(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two folds (0 and 1) of a tiny recipe, a few steps each: enough to exercise every path."""
    torch.set_num_threads(1)
    runs = tmp_path_factory.mktemp("runs")
    for fold in (0, 1):
        cfg = resolve_config(None, None, tiny_overrides(tiny_dataset, fold=fold, steps=3,
                                                        inference={"window": [48, 96, 96]}))
        fit(cfg, runs)
    return runs


def _ensemble(*args: str) -> int:
    return ensemble.main(list(args))


def test_end_to_end_submission_is_scored_by_the_metric(trained_runs, tiny_dataset, tmp_path, capsys) -> None:
    out = tmp_path / "submission.csv"
    code = _ensemble("--runs", str(trained_runs), "--data", str(tiny_dataset), "--split", "test",
                     "--out", str(out), "--score", "--pictures", str(tmp_path / "pics"), "--tta", "identity", "flip_x")
    printed = capsys.readouterr().out
    assert code == 0
    assert "out-of-fold CV over TS_5_4, TS_6_4 (2 models; each run predicted by the 1 of them" in printed
    assert "carried to" not in printed  # one model per OOF run: nothing to carry from
    assert "score " in printed
    table = read_submission(out, particles=CZII_PARTICLES)
    assert list(table.columns)[:6] == ["id", "experiment", "particle_type", "x", "y", "z"]
    assert set(table["experiment"]) <= {"TS_sim_test_0", "TS_sim_test_1"}
    experiment = find_fold_runs(trained_runs)[0].config.experiment
    assert (trained_runs / f"{experiment}.thresholds.json").is_file()
    session = experiment.replace("_", "-")
    assert (tmp_path / "submission_copick" / "ExperimentRuns" / "TS_sim_test_1" / "Picks" /
            f"czii-picker_{session}_ribosome.json").is_file()
    for png in ("TS_sim_test_0_slices.png", "TS_sim_test_1_slices.png", "oof_pr_curves.png"):
        assert (tmp_path / "pics" / png).stat().st_size > 0
    metric = subprocess.run([sys.executable, "-m", "postprocess.metric", str(out), "--gt",
                             str(tiny_dataset / "test_truth")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert metric.returncode == 0, metric.stderr
    last = metric.stdout.strip().splitlines()[-1]
    truth = load_ground_truth(tiny_dataset / "test_truth", particles=CZII_PARTICLES)
    expected = score_picks(read_submission(out, particles=CZII_PARTICLES), truth, particles=CZII_PARTICLES).score
    assert last.startswith("score ") and float(last.split()[1]) == pytest.approx(expected, abs=1e-6)
    assert last in printed  # ensemble.py --score printed the same score as the metric's CLI


def test_thresholds_follow_the_prediction_settings(trained_runs, tiny_dataset, tmp_path, capsys) -> None:
    """Thresholds fitted for one set of settings are reused for the same settings only: TTA (or another
    window, smoothing, retrained folds) refits them out of fold with the new settings, and the file says so."""
    runs = tmp_path / "runs"
    shutil.copytree(trained_runs, runs)
    for stale in runs.glob("*.thresholds.json"):
        stale.unlink()
    common = ["--runs", str(runs), "--data", str(tiny_dataset), "--split", "test", "--out", str(tmp_path / "s.csv")]
    assert _ensemble(*common) == 0
    assert "thresholds fitted out of fold" in capsys.readouterr().out
    assert _ensemble(*common) == 0
    assert "fitted out of fold with these settings" in capsys.readouterr().out
    assert _ensemble(*common, "--tta", "identity", "flip_x") == 0
    assert "fitted with other settings or checkpoints: fitting again" in capsys.readouterr().out
    (saved,) = runs.glob("*.thresholds.json")
    record = json.loads(saved.read_text())["fitted_with"]
    assert record["settings"]["tta"] == ["identity", "flip_x"] and len(record["checkpoints"]) == 2


@pytest.fixture(scope="module")
def nested_runs(trained_runs: Path, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two folds plus the leave-two-folds-out model 0+1 of the same recipe (a nested CV in miniature)."""
    runs = tmp_path_factory.mktemp("nested_runs")
    shutil.copytree(trained_runs, runs, dirs_exist_ok=True)
    for stale in runs.glob("*.thresholds.json"):
        stale.unlink()
    fit(resolve_config(None, None, tiny_overrides(tiny_dataset, fold="0+1", steps=3,
                                                  inference={"window": [48, 96, 96]})), runs)
    return runs


def test_oof_predicts_each_run_by_every_model_that_never_trained_on_it(nested_runs, tiny_dataset) -> None:
    every = find_fold_runs(nested_runs)
    assert [r.fold for r in every] == ["0", "0+1", "1"]
    settings = ensemble_settings(every[0].config)
    oof = predict_oof(every, settings)
    assert oof.models_per_run == {"TS_5_4": 2, "TS_6_4": 2}
    source = open_source(str(tiny_dataset), "train", particles=CZII_PARTICLES)
    floor = {n: settings.inference.candidate_threshold for n in PARTICLE_NAMES}
    expected = predict_run([load_model(every[0]), load_model(every[1])], source.load_tomogram("TS_5_4"), "TS_5_4",
                           settings, floor, torch.device("cpu"), source.voxel_spacing)  # fold 0 and fold 0+1 held TS_5_4 out
    got = oof.candidates[oof.candidates["experiment"] == "TS_5_4"].reset_index(drop=True)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))


def test_ensemble_of_folds_and_pair_models(nested_runs, tiny_dataset, tmp_path, capsys) -> None:
    """A runs folder with a leave-two-folds-out model: the OOF CV counts it, the test ensemble holds all
    three models (the same picks as the three checkpoints given by hand with the same thresholds)."""
    common = ["--data", str(tiny_dataset), "--split", "test"]
    assert _ensemble("--runs", str(nested_runs), *common, "--out", str(tmp_path / "runs.csv")) == 0
    printed = capsys.readouterr().out
    assert ("out-of-fold CV over TS_5_4, TS_6_4 (3 models; each run predicted by the 2 of them that never trained "
            "on it; each run's levels and thresholds fitted on the other runs)") in printed
    assert "carried to this ensemble's 3 models: " in printed and "expected test score of this" in printed
    (saved,) = nested_runs.glob("*.thresholds.json")
    assert {"oof/score_carried", "oof/score_carried_in_sample"} <= set(json.loads(saved.read_text())["oof_scores"])
    assert len(json.loads(saved.read_text())["fitted_with"]["checkpoints"]) == 3
    checkpoints = [str(r.checkpoint) for r in find_fold_runs(nested_runs)]
    assert _ensemble("--checkpoints", *checkpoints, *common, "--out", str(tmp_path / "given.csv"),
                     "--thresholds", str(saved)) == 0
    by_runs, given = pd.read_csv(tmp_path / "runs.csv"), pd.read_csv(tmp_path / "given.csv")
    assert len(by_runs) > 0
    pd.testing.assert_frame_equal(by_runs, given)
    assert _ensemble("--checkpoints", *checkpoints[::2], *common, "--out", str(tmp_path / "two.csv"),
                     "--thresholds", str(saved)) == 0  # folds 0 and 1 only: other picks
    assert not pd.read_csv(tmp_path / "two.csv").equals(by_runs)


def test_pair_models_alone_are_an_ensemble(nested_runs, tiny_dataset, tmp_path, capsys) -> None:
    only_pairs = tmp_path / "pairs"
    (pair,) = [p for p in nested_runs.iterdir() if p.name.endswith("_fold0+1")]
    shutil.copytree(pair, only_pairs / pair.name)
    assert _ensemble("--runs", str(only_pairs), "--data", str(tiny_dataset), "--split", "test",
                     "--out", str(tmp_path / "s.csv")) == 0
    assert "out-of-fold CV over TS_5_4, TS_6_4 (1 model; each run predicted by the 1 of them" in capsys.readouterr().out
    assert (tmp_path / "s.csv").is_file()


def test_bad_inputs_are_clear_errors_and_overwrite_nothing(trained_runs, tiny_dataset, tmp_path, capsys) -> None:
    out = tmp_path / "submission.csv"
    out.write_text("precious\n")
    broken = tmp_path / "broken_runs"
    shutil.copytree(trained_runs, broken)
    for ckpt in broken.glob("*_fold1/checkpoints/*.ckpt"):
        ckpt.unlink()
    assert _ensemble("--runs", str(broken), "--data", str(tiny_dataset), "--out", str(out)) == 2
    assert "has no checkpoint" in capsys.readouterr().err

    other = resolve_config(None, None, tiny_overrides(tiny_dataset, fold=2, steps=1, loss={"kind": "ce"}))
    other_runs = tmp_path / "other_runs"
    fit(other, other_runs)
    good = find_fold_runs(trained_runs)[0].checkpoint
    bad = find_fold_runs(other_runs)[0].checkpoint
    assert _ensemble("--checkpoints", str(good), str(bad), "--data", str(tiny_dataset), "--out", str(out)) == 2
    assert "is of another model" in capsys.readouterr().err

    empty = tmp_path / "empty_data"
    shutil.copytree(tiny_dataset / "train", empty / "train")
    (empty / "test" / "static" / "ExperimentRuns").mkdir(parents=True)
    assert _ensemble("--runs", str(trained_runs), "--data", str(empty), "--split", "test", "--out", str(out)) == 2
    assert "no runs" in capsys.readouterr().err
    assert out.read_text() == "precious\n"  # nothing written over the earlier file


def test_shards_cover_every_run_once() -> None:
    runs = [f"run{i}" for i in range(11)]
    shards = [shard_runs(runs, rank, 4) for rank in range(4)]
    assert sorted(sum(shards, [])) == sorted(runs)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with pytest.raises(ValueError, match="rank 4 outside"):
        shard_runs(runs, 4, 4)


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_export_matches_the_ensemble_at_other_sizes(trained_runs, tmp_path, suffix: str) -> None:
    """The exported file (ONNX run by ONNX Runtime; torch.export loaded back) gives the mean of the models'
    logits, within the stated tolerance, also for a batch and window other than the one it was checked on."""
    from inference.export import EXPORT_TOLERANCE, export_ensemble, onnx_logits

    models = [load_model(run) for run in find_fold_runs(trained_runs)]
    path = tmp_path / f"ensemble{suffix}"
    assert export_ensemble(models, path) <= EXPORT_TOLERANCE
    x = torch.randn(2, 1, 32, 48, 64)
    with torch.inference_mode():
        expected = LogitAverage(models)(x)
        assert torch.allclose(expected, (models[0](x) + models[1](x)) / 2, atol=1e-6)
        got = (torch.from_numpy(onnx_logits(path, x.numpy())) if suffix == ".onnx"
               else torch.export.load(str(path)).module()(x))
    assert got.shape == expected.shape
    assert ((got - expected).abs() / (1 + expected.abs())).max() <= EXPORT_TOLERANCE


def test_an_export_that_does_not_match_is_refused_and_not_written(tmp_path, monkeypatch) -> None:
    import inference.export as export
    from models.basic_unet import BasicUNet3d

    monkeypatch.setattr(export, "EXPORT_TOLERANCE", -1.0)  # any difference at all is too much
    path = tmp_path / "ensemble.onnx"
    with pytest.raises(ValueError, match="differ from PyTorch's.*nothing was written"):
        export.export_ensemble([BasicUNet3d(6, (4, 8), output_stride=2).eval()], path)
    assert list(tmp_path.iterdir()) == []


def test_torchrun_shards_tomograms_and_zarr_file_lists_work(trained_runs, tiny_dataset, tmp_path) -> None:
    """Two processes (gloo, CPU) each predict half the runs, given as loose zarr files: same submission."""
    run = find_fold_runs(trained_runs)[0]
    thresholds = tmp_path / "t.json"
    thresholds.write_text('{"apo-ferritin": 0.1, "beta-amylase": 0.1, "beta-galactosidase": 0.1, '
                          '"ribosome": 0.1, "thyroglobulin": 0.1, "virus-like-particle": 0.1}')
    single = tmp_path / "single.csv"
    assert _ensemble("--checkpoints", str(run.checkpoint), "--data", str(tiny_dataset), "--split", "test",
                     "--thresholds", str(thresholds), "--out", str(single)) == 0
    zarrs = sorted(str(p) for p in (tiny_dataset / "test" / "static" / "ExperimentRuns").glob("*/*/denoised.zarr"))
    sharded = tmp_path / "sharded.csv"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "ensemble.py",
         "--checkpoints", str(run.checkpoint), "--data", *zarrs, "--thresholds", str(thresholds),
         "--out", str(sharded)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "predicting (rank 1)" in done.stderr  # the second process did predict
    pd.testing.assert_frame_equal(pd.read_csv(single), pd.read_csv(sharded))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_picks_written_into_a_datasets_own_overlay_leave_curation_intact_and_copick_reads_them(
        trained_runs, tiny_dataset, tmp_path, capsys) -> None:
    """The worst thing this tool could do is replace a lab's curated picks: aim ensemble.py right at them."""
    import copick

    data = tmp_path / "moved_dataset"  # a copy, moved: its copick configs are written again for the new place
    shutil.copytree(tiny_dataset, data)
    write_copick_configs(data, particles=CZII_PARTICLES)
    overlay = data / "train" / "overlay"
    curated = _tree_bytes(overlay)
    truth_before = CopickSource(data, particles=CZII_PARTICLES).picks("TS_5_4")
    out = tmp_path / "train_picks.csv"
    assert _ensemble("--runs", str(trained_runs), "--data", str(data), "--split", "train", "--out", str(out),
                     "--overlay", str(overlay), "--session-id", "run1") == 0
    after = _tree_bytes(overlay)
    assert {k: after[k] for k in curated} == curated  # every curated file byte-identical
    assert len(after) == len(curated) + 7 * 6  # ours: one file per run and class, beside them
    pd.testing.assert_frame_equal(CopickSource(data, particles=CZII_PARTICLES).picks("TS_5_4"),
                                  truth_before)  # training still reads curation
    table = read_submission(out, particles=CZII_PARTICLES)
    project = copick.from_file(str(data / "copick_config.json"))
    for run in project.runs:
        ours = run.get_picks(user_id="czii-picker", session_id="run1")
        assert len(ours) == 6
        assert sum(len(p.points) for p in ours) == int((table["experiment"] == run.name).sum())
    assert _ensemble("--runs", str(trained_runs), "--data", str(data), "--split", "train", "--out", str(out),
                     "--overlay", str(overlay), "--user-id", "curation") == 2
    assert "curated truth's user id" in capsys.readouterr().err
    assert {k: v for k, v in _tree_bytes(overlay).items() if k in curated} == curated


def test_an_mrc_at_another_voxel_spacing_is_refused_by_name(trained_runs, tiny_dataset, tmp_path, capsys) -> None:
    """The models learned sizes in voxels at 10.012 Å: a 20 Å/voxel MRC is refused, not picked at wrong sizes;
    the same volume with a 10.012 Å header is predicted like the zarr it came from."""
    import mrcfile

    volume = CopickSource(tiny_dataset, split="test", particles=CZII_PARTICLES).load_tomogram("TS_sim_test_0")
    for name, size in (("binned.mrc", 20.0), ("TS_sim_test_0.mrc", 10.012)):
        with mrcfile.new(tmp_path / name) as mrc:
            mrc.set_data(volume)
            mrc.voxel_size = size
    args = ["--runs", str(trained_runs), "--out", str(tmp_path / "mrc.csv")]
    assert _ensemble(*args, "--data", str(tmp_path / "binned.mrc")) == 2
    err = capsys.readouterr().err
    assert "binned.mrc is at 20 Å/voxel" in err and "trained at 10.012 Å/voxel" in err
    assert not (tmp_path / "mrc.csv").exists()
    assert _ensemble(*args, "--data", str(tmp_path / "TS_sim_test_0.mrc")) == 0
    assert _ensemble(*args[:2], "--out", str(tmp_path / "zarr.csv"), "--data", str(tiny_dataset),
                     "--split", "test") == 0
    from_mrc, from_zarr = read_submission(tmp_path / "mrc.csv",
                                          particles=CZII_PARTICLES), read_submission(tmp_path / "zarr.csv",
                                                                                     particles=CZII_PARTICLES)
    pd.testing.assert_frame_equal(from_mrc.drop(columns="id").reset_index(drop=True),
                                  from_zarr[from_zarr["experiment"] == "TS_sim_test_0"].drop(columns="id")
                                  .reset_index(drop=True), check_exact=False, atol=1e-3)


def test_the_benchmarks_score_what_ensemble_py_scores(trained_runs, tiny_dataset, tmp_path) -> None:
    """bench_recipes / bench_encoders score folds through the predictor ensemble.py uses: the same OOF CV,
    thresholds and test score as the tool with the same settings."""
    from benchmarks.bench_recipes import evaluate

    row = evaluate(find_fold_runs(trained_runs), tiny_dataset, {"tta": ["identity"]})
    saved, out = tmp_path / "thresholds.json", tmp_path / "sub.csv"
    assert _ensemble("--runs", str(trained_runs), "--data", str(tiny_dataset), "--split", "test", "--out", str(out),
                     "--tta", "identity", "--precision", "fp32", "--thresholds", str(saved)) == 0
    record = json.loads(saved.read_text())
    assert record["thresholds"] == pytest.approx(row["thresholds"])
    assert record["oof_scores"]["oof/score"] == pytest.approx(row["oof_cv"])
    truth = load_ground_truth(tiny_dataset / "test_truth", particles=CZII_PARTICLES)
    tool = score_picks(read_submission(out, particles=CZII_PARTICLES), truth, particles=CZII_PARTICLES).score
    assert tool == pytest.approx(row["test"])
    assert set(row["test_per_class"]) == set(PARTICLE_NAMES)


def test_ensembles_of_every_size_from_one_prediction_per_model(nested_runs, tiny_dataset, tmp_path) -> None:
    """bench_ensemble_size: a subset's picks from each model's output equal that subset predicted; the whole
    window scores what the predictor scores; the single-model OOF holds each held-out run once per model that
    held it out, as it alone predicts it; the carried OOF CV is built from the OOF CVs ensemble.py prints."""
    from benchmarks.bench_ensemble_size import evaluate
    from inference.oof import predict_oof
    from inference.predict import ensemble_member_terms, picks_from_probabilities
    from inference.predictor import EnsemblePredictor
    from inference.probabilities import members_probabilities

    predictor = EnsemblePredictor.from_runs(nested_runs, device="cpu", thresholds_file=tmp_path / "t.json")
    settings, fitted = predictor.settings, predictor.fitted
    source = open_source(str(tiny_dataset), "test", particles=CZII_PARTICLES)
    run = source.run_names()[0]
    volume = source.load_tomogram(run)
    terms = ensemble_member_terms(predictor.models, volume, run, settings, torch.device("cpu"))
    for subset in ([0], [1, 2]):
        expected = predict_run([predictor.models[i] for i in subset], volume, run, settings, fitted.values,
                               torch.device("cpu"), source.voxel_spacing, fitted.levels, fitted.calibration)
        probs = members_probabilities(terms[subset], settings.activation, settings.inference.average,
                                      num_classes=CZII_PARTICLES.num_classes)
        got = picks_from_probabilities(probs, run, settings, fitted.values, source.voxel_spacing, fitted.levels,
                                       fitted.calibration)
        assert_same_picks(got, expected)

    row = evaluate(nested_runs, tiny_dataset, "as-trained", [1, 2])
    assert sorted(row["test_by_size"]) == ["1", "2", "3"]
    assert [len(v) for v in row["test_by_size"].values()] == [3, 3, 1]  # ring windows of 1, 2 and all 3
    picks = predictor.predict_source(source, progress=False)
    truth = pd.concat([source.picks(r) for r in source.run_names()], ignore_index=True)
    assert row["test"] == pytest.approx(score_picks(picks, truth, runs=source.run_names(),
                                                    particles=CZII_PARTICLES).score)
    carried = predictor.carried_oof()
    assert (carried.members, carried.size) == (2, 3)
    assert row["oof_pair"]["cross_fitted"] == pytest.approx(predictor.oof_report().score) == carried.ensemble
    assert carried.single == pytest.approx(row["oof_single"]["cross_fitted"])
    assert row["oof_carried"]["cross_fitted"] == pytest.approx(carried.score)
    assert (carried.ensemble_in_sample, carried.score_in_sample) == pytest.approx(
        (predictor.oof_report(cross_fitted=False).score, row["oof_carried"]["in_sample"]))
    every = find_fold_runs(nested_runs)
    singles = (both := predict_oof(every, settings, singles=True)).singles
    assert carried.singles.runs == singles.runs == ["TS_5_4@fold0", "TS_5_4@fold0+1", "TS_6_4@fold0+1",
                                                    "TS_6_4@fold1"]
    for model in every:  # each member's share of the shared passes is that model predicting alone, to the bit
        alone = predict_oof([model], settings).raw
        for run in alone["experiment"].unique():
            mine = singles.raw[singles.raw["experiment"] == f"{run}@fold{model.fold}"]
            want = alone[alone["experiment"] == run]
            assert len(mine) > 0
            pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                          want.assign(experiment=want["experiment"] + f"@fold{model.fold}")
                                          .reset_index(drop=True))
    one_pass = predict_oof(every, settings).raw  # the pairs as the mean of their members: one pass, rounded
    assert_same_picks_per(both.raw, one_pass, ["experiment", LEVEL_COLUMN])


def test_oof_choices_run_from_in_sample_to_cross_fitted(nested_runs, tiny_dataset, tmp_path) -> None:
    """bench_oof_choices: no choice refitted on the other runs is the in-sample OOF CV, all three the
    cross-fitted one (pairs, and single members as the carried OOF's); the test row scores the kept picks."""
    from benchmarks.bench_oof_choices import evaluate, refit_subsets
    from inference.predictor import EnsemblePredictor

    predictor = EnsemblePredictor.from_runs(nested_runs, device="cpu", thresholds_file=tmp_path / "t.json")
    source = open_source(str(tiny_dataset), "test", particles=CZII_PARTICLES)
    picks = predictor.predict_source(source, progress=False)
    picks.to_csv(nested_runs / "picks-as-trained-large.csv", index=False)
    row = evaluate(nested_runs, tiny_dataset, "as-trained")
    assert len(row["pairs"]) == len(refit_subsets()) == 6  # calibration refitted only with its thresholds
    assert row["pairs"]["none"]["score"] == pytest.approx(predictor.oof_report(cross_fitted=False).score)
    every = "levels+calibration+thresholds"
    assert row["pairs"][every]["score"] == pytest.approx(predictor.oof_report().score)
    assert row["singles"][every]["score"] == pytest.approx(predictor.carried_oof().single)
    for name, value in predictor.fitted.values.items():
        assert row["pairs_spread"][name]["threshold"][0] == pytest.approx(value)
        assert len(row["pairs_spread"][name]["threshold"]) == 1 + len(predictor.fitted.oof.runs)
    truth = pd.concat([source.picks(r) for r in source.run_names()], ignore_index=True)
    assert row["test"]["score"] == pytest.approx(score_picks(picks, truth, runs=source.run_names(),
                                                             particles=CZII_PARTICLES).score)
