"""Which precision prediction runs in: bf16 on a GPU and where the CPU computes it natively, fp32 elsewhere."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import inference.precision as precision


@pytest.mark.parametrize("native", [True, False])
def test_auto_uses_bf16_on_gpus_and_native_cpus_only(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: native)
    assert precision.autocast_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert precision.autocast_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if native else None)
    assert precision.autocast_dtype("fp32", torch.device("cuda")) is None
    assert precision.autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16


def test_unknown_precision_is_an_error() -> None:
    with pytest.raises(ValueError, match="fp16"):
        precision.autocast_dtype("fp16", torch.device("cpu"))


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the CPU flags from /proc/cpuinfo")
def test_native_bf16_detection_agrees_with_the_cpu_flags() -> None:
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert precision.native_bf16_cpu() == bool(flags & {"avx512_bf16", "amx_tile"})
