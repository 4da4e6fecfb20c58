"""The chapter notebooks: each runs top to bottom in quick mode, and none is stored with outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CHAPTERS = ("ch02", "ch03", "ch04", "ch05", "ch06", "ch07", "ch08")


def test_one_notebook_per_chapter() -> None:
    assert sorted(p.name[:4] for p in NOTEBOOKS) == list(CHAPTERS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    # read as JSON, not through nbformat: what matters is what the file in git holds
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))
    for i, cell in enumerate(nb["cells"]):
        where = f"{path.name}, cell {i}: strip it (jupyter nbconvert --clear-output --inplace {path.name})"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"outputs stored in {where}"
            assert cell["execution_count"] is None, f"execution count stored in {where}"
        assert "execution" not in cell.get("metadata", {}), f"execution timing stored in {where}"
        assert "attachments" not in cell, f"attachment stored in {where}"


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data folder whose python3 kernel is this interpreter, whatever other kernels are installed."""
    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / "python3")  # argv: [sys.executable, "-m", "ipykernel_launcher", ...]
    return root


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path: Path, kernel_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel inherits this environment: quick mode, one BLAS thread (two cores, shared), our kernel first
    monkeypatch.setenv("ZEROGRAD_QUICK", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
