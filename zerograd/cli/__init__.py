"""The `zerograd` command: one module per command, each with add_parser(subparsers) and run(args).

main() parses the flags, runs the command and turns its errors into one line on stderr and an exit
code (see failure.py); `--debug` shows the traceback instead. The commands speak; the library below
them returns values and raises errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..training.config import CHOICES
from . import convert, evaluate, export, predict, serve, train
from .failure import describe
from .malloc import KEEP_FREED_MEMORY, keep_freed_memory

__all__ = ["COMMANDS", "KEEP_FREED_MEMORY", "TRAIN_CHOICES", "build_parser", "main"]

COMMANDS = {"train": train, "evaluate": evaluate, "convert": convert, "predict": predict, "export": export,
            "serve": serve}  # in the order --help lists them
TRAIN_CHOICES = {name: list(choices) for name, choices in CHOICES.items()}  # train's named settings' choices
_MANY_BATCHES = ("train", "evaluate")  # the commands whose process asks malloc to keep freed memory


def build_parser() -> argparse.ArgumentParser:
    """The `zerograd` parser with every command's subparser."""
    parser = argparse.ArgumentParser(
        prog="zerograd",
        description="Deep learning from zero on NumPy: train, evaluate and use digit classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"zerograd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `zerograd` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in _MANY_BATCHES:
        keep_freed_memory()
    try:
        return COMMANDS[args.command].run(args)
    except BrokenPipeError:
        # whoever read our output stopped early (`zerograd evaluate ... | head -1`): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (Exception, KeyboardInterrupt) as err:  # one line for the user, the traceback only on request
        if args.debug:
            raise
        line, code = describe(args.command, err)
        print(line, file=sys.stderr)
        return code
