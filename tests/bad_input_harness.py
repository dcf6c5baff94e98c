"""The harness of the bad-input tests (tests/test_bad_inputs_*.py): a private tiny dataset with one finished run,
helpers that build a case's command line, and the one check every case passes. Each case is
``case_<what>(world, tmp_path) -> (main, argv)`` beside the fragment of the message the user must see;
ERRORS.md's table lists every message (tests/test_errors_table.py)."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ensemble
import train
from dataio.layout import tomogram_path, train_overlay_root
from tests.training_fixtures import cli_args, tiny_overrides

REPO = Path(__file__).resolve().parents[1]
RUN = "TS_5_4"  # fold 0's held-out run of the tiny dataset


@dataclass
class World:
    """A private copy of the tiny dataset, the argv that trains its fold 0, and one finished run of it."""

    data: Path
    runs: Path
    argv: list[str]
    run_dir: Path


def damaged_copy(world: World, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(world.data, data)
    return data


def with_data(world: World, data: Path) -> list[str]:
    """The training argv aimed at another copy of the dataset (``--data`` and the folds file inside it)."""
    return [a.replace(str(world.data), str(data)) for a in world.argv]


def first_chunk(data: Path, run: str = "TS_6_4") -> Path:
    store = tomogram_path(data, "train", run) / "0"
    return next(p for p in sorted(store.rglob("*")) if p.is_file() and not p.name.startswith("."))


def pick_file_of(data: Path, run: str = "TS_6_4", particle: str = "apo-ferritin") -> Path:
    return next((train_overlay_root(data) / "ExperimentRuns" / run / "Picks").glob(f"*_{particle}.json"))


def train_cli(world: World, tmp_path: Path, *extra: str, data: Path | None = None) -> tuple[Callable, list[str]]:
    base = with_data(world, data) if data is not None else world.argv
    out = ["--out", str(tmp_path / "runs")]
    return train.main, [*base, *out, *extra]


def ensemble_cli(world: World, tmp_path: Path, *extra: str) -> tuple[Callable, list[str]]:
    return ensemble.main, ["--data", str(world.data), "--out", str(tmp_path / "sub.csv"), *extra]


def last_checkpoint(world: World) -> Path:
    return world.run_dir / "checkpoints" / "last.ckpt"


def written(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def yaml_folds(folds: dict[int, list[str]]) -> str:
    """A folds.yaml text (JSON is YAML)."""
    return json.dumps({"folds": folds})


def resumable_copy(w: World, t: Path) -> Path:
    shutil.copytree(w.runs, t / "runs")
    return t / "runs" / w.run_dir.name / "checkpoints" / "last.ckpt"


def run_cli(fn: Callable, argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = fn(argv)
        except SystemExit as stop:  # argparse, or sys.exit("message")
            code = stop.code if isinstance(stop.code, int) else 2
            if isinstance(stop.code, str):
                err.write(stop.code)
    return int(code or 0), out.getvalue() + err.getvalue()


def check_one_clear_error(world: World, tmp_path: Path, make: Callable, message: str) -> None:
    """The case's command exits with code 2 and one line holding ``message``: no traceback, no code run by a
    file it opened, nothing half-written or written outside ``--out``, nothing that blocks the corrected run."""
    fn, argv = make(world, tmp_path)
    victim = tmp_path / "victim" / "thesis.tex"  # planted by a case whose tool must not touch it
    planted = victim.read_text() if victim.is_file() else None
    code, text = run_cli(fn, argv)
    assert code == 2, text[-2000:]
    assert message in text, text[-2000:]
    assert "Traceback" not in text
    assert not (tmp_path / "PWNED").exists(), "a checkpoint ran code when it was opened"
    if make.__name__.startswith("case_ensemble"):  # refused before any prediction: no submission half made
        assert not (tmp_path / "sub.csv").is_file() and "predicting" not in text
    if planted is not None:  # a file the tool was not to touch is still there, unchanged
        assert victim.is_file() and victim.read_text() == planted
    if "overwrite_a_folder" in make.__name__:
        assert (tmp_path / "runs" / world.run_dir.name / "notes.txt").is_file()
    if fn is train.main and "--resume" not in argv and "--overwrite" not in argv:  # a failed start leaves nothing
        assert not list((tmp_path / "runs").glob("*/config.yaml"))


def build_world(tiny_dataset: Path, base: Path) -> World:
    """A private copy of the tiny dataset and one finished 2-step run of its fold 0 (the ``world`` fixture)."""
    data = base / "data"
    shutil.copytree(tiny_dataset, data)
    runs = base / "runs"
    argv = ["--out", str(runs), *cli_args(tiny_overrides(data, steps=2))]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert train.main(argv) == 0
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    return World(data, runs, argv, run_dir)
