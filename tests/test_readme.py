"""The README fits on a screen, its example runs as written, its links lead somewhere, and CI runs its test command.

The examples that moved into the documentation pages run in tests/test_docs_examples.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
READMES = [README, ROOT / "README.ko.md"]
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _shell_blocks(path: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_readme_fits_on_a_screen(readme):
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 200


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_readme_links_lead_to_files(readme):
    links = re.findall(r"\]\((?!https?://|#)([^)#\s]+)(?:#[^)]*)?\)", readme.read_text(encoding="utf-8"))
    assert len(links) >= 20
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"{readme.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_readme_set_up_commands(readme):
    """The two set-up commands, the same in both READMEs; CI runs the test command word for word."""
    commands = [line for block in _shell_blocks(readme) for line in block.splitlines()
                if line.startswith("python3 -m venv .venv")]
    assert commands == [
        'python3 -m venv .venv && . .venv/bin/activate && pip install ".[cli]" && zerograd train',
        'python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e ".[test]" && python -m pytest -q',
    ]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.name)
def test_readme_says_how_to_build_the_site(readme):
    lines = [line.split("#")[0].strip() for block in _shell_blocks(readme) for line in block.splitlines()]
    assert {'pip install -e ".[docs]"', "mkdocs serve", "mkdocs build --strict"} <= set(lines)


def test_readme_has_its_example():
    assert len(BLOCKS) == 1 and len(BLOCKS[0].strip().splitlines()) <= 20


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything the example writes lands here
    namespace: dict = {}
    exec(compile(BLOCKS[0], str(README), "exec"), namespace)
    model, optimizer = namespace["model"], namespace["optimizer"]
    assert model.num_parameters() == 79_510 and type(optimizer).__name__ == "SGD"
    # printed as 0.9604 after one epoch; another BLAS may round it a few test digits away
    assert namespace["accuracy"] == pytest.approx(0.9604, abs=0.003)
