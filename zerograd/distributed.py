"""Data-parallel training over the processes of an MPI job (mpi4py), as ChainerMN and Horovod do it.

Every process holds the whole model and works on its own share of each batch; after backward the
gradients are added up across processes in a few large messages (flat buffers, one Allreduce per
bucket), so every process takes the same optimizer step and the models stay identical. Start the
processes with `mpiexec -n K python script.py` (or `mpiexec -n K zerograd train --distributed`).
`Parallel`, the hooks through which zerograd.training.fit shares a run, is defined here beside its MPI
implementation, so the training loop calls down into this layer.

mpi4py is imported on first use (`pip install "zerograd[mpi]"`); `import zerograd` never needs it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np

from . import nn
from .datasets import DataLoader
from .datasets.loader import Batch, EpochPlan, as_batch, collate
from .errors import ZerogradError
from .tensor import Tensor

_OPS = ("sum", "mean", "max", "min")


class DistributedError(ZerogradError):
    """MPI is missing or a collective operation was used wrongly."""


def _mpi() -> Any:
    """The mpi4py.MPI module (initialising MPI on first import)."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise DistributedError(
            f'distributed training needs mpi4py and an MPI library: pip install "zerograd[mpi]" ({err})'
        ) from err
    return MPI


def init() -> Any:
    """MPI's COMM_WORLD, after initialising MPI if needed: every process of `mpiexec -n K` belongs to it."""
    return _mpi().COMM_WORLD


def rank() -> int:
    """This process's number in the job, 0 .. world_size() - 1."""
    return int(init().Get_rank())


def world_size() -> int:
    """The number of processes in the job (1 when started without mpiexec)."""
    return int(init().Get_size())


def is_main() -> bool:
    """True on rank 0, the process that speaks and writes files."""
    return rank() == 0


def _communication_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind not in "biufc":
        raise DistributedError(f"all_reduce works on numbers, got an array of {dtype}")
    if dtype == np.float16:  # MPI has no half-precision type: reduce in float32, return float16
        return np.dtype(np.float32)
    if dtype.kind == "b":  # sums of booleans count the processes where they are True
        return np.dtype(np.int64)
    return dtype


def all_reduce(array: Any, op: str = "mean", comm: Any = None) -> np.ndarray:
    """Elementwise `op` ("mean", "sum", "max", "min") of `array` over all processes; same shape on every process.

    Every process must call it with the same shape and dtype. "mean" of integers gives float64,
    of floats the same dtype; the input is left unchanged.
    """
    if op not in _OPS:
        raise DistributedError(f"unknown all_reduce op {op!r}: use one of {', '.join(_OPS)}")
    MPI = _mpi()
    comm = comm if comm is not None else MPI.COMM_WORLD
    if isinstance(array, Tensor):
        array = array.data
    array = np.asarray(array)
    work = _communication_dtype(array.dtype)
    send = np.ascontiguousarray(array, dtype=work).reshape(array.shape)  # (ascontiguousarray makes 0-d 1-d)
    out = np.empty_like(send)
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
    comm.Allreduce(send, out, op=mpi_op)
    if op == "mean":
        result_dtype = array.dtype if array.dtype.kind in "fc" else np.dtype(np.float64)
        return (out / comm.Get_size()).astype(result_dtype, copy=False)
    if array.dtype.kind == "b" and op in ("max", "min"):
        return out.astype(bool)
    return out.astype(array.dtype, copy=False) if array.dtype == np.float16 else out


def _tensors_of(obj: Any) -> list[np.ndarray]:
    """The arrays that `broadcast` overwrites: a module's parameters and buffers, or the given arrays."""
    if isinstance(obj, nn.Module):
        arrays = [p.data for p in obj.parameters()]
        arrays += [b for _, b in obj.named_buffers() if b is not None]
        return arrays
    if isinstance(obj, (Tensor, np.ndarray)):
        obj = [obj]
    items = obj.values() if isinstance(obj, Mapping) else obj
    arrays = []
    for item in items:
        array = item.data if isinstance(item, Tensor) else item
        if not isinstance(array, np.ndarray):
            raise DistributedError(
                f"broadcast takes a Module, an array, or a list/dict of arrays; got a {type(item).__name__} inside"
            )
        arrays.append(array)
    return arrays


def broadcast(obj: Any, root: int = 0, comm: Any = None) -> Any:
    """Overwrites, in place, the values of `obj` on every process with those of process `root`; returns obj.

    obj is a Module (its parameters and buffers), a Tensor or array, or a list, tuple or dict of them.
    Arrays of the same dtype travel together in one flat message. Every process passes the same structure.
    """
    MPI = _mpi()
    comm = comm if comm is not None else MPI.COMM_WORLD
    arrays = _tensors_of(obj)
    for array in arrays:
        if not array.flags.writeable:
            raise DistributedError("broadcast overwrites arrays in place; one of them is read-only: pass a copy")
    by_dtype: dict[np.dtype, list[np.ndarray]] = {}
    for array in arrays:
        by_dtype.setdefault(array.dtype, []).append(array)
    for dtype in sorted(by_dtype, key=str):  # the same order on every process
        group = by_dtype[dtype]
        work = _communication_dtype(dtype)
        flat = np.concatenate([a.ravel() for a in group]).astype(work, copy=False) if group else np.empty(0, work)
        comm.Bcast(flat, root=root)
        offset = 0
        for a in group:
            a[...] = flat[offset : offset + a.size].reshape(a.shape)
            offset += a.size
    return obj


def average_buffers(module: nn.Module, comm: Any = None) -> None:
    """Replaces the floating-point buffers of `module` (batch-norm running statistics) by their mean over processes."""
    MPI = _mpi()
    comm = comm if comm is not None else MPI.COMM_WORLD
    buffers = [b for _, b in module.named_buffers() if b is not None and b.dtype.kind == "f"]
    by_dtype: dict[np.dtype, list[np.ndarray]] = {}
    for b in buffers:
        by_dtype.setdefault(b.dtype, []).append(b)
    for dtype in sorted(by_dtype, key=str):
        group = by_dtype[dtype]
        mean = all_reduce(np.concatenate([b.ravel() for b in group]), "mean", comm)
        offset = 0
        for b in group:
            b[...] = mean[offset : offset + b.size].reshape(b.shape)
            offset += b.size


def shard_bounds(batch: int, world: int, rank: int) -> tuple[int, int]:
    """[start, stop) of process `rank`'s share of a batch of `batch` samples: sizes differ by at most one,
    the larger shares first (as np.array_split)."""
    size, extra = divmod(batch, world)
    start = rank * size + min(rank, extra)
    return start, start + size + (rank < extra)


class DistributedLoader(DataLoader):
    """A DataLoader over the same global batches on every process that yields only this process's share.

    Every process draws the same permutation each epoch (from `seed`, 0 by default, or from a `generator`
    set to rank 0's state) and cuts each batch of `batch_size` (the global batch) into world_size
    contiguous shares; the last, smaller batch is cut the same way (a share may be empty when it has
    fewer samples than there are processes). `len(loader)` is the number of global batches. `transform`
    sees the whole global batch, so its random draws are those of a single process (each process then
    keeps its share; the transform's own generator must start alike on every process). `num_workers` and
    `prefetch_factor` prepare shares ahead in background threads, exactly as DataLoader's.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False, *,
                 generator: np.random.Generator | None = None, seed: int | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 rank: int | None = None, world_size: int | None = None,
                 num_workers: int = 0, prefetch_factor: int | None = None) -> None:
        if generator is None and seed is None:
            seed = 0  # not zerograd's default generator: its entropy would differ between processes
        super().__init__(dataset, batch_size, shuffle, drop_last, generator=generator, seed=seed, transform=transform,
                         num_workers=num_workers, prefetch_factor=prefetch_factor)
        comm = init() if rank is None or world_size is None else None
        self.rank = int(comm.Get_rank()) if rank is None else int(rank)
        self.world_size = int(comm.Get_size()) if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise DistributedError(f"rank {self.rank} is outside a job of {self.world_size} processes")
        if generator is not None and comm is not None:
            # the shares only fit together if every process shuffles alike: start from rank 0's state
            generator.bit_generator.state = comm.bcast(generator.bit_generator.state, root=0)

    def _start_epoch(self) -> EpochPlan:
        """The epoch's order (a permutation, or 0..N-1), drawn when it starts."""
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        return EpochPlan(order, n, len(self), getattr(self.dataset, "get_batch", None))

    def _share(self, epoch: EpochPlan, index: int) -> tuple[np.ndarray, int, int]:
        """The sample indices of global batch `index` and [lo, hi) of this process's share of it."""
        start = index * self.batch_size
        batch_indices = epoch.order[start : min(start + self.batch_size, epoch.size)]
        lo, hi = shard_bounds(len(batch_indices), self.world_size, self.rank)
        return batch_indices, lo, hi

    def _fetch(self, epoch: EpochPlan, index: int) -> Batch:
        """This process's share of global batch `index` (the whole global batch when there is a transform)."""
        batch_indices, lo, hi = self._share(epoch, index)
        fetch = batch_indices if self.transform is not None else batch_indices[lo:hi]
        if epoch.get_batch is not None:
            return as_batch(epoch.get_batch(fetch))
        if len(fetch):
            return collate([self.dataset[int(i)] for i in fetch])
        # an empty share: arrays with no rows but the dataset's sample shapes
        return tuple(a[:0] for a in collate([self.dataset[0]]))

    def _finish(self, epoch: EpochPlan, index: int, batch: Batch) -> Batch:
        """The global batch transformed as one process would, then cut to this process's share."""
        if self.transform is not None:
            _, lo, hi = self._share(epoch, index)
            batch = (np.asarray(self.transform(batch[0])), *batch[1:])
            batch = tuple(a[lo:hi] for a in batch)
        return batch


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer, with one count per parameter and the weight."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        self.dtype = params[0].data.dtype
        self.sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.numel = int(self.offsets[-1])
        # [gradients..., one "has a gradient" count per parameter, total weight]
        self.send = np.zeros(self.numel + len(params) + 1, dtype=_communication_dtype(self.dtype))


class Parallel:
    """Hooks through which zerograd.training.fit shares one run among several processes; this base class is one
    process.

    DistributedDataParallel implements them over MPI. fit's loader then yields each process's share of
    every batch (possibly empty for a small last batch).
    """

    def start(self) -> None:
        """Before the first step (after any resume): make every process's model identical."""

    def sync_gradients(self, count: int) -> None:
        """After backward: combine this process's gradients of `count` samples with the other processes'."""

    def end_epoch(self, sums: list[float]) -> list[float]:
        """After an epoch's last step, before evaluation: `sums` added over processes (and shared statistics)."""
        return sums


class DistributedDataParallel(nn.Module, Parallel):
    """Wraps `module` so that every process trains the same model on its own data.

    On creation (and in `start()`) it broadcasts the parameters and buffers of rank 0, so that every
    process starts identical, and jumps each process's dropout generators apart. After each backward,
    `sync_gradients(count)` replaces every gradient by the average over processes, each weighted by its
    number of samples `count` (for a loss that is a mean over the batch, this is exactly the gradient one
    process would get on the whole batch); gradients are packed into flat buffers of at most
    `bucket_cap_mb` megabytes, one Allreduce each. `average_buffers()` averages the batch-norm running
    statistics; batch statistics themselves stay per process, as in PyTorch's DDP without SyncBatchNorm.
    Pass it to `fit(..., parallel=ddp)` with a DistributedLoader, or call these in your own loop;
    `ddp(x)` is `module(x)`.
    """

    def __init__(self, module: nn.Module, *, comm: Any = None, bucket_cap_mb: float = 25.0) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise DistributedError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise DistributedError(f"bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.comm = comm if comm is not None else init()
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.communication_seconds = 0.0  # time spent packing, reducing and unpacking gradients
        self.steps = 0
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = self._make_buckets(params, int(bucket_cap_mb * 2**20))
        self.start()

    @staticmethod
    def _make_buckets(params: list[nn.Parameter], cap_bytes: int) -> list[_Bucket]:
        buckets: list[_Bucket] = []
        current: list[nn.Parameter] = []
        size = 0
        for p in params:
            same_dtype = not current or current[0].data.dtype == p.data.dtype
            if current and (not same_dtype or size + p.data.nbytes > cap_bytes):
                buckets.append(_Bucket(current))
                current, size = [], 0
            current.append(p)
            size += p.data.nbytes
        if current:
            buckets.append(_Bucket(current))
        return buckets

    @property
    def message_bytes(self) -> list[int]:
        """Bytes of each bucket's message, one Allreduce per bucket and step."""
        return [b.send.nbytes for b in self._buckets]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def sync_gradients(self, count: int | None = None) -> None:
        """Every parameter's .grad becomes the count-weighted mean over processes (count=None: plain mean).

        A process without a gradient for a parameter (.grad None) contributes zeros; a parameter that no
        process has a gradient for keeps .grad None.
        """
        begin = time.perf_counter()
        weight = 1.0 if count is None else float(count)
        MPI = _mpi()
        for bucket in self._buckets:
            send = bucket.send
            flags = send[bucket.numel : -1]
            for i, p in enumerate(bucket.params):
                part = send[bucket.offsets[i] : bucket.offsets[i + 1]]
                if p.grad is None:
                    part[...] = 0
                    flags[i] = 0
                else:
                    np.multiply(p.grad.ravel(), weight, out=part, casting="unsafe")
                    flags[i] = 1
            send[-1] = weight
            received = np.empty_like(send)
            self.comm.Allreduce(send, received, op=MPI.SUM)
            total = received[-1]
            if total:
                received[: bucket.numel] /= total
            # fresh arrays each step: an optimizer may keep a gradient array, never rewrite it in place
            for i, p in enumerate(bucket.params):
                has_grad = received[bucket.numel + i] > 0
                grad = received[bucket.offsets[i] : bucket.offsets[i + 1]].reshape(p.data.shape) if has_grad else None
                p.grad = grad.astype(bucket.dtype, copy=False) if grad is not None else None
        self.communication_seconds += time.perf_counter() - begin
        self.steps += 1

    def average_buffers(self) -> None:
        """Running statistics (batch norm) become their mean over processes."""
        average_buffers(self.module, self.comm)

    # --- the hooks of fit ---
    def start(self) -> None:
        """Copies rank 0's parameters and buffers to every process and gives each process its own stream of
        the model's random generators (dropout masks), jumped ahead by its rank."""
        broadcast(self.module, 0, self.comm)
        steps = int(self.comm.Get_rank())
        for module in self.module.modules():
            for value in vars(module).values():
                if steps and isinstance(value, np.random.Generator) and hasattr(value.bit_generator, "jumped"):
                    value.bit_generator.state = value.bit_generator.jumped(steps).state

    def end_epoch(self, sums: list[float]) -> list[float]:
        self.average_buffers()
        return [float(v) for v in all_reduce(np.asarray(sums, dtype=np.float64), "sum", self.comm)]


__all__: Sequence[str] = (
    "DistributedDataParallel", "DistributedError", "DistributedLoader", "Parallel", "all_reduce", "average_buffers",
    "broadcast", "init", "is_main", "rank", "shard_bounds", "world_size",
)
