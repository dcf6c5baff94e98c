"""The logit-averaging ensemble as a deployable file: ONNX (for ONNX Runtime, TensorRT, ...) or a torch.export
program (``.pt2``), each checked against PyTorch on a random window before it is kept."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.atomic import OutputBatch, atomic_path
from models.logit_average import LogitAverage

EXPORT_SUFFIXES: tuple[str, ...] = (".onnx", ".pt2")
EXPORT_TOLERANCE: float = 1e-3
"""Largest difference allowed between the exported file's logits and PyTorch's, absolute plus relative to the
logit's size: float32 kernels of another runtime reorder sums (seen on the CPU recipe's 7 nets: 3e-8 for ONNX
Runtime, 0 for torch.export)."""


def dynamic_shapes(divisor: int) -> dict[str, dict[int, object]]:
    """Any batch, and any window whose sides are multiples of the network's ``divisor``."""
    dim = torch.export.Dim
    return {"x": {0: dim("batch", min=1, max=64), 2: divisor * dim("depth", min=1, max=64),
                  3: divisor * dim("height", min=1, max=64), 4: divisor * dim("width", min=1, max=64)}}


def export_suffix(path: str | Path) -> str:
    """``.onnx`` or ``.pt2``: the format ``path`` asks for; another name is an error, raised before any work."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ValueError(f"--export {path}: the file name must end in {' or '.join(EXPORT_SUFFIXES)}")
    return suffix


def export_ensemble(models: Sequence[nn.Module], path: Path, batch: OutputBatch | None = None,
                    check_window: Sequence[int] | None = None) -> float:
    """Save the ensemble's mean logits as ``path`` (``.onnx`` or ``.pt2``), input ``[B, 1, D, H, W]`` of any batch
    and size in multiples of the networks' divisor; returns the largest difference from PyTorch on one random
    ``check_window`` (default: 4 x the divisor on each side; an error, and no file, beyond ``EXPORT_TOLERANCE``)."""
    suffix = export_suffix(path)
    ensemble = LogitAverage(list(models)).eval().float().to(memory_format=torch.contiguous_format)
    device = next(ensemble.parameters()).device
    window = tuple(check_window or (4 * ensemble.size_divisor,) * 3)
    example = torch.randn((2, 1, *window),
                          generator=torch.Generator().manual_seed(0)).to(device)  # batch 1 would fix it
    with torch.no_grad():
        expected = ensemble(example)
        program = torch.export.export(ensemble, (example,), dynamic_shapes=dynamic_shapes(ensemble.size_divisor))
    with atomic_path(path, suffix=suffix, batch=batch) as tmp:
        if suffix == ".onnx":
            torch.onnx.export(program, (example,), str(tmp), dynamo=True, external_data=False, verbose=False)
            got = torch.from_numpy(onnx_logits(tmp, example.cpu().numpy())).to(device)
        else:
            torch.export.save(program, str(tmp))
            with torch.no_grad():
                got = torch.export.load(str(tmp)).module()(example)
        error = float(((got - expected).abs() / (1.0 + expected.abs())).max())
        if not error <= EXPORT_TOLERANCE:
            raise ValueError(f"--export {path}: the exported ensemble's logits differ from PyTorch's by {error:.2g} "
                             f"(allowed {EXPORT_TOLERANCE}); nothing was written")
    print(f"exported the {len(models)}-model ensemble to {path} (input [B, 1, D, H, W], sides multiples of "
          f"{ensemble.size_divisor}; max difference from PyTorch {error:.1e})")
    return error


def onnx_logits(path: Path, window: np.ndarray) -> np.ndarray:
    """Run an exported ``.onnx`` ensemble on ``[B, 1, D, H, W]`` with ONNX Runtime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: window.astype(np.float32)})[0]
