"""The one way a zarr tomogram is opened, whoever wrote it.

zarr decodes an array with the codecs its ``.zarray`` names, and numcodecs registers codecs that run code:
``pickle`` as a compressor or filter runs ``pickle.loads`` on every chunk, and on an object dtype even on the
fill value while the metadata is parsed. So every metadata document is read and checked here (bounded JSON;
only data codecs; a real numeric dtype) before zarr sees it, zarr only ever sees the checked copy, and each
chunk must be a regular file of a plausible size before it is read.
"""
from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from runtime.bounded_reads import MAX_CONFIG_BYTES, parse_json, read_bytes
from particles import checked_spacing

SAFE_CODECS: tuple[str, ...] = ("blosc", "zstd", "zlib", "gzip", "lz4", "bz2", "lzma")
"""Codecs that only decompress bytes: the only ones a tomogram may name as its compressor or filters."""
METADATA_KEYS: tuple[str, ...] = (".zarray", ".zgroup", ".zattrs")


def check_array_metadata(meta: object, where: str) -> None:
    """A zarr v2 ``.zarray`` this project will decode: compressor and filters among SAFE_CODECS (by name,
    before any codec runs), a real numeric dtype, integer shape and chunks."""
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: .zarray must be a JSON object, got {type(meta).__name__}")
    if meta.get("zarr_format") != 2:
        raise ValueError(f"{where}: zarr_format {meta.get('zarr_format')!r}; only zarr v2 arrays are read")
    filters = meta.get("filters")
    if filters is not None and not isinstance(filters, list):
        raise ValueError(f"{where}: filters must be a list or null, got {filters!r}")
    codecs = [("compressor", meta.get("compressor"))] * (meta.get("compressor") is not None) + [
        ("filter", f) for f in filters or []]
    for role, codec in codecs:
        name = codec.get("id") if isinstance(codec, dict) else codec
        if name not in SAFE_CODECS:
            raise ValueError(f"{where}: its {role} is codec {name!r}, which is not a data codec; only "
                             f"{', '.join(SAFE_CODECS)} (or none) are decoded, so nothing in a file can run code")
    dtype_text = meta.get("dtype")
    try:
        dtype = np.dtype(dtype_text) if isinstance(dtype_text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.hasobject or dtype.kind not in "iuf":
        raise ValueError(f"{where}: dtype {dtype_text!r}: expected a real numeric dtype (integers or floats)")
    shape, chunks = meta.get("shape"), meta.get("chunks")
    if not (_int_list(shape, 0) and _int_list(chunks, 1) and len(shape) == len(chunks)):
        raise ValueError(f"{where}: shape {shape!r} and chunks {chunks!r} must be lists of as many integers")
    if meta.get("order", "C") not in ("C", "F"):
        raise ValueError(f"{where}: order {meta.get('order')!r} must be 'C' or 'F'")


def _int_list(value: object, low: int) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= low
                                           for v in value)


class CheckedStore(MutableMapping):
    """A read-only view of a zarr store that hands out only checked metadata and plausible chunks."""

    def __init__(self, inner: MutableMapping, where: str) -> None:
        self.inner, self.where = inner, where
        self._metadata: dict[str, bytes] = {}
        self._chunk_limit: dict[str, int] = {}  # array path -> most bytes a stored chunk may hold

    def _local_file(self, key: str) -> Path | None:
        """The file behind ``key`` when the store is a local folder (DirectoryStore, copick's local FSStore)."""
        if isinstance(self.inner, zarr.storage.DirectoryStore):
            return Path(self.inner.path) / key
        fs = getattr(self.inner, "fs", None)
        if fs is not None and "file" in np.atleast_1d(getattr(fs, "protocol", ())):
            return Path(self.inner.map._key_to_str(self.inner._normalize_key(key)))
        return None

    def _raw(self, key: str, limit: int) -> bytes:
        local = self._local_file(key)
        if local is not None:
            if not os.path.lexists(local):
                raise KeyError(key)
            return read_bytes(local, f"{self.where}: zarr file", limit)
        raw = self.inner[key]
        if len(raw) > limit:
            raise ValueError(f"{self.where}: {key} holds {len(raw):,} bytes, more than the {limit:,} it may")
        return raw

    def metadata(self, key: str) -> dict | None:
        """The checked JSON document ``key`` (``.zarray``, ``.zgroup``, ``.zattrs`` at any path); None if absent."""
        if key not in self._metadata:
            try:
                raw = self._raw(key, MAX_CONFIG_BYTES)
            except KeyError:
                return None
            doc = parse_json(raw, f"{self.where}: {key}")
            if not isinstance(doc, dict):
                raise ValueError(f"{self.where}: {key} must be a JSON object, got {type(doc).__name__}")
            if key.rsplit("/", 1)[-1] == ".zarray":
                check_array_metadata(doc, f"{self.where}: {key}")
                itemsize = np.dtype(doc["dtype"]).itemsize
                raw_bytes = math.prod(doc["chunks"]) * itemsize
                self._chunk_limit[key[:-len(".zarray")].rstrip("/")] = raw_bytes + raw_bytes // 16 + 4096
            self._metadata[key] = raw
        return parse_json(self._metadata[key], key)

    def _chunk_bound(self, key: str) -> int:
        prefix = key.rsplit("/", 1)[0] if "/" in key else ""
        for path, limit in sorted(self._chunk_limit.items(), key=lambda item: -len(item[0])):
            if not path or prefix == path or prefix.startswith(f"{path}/"):
                return limit
        raise KeyError(key)  # a chunk of an array whose metadata was never checked is never handed out

    def __getitem__(self, key: str) -> bytes:
        if key.rsplit("/", 1)[-1] in METADATA_KEYS:
            if self.metadata(key) is None:
                raise KeyError(key)
            return self._metadata[key]
        limit = self._chunk_bound(key)
        local = self._local_file(key)
        if local is not None:
            try:
                mode = os.stat(local).st_mode
            except FileNotFoundError:
                raise KeyError(key) from None
            if not stat.S_ISREG(mode):
                raise ValueError(f"{self.where}: chunk {key} is not a regular file (a folder, FIFO or device)")
        return self._raw(key, limit)

    def getitems(self, keys: Sequence[str], *, contexts: Mapping[str, Any]) -> Mapping[str, bytes]:
        found = {}
        for key in keys:
            try:
                found[key] = self[key]
            except KeyError:
                pass
        return found

    def __contains__(self, key: object) -> bool:
        local = self._local_file(str(key))  # anything at a chunk's place counts (a FIFO is refused, not skipped)
        return os.path.lexists(local) if local is not None else key in self.inner

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def keys(self):  # noqa: D102 (the chunk count check lists them)
        return self.inner.keys()

    def __setitem__(self, key: str, value: bytes) -> None:
        raise PermissionError(f"{self.where}: tomograms are opened read-only")

    def __delitem__(self, key: str) -> None:
        raise PermissionError(f"{self.where}: tomograms are opened read-only")


def level_path(attrs: dict, level: int, where: str) -> str:
    """The array name of multiscale ``level``: OME-NGFF ``multiscales[0].datasets[level].path``, else
    ``str(level)``; a malformed ``multiscales`` is an error naming what is wrong."""
    datasets = _datasets(attrs, where)
    if datasets is None or level >= len(datasets):
        return str(level)
    return datasets[level]["path"]


def _datasets(attrs: dict, where: str) -> list[dict] | None:
    multiscales = attrs.get("multiscales")
    if multiscales is None:
        return None
    datasets = (multiscales[0].get("datasets") if isinstance(multiscales, list) and multiscales
                and isinstance(multiscales[0], dict) else None)
    if (not isinstance(datasets, list) or not datasets
            or not all(isinstance(d, dict) and isinstance(d.get("path"), str) and d["path"] for d in datasets)):
        raise ValueError(f"{where}: .zattrs 'multiscales' is malformed (expected a list whose first entry has "
                         "'datasets', a non-empty list of {'path': ...})")
    for d in datasets:
        if d["path"].startswith("/") or ".." in d["path"].split("/"):
            raise ValueError(f"{where}: .zattrs multiscale path {d['path']!r} points outside the group")
    return datasets


def ome_spacing(attrs: dict, level: int, where: str) -> float | None:
    """Level ``level``'s voxel spacing (Å) from its OME-NGFF ``scale`` transformation; None when the group has
    none; a scale that is not positive and finite on every axis, or not isotropic, is an error."""
    datasets = _datasets(attrs, where)
    if datasets is None or level >= len(datasets) or "coordinateTransformations" not in datasets[level]:
        return None
    transforms = datasets[level]["coordinateTransformations"]
    scales = [t.get("scale") for t in transforms if isinstance(t, dict) and t.get("type", "scale") == "scale"] \
        if isinstance(transforms, list) else []
    if not scales or not isinstance(scales[0], list) or not scales[0]:
        raise ValueError(f"{where}: .zattrs level {level} has coordinateTransformations but no 'scale' list")
    values = [checked_spacing(v, f"{where} (OME-NGFF scale of level {level})") for v in scales[0]]
    if max(values) > min(values) * 1.01:
        raise ValueError(f"{where}: voxels of level {level} are not cubic (scale {values}); resample them first")
    return values[0]


class ZarrTomogram:
    """A zarr tomogram location (a folder, or a store such as copick's) opened through a CheckedStore."""

    def __init__(self, location: str | os.PathLike | MutableMapping, where: str) -> None:
        self.where = where
        if isinstance(location, (str, os.PathLike)):
            if not Path(location).is_dir():
                raise ValueError(f"{where}: not a zarr array or group (not a folder)")
            location = zarr.storage.DirectoryStore(str(location))
        self.store = CheckedStore(location, where)
        self.is_array = self.store.metadata(".zarray") is not None
        if not self.is_array and self.store.metadata(".zgroup") is None:
            raise ValueError(f"{where}: not a zarr array or group (no .zarray or .zgroup)")
        self.attrs: dict = ({} if self.is_array else self.store.metadata(".zattrs")) or {}

    def array(self, level: int = 0) -> zarr.Array:
        """Multiscale level ``level`` (a bare array is its own level 0), lazily; its metadata checked first."""
        if self.is_array:
            if level != 0:
                raise ValueError(f"{self.where}: a bare zarr array has only level 0")
            return zarr.open_array(self.store, mode="r")
        name = level_path(self.attrs, level, self.where)
        if self.store.metadata(f"{name}/.zarray") is None:
            arrays = sorted(k.split("/")[0] for k in self.store.keys() if k.endswith("/.zarray"))
            raise ValueError(f"{self.where}: no multiscale level {level} (array {name!r}); arrays present: {arrays}")
        return zarr.open_array(self.store, path=name, mode="r")

    def spacing(self, level: int = 0) -> float | None:
        """The OME-NGFF voxel spacing of ``level`` (Å), None when the file does not say."""
        return None if self.is_array else ome_spacing(self.attrs, level, self.where)
