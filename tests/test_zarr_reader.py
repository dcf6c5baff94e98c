"""The one zarr reader: only data codecs and numeric dtypes are ever decoded, chunks must be plausible regular
files, and malformed OME-NGFF metadata or spacings are errors naming the file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr

from dataio.zarr_reader import SAFE_CODECS, ZarrTomogram, check_array_metadata
from dataio.zarr_writer import write_multiscale_zarr


def _meta(**changes: object) -> dict:
    meta = {"zarr_format": 2, "shape": [4, 4, 4], "chunks": [2, 2, 2], "dtype": "<f4", "compressor": None,
            "fill_value": 0.0, "order": "C", "filters": None}
    return {**meta, **changes}


@pytest.mark.parametrize("codec", ["pickle", "json2", "msgpack2", "vlen-utf8", "categorize", "delta", "no-such"])
@pytest.mark.parametrize("role", ["compressor", "filters"])
def test_only_data_codecs_are_accepted(codec, role) -> None:
    meta = _meta(compressor={"id": codec}) if role == "compressor" else _meta(filters=[{"id": codec}])
    with pytest.raises(ValueError, match=f"codec '{codec}', which is not a data codec"):
        check_array_metadata(meta, "t.zarr")


@pytest.mark.parametrize("dtype", ["|O", "|b1", "<c8", "<U4", "|S4", [["a", "<f4"]], 7])
def test_only_real_numeric_dtypes_are_accepted(dtype) -> None:
    with pytest.raises(ValueError, match="expected a real numeric dtype"):
        check_array_metadata(_meta(dtype=dtype), "t.zarr")


@pytest.mark.parametrize("changes, message", [
    ({"zarr_format": 3}, "only zarr v2"), ({"shape": [4, 4]}, "lists of as many integers"),
    ({"chunks": [0, 2, 2]}, "lists of as many integers"), ({"filters": "pickle"}, "filters must be a list"),
    ({"order": "Z"}, "order 'Z'")])
def test_malformed_array_metadata(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_array_metadata(_meta(**changes), "t.zarr")


@pytest.mark.parametrize("codec", SAFE_CODECS)
@pytest.mark.parametrize("separator", [".", "/"])
def test_every_data_codec_reads_back(tmp_path, codec, separator) -> None:
    volume = np.random.default_rng(0).normal(size=(6, 8, 10)).astype(np.float32)
    compressor = numcodecs.get_codec({"id": codec})
    group = zarr.open_group(str(tmp_path / "t.zarr"), mode="w", zarr_version=2)
    group.create_dataset("0", data=volume, chunks=(3, 4, 5), compressor=compressor, dimension_separator=separator)
    np.testing.assert_array_equal(ZarrTomogram(tmp_path / "t.zarr", "t.zarr").array(0)[...], volume)


def test_a_bare_array_and_the_writer_s_multiscale_group(tmp_path) -> None:
    volume = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    zarr.save_array(str(tmp_path / "bare.zarr"), volume)
    assert ZarrTomogram(tmp_path / "bare.zarr", "bare").array(0).shape == (4, 6, 8)
    write_multiscale_zarr(tmp_path / "ms.zarr", volume, levels=2, spacing=10.012)
    tomogram = ZarrTomogram(tmp_path / "ms.zarr", "ms")
    assert tomogram.array(1).shape == (2, 3, 4) and tomogram.spacing(0) == pytest.approx(10.012)


def _group(tmp_path: Path) -> Path:
    write_multiscale_zarr(tmp_path / "g.zarr", np.ones((4, 4, 4), np.float32), levels=1, spacing=10.0)
    return tmp_path / "g.zarr"


def _set_attrs(path: Path, attrs: object) -> None:
    (path / ".zattrs").write_text(json.dumps(attrs))


@pytest.mark.parametrize("attrs, message", [
    ({"multiscales": [{}]}, "'multiscales' is malformed"), ({"multiscales": "x"}, "'multiscales' is malformed"),
    ({"multiscales": [{"datasets": [{"path": "../../etc"}]}]}, "points outside the group")])
def test_malformed_multiscales_are_named(tmp_path, attrs, message) -> None:
    path = _group(tmp_path)
    _set_attrs(path, attrs)
    with pytest.raises(ValueError, match=message):
        ZarrTomogram(path, str(path)).array(0)


@pytest.mark.parametrize("scale, message", [([0, 0, 0], "must be a positive finite"),
                                            (["NaN", 1, 1], "must be a positive finite"),
                                            ([-10, -10, -10], "must be a positive finite"),
                                            ([10, 20, 20], "not cubic")])
def test_bad_ome_spacings_are_refused(tmp_path, scale, message) -> None:
    path = _group(tmp_path)
    _set_attrs(path, {"multiscales": [{"datasets": [{"path": "0", "coordinateTransformations": [
        {"type": "scale", "scale": scale}]}]}]})
    with pytest.raises(ValueError, match=message):
        ZarrTomogram(path, str(path)).spacing(0)


def test_deeply_nested_metadata_is_refused(tmp_path) -> None:
    path = _group(tmp_path)
    (path / ".zattrs").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested deeper"):
        ZarrTomogram(path, str(path))


def test_a_chunk_that_is_a_fifo_or_too_large_is_refused(tmp_path) -> None:
    path = _group(tmp_path)
    chunk = next(p for p in (path / "0").rglob("*") if p.is_file() and not p.name.startswith("."))
    chunk.unlink()
    os.mkfifo(chunk)
    with pytest.raises(ValueError, match="is not a regular file"):
        ZarrTomogram(path, str(path)).array(0)[...]
    chunk.unlink()
    chunk.write_bytes(b"\0" * 2**20)  # a 4x4x4 float32 chunk cannot take a megabyte
    with pytest.raises(ValueError, match="more than the"):
        ZarrTomogram(path, str(path)).array(0)[...]


def test_the_reader_never_writes(tmp_path) -> None:
    array = ZarrTomogram(_group(tmp_path), "g").array(0)
    with pytest.raises((PermissionError, zarr.errors.ReadOnlyError)):
        array[0, 0, 0] = 5.0
