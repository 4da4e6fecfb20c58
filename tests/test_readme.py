"""The README's Python examples run as written (the chapter-6 figures, minutes of training, excepted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_the_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # figures and files the examples write land here
    namespace: dict = {}
    for block in BLOCKS:
        if "zerograd import experiments" in block or "DistributedLoader" in block:
            continue  # (the distributed example runs under mpiexec in tests/test_distributed.py)
        if 'load_image_folder("photos"' in block:
            continue  # the reader's own photos, a CIFAR-10 download (tests: test_datasets_folder, test_datasets_cifar)
        # a loop whose body is `...` stands for the reader's own code: run one pass of it
        exec(compile(block.replace("    ...\n", "    break\n"), str(README), "exec"), namespace)
    model, optimizer = namespace["model"], namespace["optimizer"]
    assert model.num_parameters() == 79_510 and type(optimizer).__name__ == "SGD"
    assert namespace["z"].requires_grad is False  # made under no_grad()
