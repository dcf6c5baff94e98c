"""Copick zarr, pick JSON, MRC and CSV readers: right answers on good files, named errors on bad ones."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import zarr

from dataio.copick_source import CopickSource
from dataio.layout import pick_file, picks_dir, tomogram_path
from dataio.file_source import FileSource
from dataio.sources import TomogramSource, open_source, read_pick_json, read_picks_csv
from particles import CZII_PARTICLES, VOXEL_SPACING
from dataio.pick_readers import PickSelection
from dataio.pick_writers import pick_json

SHAPE = (8, 16, 20)  # z, y, x


def write_zarr_tomogram(path: Path, volume: np.ndarray, levels: int = 3) -> None:
    """A zarr v2 group with arrays 0..levels-1 (each 2x coarser) and OME-NGFF multiscales attrs."""
    group = zarr.open_group(str(path), mode="w")
    for level in range(levels):
        step = (slice(None, None, 2 ** level),) * volume.ndim
        group.create_dataset(str(level), data=volume[step], chunks=(4,) * volume.ndim)
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": a, "type": "space", "unit": "angstrom"}
                                                              for a in "zyx"],
                                   "datasets": [{"path": str(lv), "coordinateTransformations": [
                                       {"type": "scale", "scale": [VOXEL_SPACING * 2 ** lv] * 3}]}
                                                for lv in range(levels)]}]


def write_json(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def volume(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=SHAPE).astype(np.float32)


@pytest.fixture()
def copick_root(tmp_path: Path) -> Path:
    """Two train runs (one with picks, one with an empty Picks folder) and one test run."""
    root = tmp_path / "data"
    for run, seed in (("TS_A", 0), ("TS_B", 1)):
        write_zarr_tomogram(tomogram_path(root, "train", run, "denoised"), volume(seed))
    write_zarr_tomogram(tomogram_path(root, "train", "TS_A", "wbp"), volume(2))
    write_zarr_tomogram(tomogram_path(root, "test", "TS_T", "denoised"), volume(3))
    overlay = root / "train" / "overlay"
    write_json(pick_file(overlay, "TS_A", "ribosome"),
               pick_json("TS_A", "ribosome", np.array([[10.0, 20.0, 30.0], [150.0, 100.0, 70.0]])))
    write_json(pick_file(overlay, "TS_A", "apo-ferritin"), pick_json("TS_A", "apo-ferritin", np.zeros((0, 3))))
    picks_dir(overlay, "TS_B").mkdir(parents=True)
    return root


def test_copick_tomograms(copick_root: Path) -> None:
    src = CopickSource(copick_root, particles=CZII_PARTICLES)
    assert isinstance(src, TomogramSource)
    assert src.run_names() == ["TS_A", "TS_B"] and src.has_picks and src.voxel_spacing == VOXEL_SPACING
    lazy = src.tomogram("TS_B")
    assert isinstance(lazy, zarr.Array) and lazy.shape == SHAPE
    patch = lazy[1:3, 2:6, 4:9]
    assert isinstance(patch, np.ndarray)
    np.testing.assert_array_equal(patch, volume(1)[1:3, 2:6, 4:9])
    full = src.load_tomogram("TS_B")
    assert full.dtype == np.float32
    np.testing.assert_array_equal(full, volume(1))
    coarse = CopickSource(copick_root, level=1, tomo_type="wbp", particles=CZII_PARTICLES)
    assert coarse.voxel_spacing == 2 * VOXEL_SPACING and coarse.tomogram("TS_A").shape == (4, 8, 10)
    np.testing.assert_array_equal(coarse.load_tomogram("TS_A"), volume(2)[::2, ::2, ::2])


def test_copick_picks(copick_root: Path) -> None:
    src = CopickSource(copick_root, particles=CZII_PARTICLES)
    picks = src.picks("TS_A")
    assert list(picks.columns) == ["experiment", "particle_type", "x", "y", "z"]
    assert (picks["experiment"] == "TS_A").all() and (picks["particle_type"] == "ribosome").all()
    np.testing.assert_allclose(picks[["x", "y", "z"]].to_numpy(), [[10.0, 20.0, 30.0], [150.0, 100.0, 70.0]])
    assert len(src.picks("TS_B")) == 0  # run folder with no pick files: zero picks


def test_copick_missing_things(copick_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        CopickSource(tmp_path / "nowhere", particles=CZII_PARTICLES)
    src = CopickSource(copick_root, particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="unknown run 'TS_Z'"):
        src.tomogram("TS_Z")
    with pytest.raises(FileNotFoundError, match=r"no 'isonetcorrected' tomogram.*\['denoised', 'wbp'\]"):
        CopickSource(copick_root, tomo_type="isonetcorrected", particles=CZII_PARTICLES).tomogram("TS_A")
    with pytest.raises(ValueError, match="no multiscale level 3"):
        CopickSource(copick_root, level=3, particles=CZII_PARTICLES).tomogram("TS_A")
    write_zarr_tomogram(tomogram_path(copick_root, "train", "TS_C", "denoised"), volume())
    with pytest.raises(FileNotFoundError, match="TS_C"):  # a train run with no overlay folder
        CopickSource(copick_root, particles=CZII_PARTICLES).picks("TS_C")


def test_copick_test_split(copick_root: Path) -> None:
    test = CopickSource(copick_root, split="test", particles=CZII_PARTICLES)
    assert test.run_names() == ["TS_T"] and not test.has_picks
    with pytest.raises(ValueError, match="has no picks"):
        test.picks("TS_T")
    write_json(pick_file(copick_root / "test_truth" / "overlay", "TS_T", "thyroglobulin"),
               pick_json("TS_T", "thyroglobulin", np.array([[50.0, 60.0, 70.0]])))
    truth = CopickSource(copick_root, split="test", particles=CZII_PARTICLES)
    assert truth.has_picks and len(truth.picks("TS_T")) == 1


def test_picks_outside_volume(copick_root: Path) -> None:
    overlay = copick_root / "train" / "overlay"
    x_max = (SHAPE[2] - 1) * VOXEL_SPACING
    write_json(pick_file(overlay, "TS_B", "ribosome"),
               pick_json("TS_B", "ribosome", np.array([[x_max + 5.0, -5.0, 0.0]])))  # within half a voxel
    assert len(CopickSource(copick_root, particles=CZII_PARTICLES).picks("TS_B")) == 1
    write_json(pick_file(overlay, "TS_B", "ribosome"),
               pick_json("TS_B", "ribosome", np.array([[x_max + 5.1, 0.0, 0.0]])))
    with pytest.raises(ValueError, match="1 picks lie outside the volume"):
        CopickSource(copick_root, particles=CZII_PARTICLES).picks("TS_B")


GOOD = pick_json("TS_A", "ribosome", np.array([[1.0, 2.0, 3.0]]))


@pytest.mark.parametrize("doc, message", [
    ({k: v for k, v in GOOD.items() if k != "points"}, r"missing keys \['points'\]"),
    ({k: v for k, v in GOOD.items() if k != "unit"}, r"missing keys \['unit'\]"),
    ({**GOOD, "unit": "nanometer"}, "unit is 'nanometer'"),
    ({**GOOD, "pickable_object_name": "proteasome"}, "unknown particle 'proteasome'"),
    ({**GOOD, "pickable_object_name": "thyroglobulin"}, "file name does not match"),
    ({**GOOD, "run_name": "TS_B"}, "does not match its run folder"),
    ({**GOOD, "points": [{"location": {"x": 1.0, "y": 2.0}}]}, "point 0 lacks location"),
    ({**GOOD, "points": [{"location": {"x": "a", "y": 2.0, "z": 3.0}}]}, "point 0 has a non-numeric"),
    ({**GOOD, "points": {"x": 1}}, "'points' must be a list"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_pick_json(tmp_path: Path, doc: object, message: str) -> None:
    path = write_json(pick_file(tmp_path, "TS_A", "ribosome"), doc)
    with pytest.raises(ValueError, match=message) as err:
        read_pick_json(path, particles=CZII_PARTICLES)
    assert str(path) in str(err.value)


def test_truncated_pick_json(tmp_path: Path) -> None:
    path = pick_file(tmp_path, "TS_A", "ribosome")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(GOOD)[:40])
    with pytest.raises(ValueError, match="malformed or truncated JSON") as err:
        read_pick_json(path, particles=CZII_PARTICLES)
    assert str(path) in str(err.value)


def test_pick_json_copick_file_names(tmp_path: Path) -> None:
    # copick itself names files <user>_<session>_<object>.json
    path = write_json(picks_dir(tmp_path, "TS_A") / "curation_0_ribosome.json", GOOD)
    table = read_pick_json(path, particles=CZII_PARTICLES)
    assert table.iloc[0].tolist() == ["TS_A", "ribosome", 1.0, 2.0, 3.0]


def test_bad_volumes(copick_root: Path) -> None:
    nan = volume()
    nan[1, 2, 3] = np.nan
    write_zarr_tomogram(tomogram_path(copick_root, "train", "TS_A", "denoised"), nan)
    with pytest.raises(ValueError, match="1 non-finite voxels"):
        CopickSource(copick_root, particles=CZII_PARTICLES).load_tomogram("TS_A")
    write_zarr_tomogram(tomogram_path(copick_root, "train", "TS_A", "denoised"), volume()[0], levels=1)
    with pytest.raises(ValueError, match=r"expected a 3D \[z, y, x\] array"):
        CopickSource(copick_root, particles=CZII_PARTICLES).tomogram("TS_A")
    write_zarr_tomogram(tomogram_path(copick_root, "train", "TS_A", "denoised"), volume() > 0, levels=1)
    with pytest.raises(ValueError, match="real numeric dtype"):
        CopickSource(copick_root, particles=CZII_PARTICLES).tomogram("TS_A")


def write_mrc(path: Path, data: np.ndarray, voxel_size: float = VOXEL_SPACING) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), mrcfile.new(path, overwrite=True) as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # header statistics of deliberately broken data
        mrc.set_data(data)
        mrc.voxel_size = voxel_size
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_mrc_source(tmp_path: Path) -> None:
    write_mrc(tmp_path / "tomos" / "run_a.mrc", volume(0))
    write_mrc(tmp_path / "tomos" / "run_b.mrc", volume(1))
    csv = write_csv(tmp_path / "picks.csv", [
        {"id": 0, "experiment": "run_a", "particle_type": "ribosome", "x": 10.0, "y": 20.0, "z": 30.0},
        {"id": 1, "experiment": "run_b", "particle_type": "apo-ferritin", "x": 1.0, "y": 2.0, "z": 3.0}])
    src = open_source(tmp_path / "tomos", picks_csv=csv, particles=CZII_PARTICLES)
    assert isinstance(src, FileSource) and isinstance(src, TomogramSource)
    assert src.run_names() == ["run_a", "run_b"] and src.has_picks
    assert src.voxel_spacing == pytest.approx(VOXEL_SPACING, abs=1e-3)
    lazy = src.tomogram("run_b")
    assert isinstance(lazy, np.memmap) and lazy.shape == SHAPE
    np.testing.assert_array_equal(lazy[2:4, 1:5, 0:3], volume(1)[2:4, 1:5, 0:3])
    np.testing.assert_array_equal(src.load_tomogram("run_a"), volume(0))
    picks = src.picks("run_a")
    assert picks[["experiment", "particle_type", "x", "y", "z"]].iloc[0].tolist() == \
        ["run_a", "ribosome", 10.0, 20.0, 30.0]
    single = open_source(tmp_path / "tomos" / "run_a.mrc", particles=CZII_PARTICLES)
    assert single.run_names() == ["run_a"] and not single.has_picks
    with pytest.raises(ValueError, match="no picks CSV"):
        single.picks("run_a")


def test_mrc_errors(tmp_path: Path) -> None:
    good = write_mrc(tmp_path / "run_a.mrc", volume())
    flat = write_mrc(tmp_path / "flat.mrc", volume()[0])
    with pytest.raises(ValueError, match=r"flat.mrc: expected a 3D"):
        FileSource([flat], particles=CZII_PARTICLES).tomogram("flat")
    nan = volume()
    nan[0, 0, 0] = np.inf
    bad = write_mrc(tmp_path / "inf" / "run_a.mrc", nan)
    with pytest.raises(ValueError, match="1 non-finite voxels"):
        FileSource([bad], particles=CZII_PARTICLES).load_tomogram("run_a")
    junk = tmp_path / "junk.mrc"
    junk.write_bytes(b"not an mrc file" * 100)
    with pytest.raises(ValueError, match="junk.mrc: not a valid MRC file"):
        FileSource([junk], particles=CZII_PARTICLES)
    row = {"experiment": "run_a", "particle_type": "ribosome", "x": 1.0, "y": 2.0, "z": 3.0}
    with pytest.raises(ValueError, match=r"picks for runs with no tomogram: \['run_z'\]"):
        FileSource([good], write_csv(tmp_path / "p1.csv", [{**row, "experiment": "run_z"}]), particles=CZII_PARTICLES)
    outside = FileSource([good], write_csv(tmp_path / "p2.csv", [{**row, "z": SHAPE[0] * VOXEL_SPACING}]),
                         particles=CZII_PARTICLES)
    with pytest.raises(ValueError, match="p2.csv.*outside the volume"):
        outside.picks("run_a")


@pytest.mark.parametrize("rows, message", [
    ([{"experiment": "r", "particle_type": "ribosome", "x": 1.0, "y": 2.0}], r"missing columns \['z'\]"),
    ([{"experiment": "r", "particle_type": "ribosome", "x": "abc", "y": 2.0, "z": 3.0}], "'x' is not numeric"),
    ([{"experiment": "r", "particle_type": "ribosome", "x": None, "y": 2.0, "z": 3.0}], "'x' has a missing"),
    ([{"experiment": "r", "particle_type": "proteasome", "x": 1.0, "y": 2.0, "z": 3.0}],
     r"unknown particle types \['proteasome'\]"),
])
def test_bad_picks_csv(tmp_path: Path, rows: list[dict], message: str) -> None:
    path = write_csv(tmp_path / "picks.csv", rows)
    with pytest.raises(ValueError, match=message) as err:
        read_picks_csv(path, particles=CZII_PARTICLES)
    assert str(path) in str(err.value)


def test_open_source_dispatch(copick_root: Path, tmp_path: Path) -> None:
    assert isinstance(open_source(copick_root, particles=CZII_PARTICLES), CopickSource)
    assert open_source(copick_root, split="test", particles=CZII_PARTICLES).run_names() == ["TS_T"]
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing", particles=CZII_PARTICLES)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a copick dataset"):
        open_source(tmp_path / "empty", particles=CZII_PARTICLES)


def test_zarr_files_as_a_file_list(tmp_path: Path) -> None:
    """Loose zarr tomograms (e.g. copick's <run>/VoxelSpacing10.000/denoised.zarr) open like MRC files."""
    from dataio.zarr_writer import write_multiscale_zarr

    volume = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    copick_style = tmp_path / "TS_1" / "VoxelSpacing10.000" / "denoised.zarr"
    loose = tmp_path / "loose" / "my_tomo.zarr"
    write_multiscale_zarr(copick_style, volume)
    write_multiscale_zarr(loose, volume * 2)
    src = open_source([copick_style, loose], particles=CZII_PARTICLES)
    assert isinstance(src, FileSource) and src.run_names() == ["TS_1", "my_tomo"]
    assert src.voxel_spacing == pytest.approx(VOXEL_SPACING)
    assert np.array_equal(src.load_tomogram("my_tomo"), volume * 2)
    assert tuple(src.tomogram("TS_1").shape) == SHAPE  # lazy zarr array, level 0
    assert open_source(loose, particles=CZII_PARTICLES).run_names() == ["my_tomo"]
    with pytest.raises(ValueError, match="share the run name"):
        open_source([loose, loose], particles=CZII_PARTICLES)
    not_zarr = tmp_path / "empty.zarr"
    not_zarr.mkdir()
    with pytest.raises(ValueError, match="not a zarr"):
        open_source([not_zarr], particles=CZII_PARTICLES)


def test_kaggle_flat_pick_files_are_the_curated_truth(copick_root: Path) -> None:
    """The Kaggle download flattens copick names to ``<particle>.json``; their owner comes from the JSON."""
    flat = picks_dir(copick_root / "train" / "overlay", "TS_B") / "thyroglobulin.json"
    write_json(flat, pick_json("TS_B", "thyroglobulin", np.array([[5.0, 6.0, 7.0]])))
    picks = CopickSource(copick_root, particles=CZII_PARTICLES).picks("TS_B")
    assert picks["particle_type"].tolist() == ["thyroglobulin"]


def test_other_users_picks_are_never_merged_into_the_truth(copick_root: Path) -> None:
    overlay = copick_root / "train" / "overlay"
    model = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    write_json(pick_file(overlay, "TS_A", "ribosome", "annotator", "1"),
               pick_json("TS_A", "ribosome", model, "annotator", "1"))
    assert len(CopickSource(copick_root, particles=CZII_PARTICLES).picks("TS_A")) == 2  # the curated two, not five
    chosen = CopickSource(copick_root, selection=PickSelection("annotator"), particles=CZII_PARTICLES).picks("TS_A")
    np.testing.assert_array_equal(chosen[["x", "y", "z"]].to_numpy(), model)
    write_json(pick_file(overlay, "TS_A", "ribosome", "annotator", "2"),
               pick_json("TS_A", "ribosome", model, "annotator", "2"))
    with pytest.raises(ValueError, match=r"several sessions \['1', '2'\]"):
        CopickSource(copick_root, selection=PickSelection("annotator"), particles=CZII_PARTICLES).picks("TS_A")
    assert len(CopickSource(copick_root, selection=PickSelection("annotator", "2"),
                            particles=CZII_PARTICLES).picks("TS_A")) == 3
    with pytest.raises(ValueError, match="no picks by user 'nobody'.*user 'annotator' session '1'"):
        CopickSource(copick_root, selection=PickSelection("nobody"), particles=CZII_PARTICLES).picks("TS_A")


def test_missing_chunks_and_constant_volumes_are_refused(copick_root: Path) -> None:
    path = tomogram_path(copick_root, "train", "TS_B", "denoised")
    next(p for p in (path / "0").iterdir() if not p.name.startswith(".")).unlink()
    with pytest.raises(ValueError, match=r"1 of \d+ chunks are missing"):
        CopickSource(copick_root, particles=CZII_PARTICLES).tomogram("TS_B")
    write_zarr_tomogram(path, np.zeros(SHAPE, dtype=np.float32))
    with pytest.raises(ValueError, match="every voxel is 0.0"):
        CopickSource(copick_root, particles=CZII_PARTICLES).load_tomogram("TS_B")


def test_a_truncated_chunk_is_an_error_naming_the_tomogram(copick_root: Path) -> None:
    path = tomogram_path(copick_root, "train", "TS_B", "denoised")
    chunk = sorted(p for p in (path / "0").rglob("*") if p.is_file() and not p.name.startswith("."))[0]
    chunk.write_bytes(chunk.read_bytes()[:7])
    with pytest.raises(ValueError, match="TS_B.*cannot read the tomogram.*truncated or corrupt"):
        CopickSource(copick_root, particles=CZII_PARTICLES).load_tomogram("TS_B")
