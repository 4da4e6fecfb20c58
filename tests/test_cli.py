"""The `zerograd` command: train, evaluate, predict, and one clear line for every user error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _small_mnist import write_small_mnist
from PIL import Image

import zerograd
from zerograd import optim
from zerograd.cli import main
from zerograd.datasets import load_mnist, write_idx
from zerograd.models import MLP, load_model, save_model
from zerograd.training import fit


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def zerograd_cmd(*argv, timeout=300):
    return subprocess.run([sys.executable, "-m", "zerograd", *argv], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """A folder of MNIST-format IDX files: 3,000 training and 1,000 test images."""
    folder = tmp_path_factory.mktemp("small-mnist")
    (x, t), (xt, tt) = load_mnist(normalize=False, flatten=False)
    write_idx(folder / "train-images-idx3-ubyte.gz", x[:3000, 0])
    write_idx(folder / "train-labels-idx1-ubyte.gz", t[:3000].astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", xt[:1000, 0])  # raw and gzip both load
    write_idx(folder / "t10k-labels-idx1-ubyte", tt[:1000].astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An MLP trained for 3 epochs on full MNIST (about 0.97 test accuracy)."""
    (x, t), (xt, tt) = load_mnist()
    model = MLP(784, (128,), 10, seed=0)
    fit(model, optim.Adam(model.parameters(), lr=1e-3), (x, t), None, epochs=3, batch_size=100)
    path = tmp_path_factory.mktemp("model") / "mlp.safetensors"
    save_model(model, path)
    return path


def test_version_and_help():
    result = zerograd_cmd("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"zerograd {zerograd.__version__}"
    result = zerograd_cmd("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict"):
        assert command in result.stdout


def test_evaluate_pretrained_book_ch3(capsys):
    code, out, _ = run(capsys, "evaluate", "pretrained:book-ch3")
    assert code == 0
    assert out.splitlines()[0] == "accuracy: 0.9352 (9352/10000)"
    assert "confusion matrix" in out
    code, out, _ = run(capsys, "evaluate", "pretrained:book-ch3", "--json", "--batch-size", "1")
    result = json.loads(out)
    assert code == 0 and (result["accuracy"], result["correct"], result["total"]) == (0.9352, 9352, 10000)
    assert len(result["per_class_accuracy"]) == 10 and sum(map(sum, result["confusion_matrix"])) == 10000
    assert result["confusion_matrix"][0][0] == 962


def test_evaluate_book_pickle(capsys, book_weights, tmp_path):
    code, out, _ = run(capsys, "evaluate", str(book_weights), "--arch", "book-ch3", "--batch-size", "100",
                       "--plot", str(tmp_path / "cm.png"))
    assert code == 0 and out.startswith("accuracy: 0.9352 (9352/10000)")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_evaluate_round_trip_on_a_folder(capsys, small_folder, tmp_path):
    out_path = tmp_path / "run" / "model.safetensors"
    code, out, err = run(capsys, "train", "--data", str(small_folder), "--hidden", "64", "--epochs", "3",
                         "--optimizer", "momentum", "--lr", "0.05", "--batchnorm", "--dropout", "0.1",
                         "--out", str(out_path), "--plot", str(tmp_path / "curves.png"), "--json", "--quiet")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert result["model_path"] == str(out_path) and result["epochs"] == 3 and result["iterations"] == 3 * 24
    assert result["test_accuracy"] > 0.85 and result["train_seconds"] > 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((tmp_path / "run" / "model.history.json").read_text())
    assert history["epochs"][-1]["test_accuracy"] == result["test_accuracy"]
    assert (tmp_path / "run" / "model.history.csv").exists()
    # the model file needs no other flag
    code, out, _ = run(capsys, "evaluate", str(out_path), "--data", str(small_folder), "--json")
    assert code == 0 and json.loads(out)["accuracy"] == result["test_accuracy"]
    model, meta = load_model(out_path)
    assert meta["config"]["hidden"] == [64] and meta["config"]["batchnorm"] is True
    assert meta["training"]["settings"]["optimizer"] == "momentum"


def test_resume_after_an_interruption_equals_an_uninterrupted_run(small_folder, tmp_path):
    common = ["--data", str(small_folder), "--hidden", "48", "--epochs", "8", "--dropout", "0.2", "--seed", "5",
              "--quiet"]
    assert zerograd_cmd("train", *common, "--out", str(tmp_path / "full.safetensors")).returncode == 0
    # start the same run, kill it once its first checkpoint exists, then resume it
    ckpt = tmp_path / "cut.checkpoint.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "zerograd", "train", *common,
                             "--out", str(tmp_path / "cut.safetensors")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    assert zerograd_cmd("train", "--resume", str(ckpt), "--quiet").returncode == 0
    full, _ = load_model(tmp_path / "full.safetensors")
    cut, _ = load_model(tmp_path / "cut.safetensors")
    for (name, a), (_, b) in zip(full.state_dict().items(), cut.state_dict().items()):
        assert np.array_equal(a, b), name


def _save_variants(folder: Path, digits: np.ndarray) -> dict[str, list[Path]]:
    variants: dict[str, list[Path]] = {"png": [], "inverted": [], "resized": [], "jpeg": []}
    for i, d in enumerate(digits):
        img = Image.fromarray(d)
        variants["png"].append(folder / f"{i}.png")
        img.save(variants["png"][-1])
        variants["inverted"].append(folder / f"{i}-inv.png")
        Image.fromarray(255 - d).save(variants["inverted"][-1])
        canvas = Image.new("L", (300, 200), 255)  # dark digit on a large light page, off centre
        canvas.paste(Image.fromarray(255 - d).resize((140, 140), Image.BICUBIC), (120, 40))
        variants["resized"].append(folder / f"{i}-big.png")
        canvas.save(variants["resized"][-1])
        variants["jpeg"].append(folder / f"{i}.jpg")
        img.resize((56, 56), Image.BICUBIC).convert("RGB").save(variants["jpeg"][-1], quality=90)
    return variants


def test_predict_recovers_mnist_labels_from_image_files(capsys, trained, tmp_path):
    _, (xt, tt) = load_mnist(normalize=False, flatten=False)
    digits, labels = xt[:40, 0], tt[:40]
    for name, files in _save_variants(tmp_path, digits).items():
        code, out, _ = run(capsys, "predict", str(trained), *map(str, files), "--json")
        assert code == 0
        results = json.loads(out)
        assert [r["file"] for r in results] == list(map(str, files))
        predicted = np.array([r["label"] for r in results])
        # measured here: 39/40 for png, inverted and jpeg, 40/40 for the large canvas
        assert (predicted == labels).sum() >= 37, name
        assert all(abs(sum(r["probabilities"]) - 1) < 1e-4 for r in results)
    code, out, _ = run(capsys, "predict", str(trained), str(tmp_path / "0.png"))
    assert code == 0 and out.startswith(f"{tmp_path / '0.png'}: {labels[0]} (")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "missing.safetensors"], "does not exist"),
        (["evaluate", "{book}"], "--arch book-ch3"),
        (["evaluate", "{text}"], "notes.txt"),
        (["evaluate", "pretrained:book-ch3", "--data", "{empty}"], "train-images-idx3-ubyte"),
        (["evaluate", "pretrained:book-ch3", "--data", "{tiny}"], "expects 784 input features"),
        (["predict", "pretrained:book-ch3", "{text}"], "notes.txt"),
        (["predict", "pretrained:book-ch3", "nowhere.png"], "nowhere.png"),
        (["train", "--hidden", "a,b"], "--hidden"),
        (["train", "--resume", "{text}"], "notes.txt"),
        (["train", "--resume", "{text}", "--epochs", "5"], "drop --epochs"),
        (["train", "--out", "{empty}"], "is a folder"),
        (["train", "--early-stopping", "0"], "--early-stopping"),
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--lr", "inf"], "--lr"),
        (["train", "--threads", "0"], "--threads"),
        (["train", "--optimizer", "sgd", "--lr", "1e30", "--hidden", "8", "--data", "{tiny}"], "loss became"),
    ],
)
def test_user_errors_are_one_line_without_traceback(capsys, tmp_path, monkeypatch, book_weights, argv, message):
    monkeypatch.chdir(tmp_path)  # a train run's default output folder lands here
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    (tmp_path / "empty").mkdir()
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("t10k", 10)):
        write_idx(tiny / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 14, 14), dtype=np.uint8))
        write_idx(tiny / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    names = {"book": book_weights, "text": text, "empty": tmp_path / "empty", "tiny": tiny}
    argv = [a.format(**names) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"zerograd {argv[0]}: error: ") and message in err


def test_train_threads_sets_the_thread_count_for_the_run(capsys, tmp_path):
    """--threads is how the run computes, not what it trains: the count is set, the model file has no trace of it."""
    folder = write_small_mnist(tmp_path / "data", train=200, test=50)
    old = zerograd.get_num_threads()
    try:
        code, out, _ = run(capsys, "train", "--data", str(folder), "--hidden", "8", "--epochs", "1", "--quiet",
                           "--threads", "1", "--out", str(tmp_path / "m.safetensors"))
        assert code == 0 and zerograd.get_num_threads() == 1
    finally:
        zerograd.set_num_threads(old)
    _, meta = load_model(tmp_path / "m.safetensors")
    keys, pending = set(), [meta]
    while pending:  # every key of the metadata, nested ones too
        d = pending.pop()
        keys |= set(d)
        pending += [v for v in d.values() if isinstance(v, dict)]
    assert "data" in keys and "threads" not in keys


def test_bad_flags_exit_2_and_debug_shows_the_traceback(tmp_path):
    result = zerograd_cmd("train", "--no-such-flag")
    assert result.returncode == 2 and "unrecognized arguments: --no-such-flag" in result.stderr
    result = zerograd_cmd("evaluate", str(tmp_path / "missing.safetensors"), "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr


@pytest.mark.slow
def test_default_train_reaches_098(tmp_path):
    """The main job: `zerograd train` with no flags, on the bundled MNIST."""
    env = {**os.environ}
    result = subprocess.run([sys.executable, "-m", "zerograd", "train", "--json", "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["test_accuracy"] >= 0.98
    assert (tmp_path / summary["model_path"]).exists()


def test_train_sizes_the_network_to_the_data(capsys, tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("t10k", 20)):  # 14x14 images of 3 classes
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 14, 14), dtype=np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", rng.integers(0, 3, n, dtype=np.uint8))
    code, out, _ = run(capsys, "train", "--data", str(tmp_path), "--hidden", "8", "--epochs", "1", "--quiet",
                       "--out", str(tmp_path / "m.safetensors"))
    assert code == 0
    model, meta = load_model(tmp_path / "m.safetensors")
    assert (meta["config"]["input_size"], meta["config"]["num_classes"]) == (196, 3)
