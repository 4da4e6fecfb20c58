"""The one path from an error to what the user sees: one line on stderr and an exit code.

Errors a user can cause (ZerogradError, OSError, ValueError) come out as `zerograd CMD: error: ...` with
exit code 1; Ctrl-C as `zerograd CMD: interrupted` with 130; anything else is a bug, reported as an internal
error with the hint to rerun with --debug for the traceback. Bad flags are argparse's: exit code 2.
"""

from __future__ import annotations

from ..errors import ZerogradError

__all__ = ["describe"]


def describe(command: str, err: BaseException) -> tuple[str, int]:
    """The one line `zerograd COMMAND` prints for `err`, and its exit code."""
    if isinstance(err, KeyboardInterrupt):
        return f"zerograd {command}: interrupted", 130
    if isinstance(err, (ZerogradError, OSError, ValueError)):
        return f"zerograd {command}: error: {err}", 1
    return (f"zerograd {command}: internal error: {type(err).__name__}: {err} "
            "(run again with --debug for the traceback and report it)"), 1
