"""Reading PyTorch files (checkpoints, state dicts) safely: nothing but tensors, numbers, strings and containers
is ever unpickled (``weights_only=True``), so a file from someone else cannot run code when it is opened."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
               AttributeError, ModuleNotFoundError, ImportError, IndexError, KeyError, TypeError)
_FORBIDDEN_GLOBAL = re.compile(r"(?:GLOBAL|global|class)\s+([\w.]+)")
"""torch's weights-only unpickler names the import it refused ("unsupported GLOBAL posix.system")."""


def _first_line(err: BaseException) -> str:
    """torch's messages run on for lines: the first sentence names the problem."""
    return (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]


def load_tensors(path: str | Path, what: str, mmap: bool = False) -> Any:
    """The contents of a torch file, or a ValueError naming ``what`` it was given as, ``path`` and what is wrong
    (missing, truncated, not a torch file, or holding objects that would import code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        wanted = _FORBIDDEN_GLOBAL.search(str(err))
        if wanted is None:
            raise ValueError(f"{what} {path} cannot be read (not a pickle of tensors): it is "
                             "truncated, corrupt or not a PyTorch checkpoint") from None
        raise ValueError(f"{what} {path} asks to import {wanted.group(1)} when unpickled: it holds "
                         "Python objects other than tensors, numbers, strings and containers (another tool's "
                         "file, or one crafted to run code); refusing to load it (checkpoints are only read with "
                         "torch.load(weights_only=True))") from None
    except _UNREADABLE as err:
        raise ValueError(f"{what} {path} cannot be read ({_first_line(err)}): it is truncated, "
                         "corrupt or not a PyTorch checkpoint") from None
    return state
