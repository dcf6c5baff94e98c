"""Submission CSV and copick JSON writers: exact columns and ids, round trips, atomic failure."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtime.atomic import write_text_atomic
from dataio.layout import pick_file, picks_dir
from dataio.pick_readers import PickSelection, empty_picks_table, read_run_picks
from dataio.pick_writers import DEFAULT_PICKS_USER, pick_json, write_copick_picks, write_submission
from dataio.sources import read_pick_json
from particles import CZII_PARTICLES, PARTICLE_NAMES
from postprocess.metric import read_submission

OURS = (DEFAULT_PICKS_USER, "0")

PICKS = pd.DataFrame({
    "experiment": ["TS_B", "TS_A", "TS_A", "TS_A"],
    "particle_type": ["ribosome", "thyroglobulin", "apo-ferritin", "apo-ferritin"],
    "x": [1.0, 2.0, 3.25, 4.5], "y": [10.0, 20.0, 30.0, 40.0], "z": [100.0, 200.0, 300.0, 50.0],
    "score": [0.9, 0.8, 0.7, 0.6],
})


def test_submission_columns_and_ids(tmp_path: Path) -> None:
    path = write_submission(PICKS, tmp_path / "sub.csv", particles=CZII_PARTICLES)
    table = pd.read_csv(path)
    assert list(table.columns) == ["id", "experiment", "particle_type", "x", "y", "z"]
    assert table["id"].tolist() == [0, 1, 2, 3]
    assert table["experiment"].tolist() == ["TS_A", "TS_A", "TS_A", "TS_B"]
    assert table.iloc[0][["particle_type", "x", "y", "z"]].tolist() == ["apo-ferritin", 4.5, 40.0, 50.0]
    back = read_submission(path, particles=CZII_PARTICLES)
    assert sorted(back["x"].tolist()) == [1.0, 2.0, 3.25, 4.5]
    empty = write_submission(empty_picks_table(), tmp_path / "empty.csv", particles=CZII_PARTICLES)
    assert empty.read_text().strip() == "id,experiment,particle_type,x,y,z"


def test_copick_round_trip(tmp_path: Path) -> None:
    written = write_copick_picks(PICKS, tmp_path / "overlay", particles=CZII_PARTICLES)
    assert len(written) == 2 * len(PARTICLE_NAMES)  # every class, empty ones too
    ribosome = read_pick_json(pick_file(tmp_path / "overlay", "TS_A", "ribosome", *OURS), particles=CZII_PARTICLES)
    assert len(ribosome) == 0
    apo = read_pick_json(pick_file(tmp_path / "overlay", "TS_A", "apo-ferritin", *OURS), particles=CZII_PARTICLES)
    assert apo["experiment"].tolist() == ["TS_A", "TS_A"]
    np.testing.assert_array_equal(apo[["x", "y", "z"]].to_numpy(), [[3.25, 30.0, 300.0], [4.5, 40.0, 50.0]])
    run_b = read_run_picks(tmp_path / "overlay", "TS_B", PickSelection(*OURS), particles=CZII_PARTICLES)
    assert run_b[["particle_type", "x", "y", "z"]].values.tolist() == [["ribosome", 1.0, 10.0, 100.0]]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_failed_submission_leaves_target_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_submission(PICKS, tmp_path / "sub.csv", particles=CZII_PARTICLES)
    before = target.read_bytes()
    with pytest.raises(ValueError, match="proteasome"):
        write_submission(PICKS.assign(particle_type="proteasome"), target, particles=CZII_PARTICLES)

    def half_then_fail(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_text("id,experiment\n0,TS_")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_submission(PICKS.iloc[:1], target, particles=CZII_PARTICLES)
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_failed_pick_json_leaves_target_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_copick_picks(PICKS, tmp_path / "overlay", particles=CZII_PARTICLES)
    target = pick_file(tmp_path / "overlay", "TS_A", "apo-ferritin", *OURS)
    before = target.read_bytes()

    def fail(self: Path, text: str) -> None:
        with open(self, "w") as handle:
            handle.write(text[:10])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        write_copick_picks(PICKS.assign(x=PICKS["x"] + 1.0), tmp_path / "overlay", particles=CZII_PARTICLES)
    assert target.read_bytes() == before
    assert leftovers(picks_dir(tmp_path / "overlay", "TS_A")) == []


def test_files_named_as_copick_names_them(tmp_path: Path) -> None:
    written = write_copick_picks(PICKS, tmp_path / "overlay", user_id="my-model", session_id="exp1",
                                 particles=CZII_PARTICLES)
    assert {p.name for p in written if p.parent.parent.name == "TS_A"} == {
        f"my-model_exp1_{name}.json" for name in PARTICLE_NAMES}
    with pytest.raises(ValueError, match="must not contain '_'"):
        write_copick_picks(PICKS, tmp_path / "overlay", user_id="my_model", particles=CZII_PARTICLES)


def test_never_replaces_a_file_it_did_not_write(tmp_path: Path) -> None:
    """Someone else's file at our target name (copick rewrote it, or a curator used our ids) is refused, and
    nothing at all is written: the check runs over every target before the first write."""
    foreign = pick_file(tmp_path / "overlay", "TS_B", "ribosome", *OURS)
    doc = pick_json("TS_B", "ribosome", np.ones((1, 3)), *OURS)
    del doc["written_by"]
    write_text_atomic(foreign, json.dumps(doc))
    before = foreign.read_bytes()
    with pytest.raises(FileExistsError, match="not written by"):
        write_copick_picks(PICKS, tmp_path / "overlay", particles=CZII_PARTICLES)
    assert foreign.read_bytes() == before
    assert not picks_dir(tmp_path / "overlay", "TS_A").exists()
    again = write_copick_picks(PICKS.iloc[1:3], tmp_path / "other", runs=["TS_A"],
                               particles=CZII_PARTICLES)  # our own files: replaced
    assert write_copick_picks(PICKS.iloc[1:2], tmp_path / "other", runs=["TS_A"], particles=CZII_PARTICLES) == again


def test_atomic_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_picks_table_reads_back_exactly(tmp_path) -> None:
    """OOF candidates keep every digit: a threshold equal to a candidate's score selects it after the round
    trip (a score written with 4 decimals, or read with pandas' fast parser, could fall just below it)."""
    import numpy as np

    from dataio.pick_writers import read_picks_table, write_picks_table

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"experiment": ["TS_A"] * 50, "particle_type": ["ribosome"] * 50,
                          "x": rng.uniform(0, 6000, 50), "y": rng.uniform(0, 6000, 50), "z": rng.uniform(0, 1800, 50),
                          "score": np.append(rng.uniform(0, 1, 49), 0.5105790495872498)})
    back = read_picks_table(write_picks_table(table, tmp_path / "oof_candidates.csv"))
    pd.testing.assert_frame_equal(back, table, check_exact=True)
