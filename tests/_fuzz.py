"""Helpers shared by the fuzz tests (tests/test_fuzz_*.py): settings, the clean-failure check, counting, memory."""

from __future__ import annotations

import atexit
import collections
import json
import os
import tracemalloc
from typing import Any, Callable

from hypothesis import HealthCheck, settings

from zerograd.errors import ZerogradError

# Derandomized and without an example database: CI tries the same inputs on every run, so a failure
# reproduces, and the time each test takes is fixed by max_examples.
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])


def fuzz(examples: int) -> settings:
    """FUZZ trying `examples` inputs: each test's count is chosen to keep the suite within its CI time."""
    return settings(FUZZ, max_examples=examples)

# Inputs tried per reader in this run; ZEROGRAD_FUZZ_COUNTS=FILE writes them there as JSON at exit.
TRIED: collections.Counter[str] = collections.Counter()


def _write_counts() -> None:
    target = os.environ.get("ZEROGRAD_FUZZ_COUNTS")
    if target:
        with open(target, "w") as f:
            json.dump(dict(sorted(TRIED.items())), f, indent=1)


atexit.register(_write_counts)


def clean(reader: str, fn: Callable[..., Any], *args: Any, error: type[BaseException] = ZerogradError) -> Any:
    """fn(*args) either returns or raises `error` with a one-line message; anything else fails the test."""
    TRIED[reader] += 1
    try:
        return fn(*args)
    except error as exc:
        message = str(exc)
        assert message and "\n" not in message, f"{reader}: unclear message {message!r}"
        return exc


def peak_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """(result or raised exception, peak bytes Python and NumPy allocated while fn ran)."""
    tracemalloc.start()
    try:
        try:
            result: Any = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller inspects what was raised
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
