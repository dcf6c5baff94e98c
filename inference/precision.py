"""Which floating-point format prediction runs in: bfloat16 where the hardware computes it natively."""
from __future__ import annotations

import torch
from choices import Precision, values

PRECISIONS: tuple[str, ...] = values(Precision)


def native_bf16_cpu() -> bool:
    """True on CPUs with bfloat16 instructions (AVX512-BF16 or AMX), where oneDNN's bf16 convolutions run at
    about twice the float32 speed; elsewhere bf16 is emulated and slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bf16 on a GPU and on a CPU with native bf16, else float32 (None: no autocast)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" or (device.type == "cpu" and native_bf16_cpu()) else "fp32"
    return torch.bfloat16 if precision == "bf16" else None
