"""The release a stranger installs: build it, check it, install the wheel far from this repository and run it.

    pip install -e ".[release]"     # build and twine
    python scripts/check_wheel.py   # .ci/run calls this after the tests

1. `python -m build`: the sdist, then the wheel built from the sdist (so the sdist carries what a rebuild needs);
   `twine check` on both (README.md renders as the long description).
2. What they hold: the wheel every tracked file of zerograd/ (the modules, MNIST, the pretrained weights, the web
   page, the stub and py.typed) and the licence, nothing else (no tests, notebooks or caches); the sdist the same
   plus pyproject.toml, README.md and CHANGELOG.md. The version is zerograd/_version.py's, and only there.
3. A virtual environment in an empty temporary folder, the wheel installed with its cli extra (dependencies from
   PyPI), and from that folder: `zerograd --version`; `zerograd evaluate pretrained:deep-cnn` prints the test
   accuracy recorded in the model file; a one-epoch `zerograd train` prints its accuracy and writes a model file
   that `zerograd evaluate` reads back at that accuracy.

Prints what it checked, with the wheel's size; stops with a one-line reason at the first thing wrong.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: nox (the release extra) brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "zerograd" / "_version.py").read_text()).group(1)


def fail(message: str) -> None:
    sys.exit(f"check_wheel: {message}")


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Run a command; its stdout and stderr together, or stop with them."""
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def tracked(folder: str) -> set[str]:
    """The files git tracks under folder (what the package is made of)."""
    return set(run("git", "ls-files", "-z", folder).split("\0")) - {""}


def check_version_in_one_place() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    source = pyproject["tool"]["setuptools"].get("dynamic", {}).get("version")
    if "version" in pyproject["project"] or source != {"attr": "zerograd._version.__version__"}:
        fail("pyproject.toml must take the version from zerograd/_version.py (dynamic), not write its own")


def build(out: Path) -> tuple[Path, Path]:
    run(sys.executable, "-m", "build", "--outdir", out, ".")
    sdist, wheel = out / f"zerograd-{VERSION}.tar.gz", out / f"zerograd-{VERSION}-py3-none-any.whl"
    if sorted(out.iterdir()) != sorted([sdist, wheel]):
        fail(f"python -m build made {sorted(p.name for p in out.iterdir())}, expected {sdist.name} and {wheel.name}")
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    return sdist, wheel


def check_contents(sdist: Path, wheel: Path) -> None:
    package = tracked("zerograd")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    info = f"zerograd-{VERSION}.dist-info/"
    expected = package | {f"{info}licenses/LICENSE"}
    extra = sorted(n for n in in_wheel - expected if not (n.startswith(info) and n.count("/") == 1))
    if expected - in_wheel or extra:
        fail(f"the wheel lacks {sorted(expected - in_wheel)} and has unexpected {extra}")
    with tarfile.open(sdist) as tar:
        in_sdist = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    expected = package | {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in", "PKG-INFO"}
    extra = sorted(n for n in in_sdist - expected if n != "setup.cfg" and not n.startswith("zerograd.egg-info/"))
    if expected - in_sdist or extra:
        fail(f"the sdist lacks {sorted(expected - in_sdist)} and has unexpected {extra}")


def fresh_install(wheel: Path, folder: Path) -> dict[str, str]:
    """A venv in folder with the wheel and its cli extra; the environment that runs its commands from there."""
    run(sys.executable, "-m", "venv", folder / "venv", cwd=folder)
    bin_dir = folder / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    run(bin_dir / "python", "-m", "pip", "install", "-q", f"{wheel}[cli]", cwd=folder, env=env)
    where = run("python", "-c", "import zerograd; print(zerograd.__file__)", cwd=folder, env=env).strip()
    if not Path(where).is_relative_to(folder / "venv"):
        fail(f"the fresh environment imports zerograd from {where}, not from the installed wheel")
    return env


def accuracy(text: str, pattern: str) -> float:
    found = re.search(pattern, text, re.MULTILINE)
    if not found:
        fail(f"no line matching {pattern!r} in:\n{text}")
    return float(found.group(1))


def check_commands(folder: Path, env: dict[str, str]) -> tuple[float, float]:
    said = run("zerograd", "--version", cwd=folder, env=env).strip()
    if said != f"zerograd {VERSION}":
        fail(f"zerograd --version printed {said!r}, expected 'zerograd {VERSION}'")

    recorded = accuracy(run("python", "-c", "from zerograd.models import load_model; print('recorded', "
                            "load_model('pretrained:deep-cnn')[1]['training']['results']['test_accuracy'])",
                            cwd=folder, env=env), r"^recorded ([0-9.]+)$")
    printed = accuracy(run("zerograd", "evaluate", "pretrained:deep-cnn", cwd=folder, env=env),
                       r"^accuracy: ([0-9.]+) \(\d+/10000\)$")
    if printed != recorded:
        fail(f"zerograd evaluate pretrained:deep-cnn printed accuracy {printed}, the model file records {recorded}")

    out = run("zerograd", "train", "--epochs", "1", "--hidden", "64", "--seed", "0", "--out", "one-epoch.safetensors",
              cwd=folder, env=env)
    trained = accuracy(out, r"^test accuracy ([0-9.]+) after 1 epochs")
    if not (folder / "one-epoch.safetensors").is_file() or trained < 0.9:
        fail(f"one epoch of zerograd train wrote no model file or reached only {trained}:\n{out}")
    again = accuracy(run("zerograd", "evaluate", "one-epoch.safetensors", cwd=folder, env=env),
                     r"^accuracy: ([0-9.]+) \(")
    if again != trained:
        fail(f"the trained model file evaluates at {again}, training reported {trained}")
    return printed, trained


def main() -> None:
    start = time.perf_counter()
    check_version_in_one_place()
    with tempfile.TemporaryDirectory(prefix="zerograd-release-") as tmp:
        tmp = Path(tmp)
        sdist, wheel = build(tmp / "dist")
        check_contents(sdist, wheel)
        files = len(zipfile.ZipFile(wheel).namelist())
        print(f"built {sdist.name} ({sdist.stat().st_size / 1e6:.1f} MB) and {wheel.name} "
              f"({wheel.stat().st_size / 1e6:.1f} MB, {files} files); twine check passed; contents as expected")
        stranger = tmp / "empty"
        stranger.mkdir()
        env = fresh_install(wheel, stranger)
        evaluated, trained = check_commands(stranger, env)
    print(f"in a fresh venv: zerograd {VERSION}, evaluate pretrained:deep-cnn {evaluated} (as recorded), "
          f"one epoch of train {trained} (read back alike); {time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
