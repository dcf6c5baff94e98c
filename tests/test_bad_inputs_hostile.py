"""Files crafted by a stranger (a tomogram whose codec runs code, a copied or climbing run folder, bombs, absurd
spacings): each tool refuses them with one clear error and runs nothing (harness: tests/bad_input_harness.py)."""
from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dataio.layout import tomogram_path
from tests.bad_input_harness import RUN, World, check_one_clear_error, damaged_copy, ensemble_cli, train_cli, written

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Payload:
    """Unpickled, it runs a shell command that creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def pickle_codec_tomogram(zarr_dir: Path, marker: Path, role: str = "compressor") -> None:
    """Level 0 of a tomogram rewritten so that zarr would ``pickle.loads`` its chunks: the codec ``pickle`` as
    its compressor (every chunk the payload), or as a filter of an object dtype whose fill value is the payload
    (decoded while the metadata is parsed, before any chunk)."""
    meta_path = zarr_dir / "0" / ".zarray"
    meta = json.loads(meta_path.read_text())
    payload = pickle.dumps(Payload(marker))
    if role == "compressor":
        meta["compressor"] = {"id": "pickle"}
        for chunk in (p for p in (zarr_dir / "0").rglob("*") if p.is_file() and not p.name.startswith(".")):
            chunk.write_bytes(payload)
    else:
        meta.update(dtype=[["a", "|O"]], filters=[{"id": "pickle"}],
                    fill_value=base64.standard_b64encode(payload).decode())
    meta_path.write_text(json.dumps(meta))


def case_train_pickle_codec_tomogram(w: World, t: Path):
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "train", "TS_6_4"), t / "PWNED")
    return train_cli(w, t, data=data)


def case_train_pickle_fill_value_tomogram(w: World, t: Path):
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "train", "TS_6_4"), t / "PWNED", role="filter")
    return train_cli(w, t, data=data)


def case_ensemble_pickle_codec_tomogram(w: World, t: Path):
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "test", "TS_sim_test_0"), t / "PWNED")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(data))


def case_ensemble_pickle_codec_zarr_file(w: World, t: Path):
    """The same tomogram given as a zarr file (``--data x.zarr``), read by the file source."""
    data = damaged_copy(w, t)
    zarr_dir = tomogram_path(data, "test", "TS_sim_test_0")
    pickle_codec_tomogram(zarr_dir, t / "PWNED", role="filter")
    return ensemble_cli(w, t, "--runs", str(w.runs), "--data", str(zarr_dir))


def case_baseline_pickle_codec_tomogram(w: World, t: Path):
    from benchmarks import classical_baseline
    data = damaged_copy(w, t)
    pickle_codec_tomogram(tomogram_path(data, "test", "TS_sim_test_0"), t / "PWNED")
    return classical_baseline.main, ["--data", str(data), "--submission", str(t / "b.csv")]


def case_train_copick_pickle_codec_tomogram(w: World, t: Path):
    """Through the copick library's own store (a copick config as --data)."""
    from dataio.copick_config import write_copick_configs
    data = damaged_copy(w, t)
    write_copick_configs(data)
    pickle_codec_tomogram(tomogram_path(data, "train", "TS_6_4"), t / "PWNED")
    return train_cli(w, t, "--data", str(data / "copick_config.json"))


CASES: list[tuple[Callable, str]] = [
    (case_train_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_train_pickle_fill_value_tomogram, "its filter is codec 'pickle', which is not a data codec"),
    (case_ensemble_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_ensemble_pickle_codec_zarr_file, "its filter is codec 'pickle', which is not a data codec"),
    (case_baseline_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
    (case_train_copick_pickle_codec_tomogram, "its compressor is codec 'pickle', which is not a data codec"),
]


@pytest.mark.parametrize("make, message", CASES, ids=[c.__name__[len("case_"):] for c, _ in CASES])
def test_bad_input_is_one_clear_error(world, tmp_path, make, message) -> None:
    check_one_clear_error(world, tmp_path, make, message)
