"""Asking glibc's malloc to keep freed memory for the next training step (the commands' own process only)."""

from __future__ import annotations

import os
import sys

__all__ = ["KEEP_FREED_MEMORY", "keep_freed_memory"]

# What `zerograd train/evaluate` ask of glibc's malloc, as the environment variables that would do the same
KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 1 << 30}
_MALLOPT = {"MALLOC_MMAP_THRESHOLD_": -3, "MALLOC_TRIM_THRESHOLD_": -1}  # their mallopt numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Asks glibc's malloc to keep freed memory for reuse, as MALLOC_MMAP_THRESHOLD_=32 MiB and
    MALLOC_TRIM_THRESHOLD_=1 GiB would; returns whether it did.

    A training step frees tens of MB that the next step allocates again. With glibc's default, dynamic
    thresholds that memory goes back to the system (large blocks unmapped, the heap trimmed) and is
    page-faulted in again on every step: 15-25% of a CNN's step on the benchmark machine. This is the
    command's own process; the library never does it (see docs/guides/speed.md). A MALLOC_* setting in the
    environment wins, and other C libraries (macOS, Windows, musl) are left alone.
    """
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    # a list, not a generator: both settings are made even if the first is refused
    return all([bool(mallopt(_MALLOPT[name], value)) for name, value in KEEP_FREED_MEMORY.items()])
