"""``python -m tests.fault_driver DIE_AT_SAVE -- TRAIN_ARGS``: train.py that kills itself (SIGKILL) half way
through writing its DIE_AT_SAVE-th checkpoint file (0: never), as a power cut or an OOM killer would."""
from __future__ import annotations

import io
import os
import signal
import sys

import torch

import train


def main() -> int:
    die_at, rest = int(sys.argv[1]), sys.argv[sys.argv.index("--") + 1:]
    real_save = torch.save
    saves = 0

    def dying_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        nonlocal saves
        if not isinstance(f, (str, os.PathLike)):  # in-memory buffers are not files on disk
            return real_save(obj, f, *args, **kwargs)
        saves += 1
        if saves != die_at:
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        with open(f, "wb") as handle:
            handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = dying_save
    torch.set_num_threads(1)
    return train.main(rest)


if __name__ == "__main__":
    sys.exit(main())
