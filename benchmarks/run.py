#!/usr/bin/env python
"""zerograd's benchmark suite (issue 8): B1-B6 for zerograd, a hand-written NumPy floor and PyTorch.

    python benchmarks/run.py                        # all of B1-B6 twice: at each framework's default threads,
                                                    # then at one thread each; then the scaling report
    python benchmarks/run.py --quick                # smoke run: tiny iteration counts, small data
    python benchmarks/run.py --only B2,B3           # a subset (B5 needs B1-B3 and runs them)
    python benchmarks/run.py --threads default      # one table: each framework at its own default
    python benchmarks/run.py --threads 1            # one table: one thread each, every run on one CPU
    python benchmarks/run.py --threads 2            # one table: BLAS / OpenMP / zerograd threads = 2 for all
    python benchmarks/run.py --frameworks zerograd,numpy
    python benchmarks/run.py --profile B2           # cProfile zerograd's B2 training step instead

  B1  the book's TwoLayerNet 784-50-10 ReLU, SGD lr 0.1, batch 100, 10,000 iterations (training time),
      then test accuracy
  B2  SimpleConvNet, Adam lr 1e-3, batch 100: time per training iteration
  B3  DeepConvNet, Adam lr 1e-3, batch 100: time per training iteration
  B4  inference on the 10,000 test images, batch 1000: the book's ch3 network, the default MLP,
      simple-cnn and deep-cnn (the pretrained weights where zerograd ships them)
  B5  peak memory (RSS) of the B1, B2 and B3 runs
  B6  `zerograd train` end to end (the default MLP; --model simple-cnn; --model deep-cnn --no-augment), one
      epoch, against a plain PyTorch loop doing the same (shuffled batches, Adam, cosine schedule, test
      evaluation, checkpoint)

Every run is a fresh worker process (`run.py --worker ...`) that imports only its own framework
(`sides.py`, `numpy_floor.py`), so that import costs, thread pools and memory never mix. The
frameworks take turns run by run, the first one changing every round, and the table reports
medians: of the times, and of the per-round ratios (each ratio pairs runs made seconds apart, so a
slow drift of a shared machine cancels). All frameworks start from the same weights (zerograd's
seed-0 initialisation, or its pretrained files) and see the same batches. float32 throughout.

Threads: --threads takes one or more settings, a table each (default: "default,1"). "default" runs every
framework as a user gets it: OPENBLAS/GOTO/OMP/MKL/ZEROGRAD_NUM_THREADS removed from the workers'
environment, no torch.set_num_threads call, no pinning. A number N sets OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS, MKL_NUM_THREADS and ZEROGRAD_NUM_THREADS to N in every worker and calls
torch.set_num_threads(N); with N = 1 every run is pinned to one CPU. Each worker reports the threads it
ran with (zerograd.get_num_threads(), torch.get_num_threads(), threadpoolctl's pools). With a table at
one thread and one at more, a scaling report follows: B2's and B3's speedups and a modelled projection
to 8 and 16 threads (see benchmarks/README.md).
PyTorch is not a zerograd dependency: without it (`pip install torch==2.13.0` for the CPU build) its
column stays empty. The JSON (--out, default benchmarks/results/latest.json) has every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("zerograd", "numpy", "torch")
LABELS = {"zerograd": "zerograd", "numpy": "NumPy floor", "torch": "PyTorch"}
BENCHMARKS = ("B1", "B2", "B3", "B4", "B5", "B6")
B4_MODELS = ("book-ch3", "mlp", "simple-cnn", "deep-cnn")
B6_MODELS = ("mlp", "simple-cnn", "deep-cnn")
B6_BATCH = {"mlp": 128, "simple-cnn": 100, "deep-cnn": 100}  # `zerograd train`'s defaults: 128 (mlp), 100 (CNNs)
# B6 deep-cnn: `zerograd train --model deep-cnn` augments by default (random shifts and rotations on a background
# loader thread); a plain PyTorch loop has no augmentation without torchvision, so zerograd runs --no-augment and
# both do the same work: the book's DeepConvNet with dropout 0.5, Adam, cosine schedule, batch 100.
B6_FLAGS = {"deep-cnn": ["--no-augment"]}

# The variables that set a thread count in one of the frameworks (zerograd reads ZEROGRAD_NUM_THREADS, else
# OMP_NUM_THREADS; OpenBLAS OPENBLAS_NUM_THREADS, else GOTO_NUM_THREADS, else OMP_NUM_THREADS; PyTorch OMP and MKL):
# removed from every worker's environment at default threads, set to N (GOTO_ left out) at N threads.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "ZEROGRAD_NUM_THREADS")

# What `zerograd train` does for itself (see cli/malloc.py): a training step frees tens of MB that the next one
# allocates again; with glibc's default, dynamic thresholds that memory goes back to the system (heap trimmed,
# large blocks unmapped) and every step page-faults it in again: measured 15-25% of a DeepConvNet step here.
# The numbers are zerograd.cli.KEEP_FREED_MEMORY's (tests/test_benchmarks.py checks): written out here
# because the NumPy and PyTorch workers run this file and must not import zerograd.
MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}

# iteration counts and rounds (runs per framework): the full suite, and --quick. B2 and B3 time about a second a
# round: on a shared VM whose neighbours come and go within seconds, 0.3 s windows (30 B2 steps) gave single rounds
# of 9.1-14.6 ms for the same step.
COUNTS = {
    "full": dict(b1_iterations=10000, b1_rounds=5, b2_warmup=5, b2_iterations=100, b2_rounds=7,
                 b3_warmup=3, b3_iterations=20, b3_rounds=7, b4_images=10000, b4_rounds=5, b6_rounds=3),
    "quick": dict(b1_iterations=100, b1_rounds=1, b2_warmup=1, b2_iterations=1, b2_rounds=1,
                  b3_warmup=1, b3_iterations=1, b3_rounds=1, b4_images=200, b4_rounds=1, b6_rounds=1),
}
QUICK_DATA = (10000, 1000)  # training and test images in --quick mode
TIMED_IMAGES = 2000  # B2 and B3 cycle over 20 batches of 100 of these
QUICK_B6_DATA = (500, 200)  # B6's --quick epoch: `zerograd train --data FOLDER` on this many of them

# targets: the largest allowed ratio zerograd / other framework (issue 8)
TARGETS: dict[str, dict[str, float]] = {
    "B1": {"torch": 0.6, "numpy": 1.1},
    "B2": {"torch": 1.0, "numpy": 1.1},
    "B3": {"torch": 1.5},
    **{f"B4 {m}": {"torch": 1.0} for m in B4_MODELS},
    **{f"B5 {b}": {"torch": 1.5} for b in ("B1", "B2", "B3")},
    **{f"B6 {m}": {"torch": 1.0} for m in B6_MODELS},
}
# issue "Every core": the targets at each framework's default threads (the other rows, and the NumPy-floor limits,
# keep TARGETS'); at one (or N) thread(s), TARGETS
DEFAULT_THREADS_TARGETS: dict[str, dict[str, float]] = {
    **TARGETS,
    **{rid: {**TARGETS[rid], "torch": limit} for rid, limit in
       (("B1", 0.6), ("B2", 1.0), ("B3", 1.5), ("B6 simple-cnn", 1.0), ("B6 deep-cnn", 1.0))},
}
SPEEDUP_TARGET = {"B2": 1.7, "B3": 1.7}  # zerograd's speedup from one thread to its default threads (issue)
PROJECTED_THREADS = (8, 16)  # the scaling report's modelled thread counts
B1_MIN_ACCURACY = 0.97
B4_SECONDS = 0.5  # each B4 worker times passes over the test images until this much (see _work)


# --- the parent: data, models, rounds, table -------------------------------------------------------
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny iteration counts and data")
    p.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of B1..B6")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help="comma-separated subset of zerograd,numpy,torch (torch is skipped when not installed)")
    p.add_argument("--threads", default="default,1",
                   help="thread settings, comma-separated, one table each (default: 'default,1'): 'default' runs "
                        "each framework at its own default threads (no OPENBLAS/GOTO/OMP/MKL/ZEROGRAD_NUM_THREADS, "
                        "no torch.set_num_threads, no pinning), a number N gives every framework N threads "
                        "(those variables = N, torch.set_num_threads(N)); with 1, every run is pinned to one CPU")
    p.add_argument("--b6", default=",".join(B6_MODELS),
                   help=f"comma-separated B6 models (default: {','.join(B6_MODELS)})")
    p.add_argument("--rounds", type=int, default=None, help="runs per framework and benchmark (default 3-5)")
    p.add_argument("--malloc", choices=["default", "keep"], default="default",
                   help="glibc's malloc for every run: 'default' leaves its own (dynamic) thresholds, as a "
                        "script runs; 'keep' sets MALLOC_MMAP_THRESHOLD_=32 MiB and MALLOC_TRIM_THRESHOLD_=1 GiB "
                        "for all frameworks, so that memory freed at the end of a training step is reused by "
                        "the next instead of going back to the system and being page-faulted in again (what "
                        "`zerograd train` does for itself); variables already set in the environment win")
    p.add_argument("--cpus", default=None,
                   help="comma-separated CPU numbers every run of every table is pinned to (default: in the "
                        "one-thread table, the first CPU this process may use, so that all frameworks run on the "
                        "same core; in the others, no pinning); 'none' for no pinning")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="what the table compares: wall time (default) or the CPU time of the timed part, "
                        "steadier on a busy machine with --threads 1 (B6: CPU time of the whole process); "
                        "the JSON has both")
    p.add_argument("--out", default=str(HERE / "results" / "latest.json"), help="where to write the JSON")
    p.add_argument("--pause", type=float, default=None,
                   help="seconds of rest between runs (default 0.5; 0 with --quick)")
    p.add_argument("--profile", choices=["B1", "B2", "B3"], default=None,
                   help="cProfile zerograd's training step of this benchmark and print the top functions")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.only = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    for b in args.only:
        if b not in BENCHMARKS:
            p.error(f"unknown benchmark {b!r}: choose from {', '.join(BENCHMARKS)}")
    args.frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    for f in args.frameworks:
        if f not in FRAMEWORKS:
            p.error(f"unknown framework {f!r}: choose from {', '.join(FRAMEWORKS)}")
    settings: list[str | int] = []
    for item in (x.strip().lower() for x in args.threads.split(",")):
        if item != "default" and not (item.isdigit() and int(item) >= 1):
            p.error(f"--threads takes 'default' or a number of threads of at least 1 (comma-separated), got {item!r}")
        setting = item if item == "default" else int(item)
        if setting not in settings:
            settings.append(setting)
    if not settings:
        p.error("--threads needs at least one setting: default, or a number")
    args.threads = settings
    args.b6 = [m.strip() for m in args.b6.split(",") if m.strip()]
    for m in args.b6:
        if m not in B6_MODELS:
            p.error(f"unknown B6 model {m!r}: choose from {', '.join(B6_MODELS)}")
    if args.pause is None:
        args.pause = 0.0 if args.quick else 0.5
    if args.rounds is not None and args.rounds < 1:
        p.error("--rounds must be at least 1")
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    args.allowed_cpus = allowed
    if args.cpus is None:
        pass  # per table: the first CPU at one thread, none otherwise (see _table_cpus)
    elif args.cpus.strip().lower() == "none":
        args.cpus = []
    else:
        try:
            args.cpus = sorted({int(c) for c in args.cpus.split(",") if c.strip()})
        except ValueError:
            p.error(f"--cpus takes CPU numbers such as 0 or 0,1, got {args.cpus!r}")
        if not set(args.cpus) <= set(allowed):
            p.error(f"--cpus {args.cpus}: this process may only use CPUs {allowed}")
    return args


def _spec(model: Any) -> list[dict[str, Any]]:
    """The layer list of a zerograd model (its leaf modules in order) for the NumPy floor and PyTorch."""
    from zerograd import nn

    ops: list[dict[str, Any]] = []
    for name, m in model.named_modules():
        if any(True for _ in m.children()):
            continue  # a container: its leaves follow
        pre = f"{name}." if name else ""
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            op = {"op": "linear" if isinstance(m, nn.Linear) else "conv", "weight": pre + "weight",
                  "bias": pre + "bias" if m.bias is not None else None}
            if isinstance(m, nn.Conv2d):
                op.update(stride=list(m.stride), padding=list(m.padding))
            ops.append(op)
        elif isinstance(m, nn.MaxPool2d):
            ops.append({"op": "maxpool", "kernel": list(m.kernel_size), "stride": list(m.stride),
                        "padding": list(m.padding)})
        elif isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Flatten)):
            ops.append({"op": type(m).__name__.lower()})
        elif isinstance(m, nn.Dropout):
            ops.append({"op": "dropout", "p": m.p})
        else:
            raise SystemExit(f"benchmarks: no NumPy-floor/PyTorch counterpart for {type(m).__name__} in {name}")
    return ops


def _save_model(work: Path, key: str, model: Any, input_ndim: int, source: str) -> dict[str, Any]:
    """Writes model `key`'s description (config, spec) and weights for the workers; returns the description."""
    config = getattr(model, "config", None)
    if config is None:
        raise SystemExit(f"benchmarks: model {key} has no config to rebuild it from")
    weights = {k: np.asarray(v, dtype=np.float32) for k, v in model.state_dict().items()}
    info = {"key": key, "config": config, "spec": _spec(model), "input_ndim": input_ndim, "source": source}
    np.savez(work / f"{key}.npz", **weights)
    (work / f"{key}.json").write_text(json.dumps(info))
    return info


def _build_models(work: Path, benches: list[str], x_check: np.ndarray,
                  b6_models: tuple[str, ...] | list[str] = B6_MODELS) -> dict[str, dict[str, Any]]:
    """Every model the chosen benchmarks need, saved for the workers, with the floor checked against zerograd."""
    import numpy_floor

    from zerograd import Tensor, ZerogradError, no_grad
    from zerograd import models as zm

    def pretrained_or_new(name: str, build: Any) -> tuple[Any, str]:
        try:
            model, _ = zm.load_model(f"pretrained:{name}")
            return model, f"pretrained:{name}"
        except ZerogradError:
            return build(), "untrained (no pretrained file), seed 0"

    wanted: dict[str, tuple[Any, int]] = {}
    if "B1" in benches:
        wanted["b1"] = (lambda: (zm.TwoLayerNet(784, 50, 10, weight_init_std=0.01, seed=0), "seed 0"), 2)
    if "B2" in benches:
        wanted["b2"] = (lambda: (zm.SimpleConvNet(seed=0), "seed 0"), 4)
    if "B3" in benches:
        wanted["b3"] = (lambda: (zm.DeepConvNet(seed=0), "seed 0"), 4)
    if "B4" in benches:
        news = {"book-ch3": zm.book_ch3, "mlp": lambda: zm.MLP(784, (256, 128), 10, seed=0),
                "simple-cnn": lambda: zm.SimpleConvNet(seed=0), "deep-cnn": lambda: zm.DeepConvNet(seed=0)}
        for name in B4_MODELS:
            wanted[f"b4-{name}"] = (lambda name=name: pretrained_or_new(name, news[name]), 4)
    if "B6" in benches:  # the networks `zerograd train --seed 0` starts from (deep-cnn: dropout 0.5, its default)
        news6 = {"mlp": lambda: zm.MLP(784, (256, 128), 10, seed=0), "simple-cnn": lambda: zm.SimpleConvNet(seed=0),
                 "deep-cnn": lambda: zm.DeepConvNet(seed=0)}
        for name in b6_models:
            wanted[f"b6-{name}"] = (lambda name=name: (news6[name](), "seed 0"), 4)
    infos = {}
    for key, (make, ndim) in wanted.items():
        model, source = make()
        info = _save_model(work, key, model, ndim, source)
        x = x_check.reshape(len(x_check), -1) if ndim == 2 else x_check
        model.eval()
        with no_grad():
            ref = model(Tensor(x)).data
        floor = numpy_floor.Net(numpy_floor.build(info["spec"], dict(np.load(work / f"{key}.npz"))))
        info["reference_logits"] = ref
        info["floor_max_abs_diff"] = float(np.abs(floor.predict(x) - ref).max())
        if info["floor_max_abs_diff"] > 1e-3:
            raise SystemExit(f"benchmarks: the NumPy floor computes something else than zerograd for {key} "
                             f"(max |diff| {info['floor_max_abs_diff']:.2e}): its layer spec is wrong")
        infos[key] = info
    return infos


def _write_data(work: Path, quick: bool) -> None:
    """MNIST as .npy files for the workers (float32 images (N, 1, 28, 28) in [0, 1], int64 labels)."""
    from zerograd.datasets import load_mnist
    from zerograd.datasets.idx import write_idx

    (x, t), (xt, tt) = load_mnist(normalize=False, flatten=False)
    if quick:
        x, t, xt, tt = x[:QUICK_DATA[0]], t[:QUICK_DATA[0]], xt[:QUICK_DATA[1]], tt[:QUICK_DATA[1]]
        # B6 runs `zerograd train --data FOLDER`: a small MNIST in IDX files
        folder = work / "b6-data"
        folder.mkdir()
        n, nt = QUICK_B6_DATA
        for stem, arr in (("train-images-idx3-ubyte", x[:n, 0]), ("train-labels-idx1-ubyte", t[:n]),
                          ("t10k-images-idx3-ubyte", xt[:nt, 0]), ("t10k-labels-idx1-ubyte", tt[:nt])):
            write_idx(folder / stem, np.ascontiguousarray(arr).astype(np.uint8))
    for name, arr in (("x_train", x), ("x_test", xt)):
        np.save(work / f"{name}.npy", arr.astype(np.float32) / np.float32(255))
    np.save(work / "t_train.npy", t.astype(np.int64))
    np.save(work / "t_test.npy", tt.astype(np.int64))
    # B2/B3 time 20 batches of 100: a file of just those images, so that their peak RSS (B5) does not
    # include the whole training set
    pick = np.sort(np.random.default_rng(0).permutation(len(x))[:TIMED_IMAGES])
    np.save(work / "x_timed.npy", x[pick].astype(np.float32) / np.float32(255))
    np.save(work / "t_timed.npy", t[pick].astype(np.int64))


# Spawns the measured process from a tiny interpreter and reports its peak RSS: on Linux a process's
# ru_maxrss starts from the RSS of the process that forked it, so forking straight from this parent
# (which holds MNIST) would add the parent's ~200 MB to every measurement.
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _run(cmd: list[str], env: dict[str, str], timeout: float = 3600) -> dict[str, Any]:
    """Runs a process to its end: stdout, wall seconds, CPU seconds and its own peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = os.path.join(tmp, "maxrss")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, rss_file, *cmd], env=env,
                              capture_output=True, timeout=timeout)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"benchmarks: {' '.join(cmd[:6])} ... failed (exit {proc.returncode}):\n"
                             f"{proc.stderr.decode(errors='replace')[-3000:]}")
        with open(rss_file) as f:
            maxrss, cpu = f.read().split()
    return {"stdout": proc.stdout.decode(), "wall_seconds": wall, "cpu_seconds": float(cpu),
            "peak_rss_mb": _ru_maxrss_mb(int(maxrss))}


def _ru_maxrss_mb(value: int) -> float:
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024  # bytes on macOS, KiB on Linux


def _worker(payload: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    ran = _run([sys.executable, str(HERE / "run.py"), "--worker", json.dumps(payload)], env)
    lines = [line for line in ran["stdout"].splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"benchmarks: the {payload['framework']} worker for {payload['bench']} gave no result")
    result = json.loads(lines[-1][len("RESULT "):])
    result["peak_rss_mb"], result["wall_seconds"] = ran["peak_rss_mb"], ran["wall_seconds"]
    result["process_cpu_seconds"] = ran["cpu_seconds"]
    return result


# `zerograd train` as `python -m zerograd train` runs it (the same main()), then the threads it ran with
_ZEROGRAD_TRAIN = (
    "import json, sys\n"
    "here = sys.argv.pop(1)\n"  # the benchmarks folder (for run.threads_used); the rest is `zerograd`'s argv
    "from zerograd.cli import main\n"
    "code = main()\n"
    "sys.path.insert(0, here)\n"
    "from run import threads_used\n"
    "print('THREADS ' + json.dumps(threads_used('zerograd')), flush=True)\n"
    "sys.exit(code)\n"
)


def _zerograd_train(model: str, work: Path, quick: bool, r: int, env: dict[str, str], tag: str) -> dict[str, Any]:
    """One `zerograd train` process, as a user runs it: its wall time, peak RSS and reported epoch time."""
    out = work / f"b6-zg-{tag}-{model}-{r}" / "model.safetensors"
    cmd = [sys.executable, "-c", _ZEROGRAD_TRAIN, str(HERE), "train", "--model", model, "--epochs", "1",
           "--seed", "0", *B6_FLAGS.get(model, []), "--quiet", "--json", "--out", str(out)]
    if quick:
        cmd += ["--data", str(work / "b6-data")]
    ran = _run(cmd, env)
    lines = ran["stdout"].strip().splitlines()
    report = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    threads = next((json.loads(line[len("THREADS "):]) for line in lines if line.startswith("THREADS ")), None)
    return {"seconds": report["train_seconds"], "accuracy": report["test_accuracy"],
            "wall_seconds": ran["wall_seconds"], "process_cpu_seconds": ran["cpu_seconds"],
            "peak_rss_mb": ran["peak_rss_mb"], "threads_used": threads}


def _rounds(n: int, frameworks: list[str], run: Any, pause: float, label: str) -> dict[str, list[dict[str, Any]]]:
    """`n` runs per framework, taking turns; the framework that goes first changes every round."""
    out: dict[str, list[dict[str, Any]]] = {f: [] for f in frameworks}
    for r in range(n):
        order = frameworks[r % len(frameworks):] + frameworks[:r % len(frameworks)]
        for fw in order:
            time.sleep(pause)
            res = run(fw, r)
            out[fw].append(res)
            shown = {k: round(v, 4) for k, v in res.items() if isinstance(v, float) and "rss" not in k}
            print(f"  {label} round {r + 1}/{n} {fw}: {shown}", file=sys.stderr, flush=True)
    return out


def _row(rid: str, name: str, unit: str, runs: dict[str, list[dict[str, Any]]], metric: str,
         targets: dict[str, dict[str, float]], scale: float = 1.0, accuracy: str | None = None,
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A table row: medians per framework, median per-round ratios, target check, every run."""
    values = {fw: [r[metric] * scale for r in rs] for fw, rs in runs.items()}
    row: dict[str, Any] = {"id": rid, "benchmark": name, "unit": unit, "median": {}, "runs": values,
                           "ratio": {}, "ratio_runs": {}, "target": targets.get(rid, {}), "accuracy": {}}
    for fw, vs in values.items():
        row["median"][fw] = statistics.median(vs)
    if "zerograd" in values:
        for other in ("torch", "numpy"):
            if other in values:
                pairs = [z / o for z, o in zip(values["zerograd"], values[other])]
                row["ratio_runs"][other] = pairs
                row["ratio"][other] = statistics.median(pairs)
    if accuracy:
        row["accuracy"] = {fw: statistics.median(r[accuracy] for r in rs) for fw, rs in runs.items()}
    checks = [row["ratio"][fw] <= limit for fw, limit in row["target"].items() if fw in row["ratio"]]
    row["met"] = all(checks) if checks else None
    row.update(extra or {})
    return row


def _table_env(env: dict[str, str], setting: str | int) -> dict[str, str]:
    """The workers' environment for one thread setting: no thread variables at all ('default'), or all = N."""
    env = {k: v for k, v in env.items() if k not in THREAD_VARIABLES}
    if setting != "default":
        for var in THREAD_VARIABLES:
            if var != "GOTO_NUM_THREADS":  # OpenBLAS reads OPENBLAS_NUM_THREADS first
                env[var] = str(setting)
    return env


def _table_cpus(args: argparse.Namespace, setting: str | int) -> list[int]:
    """The CPUs a table's runs are pinned to: --cpus, else the first allowed CPU at one thread, else none."""
    if args.cpus is not None:
        return list(args.cpus)
    return list(args.allowed_cpus[:1]) if setting == 1 else []


def _distinct(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _run_suite(args: argparse.Namespace, work: Path, env: dict[str, str], setting: str | int,
               infos: dict[str, dict[str, Any]], tag: str) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """One table: every chosen benchmark at one thread setting; returns its rows and the threads each framework
    reported (distinct reports per framework)."""
    counts = dict(COUNTS["quick" if args.quick else "full"])
    if args.rounds:
        counts.update({k: args.rounds for k in counts if k.endswith("_rounds")})
    benches = _benches(args)
    targets = DEFAULT_THREADS_TARGETS if setting == "default" else TARGETS
    trained = [f for f in args.frameworks]  # B1-B4 run every framework
    cpu = "cpu_" if args.clock == "cpu" else ""
    rows: list[dict[str, Any]] = []
    runs_by_bench: dict[str, dict[str, list[dict[str, Any]]]] = {}
    used: dict[str, list[Any]] = {}
    base = {"work": str(work), "threads": None if setting == "default" else setting, "quick": args.quick,
            "tag": tag}

    def rounds(n: int, frameworks: list[str], run: Any, label: str) -> dict[str, list[dict[str, Any]]]:
        runs = _rounds(n, frameworks, run, args.pause, f"[{tag}] {label}")
        for fw, rs in runs.items():
            used.setdefault(fw, []).extend(r.get("threads_used") for r in rs)
        return runs

    def threads_of(runs: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
        return {fw: _distinct([r.get("threads_used") for r in rs]) for fw, rs in runs.items()}

    def check(fw: str, key: str, res: dict[str, Any]) -> None:
        if "check_logits" in res:
            diff = float(np.abs(np.asarray(res.pop("check_logits"), dtype=np.float32)
                                - infos[key]["reference_logits"][:10]).max())
            res["max_abs_diff"] = diff

    train_cfg = {
        "B1": dict(model="b1", optimizer="sgd", lr=0.1, batch=100, iterations=counts["b1_iterations"]),
        "B2": dict(model="b2", optimizer="adam", lr=1e-3, batch=100, warmup=counts["b2_warmup"],
                   iterations=counts["b2_iterations"]),
        "B3": dict(model="b3", optimizer="adam", lr=1e-3, batch=100, warmup=counts["b3_warmup"],
                   iterations=counts["b3_iterations"]),
    }
    for bench in ("B1", "B2", "B3"):
        if bench not in benches:
            continue
        cfg = train_cfg[bench]

        def one(fw: str, r: int, bench: str = bench, cfg: dict = cfg) -> dict[str, Any]:
            res = _worker({**base, **cfg, "bench": bench, "framework": fw, "seed": r}, env)
            check(fw, cfg["model"], res)
            return res

        runs_by_bench[bench] = rounds(counts[f"{bench.lower()}_rounds"], trained, one, bench)
    if "B1" in args.only:
        rows.append(_row("B1", "TwoLayerNet 784-50-10 ReLU, SGD lr 0.1, batch 100, "
                         f"{counts['b1_iterations']:,} iterations", "s", runs_by_bench["B1"], cpu + "seconds",
                         targets, accuracy="accuracy", extra={"threads_used": threads_of(runs_by_bench["B1"])}))
    for bench, name in (("B2", "SimpleConvNet, Adam lr 1e-3, batch 100"),
                        ("B3", "DeepConvNet, Adam lr 1e-3, batch 100")):
        if bench in args.only:
            runs = runs_by_bench[bench]
            extra: dict[str, Any] = {"threads_used": threads_of(runs),
                                     "wall_median_ms": {fw: statistics.median(r["seconds_per_iteration"] for r in rs)
                                                        * 1e3 for fw, rs in runs.items()}}
            zg = runs.get("zerograd", [])
            if zg and all(r.get("regions") for r in zg):  # zerograd's parallel regions per step and their cost
                extra["zerograd_regions"] = statistics.median(r["regions"]["regions"] for r in zg)
                lists = [r["regions"]["list"] for r in zg]
                if lists[0] and all(len(x) == len(lists[0]) for x in lists):  # [items, cap, median seconds] each
                    extra["zerograd_region_profile"] = [[items, cap, statistics.median(x[i][2] for x in lists)]
                                                        for i, (items, cap, _) in enumerate(lists[0])]
                costs = [r["region_cost"] for r in zg if r.get("region_cost")]
                if costs:
                    extra["zerograd_region_cost"] = {
                        "threads": costs[0]["threads"],
                        "region_us": statistics.median(c["region_us"] for c in costs),
                        "wake_us": statistics.median(c["wake_us"] for c in costs)}
            rows.append(_row(bench, name, "ms / iteration", runs, cpu + "seconds_per_iteration", targets, 1e3,
                             extra=extra))
    if "B4" in benches:
        keys = [f"b4-{m}" for m in B4_MODELS]
        batch4 = min(1000, counts["b4_images"])
        runs = rounds(counts["b4_rounds"], trained,
                      lambda fw, r: _worker({**base, "bench": "B4", "framework": fw, "models": keys,
                                             "images": counts["b4_images"], "batch": batch4}, env), "B4")
        for m, key in zip(B4_MODELS, keys):
            per_model = {fw: [res["models"][key] for res in rs] for fw, rs in runs.items()}
            for fw, rs in per_model.items():
                for res in rs:
                    check(fw, key, res)
            rows.append(_row(f"B4 {m}", f"inference, {counts['b4_images']:,} test images, batch {batch4}, {m} "
                             f"({infos[key]['source']})", "s", per_model, cpu + "seconds", targets,
                             accuracy="accuracy", extra={"threads_used": threads_of(runs)}))
    if "B5" in benches:
        for bench in ("B1", "B2", "B3"):
            rows.append(_row(f"B5 {bench}", f"peak RSS of the {bench} run (the whole process: "
                             "interpreter, framework, data, training)", "MB", runs_by_bench[bench], "peak_rss_mb",
                             targets,
                             extra={"rss_after_setup_mb": {fw: statistics.median(r["rss_setup_mb"] for r in rs)
                                                           for fw, rs in runs_by_bench[bench].items()}}))
    if "B6" in benches:
        sides = [f for f in args.frameworks if f in ("zerograd", "torch")]
        for m in args.b6:
            def one6(fw: str, r: int, m: str = m) -> dict[str, Any]:
                if fw == "zerograd":
                    return _zerograd_train(m, work, args.quick, r, env, tag)
                return _worker({**base, "bench": "B6", "framework": fw, "model": f"b6-{m}", "seed": r,
                                "lr": 1e-3, "batch": B6_BATCH[m], "epochs": 1}, env)

            runs = rounds(counts["b6_rounds"], sides, one6, f"B6 {m}")
            flags = " ".join(["--model", m, *B6_FLAGS.get(m, []), "--epochs", "1"])
            rows.append(_row(f"B6 {m}", f"`zerograd train {flags}` vs a plain PyTorch loop "
                             + ("(CPU seconds of the whole process)" if cpu else
                                "(seconds of the epoch, test evaluation included)"),
                             "s" if cpu else "s / epoch", runs, "process_cpu_seconds" if cpu else "seconds", targets,
                             accuracy="accuracy",
                             extra={"wall_seconds": {fw: statistics.median(r["wall_seconds"] for r in rs)
                                                     for fw, rs in runs.items()},
                                    "batch": B6_BATCH[m], "threads_used": threads_of(runs)}))
    for row in rows:  # B1's accuracy is part of its target
        if row["id"] == "B1" and not args.quick and row["accuracy"]:
            row["accuracy_target"] = B1_MIN_ACCURACY
            if row["met"] is not None or row["accuracy"]:
                row["met"] = bool(row["met"] is not False and min(row["accuracy"].values()) >= B1_MIN_ACCURACY)
    return rows, {fw: _distinct(reports) for fw, reports in used.items()}


def _benches(args: argparse.Namespace) -> list[str]:
    """The benchmarks to run: --only, with B1-B3 for B5."""
    benches = list(args.only)
    if "B5" in benches:
        benches += [b for b in ("B1", "B2", "B3") if b not in benches]
    if not args.b6 and "B6" in benches:
        benches.remove("B6")
    return benches


# --- the threads each framework ran with, and the scaling report ----------------------------------------------
def threads_used(framework: str) -> dict[str, Any]:
    """In a worker, after its run: the framework's own thread count and the thread pools threadpoolctl finds."""
    out: dict[str, Any] = {}
    if framework == "zerograd":
        import zerograd

        out["zerograd"] = zerograd.get_num_threads()
    elif framework == "torch":
        import torch

        out["torch"] = torch.get_num_threads()
        out["torch_interop"] = torch.get_num_interop_threads()
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional: the pools stay unknown
        out["pools"] = None
    else:
        out["pools"] = sorted(({"api": i["user_api"], "library": i["internal_api"], "threads": i["num_threads"]}
                               for i in threadpool_info()), key=lambda pool: (pool["api"], pool["library"]))
    return out


def _pool_threads(report: dict[str, Any] | None, api: str) -> list[int]:
    if not report or not report.get("pools"):
        return []
    return [pool["threads"] for pool in report["pools"] if pool["api"] == api]


def _framework_threads(fw: str, report: dict[str, Any] | None) -> int | None:
    """The threads a framework computed with, from one worker's report: zerograd's and PyTorch's own count, the
    NumPy floor's BLAS threads (None when unknown)."""
    if not report:
        return None
    if fw in ("zerograd", "torch"):
        return report.get(fw)
    blas = _pool_threads(report, "blas")
    return max(blas) if blas else None


def _describe_threads(fw: str, reports: list[Any]) -> str:
    """'zerograd 2 threads (BLAS 1)': what a framework's workers reported, distinct values joined by '/'."""
    reports = [r for r in reports if r]
    if not reports:
        return f"{LABELS[fw]} ? threads"

    def join(values: list[Any]) -> str:
        values = _distinct([v for v in values if v is not None])
        return "/".join(map(str, values)) if values else "?"

    blas = join([t for r in reports for t in _pool_threads(r, "blas")])
    if fw == "zerograd":
        return f"zerograd {_threads(join([r.get('zerograd') for r in reports]))} (its BLAS {blas})"
    if fw == "torch":
        omp = join([t for r in reports for t in _pool_threads(r, "openmp")])
        return (f"PyTorch {_threads(join([r.get('torch') for r in reports]))} (OpenMP {omp}, "
                f"interop {join([r.get('torch_interop') for r in reports])})")
    return f"NumPy floor {_threads(blas)} (its BLAS)"


def _threads(count: str) -> str:
    return f"{count} thread" + ("" if count == "1" else "s")


def _scaling(tables: list[dict[str, Any]]) -> dict[str, Any] | None:
    """B2's and B3's speedup from the one-thread table to the first table at more threads, and a model of 8 and 16
    threads fitted to the two times (benchmarks/README.md states it): T(n) = S + P * f(n) + R * o(n), where
    f(n) = 1/n, except for zerograd, whose regions split at most `cap` ways: f(n) = sum of w_i / min(n, cap_i)
    over its regions, w_i their shares of the parallel work; R regions per step at o(n) each (zerograd only)."""
    one = next((t for t in tables if t["threads"] == 1), None)
    more = next((t for t in tables if t["threads"] != 1), None)
    if one is None or more is None:
        return None
    out: dict[str, Any] = {"from": one["label"], "to": more["label"], "clock": "wall", "rows": [],
                           "projected_threads": list(PROJECTED_THREADS)}
    rows1 = {r["id"]: r for r in one["rows"]}
    rowsn = {r["id"]: r for r in more["rows"]}
    for bench in ("B2", "B3"):
        if bench not in rows1 or bench not in rowsn:
            continue
        r1, rn = rows1[bench], rowsn[bench]
        for fw in r1["wall_median_ms"]:
            if fw not in rn["wall_median_ms"]:
                continue
            t1, tn = r1["wall_median_ms"][fw], rn["wall_median_ms"][fw]
            counts = _distinct([_framework_threads(fw, rep) for rep in rn["threads_used"].get(fw, [])])
            n = counts[0] if len(counts) == 1 else None
            entry: dict[str, Any] = {"bench": bench, "framework": fw, "t1_ms": t1, "tn_ms": tn, "threads": n,
                                     "speedup": t1 / tn}
            if fw == "zerograd" and bench in SPEEDUP_TARGET:
                entry["target"] = SPEEDUP_TARGET[bench]
                entry["met"] = entry["speedup"] >= SPEEDUP_TARGET[bench]
            if n is not None and n >= 2:
                entry.update(_project(t1, tn, n, rn if fw == "zerograd" else {}))
            out["rows"].append(entry)
    return out if out["rows"] else None


def _project(t1: float, tn: float, n: int, row: dict[str, Any]) -> dict[str, Any]:
    """The model's fit and projection (ms) for one framework; `row` has zerograd's regions (else {})."""
    regions, cost = row.get("zerograd_regions", 0.0), row.get("zerograd_region_cost")
    profile = row.get("zerograd_region_profile") or []
    out: dict[str, Any] = {}

    def overhead_ms(k: int) -> float:
        # o(k) = o(N) + (k - N) * wake: the calling thread wakes each further worker
        if cost is None or k < 2:
            return 0.0
        return regions * max(0.0, cost["region_us"] + (k - n) * cost["wake_us"]) / 1e3

    # each region's share of the parallel work: its time at N threads less the empty region's, times its split
    o_n = cost["region_us"] / 1e6 if cost else 0.0
    work = [(max(0.0, seconds - o_n) * min(n, items), cap) for items, cap, seconds in profile]
    total = sum(w for w, _ in work)

    def f(k: int) -> float:  # the parallel work's time at k threads, as a fraction of its time at one
        if total <= 0:
            return 1 / k
        return sum(w / total / min(k, cap if cap else k) for w, cap in work)

    if cost is not None:
        out.update(regions_per_step=regions, region_us=cost["region_us"], wake_us=cost["wake_us"])
    if total > 0:
        capped = {k: sum(w for w, cap in work if cap and cap < k) / total for k in PROJECTED_THREADS}
        out["capped_share"] = {str(k): v for k, v in capped.items()}  # parallel work whose regions split < k ways
    parallel = min(t1, max(0.0, (t1 - tn + overhead_ms(n)) / (1 - f(n))))
    serial = t1 - parallel
    out["serial_fraction"] = serial / t1
    out["projection_ms"] = {str(k): serial + parallel * f(k) + overhead_ms(k) for k in PROJECTED_THREADS}
    return out


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first CPU's block of /proc/cpuinfo as a dict ({} where it cannot be read)."""
    try:
        first = path.read_text().split("\n\n", 1)[0]
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def _cpu_details(info: dict[str, str], l2_bytes: int | None) -> str | None:
    """'family 6 model 207, AVX-512, L2 2048K' from the first CPU's cpuinfo and its L2 size: what tells apart CPUs
    that a VM names alike ('Intel(R) Xeon(R) Processor') and what the speed depends on (None where none is known)."""
    details = []
    if "cpu family" in info:
        details.append(f"family {info['cpu family']} model {info.get('model', '?')}")
    flags = set(info.get("flags", "").split())
    details += [name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags][:1]
    if l2_bytes:
        details.append(f"L2 {l2_bytes >> 10}K")
    return ", ".join(details) or None


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    info = _cpuinfo()
    cpu = info.get("model name") or platform.processor() or platform.machine()
    torch_version = None
    if "torch" in args.frameworks:
        import importlib.metadata

        torch_version = importlib.metadata.version("torch")
    blas = None
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy: no dict mode
        pass
    import zerograd
    from zerograd.threads import l2_cache_bytes

    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cpu_details": _cpu_details(info, l2_cache_bytes()), "cpus": os.cpu_count(),
            "allowed_cpus": args.allowed_cpus, "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas, "zerograd": zerograd.__version__, "torch": torch_version,
            "threads": args.threads, "thread_variables": [*THREAD_VARIABLES, "torch.set_num_threads"],
            "load_average_before": list(os.getloadavg()), "quick": args.quick, "clock": args.clock}


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if unit == "MB":
        return f"{v:.0f}"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def _table_label(setting: str | int) -> str:
    return "default threads" if setting == "default" else f"{setting} thread{'s' if setting != 1 else ''}"


def _table_markdown(table: dict[str, Any], fws: list[str]) -> str:
    """One table: its first line says how the threads were set and which each framework ran with."""
    setting = table["threads"]
    if setting == "default":
        how = ("**Default threads**, each framework as a user runs it (no OPENBLAS/GOTO/OMP/MKL/ZEROGRAD_NUM_THREADS, "
               "no torch.set_num_threads)")
    else:
        how = (f"**{_table_label(setting)} per framework** (OPENBLAS/OMP/MKL/ZEROGRAD_NUM_THREADS={setting}, "
               f"torch.set_num_threads({setting}))")
    ran = ", ".join(_describe_threads(fw, table["threads_used"].get(fw, [])) for fw in fws
                    if fw in table["threads_used"])
    pinned = (f"pinned to CPU {','.join(map(str, table['pinned_cpus']))}" if table["pinned_cpus"] else "not pinned")
    lines = [f"{how}: ran with {ran or 'nothing'}; {pinned}; load average {table['load_average_before'][0]:.2f} "
             f"before, {table['load_average_after'][0]:.2f} after; {table['seconds']:.0f} s", ""]
    head = ["", "benchmark", "unit"] + [LABELS[f] for f in fws]
    ratios = [f for f in ("torch", "numpy") if f in fws and "zerograd" in fws]
    head += [f"zerograd / {LABELS[f]}" for f in ratios] + ["target", "met", "accuracy"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [row["id"], row["benchmark"], row["unit"]]
        cells += [_fmt(row["median"].get(f), row["unit"]) for f in fws]
        cells += [f"**{row['ratio'][f]:.2f}**" if f in row["ratio"] else "-" for f in ratios]
        target = ", ".join(f"≤ {v} × {LABELS[f]}" for f, v in row["target"].items())
        if row.get("accuracy_target"):
            target += f"; accuracy ≥ {row['accuracy_target']}"
        cells += [target or "-", {True: "yes", False: "**no**", None: "-"}[row["met"]]]
        cells.append(" / ".join(f"{row['accuracy'][f]:.4f}" for f in fws if f in row["accuracy"]) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    note = ("Times are medians over rounds of fresh processes, the frameworks taking turns; ratios are medians of "
            "the per-round ratios (< 1: zerograd faster). Accuracy in the order of the columns.")
    b6 = [row for row in table["rows"] if row["id"].startswith("B6")]
    if b6:
        note += (" B6: batches of " + ", ".join(f"{row['batch']} ({row['id'][3:]})" for row in b6)
                 + ", `zerograd train`'s defaults, in both loops.")
    if any(row["id"] == "B6 deep-cnn" for row in b6):
        note += (" B6 deep-cnn: `zerograd train` runs with --no-augment (by default it augments deep-cnn's images on "
                 "a background loader thread) and the PyTorch loop does not augment either: both train the book's "
                 "DeepConvNet with dropout 0.5 on the same images, so the row compares the frameworks, not the "
                 "augmentation.")
    return "\n".join(lines + ["", note])


def _scaling_markdown(scaling: dict[str, Any]) -> str:
    ks = scaling["projected_threads"]
    lines = [f"**Scaling** from {scaling['from']} to {scaling['to']}: wall time per training step, speedup = time at "
             "1 thread / time at N threads (N: the threads the framework ran with). The projection to "
             f"{' and '.join(map(str, ks))} threads is a **model, not a measurement**: T(n) = S + P/n (Amdahl) fitted "
             "to the two measured times; for zerograd, each parallel region's share of P divided by min(n, the "
             "most shards its batch split can make), plus R regions per step at o(n) each (benchmarks/README.md "
             "states the assumptions). A speedup below 1 fits as no parallel part.", ""]
    head = ["", "framework", "1 thread, ms", "N threads, ms", "N", "speedup", "target", "met", "serial fraction"]
    head += [f"model: {k} threads, ms" for k in ks] + [f"model speedup at {' / '.join(map(str, ks))}"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in scaling["rows"]:
        proj = e.get("projection_ms")
        cells = [e["bench"], LABELS[e["framework"]], _fmt(e["t1_ms"]), _fmt(e["tn_ms"]), str(e["threads"] or "?"),
                 f"**{e['speedup']:.2f}x**", f"≥ {e['target']}x" if "target" in e else "-",
                 {True: "yes", False: "**no**", None: "-"}[e.get("met")],
                 f"{e['serial_fraction']:.2f}" if "serial_fraction" in e else "-"]
        cells += [_fmt(proj[str(k)]) if proj else "-" for k in ks]
        cells.append(" / ".join(f"{e['t1_ms'] / proj[str(k)]:.1f}x" for k in ks) if proj else "-")
        lines.append("| " + " | ".join(cells) + " |")
    zg = [e for e in scaling["rows"] if "regions_per_step" in e]
    if zg:
        lines += ["", "zerograd's parallel regions (parallel_map calls that woke its pool, counted in a warm-up step): "
                  + ", ".join(f"{e['bench']} {e['regions_per_step']:.0f} per step" for e in zg)
                  + "; an empty region costs "
                  + ", ".join(f"{e['region_us']:.0f} µs" for e in zg)
                  + f" at {zg[0]['threads']} threads, and waking each further worker ("
                  + ", ".join(f"{e['wake_us']:.1f} µs" for e in zg) + "): o(n) = o(N) + (n - N) · wake."]
        capped = [e for e in zg if e.get("capped_share")]
        if capped:
            lines[-1] += (" Its batch splits stop at 32,768 numbers a shard (batch_shards), so part of the parallel "
                          "work cannot use all the threads: " + "; ".join(
                              f"{e['bench']} " + ", ".join(f"{100 * e['capped_share'][str(k)]:.0f} % at {k} threads"
                                                           for k in ks) for e in capped)
                          + " (the model divides that work by the split, not by n).")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The results as Markdown: the environment line, a table per thread setting, the scaling report."""
    env = result["environment"]
    fws = result["frameworks"]
    details = f" ({env['cpu_details']})" if env.get("cpu_details") else ""
    lines = [f"{env['date']}; {env['cpu']}{details}, {env['cpus']} CPUs; Python {env['python']}, NumPy {env['numpy']} "
             f"({env['blas']}), PyTorch {env['torch'] or 'not run'}, zerograd {env['zerograd']}; "
             + ("malloc " + " ".join(f"{k}={v}" for k, v in env["malloc"].items()) + "; " if env.get("malloc")
                else "glibc malloc defaults; ")
             + ("CPU time (process_time of the timed part)" if env["clock"] == "cpu" else "wall time")
             + f"; {env['suite_seconds']:.0f} s in all"
             + ("; --quick (smoke run, not a measurement)" if env["quick"] else "")]
    for table in result["tables"]:
        lines += ["", _table_markdown(table, fws)]
    if result.get("scaling"):
        lines += ["", _scaling_markdown(result["scaling"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.worker:
        return _work(json.loads(args.worker))
    # this checkout's zerograd (as the workers get through PYTHONPATH), whatever else is installed
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    if args.profile:
        return _profile(args)
    import importlib.util

    if "torch" in args.frameworks and importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed: its column stays empty (pip install torch==2.13.0 for the CPU build)",
              file=sys.stderr)
        args.frameworks.remove("torch")
    if not args.frameworks:
        print("no framework left to run", file=sys.stderr)
        return 1
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.malloc == "keep":  # the same for every framework (PyTorch's tensors come from malloc too)
        for var, value in MALLOC_KEEP.items():
            env.setdefault(var, value)
    environment = _environment(args)
    environment["malloc"] = {var: env[var] for var in MALLOC_KEEP if var in env}
    start = time.perf_counter()
    tables: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="zerograd-bench-") as tmp:
        work = Path(tmp)
        _write_data(work, args.quick)
        print("preparing data and models ...", file=sys.stderr, flush=True)
        infos = _build_models(work, _benches(args), np.load(work / "x_test.npy")[:100], args.b6)
        for setting in args.threads:
            cpus = _table_cpus(args, setting)
            # On a shared (virtual) machine the cores are not equally fast from one minute to the next: runs that
            # take turns on one core compare the frameworks on the same hardware. The workers inherit this.
            if args.allowed_cpus:
                os.sched_setaffinity(0, set(cpus or args.allowed_cpus))
            table_env = _table_env(env, setting)
            tag = "default" if setting == "default" else f"{setting}t"
            print(f"{_table_label(setting)}{', pinned to CPU ' + ','.join(map(str, cpus)) if cpus else ''} ...",
                  file=sys.stderr, flush=True)
            table_start, load_before = time.perf_counter(), list(os.getloadavg())
            try:
                rows, used = _run_suite(args, work, table_env, setting, infos, tag)
            finally:
                if args.allowed_cpus:
                    os.sched_setaffinity(0, set(args.allowed_cpus))
            tables.append({"threads": setting, "label": _table_label(setting), "pinned_cpus": cpus,
                           "environment_variables": {var: table_env.get(var) for var in THREAD_VARIABLES},
                           "torch_set_num_threads": None if setting == "default" else setting,
                           "threads_used": used, "load_average_before": load_before,
                           "load_average_after": list(os.getloadavg()),
                           "seconds": round(time.perf_counter() - table_start, 1), "rows": rows})
    environment["load_average_after"] = list(os.getloadavg())
    environment["suite_seconds"] = round(time.perf_counter() - start, 1)
    models = {k: {kk: vv for kk, vv in v.items() if kk != "reference_logits"} for k, v in infos.items()}
    result = {"environment": environment, "frameworks": args.frameworks,
              "settings": {"only": args.only, "quick": args.quick, "rounds": args.rounds, "pause": args.pause,
                           "clock": args.clock, "threads": args.threads, "b6": args.b6},
              "tables": tables, "scaling": _scaling(tables), "models": models}
    result["markdown"] = markdown(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(result["markdown"])
    print(f"\n{environment['suite_seconds']:.0f} s; JSON with every run: {out}", file=sys.stderr)
    return 0


# --- the workers ---------------------------------------------------------------------------------
def _proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak) in MB; None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _load_model(work: Path, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    info = json.loads((work / f"{key}.json").read_text())
    with np.load(work / f"{key}.npz") as z:
        return info, {k: z[k] for k in z.files}


def _work(p: dict[str, Any]) -> int:
    """One run in a fresh process; prints `RESULT {json}` as its last line."""
    sys.path.insert(0, str(HERE))
    from sides import SIDES

    work, bench = Path(p["work"]), p["bench"]
    side = SIDES[p["framework"]](p["threads"])
    out: dict[str, Any]
    if bench == "B6":
        out = _work_b6(p, work)
    elif bench == "B4":
        x = np.load(work / "x_test.npy")[:p["images"]]
        t = np.load(work / "t_test.npy")[:p["images"]]
        out = {"models": {}}
        for key in p["models"]:
            info, weights = _load_model(work, key)
            model = side.model(info, weights)
            xin = x.reshape(len(x), -1) if info["input_ndim"] == 2 else x
            check = side.predict(model, xin[:10], 10)
            side.predict(model, xin[:p["batch"]], p["batch"])  # warm-up
            # passes over the images until at least B4_SECONDS have been timed (at most 10): a pass of the
            # small networks takes 20-60 ms, short enough for one pass to be off by 20-30 %
            passes: list[tuple[float, float]] = []
            while not passes or (sum(w for w, _ in passes) < B4_SECONDS and len(passes) < 10):
                start, cpu = time.perf_counter(), time.process_time()
                logits = side.predict(model, xin, p["batch"])
                passes.append((time.perf_counter() - start, time.process_time() - cpu))
            out["models"][key] = {"seconds": float(np.median([w for w, _ in passes])),
                                  "cpu_seconds": float(np.median([c for _, c in passes])), "passes": len(passes),
                                  "accuracy": float((logits.argmax(axis=1) == t).mean()),
                                  "check_logits": check.tolist()}
    else:
        out = _work_train(p, work, side)
    out["vm_hwm_mb"] = _proc_status_mb("VmHWM")  # the peak as the process itself sees it, to cross-check
    out["threads_used"] = threads_used(p["framework"])
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def _work_train(p: dict[str, Any], work: Path, side: Any) -> dict[str, Any]:
    """B1 (a whole training run, then test accuracy) or B2/B3 (seconds per iteration after warm-up)."""
    info, weights = _load_model(work, p["model"])
    flat = info["input_ndim"] == 2
    # B1 evaluates on the whole test set; B2/B3 need its first 10 images only (kept out of their RSS)
    x_test = np.load(work / "x_test.npy", mmap_mode=None if p["bench"] == "B1" else "r")
    t_test = np.load(work / "t_test.npy")
    if p["bench"] != "B1":
        x_test = np.array(x_test[:10])
    if flat:
        x_test = x_test.reshape(len(x_test), -1)
    batch = p["batch"]
    if p["bench"] == "B1":
        x = np.load(work / "x_train.npy")
        x = x.reshape(len(x), -1)
        t = np.load(work / "t_train.npy")
    else:  # 20 batches are plenty for timing
        x, t = np.load(work / "x_timed.npy"), np.load(work / "t_timed.npy")
    model = side.model(info, weights)
    check = side.predict(model, x_test[:10], 10)
    step = side.trainer(model, p["optimizer"], p["lr"])
    rss_setup = _proc_status_mb("VmRSS")
    out: dict[str, Any] = {"check_logits": check.tolist(), "rss_setup_mb": rss_setup}
    if p["bench"] == "B1":
        rng = np.random.default_rng(1000 + p["seed"])
        per_epoch = len(x) // batch
        start, cpu = time.perf_counter(), time.process_time()
        for it in range(p["iterations"]):
            if it % per_epoch == 0:
                perm = rng.permutation(len(x))
            idx = perm[(it % per_epoch) * batch:(it % per_epoch + 1) * batch]
            step(x[idx], t[idx])
        out["seconds"], out["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
        logits = side.predict(model, x_test, 1000)
        out["accuracy"] = float((logits.argmax(axis=1) == t_test).mean())
        return out
    batches = [(x[i:i + batch], t[i:i + batch]) for i in range(0, len(x), batch)]
    counting = hasattr(side, "count_regions")  # zerograd: its parallel regions, counted in the last warm-up step
    for i in range(p["warmup"]):
        if counting and i == p["warmup"] - 1:
            out["regions"] = side.count_regions(lambda i=i: step(*batches[i % len(batches)]))
        else:
            step(*batches[i % len(batches)])
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(p["iterations"]):
        step(*batches[(p["warmup"] + i) % len(batches)])
    out["seconds_per_iteration"] = (time.perf_counter() - start) / p["iterations"]
    out["cpu_seconds_per_iteration"] = (time.process_time() - cpu) / p["iterations"]
    if counting:  # after the timing: what one (empty) region costs at this thread count
        out["region_cost"] = side.region_cost()
    return out


def _work_b6(p: dict[str, Any], work: Path) -> dict[str, Any]:
    """PyTorch's side of B6: MNIST read the way `zerograd train` reads it, then the plain loop of sides.py."""
    from sides import torch_train_epochs

    from zerograd.datasets import load_dataset

    data = str(work / "b6-data") if p["quick"] else "mnist"
    (x, t), (xt, tt) = load_dataset(data, normalize=True, flatten=False, progress=False)
    info, weights = _load_model(work, p["model"])
    out_dir = work / f"b6-torch-{p['tag']}-{p['model']}-{p['seed']}"
    out_dir.mkdir()
    res = torch_train_epochs(info, weights, ((x, t), (xt, tt)), p["epochs"], p["batch"], p["lr"], 0, str(out_dir))
    return {"seconds": res["train_seconds"] / p["epochs"], "accuracy": res["test_accuracy"]}


def _profile(args: argparse.Namespace) -> int:
    """cProfile of zerograd's training steps for B1, B2 or B3 (cProfile inflates the Python-side share)."""
    import cProfile
    import pstats

    from sides import ZerogradSide

    with tempfile.TemporaryDirectory(prefix="zerograd-bench-") as tmp:
        work = Path(tmp)
        _write_data(work, quick=True)
        x_check = np.load(work / "x_test.npy")[:100]
        key = args.profile.lower()
        _build_models(work, [args.profile], x_check)
        info, weights = _load_model(work, key)
        side = ZerogradSide(None)
        model = side.model(info, weights)
        step = side.trainer(model, "sgd" if key == "b1" else "adam", 0.1 if key == "b1" else 1e-3)
        x, t = np.load(work / "x_train.npy")[:2000], np.load(work / "t_train.npy")[:2000]
        if info["input_ndim"] == 2:
            x = x.reshape(len(x), -1)
        n = {"b1": 2000, "b2": 60, "b3": 10}[key]
        batches = [(x[i:i + 100], t[i:i + 100]) for i in range(0, 2000, 100)]
        for i in range(3):
            step(*batches[i])
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n):
            step(*batches[i % len(batches)])
        prof.disable()
    print(f"cProfile of {n} zerograd training steps of {args.profile}")
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
