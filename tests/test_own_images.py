"""Your own images through the command line: `zerograd train --data FOLDER` in its three forms, `evaluate --data
FOLDER` by class name, `predict` answering with class names, and the one-line errors of data that does not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _image_folders import CLASSES, make_class_folder, make_split_folder, texture, write_cifar_folder, write_image
from _small_mnist import write_small_mnist
from PIL import Image

from zerograd.cli import main
from zerograd.io import load_model_file
from zerograd.models import load_model
from zerograd.training import TrainConfig, train
from zerograd.training.data import load_run_data


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch):
    """Downloads and the decoded-folder cache go under tmp_path, never into the user's cache."""
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path / "cache"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory):
    """train/ (120 per class) and test/ (30 per class) of three texture classes, mixed sizes, PNG and JPEG."""
    return make_split_folder(tmp_path_factory.mktemp("textures"), 120, 30, seed=0)


@pytest.fixture(scope="module")
def trained(split_folder, tmp_path_factory):
    """simple-cnn trained on the split folder for 10 epochs (batch 10), and its results."""
    out = tmp_path_factory.mktemp("run") / "model.safetensors"
    result = train(TrainConfig(model="simple-cnn", data=str(split_folder), epochs=10, batch_size=10, seed=0,
                               out=str(out), image_size=24))
    return out, result


def test_a_split_folder_of_mixed_colour_images_trains(trained):
    out, result = trained
    assert result.results["test_accuracy"] >= 0.93  # 90 test images of 3 texture classes (measured 0.967)
    _, meta = load_model_file(out)
    data = meta["data"]
    assert data["classes"] == list(CLASSES)
    assert data["channels"] == 3 and data["image_size"] == [24, 24] and data["resized"] is True
    assert data["evaluation"] == "test"
    assert len(data["mean"]) == len(data["std"]) == 3
    assert all(0 < m < 1 for m in data["mean"]) and all(0 < s < 1 for s in data["std"])
    assert meta["config"]["input_shape"] == [3, 24, 24]


def test_the_training_set_is_normalised_per_channel(split_folder):
    run = load_run_data(str(split_folder), image_size=24)
    assert run.x_train.dtype == np.float32 and run.x_train.shape == (360, 3, 24, 24)
    assert run.x_test.shape == (90, 3, 24, 24)
    np.testing.assert_allclose(run.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(run.x_train.std(axis=(0, 2, 3)), 1, atol=1e-3)
    assert np.bincount(run.t_train).tolist() == [120, 120, 120]


def test_evaluate_reports_accuracy_per_class_name(trained, split_folder, capsys):
    out, result = trained
    code, text, _ = run(capsys, "evaluate", out, "--data", split_folder, "--json")
    assert code == 0
    report = json.loads(text)
    assert report["classes"] == list(CLASSES)
    assert report["total"] == 90
    assert report["accuracy"] == pytest.approx(result.results["test_accuracy"])
    code, text, _ = run(capsys, "evaluate", out, "--data", split_folder)
    assert code == 0
    assert "per-class accuracy: horizontal:" in text and " plain:" in text and " vertical:" in text


def test_predict_answers_with_the_class_name(trained, tmp_path, capsys):
    out, _ = trained
    rng = np.random.default_rng(7)
    files = []
    for kind in CLASSES:
        pixels = texture(kind, rng, 50, 37)  # a size none of the training images had
        files.append(write_image(tmp_path / kind, pixels, np.random.default_rng(0)))  # PNG
    code, text, _ = run(capsys, "predict", out, *files, "--json")
    assert code == 0
    answers = json.loads(text)
    assert [a["class"] for a in answers] == list(CLASSES)
    assert all(len(a["probabilities"]) == 3 for a in answers)
    code, text, _ = run(capsys, "predict", out, files[0])
    assert text.startswith(f"{files[0]}: horizontal (")


def test_a_class_folder_holds_out_a_stratified_share(tmp_path):
    folder = make_class_folder(tmp_path / "classes", 20, seed=3)
    run = load_run_data(str(folder), image_size=16, val_split=0.25, seed=0)
    assert np.bincount(run.t_test).tolist() == [5, 5, 5]
    assert np.bincount(run.t_train).tolist() == [15, 15, 15]
    again = load_run_data(str(folder), image_size=16, val_split=0.25, seed=0)
    np.testing.assert_array_equal(run.x_test, again.x_test)  # the same seed holds out the same images
    other = load_run_data(str(folder), image_size=16, val_split=0.25, seed=1)
    assert not np.array_equal(run.x_test, other.x_test)
    assert run.info["evaluation"] == "0.25 held out"


def test_train_on_a_class_folder_from_the_command_line(tmp_path, capsys):
    folder = make_class_folder(tmp_path / "classes", 50, seed=4)
    out = tmp_path / "m.safetensors"
    code, text, _ = run(capsys, "train", "--data", folder, "--model", "simple-cnn", "--epochs", "8", "--batch-size",
                        "10", "--val-split", "0.2", "--image-size", "16", "--out", out, "--json", "--quiet")
    assert code == 0
    result = json.loads(text)
    assert result["test_accuracy"] >= 0.8  # 16x16 textures, 30 held-out images
    model, meta = load_model(out)
    assert meta["data"]["image_size"] == [16, 16]
    assert meta["training"]["settings"]["val_split"] == 0.2


def test_images_that_share_a_size_keep_it_and_grey_images_keep_one_channel(tmp_path):
    rng = np.random.default_rng(0)
    for kind in CLASSES:
        (tmp_path / "grey" / kind).mkdir(parents=True)
        for i in range(6):
            grey = texture(kind, rng, 20, 18).mean(axis=2).astype(np.uint8)
            Image.fromarray(grey, "L").save(tmp_path / "grey" / kind / f"{i}.png")
    run = load_run_data(str(tmp_path / "grey"), image_size=32, val_split=0.5)
    assert run.x_train.shape[1:] == (1, 20, 18)
    assert run.info["channels"] == 1 and run.info["image_size"] == [20, 18] and run.info["resized"] is False


def test_a_model_that_does_not_fit_the_data_is_refused_in_one_line(trained, tmp_path, capsys):
    out, _ = trained
    code, _, err = run(capsys, "evaluate", out, "--data", "mnist")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "(3, 24, 24)" in lines[0]


def test_a_digit_model_is_refused_on_a_folder_of_images(tmp_path, split_folder, capsys):
    mnist = write_small_mnist(tmp_path / "idx", 500, 100)
    out = tmp_path / "digits.safetensors"
    assert run(capsys, "train", "--data", mnist, "--iterations", "5", "--out", out, "--quiet")[0] == 0
    code, _, err = run(capsys, "evaluate", out, "--data", split_folder)
    assert code != 0
    assert "records no image preprocessing" in err and len(err.strip().splitlines()) == 1


def test_a_bad_image_is_refused_or_skipped_and_counted(tmp_path, capsys):
    folder = make_split_folder(tmp_path / "photos", 12, 4, seed=5)
    bad = folder / "train" / "plain" / "broken.png"
    bad.write_bytes(Image.new("RGB", (30, 30)).tobytes()[:50])  # not an image at all
    out = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", "--data", folder, "--model", "mlp", "--epochs", "1", "--out", out)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0]
    assert not out.exists()
    code, text, err = run(capsys, "train", "--data", folder, "--model", "mlp", "--epochs", "1", "--out", out,
                          "--skip-bad-images", "--json", "--quiet")
    assert code == 0
    assert json.loads(text)["skipped_images"] == 1
    first = sorted((folder / "test" / "vertical").iterdir())[0]
    (folder / "test" / "vertical" / "cut.jpg").write_bytes(first.read_bytes()[:40])  # truncated
    code, _, err = run(capsys, "evaluate", out, "--data", folder)
    assert code != 0 and "cut.jpg" in err
    code, text, _ = run(capsys, "evaluate", out, "--data", folder, "--skip-bad-images", "--json")
    assert code == 0
    report = json.loads(text)
    assert report["skipped_images"] == 1 and report["total"] == 12


def test_cifar10_records_train_from_a_folder_and_from_the_cache(tmp_path, capsys):
    folder = write_cifar_folder(tmp_path / "downloads")
    out = tmp_path / "c.safetensors"
    code, text, _ = run(capsys, "train", "--data", folder, "--model", "simple-cnn", "--epochs", "4",
                        "--batch-size", "10", "--out", out, "--json", "--quiet")
    assert code == 0
    accuracy = json.loads(text)["test_accuracy"]
    assert accuracy >= 0.9  # 90 test records of three texture classes
    _, meta = load_model(out)
    data = meta["data"]
    assert data["source"] == "cifar10" and data["channels"] == 3 and data["image_size"] == [32, 32]
    assert data["classes"][:3] == list(CLASSES) and len(data["classes"]) == 10
    # --data cifar10 reads the copy under the data folder ($ZEROGRAD_DATA/cifar-10) without downloading
    cache = tmp_path / "cache" / "cifar-10"
    cache.mkdir(parents=True)
    folder.rename(cache / folder.name)
    code, text, _ = run(capsys, "evaluate", out, "--data", "cifar10", "--json")
    assert code == 0
    report = json.loads(text)
    assert report["accuracy"] == pytest.approx(accuracy) and report["classes"][:3] == list(CLASSES)


def test_cifar10_download_failure_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZEROGRAD_MIRROR", "http://127.0.0.1:9/")  # a refused port
    code, _, err = run(capsys, "train", "--data", "cifar10", "--epochs", "1", "--out", tmp_path / "m.safetensors")
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "cifar-10-binary.tar.gz" in err


def test_a_folder_of_idx_files_stays_one_whatever_else_it_holds(tmp_path):
    folder = write_small_mnist(tmp_path / "idx", 200, 50)
    make_class_folder(folder / "plots", 2)  # a sub-folder of images beside the IDX files
    run = load_run_data(str(folder))
    assert run.x_train.shape == (200, 1, 28, 28) and run.info["source"] == "idx" and run.info["mean"] is None
