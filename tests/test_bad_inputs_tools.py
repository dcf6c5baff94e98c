"""Bad inputs of the other tools: simulate.py, the metric, the classical baseline, copick configs, the portal; each
one clear error (harness: tests/bad_input_harness.py)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import simulate
from postprocess import metric
from tests.bad_input_harness import World, check_one_clear_error, damaged_copy, written

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def case_metric_submission_missing_columns(w: World, t: Path):
    csv = written(t / "sub.csv", "id,experiment,particle_type\n0,TS_sim_test_0,apo-ferritin\n")
    return metric.main, [str(csv), "--gt", str(w.data / "test_truth")]


def case_metric_missing_ground_truth(w: World, t: Path):
    csv = written(t / "sub.csv", "id,experiment,particle_type,x,y,z\n")
    return metric.main, [str(csv), "--gt", str(t / "no_truth")]


def case_metric_unknown_experiment(w: World, t: Path):
    csv = written(t / "sub.csv", "id,experiment,particle_type,x,y,z\n0,TS_elsewhere,apo-ferritin,1,2,3\n")
    return metric.main, [str(csv), "--gt", str(w.data / "test_truth")]


def case_simulate_unknown_difficulty(w: World, t: Path):
    return simulate.main, ["--out", str(t / "sim"), "--difficulty", "medium"]


def case_simulate_reversed_snr_range(w: World, t: Path):
    return simulate.main, ["--out", str(t / "sim"), "--difficulty", "8:1"]


def case_simulate_no_train_runs(w: World, t: Path):
    return simulate.main, ["--out", str(t / "sim"), "--n-train", "0"]


def case_simulate_into_a_full_folder(w: World, t: Path):
    written(t / "sim" / "notes.txt", "mine\n")
    return simulate.main, ["--out", str(t / "sim"), "--size", "48,96,96"]


def case_simulate_overwrite_someones_folder(w: World, t: Path):
    """Someone's folder that happens to have train/ and test/ subfolders: --overwrite deletes nothing there."""
    written(t / "victim" / "thesis.tex", "years of work\n")
    written(t / "victim" / "train" / "chapter1.tex", "more work\n")
    return simulate.main, ["--out", str(t / "victim"), "--size", "16,32,32", "--overwrite"]


def case_simulate_size_beyond_memory(w: World, t: Path):
    written(t / "victim" / "thesis.tex", "years of work\n")
    return simulate.main, ["--out", str(t / "victim"), "--size", "3000,3000,3000", "--overwrite"]


def case_simulate_missing_templates(w: World, t: Path):
    return simulate.main, ["--out", str(t / "sim"), "--templates", str(t / "no_maps")]


def case_simulate_out_is_a_file(w: World, t: Path):
    return simulate.main, ["--out", str(written(t / "sim", "a file\n")), "--size", "48,96,96"]


def case_baseline_missing_data(w: World, t: Path):
    from benchmarks import classical_baseline
    return classical_baseline.main, ["--data", str(t / "nowhere")]


def case_baseline_submission_under_a_file(w: World, t: Path):
    from benchmarks import classical_baseline
    written(t / "blocker", "a file\n")
    return classical_baseline.main, ["--data", str(w.data), "--submission", str(t / "blocker" / "b.csv")]


def case_copick_config_not_a_dataset(w: World, t: Path):
    from dataio import copick_config
    return copick_config.main, [str(t / "nowhere")]


def case_copick_config_target_is_a_folder(w: World, t: Path):
    from dataio import copick_config
    data = damaged_copy(w, t)
    (data / "copick_config.json").unlink()
    (data / "copick_config.json").mkdir()
    return copick_config.main, [str(data)]


def case_portal_out_exists(w: World, t: Path):
    from dataio import portal
    return portal.main, ["--dataset", "10440", "--overlay", str(t / "o"), "--out", str(written(t / "p.json", "{}"))]


def _trial():
    import importlib.util
    spec = importlib.util.spec_from_file_location("sweep_trial", Path(__file__).resolve().parents[1] / "sweeps" /
                                                  "trial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def case_sweep_parameter_replaces_out(w: World, t: Path):
    written(t / "victim" / "thesis.tex", "years of work\n")
    return _trial(), ["--data", str(w.data), "--out", str(t / "runs"), "--out", str(t / "victim")]


def case_sweep_parameter_adds_overwrite(w: World, t: Path):
    return _trial(), ["--data", str(w.data), "--out", str(t / "runs"), "--optim.lr=0.002", "--overwrite"]


def case_metric_unreadable_submission(w: World, t: Path):
    (t / "sub.csv").mkdir()
    return metric.main, [str(t / "sub.csv"), "--gt", str(w.data / "test_truth")]


CASES: list[tuple[Callable, str]] = [
    (case_metric_submission_missing_columns, "missing columns"),
    (case_metric_missing_ground_truth, "ground truth not found"),
    (case_metric_unknown_experiment, "not in the ground truth"),
    (case_simulate_unknown_difficulty, "difficulty 'medium': expected one of easy, realistic, hard"),
    (case_simulate_reversed_snr_range, "difficulty '8:1': a range needs finite LOW <= HIGH"),
    (case_simulate_no_train_runs, "n_train must be >= 1, got 0"),
    (case_simulate_into_a_full_folder, "is not empty; pass --overwrite"),
    (case_simulate_overwrite_someones_folder, "has no .czii-picker-dataset.json saying simulate.py wrote"),
    (case_simulate_size_beyond_memory, "GiB of memory and"),
    (case_simulate_missing_templates, "no_maps"),
    (case_simulate_out_is_a_file, "is a file, not a folder"),
    (case_baseline_missing_data, "data path not found"),
    (case_baseline_submission_under_a_file, "--submission"),
    (case_copick_config_not_a_dataset, "not a dataset root"),
    (case_copick_config_target_is_a_folder, "a folder is in the way of a file"),
    (case_portal_out_exists, "exists; not replacing it"),
    (case_metric_unreadable_submission, "sub.csv"),
    (case_sweep_parameter_replaces_out, "--out given more than once: a sweep parameter may not replace"),
    (case_sweep_parameter_adds_overwrite, "sweep parameter --overwrite is not a recipe field"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    check_one_clear_error(world, tmp_path, make, message)
