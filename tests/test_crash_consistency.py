"""Crash consistency: kill `zerograd train` at any moment and resume; full disks; concurrent downloads."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from _fuzz import TRIED
from _small_mnist import child_env, write_small_mnist, zerograd_command

import zerograd.io.atomic
from zerograd import optim
from zerograd.cli import main
from zerograd.datasets.idx import idx_bytes
from zerograd.errors import ZerogradError
from zerograd.io import load_model_file
from zerograd.models import MLP
from zerograd.training import fit

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and /proc are POSIX")

EPOCHS = 12


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_small_mnist(tmp_path_factory.mktemp("small-mnist"), train=1000, test=200)


def _fresh_args(data: Path, out: Path) -> list[str]:
    # 256 hidden units: a 2.4 MB checkpoint (weights and Adam's moments), a write long enough to be hit.
    return ["train", "--data", str(data), "--hidden", "256", "--epochs", str(EPOCHS), "--batch-size", "100",
            "--seed", "3", "--out", str(out / "model.safetensors"), "--quiet"]


def _start(data: Path, out: Path) -> subprocess.Popen:
    """A fresh run, or a resumed one once a checkpoint exists: what a user does after a crash."""
    checkpoint = out / "model.checkpoint.safetensors"
    args = ["train", "--resume", str(checkpoint), "--quiet"] if checkpoint.exists() else _fresh_args(data, out)
    return subprocess.Popen(zerograd_command(*args), env=child_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _temp_files(out: Path) -> set[str]:
    return {n for n in os.listdir(out) if n.startswith(".") and n.endswith(".tmp")}


def _kill_during_a_write(proc: subprocess.Popen, out: Path, stale: set[str], skip: int) -> bool:
    """SIGKILL as soon as a new temporary file shows up (a checkpoint or model being written), after `skip` writes."""
    seen: set[str] = set()
    while proc.poll() is None:
        new = _temp_files(out) - stale - seen
        if new and len(seen) >= skip:
            proc.send_signal(signal.SIGKILL)
            return True
        seen |= new
    return False


def _kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        return True


def _check_nothing_half_written(out: Path) -> None:
    """Every file under its final name is complete; the only other files are hidden temporaries."""
    for name in os.listdir(out):
        path = out / name
        if name.endswith(".safetensors"):
            arrays, meta = load_model_file(path)  # raises on a truncated or damaged file
            assert arrays and meta["kind"] in ("model", "checkpoint"), name
        elif name.endswith(".history.json"):
            assert len(json.loads(path.read_text())["epochs"]) == EPOCHS
        elif name.endswith(".history.csv"):
            assert len(path.read_text().splitlines()) == EPOCHS + 1
        else:
            assert name.startswith(".") and name.endswith(".tmp"), name


def test_killed_at_random_moments_and_resumed_ends_bit_identical(data, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    start = time.perf_counter()
    subprocess.run(zerograd_command(*_fresh_args(data, reference)), env=child_env(), check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    duration = time.perf_counter() - start

    expected, _ = load_model_file(reference / "model.safetensors")
    rng = random.Random(13)
    kills = mid_write = 0
    # A run can finish before enough kills landed (a fast disk makes writes short): then kill a fresh one.
    for campaign in range(3):
        out = tmp_path / f"killed-{campaign}"
        out.mkdir()
        for attempt in range(12):  # even attempts aim at a write, odd ones at a random moment
            stale = _temp_files(out)
            proc = _start(data, out)
            if attempt % 2 == 0:
                killed = _kill_during_a_write(proc, out, stale, skip=rng.randrange(3))
            else:
                killed = _kill_after(proc, rng.uniform(0.25, 0.75) * duration)
            proc.wait(timeout=300)
            if not killed:
                assert proc.returncode == 0, proc.stderr.read().decode()
                break
            kills += 1
            mid_write += bool(_temp_files(out) - stale)  # the kill left a temporary file: it hit a write
            _check_nothing_half_written(out)
        else:  # never finished on its own: finish it now
            proc = _start(data, out)
            assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
        _check_nothing_half_written(out)
        got, meta = load_model_file(out / "model.safetensors")
        assert got.keys() == expected.keys()
        for key in expected:
            assert got[key].tobytes() == expected[key].tobytes(), key  # bit for bit
        assert meta["training"]["results"]["epochs"] == EPOCHS
        if kills >= 4 and mid_write >= 1:
            break
    TRIED["train: SIGKILL"] += kills
    TRIED["train: SIGKILL during a write"] += mid_write
    assert kills >= 4 and mid_write >= 1, (kills, mid_write)


class _DiskFull:
    """os.fdopen stand-in whose files take half of what is written, then fail as a full disk does."""

    def __init__(self, error: int) -> None:
        self.real, self.error = os.fdopen, error

    def __call__(self, fd: int, *args, **kwargs):
        real, error = self.real(fd, *args, **kwargs), self.error

        class Full:
            def write(self, data):
                real.write(data[: len(data) // 2])
                raise OSError(error, os.strerror(error))

            def __getattr__(self, name):
                return getattr(real, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                real.close()

        return Full()


def _train(x, t, epochs: int, **kwargs):
    model = MLP(784, [16], 10, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    fit(model, optimizer, (x, t), epochs=epochs, batch_size=50, seed=1, **kwargs)
    return model


@pytest.mark.parametrize("error,hint", [(errno.ENOSPC, "the disk is full"),
                                        (errno.EROFS, "the folder is on a read-only file system")])
def test_a_full_or_read_only_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error, hint):
    rng = np.random.default_rng(0)
    x, t = rng.random((200, 784), dtype=np.float32), rng.integers(0, 10, 200)
    checkpoint = tmp_path / "run.checkpoint.safetensors"
    _train(x, t, 2, checkpoint=checkpoint)
    before = checkpoint.read_bytes()

    with monkeypatch.context() as m:
        m.setattr(zerograd.io.atomic.os, "fdopen", _DiskFull(error))
        with pytest.raises(ZerogradError) as info:
            _train(x, t, 3, checkpoint=checkpoint, resume=checkpoint)
    message = str(info.value)
    assert f"cannot write the model file {checkpoint}: {os.strerror(error)}; {hint}" in message
    assert "the previous file under that name, if any, is unchanged" in message
    assert checkpoint.read_bytes() == before  # intact, and nothing else left in the folder
    assert sorted(os.listdir(tmp_path)) == [checkpoint.name]

    # With space again, the run resumes from the kept checkpoint and ends as an uninterrupted one.
    resumed = _train(x, t, 3, checkpoint=checkpoint, resume=checkpoint)
    straight = _train(x, t, 3)
    for (name, a), (_, b) in zip(resumed.state_dict().items(), straight.state_dict().items()):
        assert a.tobytes() == b.tobytes(), name


def test_cli_reports_a_read_only_folder_in_one_line(data, tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(zerograd.io.atomic.tempfile, "mkstemp", read_only)
    out = tmp_path / "model.safetensors"
    code = main(["train", "--data", str(data), "--hidden", "8", "--epochs", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("zerograd train: error: cannot write the model file ")
    assert "Read-only file system; the folder is on a read-only file system: write elsewhere" in err
    assert not any(tmp_path.iterdir())


class _SlowHandler(BaseHTTPRequestHandler):
    """Serves server.files slowly (so that two downloads overlap), counting requests per file."""

    def do_GET(self):
        name = self.path.lstrip("/").split("/")[-1]
        body = self.server.files.get(name)
        with self.server.lock:
            self.server.requests[name] = self.server.requests.get(name, 0) + 1
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(0, len(body), len(body) // 8 + 1):
            self.wfile.write(body[i : i + len(body) // 8 + 1])
            self.wfile.flush()
            time.sleep(0.03)

    def log_message(self, *args):
        pass


def test_two_processes_downloading_the_same_dataset_end_with_one_verified_copy(tmp_path):
    import gzip

    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 60, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 20, dtype=np.uint8)}
    files = {f"{stem}.gz": gzip.compress(idx_bytes(a), mtime=0) for stem, a in arrays.items()}
    md5s = {name: hashlib.md5(body).hexdigest() for name, body in files.items()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.files, server.requests, server.lock = files, {}, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        code = ("import json, sys\nimport zerograd.datasets as zd\n"
                "zd.download_dataset('kmnist', sys.argv[1], base_url=sys.argv[2], checksums=json.loads(sys.argv[3]),"
                " progress=False)\n")
        argv = [sys.executable, "-c", code, str(tmp_path), url, json.dumps(md5s)]
        procs = [subprocess.Popen(argv, env=child_env(), stderr=subprocess.PIPE) for _ in range(2)]
        for proc in procs:
            assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    folder = tmp_path / "kmnist"
    assert sorted(os.listdir(folder)) == sorted(files)  # no .part, no temporary, no lock file
    for name, body in files.items():
        assert (folder / name).read_bytes() == body
    # The second process waited for the first and found its verified files: each was fetched once.
    assert server.requests == {name: 1 for name in files}


class _EndlessHandler(BaseHTTPRequestHandler):
    """A server that streams zeros without end (no Content-Length), or announces an enormous length."""

    def do_GET(self):
        self.send_response(200)
        if self.path.endswith("announced"):
            self.send_header("Content-Length", str(10**12))
        self.end_headers()
        try:
            while True:
                self.wfile.write(bytes(1 << 16))
        except OSError:  # the client hung up, as it should
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("path", ["endless", "announced"])
def test_a_server_sending_without_end_is_cut_off(tmp_path, monkeypatch, path):
    import zerograd.datasets.download as download
    from zerograd.errors import DownloadError

    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1 << 20)  # the real limit is 2 GiB
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{path}"
        with pytest.raises(DownloadError, match="is larger than 1,048,576 bytes"):
            download.download_file(url, tmp_path / "file.gz", progress=False, timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []  # neither the file nor a .part
