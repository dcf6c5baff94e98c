"""How every command line tool answers bad input and environment faults: one line naming the file or flag
and what is wrong, exit code 2, never a traceback; the unexpected too, with its traceback saved to a file."""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

BAD_INPUT_EXIT = 2
"""argparse's own exit code for a bad command line; every tool uses it for every refused input."""

_HINTS: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or change the folder's permissions",
    errno.EPERM: "operation not permitted: write elsewhere or change the folder's permissions",
    errno.EISDIR: "a folder is in the way of a file",
    errno.ENOTDIR: "a file is in the way of a folder",
}


def describe(err: BaseException) -> str:
    """The one line a user sees for ``err``: the project's own message, or, for an operating-system error,
    the file it concerns, what went wrong and what to do."""
    if isinstance(err, OSError) and err.errno is not None and err.filename is not None:
        files = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        return f"{files}: {_HINTS.get(err.errno, err.strerror or type(err).__name__)}"
    text = " ".join(str(err).split()) or type(err).__name__
    return text if not isinstance(err, OSError) or err.errno is None else f"{text} ({err.strerror})"


def save_traceback(prog: str, err: BaseException) -> Path:
    """Write the traceback of an unexpected error to a new file in the system's temporary folder (never
    beside the user's data) and return its path."""
    name = prog.replace("/", "-").replace(".py", "")
    fd, path = tempfile.mkstemp(prefix=f"czii-picker-{name}-internal-error-", suffix=".txt")
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{prog} {' '.join(sys.argv[1:])}\n\n")
        handle.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
    return Path(path)


def run_tool(prog: str, body: Callable[[], int | None],
             passthrough: tuple[type[BaseException], ...] = ()) -> int:
    """Run a tool's body; a ValueError or OSError (bad input, a missing, unreadable or unwritable file, a
    full disk) becomes ``<prog>: error: <message>`` on stderr and exit code 2. Running out of memory or
    nesting is said as such; anything else unexpected is one line saying "internal error" with its
    traceback saved to a file to report, exit code 2 too. Exceptions of ``passthrough`` (and Ctrl-C)
    propagate."""
    try:
        return int(body() or 0)
    except passthrough:
        raise
    except (ValueError, OSError) as err:
        print(f"{prog}: error: {describe(err)}", file=sys.stderr)
    except MemoryError:
        print(f"{prog}: error: out of memory: an input is larger than this machine can hold (a tomogram's "
              "shape, a batch or window size); use smaller settings or a larger machine", file=sys.stderr)
    except RecursionError:
        print(f"{prog}: error: an input is nested too deeply to be read", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 (the boundary: never a bare traceback for a user)
        report = save_traceback(prog, err)
        print(f"{prog}: error: internal error ({type(err).__name__}: {' '.join(str(err).split())[:300]}); "
              f"please report it with the traceback saved in {report}", file=sys.stderr)
    return BAD_INPUT_EXIT
