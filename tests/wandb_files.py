"""Offline W&B runs read back with the wandb library itself: what a dashboard would show after `wandb sync`."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class OfflineRun:
    """One offline run's identity, config, summary and logged keys, as recorded in its ``run-*.wandb`` file."""

    path: Path
    run_id: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    """The last value logged under each key (nested keys joined by '/')."""


def read_offline_run(path: Path) -> OfflineRun:
    """Parse the protobuf records of one offline run file with wandb's own data store."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    run = OfflineRun(path)
    store = datastore.DataStore()
    store.open_for_scan(str(path))
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.group = record.run.run_id, record.run.run_group
            run.job_type, run.name = record.run.job_type, record.run.display_name
            run.config.update(_items(record.run.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
        elif kind == "history":
            run.history.update(_items(record.history.item))
    store.close()
    run.config = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in run.config.items()
                  if not k.startswith("_")}
    return run


def _items(items: Any) -> dict[str, Any]:
    return {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in items}


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under ``root``."""
    return [read_offline_run(p) for p in sorted(root.rglob("offline-run-*/run-*.wandb"))]
