"""Resources: a long training's memory stays flat, and every step's graph is freed."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from _small_mnist import child_env, write_small_mnist, zerograd_command

import zerograd.functional as F
from zerograd import optim
from zerograd.models import MLP
from zerograd.tensor import graph_nodes
from zerograd.training import fit

EPOCHS = 20


def _rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` now (Linux /proc)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from Linux /proc")
def test_memory_of_a_long_training_stays_flat(tmp_path):
    data = write_small_mnist(tmp_path / "data", train=3000, test=500)
    args = ["train", "--data", str(data), "--hidden", "64", "--epochs", str(EPOCHS), "--batch-size", "100",
            "--out", str(tmp_path / "run" / "model.safetensors")]
    # Not --quiet: with stderr a pipe, the CLI prints one line per epoch; memory is read at each line.
    proc = subprocess.Popen(zerograd_command(*args), env=child_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    rss: dict[int, int] = {}
    for line in proc.stderr:
        match = re.match(rf"epoch (\d+)/{EPOCHS}\b", line)
        if match:
            try:
                rss[int(match.group(1))] = _rss_bytes(proc.pid)
            except (FileNotFoundError, ProcessLookupError):  # the last epoch's line can outlive the process
                pass
    assert proc.wait(timeout=600) == 0
    assert set(range(1, EPOCHS)) <= set(rss), sorted(rss)
    # From epoch 3 on (allocator and caches warmed up) every epoch ends within 10 MB of epoch 3.
    growth = max(rss[e] for e in rss if e >= 3) - rss[3]
    assert growth < 10 * 2**20, {e: round(v / 2**20, 1) for e, v in sorted(rss.items())}


def test_every_steps_graph_is_freed_by_reference_counting():
    rng = np.random.default_rng(0)
    x, t = rng.random((300, 784), dtype=np.float32), rng.integers(0, 10, 300)
    model = MLP(784, [32, 16], 10, batchnorm=True, dropout=0.1, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    steps: list[list[weakref.ref]] = []

    def loss_fn(logits, labels):
        loss = F.cross_entropy(logits, labels)
        # Every tensor and Function this step recorded, except the leaves (parameters) and the input.
        nodes = [n for n in graph_nodes(loss) if n[1] is not None]
        steps.append([weakref.ref(tensor) for tensor, _, _ in nodes] + [weakref.ref(fn) for _, fn, _ in nodes])
        # fit still holds the previous step's loss and logits until it reassigns them; older ones must be gone.
        for refs in steps[:-2]:
            assert all(r() is None for r in refs), f"step {steps.index(refs)}'s graph is still alive"
        return loss

    gc.collect()
    gc.disable()  # no cycle collector: the graph must go by reference counting alone, right after each step
    try:
        fit(model, optimizer, (x, t), epochs=3, batch_size=50, seed=0, loss_fn=loss_fn)
        assert len(steps) == 18 and all(len(refs) > 10 for refs in steps)
        assert all(r() is None for refs in steps for r in refs)  # after fit, not one node is left
    finally:
        gc.enable()


_FREE_AND_MEASURE = """
import os, sys
import numpy as np
from zerograd.cli.malloc import keep_freed_memory as _keep_freed_memory
kept = _keep_freed_memory() if sys.argv[1] == "keep" else False
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
a = np.ones(20 * 2**20 // 4, dtype=np.float32)  # 20 MB, every page touched
del a
print(kept, (rss() - before) // 2**20)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from Linux /proc")
@pytest.mark.parametrize("mode", ["keep", "default"])
def test_train_and_evaluate_keep_freed_memory_for_the_next_step(mode):
    # glibc only: `zerograd train/evaluate` ask malloc to keep freed blocks for reuse (cli.malloc.keep_freed_memory);
    # by default glibc gives a freed 20 MB block straight back to the system
    env = {k: v for k, v in child_env().items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _FREE_AND_MEASURE, mode], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    if mode == "default":
        assert out == ["False", "0"], out
    elif out[0] == "True":  # a glibc that took the settings: the 20 MB stay resident, ready for reuse
        assert int(out[1]) >= 19, out
    else:
        pytest.skip("not glibc: mallopt unavailable, nothing was changed")
    # a MALLOC_* choice in the environment wins
    out = subprocess.run([sys.executable, "-c", _FREE_AND_MEASURE, "keep"],
                         env={**env, "MALLOC_TRIM_THRESHOLD_": "131072"}, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "False", out
