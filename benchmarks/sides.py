"""The three sides of every benchmark: zerograd, the hand-written NumPy floor and PyTorch.

Each side builds a network from a model description written by run.py (zerograd's config, its
state_dict and a layer spec, see run.py's `describe_model`) and gives a training step and a
prediction function over plain NumPy batches, so the timing loops in run.py are the same for all
three. A side imports only its own framework: the NumPy and PyTorch workers never import zerograd.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Step = Callable[[np.ndarray, np.ndarray], None]


class ZerogradSide:
    """zerograd as a user runs it: its thread count comes from the environment run.py sets (ZEROGRAD_NUM_THREADS,
    or nothing at default threads), never from a set_num_threads call here."""

    name = "zerograd"

    def __init__(self, threads: int | None) -> None:
        import zerograd  # noqa: F401  (imported here so that the other workers never load it)

    def model(self, info: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
        from zerograd.models import build_model

        model = build_model(info["config"])
        model.load_state_dict(weights)
        return model

    def trainer(self, model: Any, optimizer: str, lr: float) -> Step:
        import zerograd.functional as F
        from zerograd import Tensor, optim

        opt = optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else optim.Adam(model.parameters(), lr=lr)
        model.train()

        def step(x: np.ndarray, t: np.ndarray) -> None:
            loss = F.cross_entropy(model(Tensor(x)), t)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    def predict(self, model: Any, x: np.ndarray, batch: int) -> np.ndarray:
        from zerograd import Tensor, no_grad

        model.eval()
        with no_grad():
            return np.concatenate([model(Tensor(x[i:i + batch])).data for i in range(0, len(x), batch)])

    def count_regions(self, run: Callable[[], None]) -> dict[str, Any]:
        """Runs `run` once, counting zerograd's parallel regions: the parallel_map calls made by the calling thread
        (not nested in another) with more than one item at more than one thread, those that wake the pool. Each
        region is listed as [items, cap, seconds]: cap is how many shards its batch split could make with
        unlimited threads (batch_shards' minimum shard size caps it; None when not found), seconds its wall time."""
        import sys
        import threading
        import time

        from zerograd import threads

        original_map, original_shards = threads.parallel_map, threads.batch_shards
        caller = threading.current_thread()
        counts: dict[str, Any] = {"calls": 0, "regions": 0, "list": []}
        caps: dict[int, int] = {}
        kept: list[Any] = []  # the splits stay alive, so that their ids stay theirs
        inside = [False]

        def capped_shards(n: int, size: int) -> list[slice]:
            shards = original_shards(n, size)
            caps[id(shards)] = max(1, min(n, size // threads.MIN_SHARD_SIZE))
            kept.append(shards)
            return shards

        def cap_of(fn: Callable[[Any], Any], items: Any) -> int | None:
            if id(items) in caps:  # forward passes (and Linear's, ReLU's backward): the split itself
                return caps[id(items)]
            for cell in getattr(fn, "__closure__", None) or ():  # backward over range(len(self.shards))
                try:
                    shards = getattr(cell.cell_contents, "shards", None)
                except ValueError:  # an empty cell
                    continue
                if id(shards) in caps:
                    return caps[id(shards)]
            return None

        def counting(fn: Callable[[Any], Any], items: Any) -> list[Any]:
            if threading.current_thread() is not caller or inside[0]:
                return original_map(fn, items)
            cap = cap_of(fn, items)
            items = list(items)
            counts["calls"] += 1
            region = len(items) > 1 and threads.get_num_threads() > 1
            inside[0] = True
            start = time.perf_counter()
            try:
                return original_map(fn, items)
            finally:
                inside[0] = False
                if region:
                    counts["regions"] += 1
                    counts["list"].append([len(items), cap, time.perf_counter() - start])

        # the operations import these by name: replace them in every zerograd module that holds them
        patched = [(m, name, replacement) for modname, m in list(sys.modules.items()) if modname.startswith("zerograd")
                   for name, original, replacement in (("parallel_map", original_map, counting),
                                                        ("batch_shards", original_shards, capped_shards))
                   if getattr(m, name, None) is original]
        for m, name, replacement in patched:
            setattr(m, name, replacement)
        try:
            run()
        finally:
            for m, name, _ in patched:
                setattr(m, name, original_map if name == "parallel_map" else original_shards)
        return counts

    def region_cost(self) -> dict[str, float] | None:
        """What an empty parallel region costs at this thread count (waking the pool's workers and waiting for
        them), and what waking one more worker costs the calling thread (each further worker adds one); None at
        one thread."""
        import statistics
        import time

        from zerograd import threads

        n = threads.get_num_threads()
        if n < 2:
            return None

        def nothing(item: Any = None) -> Any:
            return item

        for _ in range(20):
            threads.parallel_map(nothing, range(n))
        regions = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(40):
                threads.parallel_map(nothing, range(n))
            regions.append((time.perf_counter() - start) / 40)
        pool = threads._Pool(1)  # a worker of its own, woken as parallel_map wakes each of its pool's
        worker, wakes = pool._workers[0], []
        try:
            for _ in range(200):
                time.sleep(0.0002)  # the worker is asleep on its lock again
                start = time.perf_counter()
                worker.task = nothing
                worker.go.release()
                wakes.append(time.perf_counter() - start)
                worker.done.acquire()
        finally:
            pool.close()
        return {"threads": n, "region_us": statistics.median(regions) * 1e6, "wake_us": statistics.median(wakes) * 1e6}


class NumpySide:
    name = "numpy"

    def __init__(self, threads: int | None) -> None:  # OpenBLAS's threads come from the environment run.py sets
        import numpy_floor

        self.floor = numpy_floor

    def model(self, info: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
        return self.floor.Net(self.floor.build(info["spec"], weights))

    def trainer(self, model: Any, optimizer: str, lr: float) -> Step:
        opt = self.floor.SGD(model.params, lr) if optimizer == "sgd" else self.floor.Adam(model.params, lr)

        def step(x: np.ndarray, t: np.ndarray) -> None:
            model.loss_and_backward(x, t)
            opt.step(model.grads())

        return step

    def predict(self, model: Any, x: np.ndarray, batch: int) -> np.ndarray:
        return np.concatenate([model.predict(x[i:i + batch]) for i in range(0, len(x), batch)])


class TorchSide:
    name = "torch"

    def __init__(self, threads: int | None) -> None:
        import torch

        if threads is not None:  # None: PyTorch's own default, as a user gets it
            torch.set_num_threads(threads)
        self.torch = torch

    def model(self, info: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
        return torch_model(info["spec"], weights, info["input_ndim"])

    def trainer(self, model: Any, optimizer: str, lr: float) -> Step:
        torch = self.torch
        opt = (torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd"
               else torch.optim.Adam(model.parameters(), lr=lr))
        model.train()
        cross_entropy = torch.nn.functional.cross_entropy

        def step(x: np.ndarray, t: np.ndarray) -> None:
            loss = cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(t))
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    def predict(self, model: Any, x: np.ndarray, batch: int) -> np.ndarray:
        torch = self.torch
        model.eval()
        with torch.inference_mode():
            return np.concatenate([model(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


SIDES = {"zerograd": ZerogradSide, "numpy": NumpySide, "torch": TorchSide}


def torch_model(spec: list[dict[str, Any]], weights: dict[str, np.ndarray], input_ndim: int) -> Any:
    """A torch.nn.Sequential with the layers of `spec` and the given weights (float32)."""
    import torch
    from torch import nn

    layers: list[Any] = []
    params: list[tuple[Any, str]] = []
    ndim = input_ndim
    for op in spec:
        kind = op["op"]
        if kind == "linear":
            if ndim != 2:
                layers.append(nn.Flatten())
                ndim = 2
            out_f, in_f = weights[op["weight"]].shape
            layer = nn.Linear(in_f, out_f, bias=op.get("bias") is not None)
        elif kind == "conv":
            oc, c, kh, kw = weights[op["weight"]].shape
            layer = nn.Conv2d(c, oc, (kh, kw), stride=tuple(op["stride"]), padding=tuple(op["padding"]),
                              bias=op.get("bias") is not None)
        elif kind == "maxpool":
            layer = nn.MaxPool2d(tuple(op["kernel"]), tuple(op["stride"]), tuple(op["padding"]))
        elif kind == "relu":
            layer = nn.ReLU()
        elif kind == "sigmoid":
            layer = nn.Sigmoid()
        elif kind == "dropout":
            layer = nn.Dropout(op["p"])
        elif kind == "flatten":
            layer, ndim = nn.Flatten(), 2
        else:
            raise ValueError(f"no PyTorch layer for {kind!r}")
        if kind in ("linear", "conv"):
            params.append((layer.weight, op["weight"]))
            if op.get("bias") is not None:
                params.append((layer.bias, op["bias"]))
        layers.append(layer)
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for p, key in params:
            p.copy_(torch.from_numpy(np.ascontiguousarray(weights[key], dtype=np.float32)))
    return model


def torch_train_epochs(info: dict[str, Any], weights: dict[str, np.ndarray], data: tuple[Any, Any],
                       epochs: int, batch_size: int, lr: float, seed: int, out_dir: str) -> dict[str, Any]:
    """A plain PyTorch loop doing what `zerograd train` does: shuffled batches, Adam, cosine schedule,
    running loss and accuracy, a test evaluation per epoch, a checkpoint per epoch, the model saved."""
    import math
    import time

    import torch

    (x, t), (x_test, t_test) = data
    X, T = torch.from_numpy(x), torch.from_numpy(t)
    Xt, Tt = torch.from_numpy(x_test), torch.from_numpy(t_test)
    model = torch_model(info["spec"], weights, x.ndim)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    cross_entropy = torch.nn.functional.cross_entropy
    records = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        loss_sum, correct = 0.0, 0
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            xb, tb = X[idx], T[idx]
            logits = model(xb)
            loss = cross_entropy(logits, tb)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise RuntimeError(f"the loss became {loss_value}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss_value * len(tb)
            correct += int((logits.argmax(dim=1) == tb).sum())
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(Xt[i:i + 1000]) for i in range(0, len(Xt), 1000)])
            test_loss = cross_entropy(logits, Tt).item()
            test_acc = (logits.argmax(dim=1) == Tt).float().mean().item()
        sched.step()
        seconds = time.perf_counter() - start
        records.append({"loss": loss_sum / len(X), "train_accuracy": correct / len(X), "test_loss": test_loss,
                        "test_accuracy": test_acc, "seconds": seconds})
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "epoch": epoch}, f"{out_dir}/checkpoint.pt")
    torch.save(model.state_dict(), f"{out_dir}/model.pt")
    return {"test_accuracy": records[-1]["test_accuracy"], "train_seconds": sum(r["seconds"] for r in records),
            "epochs": records}
