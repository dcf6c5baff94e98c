"""How every command line tool answers bad input and environment faults: one line naming the file or flag
and what is wrong, exit code 2, never a traceback. Bugs (anything else) still raise with their traceback."""
from __future__ import annotations

import errno
import sys
from collections.abc import Callable

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


def run_tool(prog: str, body: Callable[[], int | None]) -> int:
    """Run a tool's body; a ValueError or OSError (bad input, a missing, unreadable or unwritable file, a
    full disk) becomes ``<prog>: error: <message>`` on stderr and exit code 2."""
    try:
        return int(body() or 0)
    except (ValueError, OSError) as err:
        print(f"{prog}: error: {describe(err)}", file=sys.stderr)
        return BAD_INPUT_EXIT
