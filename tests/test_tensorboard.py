"""TensorBoard logging: SummaryWriter's events read back by TensorBoard's own reader; `zerograd train --tensorboard`."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from _small_mnist import write_small_mnist
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

import zerograd as zg
from zerograd.cli import main
from zerograd.errors import ShapeError, ZerogradError
from zerograd.training import EpochRecord, Reporter, TrainConfig, train
from zerograd.utils.tensorboard import SummaryWriter


def read_events(folder):
    """TensorBoard's EventAccumulator over `folder`, keeping every event (size guidance 0 for all kinds)."""
    events = event_accumulator.EventAccumulator(
        str(folder), size_guidance={kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE})
    events.Reload()
    return events


def scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_scalars_read_back_exactly_with_their_steps_and_times(tmp_path):
    values = [0.1, 2.5, -3.0, 1e-7]
    with SummaryWriter(tmp_path) as writer:
        for step, v in enumerate(values):
            writer.add_scalar("loss/train", v, global_step=10 * step)
        writer.add_scalar("from/tensor", zg.tensor([0.75]), 3, walltime=1234.5)
        writer.add_scalar("from/numpy", np.float64(0.125), 4)
    events = read_events(tmp_path)
    # TensorBoard keeps a scalar as a float32 (simple_value), as PyTorch's writer writes it
    assert scalars(events, "loss/train") == [(10 * i, float(np.float32(v))) for i, v in enumerate(values)]
    assert scalars(events, "from/tensor") == [(3, 0.75)] and events.Scalars("from/tensor")[0].wall_time == 1234.5
    assert scalars(events, "from/numpy") == [(4, 0.125)]
    assert sorted(events.Tags()["scalars"]) == ["from/numpy", "from/tensor", "loss/train"]


def test_add_scalars_writes_one_run_per_tag(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars("loss", {"train": 1.0 / (step + 1), "test": 2.0 * step}, step)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["loss_test", "loss_train"]
    assert scalars(read_events(tmp_path / "loss_train"), "loss") == [(0, 1.0), (1, 0.5), (2, float(np.float32(1 / 3)))]
    assert scalars(read_events(tmp_path / "loss_test"), "loss") == [(0, 0.0), (1, 2.0), (2, 4.0)]


def test_histograms_hold_every_value_in_tensorflows_buckets(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.1, size=(64, 32)).astype(np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("weights", zg.tensor(weights), global_step=1)
        writer.add_histogram("auto", rng.uniform(-1, 1, 500), global_step=2, bins="auto")
        writer.add_histogram("merged", weights, global_step=3, max_bins=20)
    events = read_events(tmp_path)
    (event,) = events.Histograms("weights")
    h = event.histogram_value
    values = weights.astype(np.float64).ravel()
    assert event.step == 1 and h.num == values.size == sum(h.bucket)
    assert (h.min, h.max) == (values.min(), values.max())
    assert h.sum == pytest.approx(values.sum()) and h.sum_squares == pytest.approx(values @ values)
    # TensorFlow's default buckets (0 and +-1e-12 growing by 10% to 1e20), from just below the smallest value to
    # the largest; the first bucket is empty (TensorBoard reads right limits only: its limit is the next one's left)
    v, positive = 1e-12, []
    while v < 1e20:
        positive.append(v)
        v *= 1.1
    tensorflow = [-b for b in reversed(positive)] + [0.0] + positive
    first = tensorflow.index(h.bucket_limit[0])
    assert list(h.bucket_limit) == tensorflow[first:first + len(h.bucket_limit)]
    assert h.bucket_limit[0] <= values.min() < h.bucket_limit[1] and h.bucket_limit[-2] <= values.max()
    assert list(h.bucket) == [0, *np.histogram(values, bins=h.bucket_limit)[0].tolist()]
    auto = events.Histograms("auto")[0].histogram_value
    assert auto.num == sum(auto.bucket) == 500
    merged = events.Histograms("merged")[0].histogram_value
    assert merged.num == sum(merged.bucket) == values.size and len(merged.bucket) <= 20 + 1


def test_images_are_pngs_of_the_pixels(tmp_path):
    grey = np.linspace(0, 1, 2 * 3 * 5, dtype=np.float32).reshape(1, 6, 5)  # CHW: 1 channel, height 6, width 5
    rgb = np.arange(4 * 7 * 3, dtype=np.uint8).reshape(4, 7, 3) * 2  # HWC uint8
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("grey", zg.tensor(grey), global_step=0)
        writer.add_image("rgb", rgb, global_step=1, dataformats="HWC")
        writer.add_image("plain", grey[0] * 2 - 0.5, global_step=2, dataformats="HW")  # clipped to [0, 1]
    events = read_events(tmp_path)

    def decoded(tag):
        (event,) = events.Images(tag)
        pixels = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
        assert (event.height, event.width) == pixels.shape[:2]
        return event.step, pixels

    step, pixels = decoded("grey")
    expected = (grey[0] * 255).astype(np.uint8)  # PyTorch's conversion: * 255, clipped, truncated to uint8
    assert step == 0 and pixels.shape == (6, 5, 3) and all(np.array_equal(pixels[..., c], expected) for c in range(3))
    step, pixels = decoded("rgb")
    assert step == 1 and np.array_equal(pixels, rgb)
    step, pixels = decoded("plain")
    assert step == 2 and np.array_equal(pixels[..., 0], ((grey[0] * 2 - 0.5).clip(0, 1) * 255).astype(np.uint8))


@pytest.mark.parametrize("call, error, message", [
    (lambda w: w.add_scalar("x", np.ones(3)), ShapeError, "takes one value, got an array of shape (3,)"),
    (lambda w: w.add_histogram("h", []), ShapeError, "the values are empty"),
    (lambda w: w.add_histogram("h", [1.0, np.nan]), ZerogradError, "NaN or infinity"),
    (lambda w: w.add_image("i", np.zeros((2, 1, 4, 4))), ShapeError, "does not fit dataformats 'CHW'"),
    (lambda w: w.add_image("i", np.zeros((4, 4)), dataformats="CHW"), ShapeError, "does not fit"),
    (lambda w: w.add_image("i", np.zeros((2, 4, 4))), ShapeError, "2 channels"),
])
def test_wrong_values_raise_one_clear_error(tmp_path, call, error, message):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match=re.escape(message)):
            call(writer)


def test_a_file_as_log_dir_and_a_missing_package_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ZerogradError, match="it is a file; give a folder"):
        SummaryWriter(tmp_path / "taken")
    for name in ("tensorboard", "tensorboard.compat.proto", "tensorboard.summary.writer.event_file_writer"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ZerogradError, match=r'pip install "zerograd\[tensorboard\]"'):
        SummaryWriter(tmp_path / "runs")


def test_default_log_dir_is_runs_date_host_comment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_lr0.1") as writer:
        writer.add_scalar("x", 1.0)
    (folder,) = (tmp_path / "runs").iterdir()
    assert writer.get_logdir() == str(folder.relative_to(tmp_path)) and folder.name.endswith("_lr0.1")
    assert scalars(read_events(folder), "x") == [(0, 1.0)]


def test_purge_step_hides_what_a_crashed_run_wrote_after_it(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(5):
            writer.add_scalar("x", step, step)
    with SummaryWriter(tmp_path, purge_step=3) as writer:  # the restarted run, from step 3 on
        for step in range(3, 6):
            writer.add_scalar("x", 10 * step, step)
    assert scalars(read_events(tmp_path), "x") == [(0, 0), (1, 1), (2, 2), (3, 30), (4, 40), (5, 50)]


def test_importing_zerograd_does_not_import_tensorboard():
    code = "import sys, zerograd, zerograd.utils, zerograd.training, zerograd.cli; print('tensorboard' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def _per_epoch(history):
    """What TensorBoard holds for a history's epochs: {tag: [(epoch, value as float32)]}."""
    tags = {"loss/train": "loss", "accuracy/train": "train_accuracy", "loss/test": "test_loss",
            "accuracy/test": "test_accuracy", "lr": "lr"}
    return {tag: [(r["epoch"], float(np.float32(r[key]))) for r in history["epochs"]] for tag, key in tags.items()}


def test_train_tensorboard_logs_the_history_of_every_epoch(capsys, tmp_path):
    data = write_small_mnist(tmp_path / "data", train=300, test=100)
    out = tmp_path / "run" / "model.safetensors"
    code = main(["train", "--data", str(data), "--hidden", "16", "--iterations", "10", "--batch-size", "100",
                 "--lr", "0.01", "--tensorboard", str(tmp_path / "tb"), "--out", str(out), "--quiet"])
    assert code == 0
    history = json.loads((tmp_path / "run" / "model.history.json").read_text())
    assert len(history["epochs"]) == 4  # 10 iterations of 3 batches: epochs 1..4
    events = read_events(tmp_path / "tb")
    assert sorted(events.Tags()["scalars"]) == ["accuracy/test", "accuracy/train", "loss/test", "loss/train", "lr"]
    for tag, expected in _per_epoch(history).items():
        assert scalars(events, tag) == expected, tag
    assert scalars(events, "lr")[0] == (1, float(np.float32(0.01)))  # the cosine schedule starts at --lr


class _Interrupt(Exception):
    pass


class _StopAfter(Reporter):
    """Kills the run right after epoch `epoch` was reported, before its checkpoint is written."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def end_epoch(self, record: EpochRecord) -> None:
        if record.epoch == self.epoch:
            raise _Interrupt


def test_a_resumed_run_continues_the_same_log(tmp_path):
    data = write_small_mnist(tmp_path / "data", train=200, test=50)
    config = TrainConfig(data=str(data), hidden="8", epochs=5, batch_size=50, seed=3,
                         out=str(tmp_path / "m.safetensors"), tensorboard=str(tmp_path / "tb"))
    with pytest.raises(_Interrupt):  # epoch 3 reaches TensorBoard, its checkpoint is never written
        train(config, reporter=_StopAfter(3))
    before = read_events(tmp_path / "tb")
    assert [step for step, _ in scalars(before, "loss/train")] == [1, 2, 3]
    result = train(TrainConfig(resume=str(tmp_path / "m.checkpoint.safetensors"), tensorboard=str(tmp_path / "tb")))
    assert [r.epoch for r in result.history.records] == [1, 2, 3, 4, 5]
    events = read_events(tmp_path / "tb")
    history = json.loads(result.history_path.read_text())
    for tag, expected in _per_epoch(history).items():  # epoch 3 once: the resumed run's, from the checkpoint on
        assert scalars(events, tag) == expected, tag
