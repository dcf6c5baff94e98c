"""folds.yaml: the repository's own file is consistent, and every kind of inconsistency is refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from dataio.folds import load_folds, split_runs
from dataio.layout import TRAIN_RUNS

REPO_FOLDS = Path(__file__).resolve().parents[1] / "folds.yaml"
RUNS = ["TS_A", "TS_B", "TS_C"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "folds.yaml"
    path.write_text(text)
    return path


def test_repository_folds_cover_the_seven_runs() -> None:
    folds = load_folds(REPO_FOLDS, TRAIN_RUNS)
    assert sorted(folds) == list(range(7))
    assert sorted(r for runs in folds.values() for r in runs) == sorted(TRAIN_RUNS)
    assert folds[0] == ["TS_5_4"]
    train, val = split_runs(folds, 0)
    assert val == ["TS_5_4"] and len(train) == 6 and "TS_5_4" not in train


def test_split_runs(tmp_path: Path) -> None:
    folds = load_folds(write(tmp_path, "folds:\n  0: [TS_A, TS_B]\n  '1': [TS_C]\n"), RUNS)
    assert folds == {0: ["TS_A", "TS_B"], 1: ["TS_C"]}
    assert split_runs(folds, 1) == (["TS_A", "TS_B"], ["TS_C"])
    assert split_runs(folds, "0") == (["TS_C"], ["TS_A", "TS_B"])
    for everything in (-1, "-1", "all", "ALL"):
        assert split_runs(folds, everything) == (["TS_A", "TS_B", "TS_C"], [])
    for unknown in (2, "7", "first"):
        with pytest.raises(ValueError, match=r"unknown fold .*valid folds: 0, 1, -1, all"):
            split_runs(folds, unknown)


def test_split_runs_leaving_several_folds_out(tmp_path: Path) -> None:
    folds = load_folds(write(tmp_path, "folds:\n  0: [TS_A]\n  1: [TS_B]\n  2: [TS_C]\n"), RUNS)
    assert split_runs(folds, "0+2") == (["TS_B"], ["TS_A", "TS_C"])
    assert split_runs(folds, " 2 + 0 ") == (["TS_B"], ["TS_A", "TS_C"])  # order of the parts does not matter
    for bad, message in (("0+0", "lists fold 0 twice"), ("0+1+2", "nothing left to train on"),
                         ("0+9", "unknown fold"), ("0+", "unknown fold")):
        with pytest.raises(ValueError, match=message):
            split_runs(folds, bad)


@pytest.mark.parametrize("text, message", [
    ("folds: [0: TS_A\n", "is not valid YAML"),
    ("splits:\n  0: [TS_A, TS_B, TS_C]\n", "'folds' key"),
    ("folds:\n  0: [TS_A, TS_B, TS_Z]\n  1: [TS_C]\n", r"unknown runs \['TS_Z'\]"),
    ("folds:\n  0: [TS_A, TS_B]\n  1: [TS_B, TS_C]\n", r"run 'TS_B' is in two folds \(0 and 1\)"),
    ("folds:\n  0: [TS_A]\n  1: [TS_C]\n", r"runs in no fold: \['TS_B'\]"),
    ("folds:\n  0: [TS_A, TS_B, TS_C]\n  1: []\n", "fold 1 is empty"),
    ("folds:\n  zero: [TS_A, TS_B, TS_C]\n", "fold key 'zero' is not an integer"),
    ("folds:\n  0: TS_A\n", "must be a list of runs"),
])
def test_bad_folds(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as err:
        load_folds(path, RUNS)
    assert str(path) in str(err.value)


def test_missing_folds_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="folds file not found"):
        load_folds(tmp_path / "nope.yaml", RUNS)
