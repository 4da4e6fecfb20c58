"""The training loop: history, checkpoints, exact resume, divergence, early stopping, reporters."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from zerograd import functional as F
from zerograd import optim
from zerograd.datasets import DataLoader, RandomAffine, TensorDataset, load_mnist
from zerograd.models import MLP
from zerograd.training import (
    LineReporter,
    TrainingDiverged,
    confusion_matrix,
    default_reporter,
    evaluate,
    fit,
    load_checkpoint,
)


@pytest.fixture(scope="module")
def small():
    (x, t), (xt, tt) = load_mnist()
    return (x[:2000], t[:2000]), (xt[:500], tt[:500])


def _run(small, tmp_path, epochs, resume=None, name="ckpt.safetensors"):
    model = MLP(784, (64,), 10, dropout=0.2, seed=7)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    history = fit(model, opt, small[0], small[1], epochs=epochs, batch_size=50, seed=3, scheduler=sched,
                  checkpoint=tmp_path / name, resume=resume)
    return model, history


def test_fit_learns_and_records_history(small, tmp_path):
    model, history = _run(small, tmp_path, epochs=4)
    assert len(history) == 4 and [r.epoch for r in history.records] == [1, 2, 3, 4]
    assert history[-1].iterations == 4 * 40
    losses = history.column("loss")
    assert losses[-1] < losses[0] * 0.5
    assert history[-1].test_accuracy > 0.85
    # cosine schedule over 4 epochs: lr of epoch 1 is the base, then it decays
    assert history[0].lr == pytest.approx(2e-3) and history[2].lr == pytest.approx(1e-3)
    history.save_json(tmp_path / "h.json")
    history.save_csv(tmp_path / "h.csv")
    saved = json.loads((tmp_path / "h.json").read_text())
    assert saved["epochs"][3]["test_accuracy"] == history[-1].test_accuracy
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert len(rows) == 4 and float(rows[1]["loss"]) == pytest.approx(losses[1])


def test_resume_equals_uninterrupted_run(small, tmp_path):
    full, full_history = _run(small, tmp_path, epochs=4, name="full.safetensors")
    _run(small, tmp_path, epochs=2, name="half.safetensors")
    resumed, history = _run(small, tmp_path, epochs=4, resume=tmp_path / "half.safetensors", name="half.safetensors")
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), name  # bit-identical: dropout, shuffling, Adam and cosine all resumed
    assert history.column("loss") == full_history.column("loss")
    _, meta = load_checkpoint(tmp_path / "half.safetensors")
    assert meta["epoch"] == 4 and meta["iteration"] == 160


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(small, tmp_path):
    calls = {"n": 0}

    def loss_fn(logits, t):
        calls["n"] += 1
        loss = F.cross_entropy(logits, t)
        return loss * float("nan") if calls["n"] == 60 else loss  # iteration 60 is in epoch 2

    model = MLP(784, (16,), 10, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDiverged, match="nan at epoch 2, iteration 60.*last good checkpoint"):
        fit(model, opt, small[0], small[1], epochs=3, batch_size=50, loss_fn=loss_fn,
            checkpoint=tmp_path / "c.safetensors")
    _, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert meta["epoch"] == 1 and meta["iteration"] == 40


def test_early_stopping_stops_when_test_accuracy_stalls(small):
    model = MLP(784, (16,), 10, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.0)  # never improves after the first epoch
    history = fit(model, opt, small[0], small[1], epochs=10, batch_size=100, early_stopping=2)
    assert history.stopped_early and len(history) == 3


def test_fit_by_iterations_stops_mid_epoch(small):
    model = MLP(784, (16,), 10, seed=0)
    history = fit(model, optim.SGD(model.parameters(), lr=0.1), small[0], None, iterations=50, batch_size=100)
    assert [r.iterations for r in history.records] == [20, 40, 50]
    assert history[-1].test_accuracy is None


def test_confusion_matrix_and_evaluate():
    m = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]

    class Fixed:
        training = False

        def eval(self):
            pass

        def train(self, mode=True):
            pass

        def __call__(self, x):
            from zerograd import Tensor

            return Tensor(np.eye(3, dtype=np.float32)[x.data[:, 0].astype(int)])

    result = evaluate(Fixed(), np.array([[0], [1], [1], [2]], dtype=np.float32), np.array([0, 1, 2, 2]))
    assert (result["correct"], result["total"], result["accuracy"]) == (3, 4, 0.75)
    assert result["per_class_accuracy"] == [1.0, 1.0, 0.5]


def test_reporters(small):
    stream = io.StringIO()
    model = MLP(784, (16,), 10, seed=0)
    fit(model, optim.SGD(model.parameters(), lr=0.1), small[0], small[1], epochs=2, batch_size=100,
        reporter=LineReporter(stream))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ") and "test acc" in lines[1]
    assert type(default_reporter(quiet=True)).__name__ == "Reporter"
    assert isinstance(default_reporter(stream=io.StringIO()), LineReporter)  # not a terminal: plain lines


def test_resuming_a_run_that_stopped_early_trains_nothing(small, tmp_path):
    model = MLP(784, (16,), 10, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.0)
    fit(model, opt, small[0], small[1], epochs=10, batch_size=100, early_stopping=1, checkpoint=tmp_path / "c")
    again = MLP(784, (16,), 10, seed=1)
    history = fit(again, optim.SGD(again.parameters(), lr=0.1), small[0], small[1], epochs=10, batch_size=100,
                  early_stopping=1, resume=tmp_path / "c")
    assert len(history) == 2 and history.stopped_early
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf weights: NumPy warns, fit raises
def test_weights_that_blow_up_are_not_checkpointed(small, tmp_path):
    model = MLP(784, (16,), 10, seed=0)
    calls = {"n": 0}

    def loss_fn(logits, t):
        loss = F.cross_entropy(logits, t)
        calls["n"] += 1
        if calls["n"] == 8:  # the last step of epoch 2 (4 steps an epoch) leaves infinite weights behind
            for p in model.parameters():
                p.data[...] = np.inf
        return loss

    with pytest.raises(TrainingDiverged, match="test loss became nan after epoch 2.*last good checkpoint"):
        fit(model, optim.SGD(model.parameters(), lr=0.1), small[0], small[1], epochs=3, batch_size=500,
            loss_fn=loss_fn, checkpoint=tmp_path / "c")
    state, meta = load_checkpoint(tmp_path / "c")
    assert meta["epoch"] == 1 and all(np.isfinite(v).all() for v in state.values())


def test_evaluate_names_labels_the_model_cannot_produce(small):
    from zerograd.errors import ShapeError

    model = MLP(784, (16,), 10, seed=0)
    with pytest.raises(ShapeError, match="labels run from 0 to 12 but the model has 10 classes"):
        evaluate(model, small[1][0][:3], np.array([0, 1, 12]))


def _augmented(small, tmp_path, name, train_data=None, **kwargs):
    """A small run with augmentation: fit's own loader prepares batches in a worker thread unless given one."""
    model = MLP(784, (32,), 10, dropout=0.2, seed=7)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    history = fit(model, opt, train_data or small[0], small[1], batch_size=100, seed=3,
                  transform=RandomAffine(2, 10, seed=4), checkpoint=tmp_path / name, **kwargs)
    return model, history, load_checkpoint(tmp_path / name)[1]


def test_augmented_fit_prefetches_and_equals_a_run_without_workers(small, tmp_path):
    import threading

    plain_loader = DataLoader(TensorDataset(*small[0]), batch_size=100, shuffle=True, seed=3,
                              transform=RandomAffine(2, 10, seed=4))
    # 50 iterations: the run ends in the middle of epoch 3, where a worker thread had batches ready ahead
    for kwargs in ({"iterations": 50}, {"epochs": 2}):
        plain_loader.generator.bit_generator.state = np.random.default_rng(3).bit_generator.state
        plain_loader.transform.generator.bit_generator.state = np.random.default_rng(4).bit_generator.state
        plain, plain_history, plain_meta = _augmented(small, tmp_path, "plain.safetensors", plain_loader, **kwargs)
        ahead, history, meta = _augmented(small, tmp_path, "ahead.safetensors", **kwargs)
        for (name, a), (_, b) in zip(plain.state_dict().items(), ahead.state_dict().items()):
            assert np.array_equal(a, b), name
        assert history.column("loss") == plain_history.column("loss")
        assert meta["generators"] == plain_meta["generators"]  # shuffling, augmentation and dropout alike
        assert not [t for t in threading.enumerate() if t.name.startswith("zerograd-DataLoader-worker")]


def test_augmented_resume_equals_uninterrupted_run(small, tmp_path):
    full, full_history, _ = _augmented(small, tmp_path, "full.safetensors", epochs=3)
    _augmented(small, tmp_path, "half.safetensors", epochs=2)
    resumed, history, meta = _augmented(small, tmp_path, "half.safetensors", epochs=3,
                                        resume=tmp_path / "half.safetensors")
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert np.array_equal(a, b), name
    assert history.column("loss") == full_history.column("loss") and meta["epoch"] == 3
