"""The Python examples of the documentation pages (docs/**/*.md) run as written, and show what they say.

Each page's ```python blocks run in order in one namespace, in a temporary folder; then the page's checks
below assert the values its comments promise. Left out, each for a reason and covered elsewhere: examples
that need the reader's own files or a download, minutes of training, or mpiexec (EXCLUDED).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"```python\n(.*?)```", re.S)

# (page, a line of the example): why it does not run here, and what tests it instead
EXCLUDED = {
    ("library/experiments.md", "from zerograd import experiments as E, plots as P"):
        "minutes of training on MNIST: tests/test_experiments.py asserts the experiments' numbers",
    ("guides/distributed.md", "from zerograd.distributed import DistributedDataParallel, DistributedLoader"):
        "runs under mpiexec: tests/test_distributed.py::test_the_docs_example_runs_on_two_processes",
    ("guides/own-images.md", 'images = load_image_folder("photos", image_size=32)'):
        "the reader's own photos and a CIFAR-10 download: tests/test_datasets_folder.py, test_datasets_cifar.py",
}
# pages whose examples train a full MNIST epoch (seconds): run with the slow tests
SLOW = {"getting-started.md", "library/nn-optim.md"}


def _examples(page: str) -> list[str]:
    return FENCE.findall((DOCS / page).read_text(encoding="utf-8"))


def _english(page: str) -> str:
    """A Korean page (`getting-started.ko.md`) runs and is checked as its English page."""
    return page.replace(".ko.md", ".md")


def _runnable(page: str) -> list[str]:
    return [block for block in _examples(page)
            if not any(p == _english(page) and line in block for (p, line) in EXCLUDED)]


PAGES = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md") if _examples(str(path.relative_to(DOCS))))


def run_page(page: str, tmp_path: Path, monkeypatch) -> dict:
    """The page's examples in order, in one namespace, writing their files under tmp_path."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _runnable(page):
        # a loop whose body is `...` stands for the reader's own code: run one pass of it
        exec(compile(block.replace("    ...\n", "    break\n"), str(DOCS / page), "exec"), namespace)
    return namespace


def check_getting_started(ns):
    assert ns["model"].num_parameters() == 79_510
    assert ns["accuracy"] == pytest.approx(0.9604, abs=0.003)  # printed 0.9604; another BLAS may round it a few away


def check_basics(ns):
    assert ns["AND"](1, 1) == 1
    assert ns["XOR"]([0, 0, 1, 1], [0, 1, 0, 1]).tolist() == [0, 1, 1, 0]
    assert ns["train_perceptron"]([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 0]).converged is False
    np.testing.assert_allclose(ns["forward"](ns["init_network"](), [1.0, 0.5]), [0.3168271, 0.6962791], rtol=1e-6)
    np.testing.assert_allclose(ns["softmax"]([1010, 1000, 990]), [9.999546e-01, 4.539786e-05, 2.061060e-09],
                               rtol=1e-6)


def check_data(ns):
    assert ns["x_train"].shape == (60_000, 784) and ns["x_train"].dtype == np.float32
    assert ns["t_test"].shape == (10_000,) and ns["t_test"].dtype == np.int64
    assert ns["x_batch"].shape == (100, 784) and ns["t_batch"].shape == (100,)  # the loop's first batch


def check_graph(ns):
    assert float(ns["x"].grad) == 7.0  # dy/dx = 2x + 1 at x = 3
    assert ns["z"].requires_grad is False  # made under no_grad()


def check_nn_optim(ns):
    model, optimizer = ns["model"], ns["optimizer"]
    assert model.num_parameters() == 79_510 and type(optimizer).__name__ == "SGD"
    assert model.training is False  # model.eval()


def check_cnn(ns):
    assert ns["conv"].weight.shape == (30, 1, 5, 5) and ns["h"].shape == (8, 30, 12, 12)
    assert ns["deep"](ns["x"]).argmax(dim=1).tolist() == [7, 2, 1, 0, 4, 1, 4, 9]


def check_training(ns):  # in the examples' folder (run_page's tmp_path)
    result = ns["result"]
    assert result.results["test_accuracy"] == pytest.approx(0.9104, abs=0.003)  # printed as 0.9104
    assert str(result.model_path) == "runs/api/model.safetensors" and Path(result.model_path).exists()
    assert len(result.history) == 1 and result.config.batch_size == 128
    events = list(Path("runs/exp1").glob("events.out.tfevents.*"))  # the SummaryWriter example
    assert len(events) == 1 and events[0].stat().st_size > 0


def check_onnx(ns):
    assert (ns["logits"].argmax(axis=1) == ns["t_test"]).mean() == 0.9352  # ONNX Runtime, as in zerograd
    assert [name for name, _ in ns["imported"].named_parameters()][:2] == ["1.weight", "1.bias"]


def check_pytorch(ns):
    assert 0.0 <= ns["accuracy"] <= 1.0
    assert ns["torch"].load("checkpoint.safetensors")["accuracy"] == pytest.approx(ns["accuracy"])


CHECKS = {
    "getting-started.md": check_getting_started,
    "library/basics.md": check_basics,
    "library/data.md": check_data,
    "library/graph.md": check_graph,
    "library/nn-optim.md": check_nn_optim,
    "library/cnn.md": check_cnn,
    "library/training.md": check_training,
    "guides/onnx.md": check_onnx,
    "guides/pytorch.md": check_pytorch,
}


def test_the_docs_have_their_examples():
    assert len(PAGES) >= 10
    for page in PAGES:  # a page with examples has its checks, or every example of it is excluded with a reason
        assert _english(page) in CHECKS or not _runnable(page), f"docs/{page}: add its check to CHECKS"
    assert set(CHECKS) <= set(PAGES)
    for page, line in EXCLUDED:
        assert any(line in block for block in _examples(page)), f"{page} no longer has the excluded example"


@pytest.mark.parametrize("page", [pytest.param(page, marks=pytest.mark.slow) if _english(page) in SLOW else page
                                  for page in PAGES if _english(page) in CHECKS])
def test_docs_examples_run(page, tmp_path, monkeypatch):
    CHECKS[_english(page)](run_page(page, tmp_path, monkeypatch))
