"""zerograd.training.train(TrainConfig): what `zerograd train` does, from Python, with the command's own errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from _small_mnist import write_small_mnist

from zerograd.cli import main
from zerograd.errors import ZerogradError
from zerograd.io import load_model_file
from zerograd.training import TrainConfig, TrainResult, train
from zerograd.training.config import InvalidSetting


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """300 training and 100 test digits in MNIST's IDX format."""
    return str(write_small_mnist(tmp_path_factory.mktemp("small") / "data", train=300, test=100))


@pytest.mark.slow
def test_train_and_the_command_end_with_bit_identical_weights(tmp_path, monkeypatch, capsys):
    """One epoch of the default MLP on the bundled MNIST, once from Python and once from the command line."""
    (tmp_path / "api").mkdir()
    (tmp_path / "cli").mkdir()
    monkeypatch.chdir(tmp_path / "api")
    result = train(TrainConfig(epochs=1, seed=0))
    monkeypatch.chdir(tmp_path / "cli")
    assert main(["train", "--epochs", "1", "--seed", "0", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)

    api_arrays, api_meta = load_model_file(tmp_path / "api" / result.model_path)
    cli_arrays, cli_meta = load_model_file(tmp_path / "cli" / printed["model_path"])
    assert sorted(api_arrays) == sorted(cli_arrays)
    for name in api_arrays:
        assert api_arrays[name].tobytes() == cli_arrays[name].tobytes(), name
    assert api_meta["training"]["settings"] | {"out": None} == cli_meta["training"]["settings"] | {"out": None}
    assert result.results["test_accuracy"] == printed["test_accuracy"] > 0.95
    for name, p in result.model.state_dict().items():  # the returned model is the one written
        assert np.array_equal(p, api_arrays[name])


def test_train_returns_the_model_history_and_files(small, tmp_path):
    out = tmp_path / "run" / "m.safetensors"
    result = train(TrainConfig(data=small, hidden="16", epochs=2, out=str(out)))
    assert isinstance(result, TrainResult)
    assert result.model_path == out and out.is_file()
    assert result.checkpoint_path == tmp_path / "run" / "m.checkpoint.safetensors" and result.checkpoint_path.is_file()
    assert result.history_path == tmp_path / "run" / "m.history.json"
    assert json.loads(result.history_path.read_text())["epochs"][-1]["epoch"] == 2
    assert (tmp_path / "run" / "m.history.csv").is_file()
    assert len(result.history) == result.results["epochs"] == 2
    assert result.results["test_accuracy"] == result.history[-1].test_accuracy
    # every default the model implies is filled in, and the file records exactly those settings
    assert result.config == TrainConfig(data=small, hidden="16", epochs=2, out=str(out), dropout=0.0,
                                        batch_size=128, augment=False)
    _, meta = load_model_file(out)
    assert meta["training"]["settings"] == result.config.settings()
    assert not result.stopped_early


def test_resume_from_python_continues_with_the_saved_settings(small, tmp_path):
    out = tmp_path / "m.safetensors"
    whole = train(TrainConfig(data=small, hidden="8", epochs=2, out=str(out)))
    checkpoint = str(whole.checkpoint_path)
    with pytest.raises(ZerogradError, match=r"drop --epochs \(or start a new run without --resume\)"):
        train(TrainConfig(resume=checkpoint, epochs=5))
    again = train(TrainConfig(resume=checkpoint))  # nothing left to do: the run had ended at epoch 2
    assert again.config.settings() == whole.config.settings()
    assert len(again.history) == 2


@pytest.mark.parametrize(
    "settings, flags",
    [
        ({"dropout": 1.5}, ["--dropout", "1.5"]),
        ({"seed": -1}, ["--seed", "-1"]),
        ({"lr": float("inf")}, ["--lr", "inf"]),
        ({"early_stopping": 0}, ["--early-stopping", "0"]),
        ({"hidden": "a,b"}, ["--hidden", "a,b"]),
        ({"batch_size": 0}, ["--batch-size", "0"]),
        ({"epochs": 0}, ["--epochs", "0"]),
        ({"model": "simple-cnn", "hidden": "8", "dropout": 0.1}, ["--model", "simple-cnn", "--hidden", "8",
                                                                   "--dropout", "0.1"]),
    ],
)
def test_validate_says_what_the_command_says(settings, flags, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidSetting) as caught:
        TrainConfig(**settings).validate()
    assert main(["train", *flags]) == 1
    assert capsys.readouterr().err == f"zerograd train: error: {caught.value}\n"


@pytest.mark.parametrize(
    "settings, setting",
    [
        ({"optimizer": "idam"}, "optimizer"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"seed": True}, "seed"),
        ({"epochs": 3, "iterations": 100}, "iterations"),
        ({"augment": "yes"}, "augment"),
        ({"weight_decay": float("nan")}, "weight_decay"),
    ],
)
def test_validate_refuses_values_no_command_line_can_give(settings, setting):
    with pytest.raises(InvalidSetting) as caught:
        TrainConfig(**settings).validate()
    assert caught.value.setting == setting
    assert f"--{setting.replace('_', '-')}" in str(caught.value)


def test_validate_fills_in_the_defaults_each_model_implies():
    mlp = TrainConfig().validate()
    assert (mlp.hidden, mlp.dropout, mlp.batch_size, mlp.augment, mlp.epochs) == ("256,128", 0.0, 128, False, 10)
    deep = TrainConfig(model="deep-cnn", iterations=50).validate()
    assert (deep.hidden, deep.dropout, deep.batch_size, deep.augment, deep.epochs) == (None, 0.5, 100, True, None)
    given = TrainConfig(model="simple-cnn", batch_size=32, augment=True)
    assert given.validate() == dataclasses.replace(given, dropout=0.0, epochs=10)
    assert TrainConfig().given_settings() == []
    assert TrainConfig(epochs=3, weight_decay=0.1, plot="x.png").given_settings() == ["--weight-decay", "--epochs"]


@pytest.mark.parametrize("model", ["mlp", "simple-cnn", "deep-cnn"])
def test_validate_accepts_what_it_returns(model):
    """--resume validates a checkpoint's settings, which a first validate() filled in."""
    once = TrainConfig(model=model).validate()
    assert once.validate() == once
