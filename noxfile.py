"""The NumPy versions zerograd promises, tested: the suite on the oldest and newest NumPy that pyproject.toml allows.

    pip install -e ".[release]"                       # nox
    nox                                               # both ends, the whole suite
    nox -s "tests(oldest)" -- -q -m "not slow"        # pytest's arguments after --

The oldest is the floor of pyproject.toml's `numpy>=...`, read from there (raise it there and this follows); the
newest is the latest release pip finds. Each session is its own virtual environment under .nox/ with the test extra.
"""

from __future__ import annotations

from pathlib import Path

import nox
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: nox brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
nox.options.sessions = ["tests"]


def numpy_floor() -> str:
    """The lowest NumPy that pyproject.toml's dependencies allow: the version of its `numpy>=X`."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    numpy = [Requirement(d) for d in dependencies if Requirement(d).name == "numpy"]
    floors = [spec.version for req in numpy for spec in req.specifier if spec.operator == ">="]
    if len(floors) != 1:
        raise SystemExit(f"pyproject.toml must require numpy>=X exactly once, got {[str(r) for r in numpy]}")
    return floors[0]


@nox.session
@nox.parametrize("numpy", ["oldest", "newest"], ids=["oldest", "newest"])
def tests(session: nox.Session, numpy: str) -> None:
    """The test suite on one end of the NumPy range (pytest's arguments after --; default the whole suite)."""
    if numpy == "oldest":
        session.install("-e", ".[test]", f"numpy=={numpy_floor()}")
    else:
        session.install("--upgrade", "-e", ".[test]", "numpy")
    session.run("python", "-c", "import numpy; print('NumPy', numpy.__version__)")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q"]))
