"""Images per second of data-parallel training on K MPI processes, and the share spent communicating.

Run it once per process count, each process with one BLAS thread, on an otherwise idle machine:

    OPENBLAS_NUM_THREADS=1 python benchmarks/distributed_throughput.py --model mlp
    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python benchmarks/distributed_throughput.py --model mlp

With one process it times the ordinary single-process `fit` (no MPI calls at all); with K it times
`fit` with a DistributedLoader and DistributedDataParallel, as `zerograd train --distributed` does.
Rank 0 prints one JSON object: images/s, seconds per step, the share of each step spent in the
gradient exchange (packing, Allreduce, unpacking, including waiting for the slower process), the
message sizes, and the time of the bare Allreduce of those messages with no training around it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from zerograd import nn, optim
from zerograd.datasets import TensorDataset, load_mnist
from zerograd.training import fit


def simple_cnn() -> nn.Module:
    """The book's SimpleConvNet (conv 30x5x5 - ReLU - pool 2 - 100 - ReLU - 10), from zerograd.models if present."""
    try:
        from zerograd.models import SimpleConvNet

        return SimpleConvNet()
    except ImportError:
        return nn.Sequential(
            nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10),
        )


def build(name: str) -> nn.Module:
    if name == "mlp":
        from zerograd.models import MLP

        return MLP(784, (256, 128), 10, seed=0)  # `zerograd train`'s default network
    return simple_cnn()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "simple-cnn"], default="mlp")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (default 128, as zerograd train)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 400 mlp, 60 simple-cnn)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 50 mlp, 10 cnn)")
    args = parser.parse_args()
    steps = args.steps or (400 if args.model == "mlp" else 60)
    warmup = args.warmup or (50 if args.model == "mlp" else 10)

    (x, t), _ = load_mnist(flatten=args.model == "mlp")
    model = build(args.model)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    distributed = "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ or "PMIX_RANK" in os.environ
    world, rank, ddp, comm = 1, 0, None, None
    if distributed:
        from zerograd.distributed import DistributedDataParallel, DistributedLoader, init

        comm = init()
        world, rank = comm.Get_size(), comm.Get_rank()
    if world > 1:
        loader = DistributedLoader(TensorDataset(x, t), args.batch_size, shuffle=True, seed=0)
        ddp = DistributedDataParallel(model, comm=comm)
        data = loader
    else:
        data = (x, t)

    def run(iterations: int) -> float:
        if comm is not None:
            comm.Barrier()
        begin = time.perf_counter()
        fit(model, optimizer, data, iterations=iterations, batch_size=args.batch_size, parallel=ddp)
        return time.perf_counter() - begin

    run(warmup)
    comm_before = ddp.communication_seconds if ddp else 0.0
    seconds = run(steps)
    comm_seconds = (ddp.communication_seconds - comm_before) if ddp else 0.0

    result = {
        "model": args.model, "processes": world, "batch_size": args.batch_size, "steps": steps,
        "images_per_second": round(steps * args.batch_size / seconds, 1),
        "ms_per_step": round(1000 * seconds / steps, 3),
        "parameters": int(sum(p.data.size for p in model.parameters())),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average": os.getloadavg(),
    }
    if ddp is not None:
        shares = comm.gather(comm_seconds / seconds, root=0)
        # the bare exchange: the same messages, reduced back to back with no training in between
        buffers = [np.ones(n // 4, dtype=np.float32) for n in ddp.message_bytes]
        out = [np.empty_like(b) for b in buffers]
        comm.Barrier()
        begin = time.perf_counter()
        for _ in range(50):
            for b, o in zip(buffers, out):
                comm.Allreduce(b, o)
        bare = (time.perf_counter() - begin) / 50
        result.update(
            communication_share_per_rank=[round(s, 4) for s in shares] if rank == 0 else None,
            message_bytes=ddp.message_bytes, allreduces_per_step=len(ddp.message_bytes),
            bare_allreduce_ms=round(1000 * bare, 3),
        )
    if rank == 0:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
