"""W&B never makes a run wait on the network: without it, offline with one message."""
from __future__ import annotations

import socket
import time

import pytest

from runtime import wandb_runs as loggers


def test_an_api_key_without_network_logs_offline_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    start = time.perf_counter()
    assert loggers.wandb_mode() == "offline"
    assert time.perf_counter() - start < loggers.PROBE_SECONDS + 1
    assert loggers.wandb_host() == ("127.0.0.1", port)


def test_an_api_key_with_a_reachable_server_logs_online(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.delenv("WANDB_MODE", raising=False)
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert loggers.wandb_mode() == "online"
