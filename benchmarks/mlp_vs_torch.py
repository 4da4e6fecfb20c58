#!/usr/bin/env python
"""zerograd against PyTorch on the CPU, on the book's small MLPs (where per-operation overhead dominates).

    python benchmarks/mlp_vs_torch.py                  # both frameworks, threads as the environment says
    python benchmarks/mlp_vs_torch.py --threads 1      # NumPy's BLAS and torch both on 1 thread
    python benchmarks/mlp_vs_torch.py --threads 2 --json > results.json
    python benchmarks/mlp_vs_torch.py --nets a,d1 --no-epoch   # a subset, quickly
    python benchmarks/mlp_vs_torch.py --profile c      # cProfile of zerograd's training step for net c

What is timed (float32, the same initial weights copied into both frameworks, the same batches of the
bundled MNIST from zerograd.datasets.load_mnist):

  a    the book's ch5 TwoLayerNet 784-50-10 ReLU, SGD lr 0.1, batch 100         (training step)
  b    784-100-100-10 ReLU, Adam lr 1e-3, batch 100 (ch6)                       (training step)
  c    `zerograd train`'s MLP 784-256-128-10 ReLU (with its Flatten), Adam, batch 128 (training step)
  d100 the book's ch3 network 784-50-100-10 sigmoid, batch 100                  (inference, no_grad)
  d1   the same, batch 1: per-image latency                                     (inference, no_grad)

A training step is forward + cross-entropy + zero_grad + backward + optimizer step, over pre-gathered
batches (no data loading); inference is model(x) under no_grad in eval mode. Before timing, one step
from the same weights checks that both frameworks compute the same thing (the max|diff| column).

Each framework runs in its own worker process. After --warmup steps, the two workers take turns: a
turn is --rewarm untimed steps then --steps timed ones, with --pause seconds of rest between turns, so
that only one framework computes at a time (an idle OpenBLAS or OpenMP pool keeps spinning for a while
and would steal the second core from the other) while both share the machine's slow drifts. The
reported time is the median of the --repeats turns. The "epoch" table times one full epoch of a and c
through each framework's normal loop: zerograd.training.fit(reporter=None) against a plain torch loop
over shuffled tensor slices (with the loss.item() and accuracy count that fit also does).

Thread counts must be fixed before NumPy is imported: --threads N sets OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS to N and calls torch.set_num_threads(N). PyTorch is not a zerograd
dependency: install it in a separate environment (see benchmarks/README.md); without it only the
zerograd side runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

NETS: dict[str, dict[str, Any]] = {
    "a": dict(desc="ch5 TwoLayerNet 784-50-10 ReLU, SGD", sizes=(784, 50, 10), act="relu",
              opt="sgd", lr=0.1, batch=100, mode="train", flatten=False),
    "b": dict(desc="784-100-100-10 ReLU, Adam", sizes=(784, 100, 100, 10), act="relu",
              opt="adam", lr=1e-3, batch=100, mode="train", flatten=False),
    "c": dict(desc="train-MLP 784-256-128-10 ReLU, Adam", sizes=(784, 256, 128, 10), act="relu",
              opt="adam", lr=1e-3, batch=128, mode="train", flatten=True),
    "d100": dict(desc="ch3 784-50-100-10 sigmoid, inference", sizes=(784, 50, 100, 10), act="sigmoid",
                 batch=100, mode="infer", flatten=False),
    "d1": dict(desc="ch3 784-50-100-10 sigmoid, inference", sizes=(784, 50, 100, 10), act="sigmoid",
               batch=1, mode="infer", flatten=False),
}
EPOCH_NETS = ("a", "c")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP threads for both frameworks (default: leave the environment as it is)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    p.add_argument("--nets", default=",".join(NETS), help=f"comma-separated subset of {','.join(NETS)}")
    p.add_argument("--steps", type=int, default=300, help="steps per timed run (default 300; x5 for d1)")
    p.add_argument("--repeats", type=int, default=7,
                   help="timed runs per measurement and framework; the median is reported (default 7)")
    p.add_argument("--warmup", type=int, default=100, help="untimed steps before timing (default 100)")
    p.add_argument("--epoch-repeats", type=int, default=3, help="epochs timed per framework (default 3)")
    p.add_argument("--no-epoch", action="store_true", help="skip the full-epoch timings")
    p.add_argument("--framework", choices=["both", "zerograd", "torch"], default="both",
                   help="time only one side (default: both)")
    p.add_argument("--rewarm", type=int, default=10,
                   help="untimed steps before each timed run, after the other framework's turn (default 10)")
    p.add_argument("--pause", type=float, default=0.3,
                   help="seconds of rest between the two frameworks' turns (default 0.3)")
    p.add_argument("--worker", choices=["zerograd", "torch"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--profile", choices=list(NETS), default=None,
                   help="instead of comparing, cProfile zerograd's step for this net and print the top functions")
    args = p.parse_args(argv)
    for key in args.nets.split(","):
        if key not in NETS:
            p.error(f"unknown net {key!r}: choose from {', '.join(NETS)}")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def _set_threads_env(n: int | None) -> None:
    """Must run before NumPy (and so zerograd) is imported: OpenBLAS reads its thread count at load."""
    if n is None:
        return
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- building the two sides ----------------------------------------------------------------------
def _zg_model(cfg: dict[str, Any], seed: int = 0):
    import numpy as np

    from zerograd import nn
    from zerograd.models import MLP

    sizes = cfg["sizes"]
    if cfg["flatten"]:  # the exact network `zerograd train` builds
        return MLP(sizes[0], sizes[1:-1], sizes[-1], activation=cfg["act"], seed=seed)
    rng = np.random.default_rng(seed)
    init = "he" if cfg["act"] == "relu" else "xavier"
    layers: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out, generator=rng, init=init))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU() if cfg["act"] == "relu" else nn.Sigmoid())
    return nn.Sequential(*layers)


def _zg_optimizer(cfg: dict[str, Any], model):
    from zerograd import optim

    if cfg["opt"] == "sgd":
        return optim.SGD(model.parameters(), lr=cfg["lr"])
    return optim.Adam(model.parameters(), lr=cfg["lr"])


def _torch_copy(cfg: dict[str, Any], zg_model):
    """A torch.nn.Sequential with the same layers and the same weights as zg_model."""
    import torch
    from torch import nn as tnn

    layers: list[Any] = [tnn.Flatten()] if cfg["flatten"] else []
    sizes = cfg["sizes"]
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(tnn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(tnn.ReLU() if cfg["act"] == "relu" else tnn.Sigmoid())
    model = tnn.Sequential(*layers)
    zg_linears = [p for _, p in sorted(zg_model.named_parameters(), key=lambda kv: _param_order(kv[0]))]
    t_params = [p for _, p in sorted(model.named_parameters(), key=lambda kv: _param_order(kv[0]))]
    assert len(zg_linears) == len(t_params)
    with torch.no_grad():
        for zp, tp in zip(zg_linears, t_params):
            assert tuple(zp.shape) == tuple(tp.shape), (zp.shape, tp.shape)
            tp.copy_(torch.from_numpy(zp.data))
    return model


def _param_order(name: str) -> tuple[int, int]:
    index, kind = name.split(".")
    return int(index), 0 if kind == "weight" else 1


def _torch_optimizer(cfg: dict[str, Any], model):
    import torch

    if cfg["opt"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    return torch.optim.Adam(model.parameters(), lr=cfg["lr"])


def _batches(x, t, batch: int, count: int, seed: int = 0):
    """`count` shuffled mini-batches, gathered once into contiguous arrays."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    count = min(count, len(x) // batch)
    return [(x[order[i * batch:(i + 1) * batch]], t[order[i * batch:(i + 1) * batch]]) for i in range(count)]


def _zg_step(cfg: dict[str, Any], model, optimizer, batches):
    import zerograd as zg
    import zerograd.functional as F

    n = len(batches)
    if cfg["mode"] == "infer":
        model.eval()

        def infer(i: int) -> None:
            x, _ = batches[i % n]
            with zg.no_grad():
                model(zg.Tensor(x))

        return infer

    def train(i: int) -> None:
        x, t = batches[i % n]
        loss = F.cross_entropy(model(zg.Tensor(x)), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return train


def _torch_step(cfg: dict[str, Any], model, optimizer, batches):
    import torch
    import torch.nn.functional as TF

    tbatches = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in batches]
    n = len(tbatches)
    if cfg["mode"] == "infer":
        model.eval()

        def infer(i: int) -> None:
            x, _ = tbatches[i % n]
            with torch.no_grad():
                model(x)

        return infer

    def train(i: int) -> None:
        x, t = tbatches[i % n]
        loss = TF.cross_entropy(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return train


def _check_same(cfg: dict[str, Any], zg_model, zg_opt, t_model, t_opt, batches) -> float:
    """One training step (or forward) on both sides from the same weights: the largest difference.

    For training: between the losses and the updated weights; for inference: between the outputs.
    """
    import numpy as np
    import torch
    import torch.nn.functional as TF

    import zerograd as zg
    import zerograd.functional as F

    x, t = batches[0]
    if cfg["mode"] == "infer":
        with zg.no_grad():
            a = zg_model(zg.Tensor(x)).data
        with torch.no_grad():
            b = t_model(torch.from_numpy(x)).numpy()
        return float(np.max(np.abs(a - b)))
    zl = F.cross_entropy(zg_model(zg.Tensor(x)), t)
    zg_opt.zero_grad()
    zl.backward()
    zg_opt.step()
    tl = TF.cross_entropy(t_model(torch.from_numpy(x)), torch.from_numpy(t))
    t_opt.zero_grad()
    tl.backward()
    t_opt.step()
    diff = abs(float(zl.data) - tl.item())
    zps = [p for _, p in sorted(zg_model.named_parameters(), key=lambda kv: _param_order(kv[0]))]
    tps = [p for _, p in sorted(t_model.named_parameters(), key=lambda kv: _param_order(kv[0]))]
    for zp, tp in zip(zps, tps):
        diff = max(diff, float(np.max(np.abs(zp.data - tp.detach().numpy()))))
    return diff


# --- full epochs -----------------------------------------------------------------------------------
def _zg_epoch(cfg: dict[str, Any], x, t, seed: int) -> float:
    from zerograd.training import fit

    model = _zg_model(cfg, seed)
    opt = _zg_optimizer(cfg, model)
    t0 = time.perf_counter()
    fit(model, opt, (x, t), epochs=1, batch_size=cfg["batch"], seed=seed, reporter=None)
    return time.perf_counter() - t0


def _torch_epoch(cfg: dict[str, Any], x, t, seed: int) -> float:
    import torch
    import torch.nn.functional as TF

    model = _torch_copy(cfg, _zg_model(cfg, seed))
    opt = _torch_optimizer(cfg, model)
    X, T = torch.from_numpy(x), torch.from_numpy(t)
    batch, n = cfg["batch"], len(x)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    perm = torch.randperm(n, generator=gen)
    loss_sum, correct = 0.0, 0
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        xb, tb = X[idx], T[idx]
        logits = model(xb)
        loss = TF.cross_entropy(logits, tb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(tb)
        correct += int((logits.argmax(1) == tb).sum())
    return time.perf_counter() - t0


# --- main ------------------------------------------------------------------------------------------
def _environment(threads: int | None, have_torch: bool) -> dict[str, Any]:
    import numpy as np

    import zerograd

    env: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "zerograd": zerograd.__version__, "threads_requested": threads,
        "blas": None, "torch": None, "torch_threads": None, "warnings": [],
    }
    try:
        from threadpoolctl import threadpool_info

        blas = [i for i in threadpool_info() if i.get("user_api") == "blas" and "numpy" in i.get("filepath", "")]
        blas = blas or [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            b = blas[0]
            env["blas"] = f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')}), " \
                          f"{b.get('num_threads')} threads"
    except ImportError:
        env["blas"] = "unknown (pip install threadpoolctl to see NumPy's BLAS and its threads)"
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            env["warnings"].append(f"{var}={os.environ[var]} is set: it changes OpenBLAS's kernels; "
                                   f"unset it for a fair run (env -u {var} python ...)")
    if have_torch:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    return env


def _profile(args: argparse.Namespace) -> int:
    import cProfile
    import pstats

    from zerograd.datasets import load_mnist

    cfg = NETS[args.profile]
    (x, t), _ = load_mnist(normalize=True, flatten=True)
    batches = _batches(x, t, cfg["batch"], 600)
    model = _zg_model(cfg)
    opt = _zg_optimizer(cfg, model) if cfg["mode"] == "train" else None
    step = _zg_step(cfg, model, opt, batches)
    steps = args.steps * (5 if cfg["batch"] == 1 else 1)
    for i in range(args.warmup):
        step(i)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(steps):
        step(i)
    prof.disable()
    print(f"cProfile of {steps} zerograd steps of net {args.profile} ({cfg['desc']}, batch {cfg['batch']}); "
          "cProfile itself inflates the Python-side share")
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    return 0


# --- worker processes ----------------------------------------------------------------------------
class _Side:
    """What a worker process holds: one framework's models, optimizers and step functions."""

    def __init__(self, side: str, threads: int | None) -> None:
        from zerograd.datasets import load_mnist

        self.side = side
        if side == "torch":
            import torch

            if threads is not None:
                torch.set_num_threads(threads)
        (self.x, self.t), _ = load_mnist(normalize=True, flatten=True, one_hot_label=False)
        self.steps: dict[str, Callable[[int], None]] = {}
        self.pos: dict[str, int] = {}

    def prepare(self, key: str, warmup: int) -> dict[str, Any]:
        cfg = NETS[key]
        batches = _batches(self.x, self.t, cfg["batch"], 600 if cfg["batch"] > 1 else 2000)
        model = _zg_model(cfg)
        opt = _zg_optimizer(cfg, model) if cfg["mode"] == "train" else None
        diff = None
        if self.side == "torch":
            t_model = _torch_copy(cfg, model)
            t_opt = _torch_optimizer(cfg, t_model) if cfg["mode"] == "train" else None
            diff = _check_same(cfg, model, opt, t_model, t_opt, batches)
            step = _torch_step(cfg, t_model, t_opt, batches)
        else:
            step = _zg_step(cfg, model, opt, batches)
        for i in range(warmup):
            step(i)
        self.steps[key], self.pos[key] = step, warmup
        return {"max_abs_diff": diff}

    def time(self, key: str, steps: int, rewarm: int) -> float:
        """Seconds per step over `steps` steps, after `rewarm` untimed ones (caches after the other side ran)."""
        step, pos = self.steps[key], self.pos[key]
        for i in range(pos, pos + rewarm):
            step(i)
        pos += rewarm
        t0 = time.perf_counter()
        for i in range(pos, pos + steps):
            step(i)
        elapsed = time.perf_counter() - t0
        self.pos[key] = pos + steps
        return elapsed / steps

    def epoch(self, key: str, seed: int) -> float:
        fn = _torch_epoch if self.side == "torch" else _zg_epoch
        return fn(NETS[key], self.x, self.t, seed)


def _serve(side: str, threads: int | None) -> int:
    """Worker loop: one JSON request per stdin line, one JSON answer per stdout line."""
    worker = _Side(side, threads)
    print(json.dumps(_environment(threads, side == "torch")), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        if op == "quit":
            break
        answer = getattr(worker, op)(**req)
        print(json.dumps(answer), flush=True)
    return 0


class _Worker:
    """The parent's handle on a worker process that times one framework."""

    def __init__(self, side: str, threads: int | None) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", side]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        self.side = side
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.env = self._read()

    def _read(self) -> Any:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} worker stopped (exit {self.proc.wait()})")
        return json.loads(line)

    def call(self, op: str, **kwargs: Any) -> Any:
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait()


def _alternate(workers: list[_Worker], rounds: int, pause: float, task: Callable[[_Worker, int], float],
               progress: str) -> dict[str, list[float]]:
    """`rounds` results of `task` per worker, the workers taking turns, the first one changing every round.

    Only one framework computes at a time, and `pause` seconds between turns let the idle one's
    spinning threads (OpenBLAS's, libgomp's) go to sleep before the other one is timed.
    """
    out: dict[str, list[float]] = {w.side: [] for w in workers}
    for r in range(rounds):
        order = workers if r % 2 == 0 else workers[::-1]
        for w in order:
            time.sleep(pause)
            out[w.side].append(task(w, r))
    if progress:
        print(f"  {progress}", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    _set_threads_env(args.threads)
    if args.worker:
        return _serve(args.worker, args.threads)
    if args.profile:
        return _profile(args)

    import importlib.util

    sides = ["zerograd", "torch"] if args.framework == "both" else [args.framework]
    if "torch" in sides and importlib.util.find_spec("torch") is None:
        print("torch is not installed: timing the zerograd side only "
              "(install torch in a separate venv to compare, see benchmarks/README.md)", file=sys.stderr)
        sides.remove("torch")
        if not sides:
            return 1
    # Each framework runs in its own process, and the two take turns run by run: in one process the
    # idle thread pool of one framework steals the second core from the other, which skews 2-thread
    # numbers, while turns of a few hundred milliseconds share the machine's slow drifts fairly.
    workers = [_Worker(side, args.threads) for side in sides]
    progress = "" if args.json else "measured"
    try:
        results = []
        nets = args.nets.split(",")
        for key in nets:
            cfg = NETS[key]
            prep = {w.side: w.call("prepare", key=key, warmup=args.warmup) for w in workers}
            steps = args.steps * (5 if cfg["batch"] == 1 else 1)
            def timed(w: _Worker, r: int, key: str = key, steps: int = steps) -> float:
                return w.call("time", key=key, steps=steps, rewarm=args.rewarm)

            runs = _alternate(workers, args.repeats, args.pause, timed, progress and f"{progress} {key}")
            row: dict[str, Any] = dict(net=key, desc=cfg["desc"], batch=cfg["batch"], mode=cfg["mode"],
                                       zerograd_ms=None, torch_ms=None, ratio=None,
                                       max_abs_diff=prep.get("torch", {}).get("max_abs_diff"))
            for side, ts in runs.items():
                row[f"{side}_ms"] = statistics.median(ts) * 1e3
                row[f"{side}_runs_ms"] = [v * 1e3 for v in ts]
            if row["zerograd_ms"] and row["torch_ms"]:
                row["ratio"] = row["zerograd_ms"] / row["torch_ms"]
            results.append(row)
        epochs = []
        for key in [k for k in EPOCH_NETS if k in nets] if not args.no_epoch else []:
            cfg = NETS[key]
            runs = _alternate(workers, args.epoch_repeats, args.pause,
                              lambda w, r, key=key: w.call("epoch", key=key, seed=r),
                              progress and f"{progress} epoch {key}")
            e: dict[str, Any] = dict(net=key, desc=cfg["desc"], batch=cfg["batch"], zerograd_s=None,
                                     torch_s=None, ratio=None)
            for side, ts in runs.items():
                e[f"{side}_s"] = statistics.median(ts)
                e[f"{side}_runs_s"] = ts
            if e["zerograd_s"] and e["torch_s"]:
                e["ratio"] = e["zerograd_s"] / e["torch_s"]
            epochs.append(e)
    finally:
        for w in workers:
            w.close()

    env = workers[0].env
    if len(workers) > 1:
        env["torch"], env["torch_threads"] = workers[1].env["torch"], workers[1].env["torch_threads"]
    if args.json:
        print(json.dumps({"environment": env, "settings": {k: v for k, v in vars(args).items() if k != "json"},
                          "steps": results, "epochs": epochs}, indent=2))
        return 0
    _print_tables(env, results, epochs, args)
    return 0


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _spread(runs: list[float] | None) -> str:
    """Half the range of the runs, in percent of their median: how noisy the measurement was."""
    if not runs:
        return "-"
    return f"{50 * (max(runs) - min(runs)) / statistics.median(runs):.0f}%"


def _print_tables(env: dict[str, Any], results: list[dict[str, Any]], epochs: list[dict[str, Any]],
                  args: argparse.Namespace) -> None:
    print(f"{env['date']}  {env['cpu']} ({env['cpu_count']} CPUs)  Python {env['python']}")
    print(f"numpy {env['numpy']}, BLAS: {env['blas']}")
    print(f"torch: {env['torch'] or 'not installed'}"
          + (f", {env['torch_threads']} threads" if env["torch"] else ""))
    for w in env["warnings"]:
        print("WARNING:", w)
    print(f"median of {args.repeats} runs of {args.steps} steps ({args.steps * 5} for batch 1) after {args.warmup} "
          f"warm-up steps, each framework in its own process, taking turns run by run;\n"
          "ratio = zerograd / torch (< 1: zerograd faster); +-: half the range of the runs; "
          "max|diff|: loss and weights after one step from the same weights\n")
    head = (f"{'net':<5} {'network':<38} {'batch':>5} {'zerograd ms/step':>17} {'+-':>4} {'torch ms/step':>14} "
            f"{'+-':>4} {'ratio':>6} {'max|diff|':>9}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['net']:<5} {r['desc']:<38} {r['batch']:>5} {_fmt(r['zerograd_ms'], '.4f'):>17} "
              f"{_spread(r.get('zerograd_runs_ms')):>4} {_fmt(r['torch_ms'], '.4f'):>14} "
              f"{_spread(r.get('torch_runs_ms')):>4} {_fmt(r['ratio'], '.2f'):>6} {_fmt(r['max_abs_diff'], '.1e'):>9}")
    if epochs:
        print(f"\none training epoch of 60000 images (median of {args.epoch_repeats}), wall seconds")
        head = (f"{'net':<5} {'network':<38} {'batch':>5} {'zerograd fit s':>15} {'+-':>4} {'torch loop s':>13} "
                f"{'+-':>4} {'ratio':>6}")
        print(head)
        print("-" * len(head))
        for e in epochs:
            print(f"{e['net']:<5} {e['desc']:<38} {e['batch']:>5} {_fmt(e['zerograd_s'], '.3f'):>15} "
                  f"{_spread(e.get('zerograd_runs_s')):>4} {_fmt(e['torch_s'], '.3f'):>13} "
                  f"{_spread(e.get('torch_runs_s')):>4} {_fmt(e['ratio'], '.2f'):>6}")


if __name__ == "__main__":
    sys.exit(main())
