"""Reading checkpoints written by train.py, safely: nothing but tensors and plain containers is ever unpickled
(``weights_only=True``), so a checkpoint from someone else cannot run code when it is opened; every error names
the file and the role it was given in."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

TRAINING_KEYS: tuple[str, ...] = ("optimizer_states", "lr_schedulers", "loops", "callbacks")
"""What resuming needs beyond the weights (Lightning's own restore reads these)."""

_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
               AttributeError, ModuleNotFoundError, ImportError, IndexError, KeyError, TypeError)
_FORBIDDEN_GLOBAL = re.compile(r"(?:GLOBAL|global|class)\s+([\w.]+)")
"""torch's weights-only unpickler names the import it refused ("unsupported GLOBAL posix.system")."""


def read_checkpoint(path: str | Path, role: str, for_resume: bool = False) -> dict[str, Any]:
    """A checkpoint written by train.py, or a ValueError naming ``path`` and what is wrong with it.

    ``role`` says what it was given as (``--init-from``, ``--resume``, ``fold 3``); ``for_resume`` also requires
    the training state (a slim best.ckpt has none). ``mmap`` keeps the check of a large resume checkpoint cheap:
    Lightning reads it again to restore.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{role} checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=for_resume)
    except pickle.UnpicklingError as err:
        wanted = _FORBIDDEN_GLOBAL.search(str(err))
        if wanted is None:
            raise ValueError(f"{role} checkpoint {path} cannot be read (not a pickle of tensors): it is "
                             "truncated, corrupt or not a PyTorch checkpoint") from None
        raise ValueError(f"{role} checkpoint {path} asks to import {wanted.group(1)} when unpickled: it holds "
                         "Python objects other than tensors, numbers, strings and containers (another tool's "
                         "file, or one crafted to run code); refusing to load it (checkpoints are only read with "
                         "torch.load(weights_only=True))") from None
    except _UNREADABLE as err:
        raise ValueError(f"{role} checkpoint {path} cannot be read ({_first_line(err)}): it is truncated, "
                         "corrupt or not a PyTorch checkpoint") from None
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not any(str(k).startswith("model.") for k in weights):
        raise ValueError(f"{role} checkpoint {path} is not one written by train.py: it holds no model weights "
                         "(no 'model.' keys in a 'state_dict')")
    if not isinstance(state.get("hyper_parameters", {}).get("config"), dict):
        raise ValueError(f"{role} checkpoint {path} is not one written by train.py: it carries no training config")
    missing = [key for key in TRAINING_KEYS if key not in state] if for_resume else []
    if missing:
        raise ValueError(f"{role} checkpoint {path} holds inference weights only (no {', '.join(missing)}): "
                         "training cannot continue from it; start the run again with --overwrite, or fine-tune "
                         "from it with --init-from")
    return state


def _first_line(err: BaseException) -> str:
    """torch's messages run on for lines: the first sentence names the problem."""
    return (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]


def model_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The plain network's weights from a LightningModule checkpoint (``model.`` prefix removed)."""
    return {k[len("model."):]: v for k, v in state["state_dict"].items() if k.startswith("model.")}
