"""How many threads zerograd's compute may use: the count, its default, the worker pool, and BLAS's share.

As in PyTorch, `get_num_threads()` / `set_num_threads(n)`. Until set, the count is `ZEROGRAD_NUM_THREADS`, else
`OMP_NUM_THREADS`, else the number of CPUs this process may use (its CPU affinity, capped by a cgroup CPU quota
as containers set), read once when the count is first needed.

Operations split their NumPy work with `parallel_map`: the calling thread and a persistent pool of
`get_num_threads() - 1` worker threads share the items. NumPy releases the GIL inside its loops and BLAS, so
the threads run at once. NumPy's BLAS (OpenBLAS) has threads of its own, and they must not share the cores
with the pool: an idle OpenBLAS thread spins for a while after each product, so a pool thread that starts
meanwhile finds its core busy (measured: DeepConvNet's step at 2 threads was no faster than at 1 while BLAS had
2 threads between the regions; 1.65x faster with BLAS at one thread). So zerograd's operations split their
large products themselves (Linear along an axis of its output, convolutions by images), and BLAS runs one
thread from the moment zerograd first needs its thread count (its first Linear, convolution, pooling or ReLU, or
set_num_threads).
That moment is the same in every run of a program, so results do not depend on what ran before (a resumed
run equals an uninterrupted one). It needs the optional threadpoolctl (`pip install "zerograd[threads]"`);
without it BLAS is left as it is.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from .errors import ZerogradError

__all__ = ["batch_shards", "get_num_threads", "parallel_map", "set_num_threads"]

T = TypeVar("T")
R = TypeVar("R")

_CGROUP_ROOT = Path("/sys/fs/cgroup")

_lock = threading.RLock()  # guards the count and the pool (reentrant: they call each other)
_num_threads: int | None = None  # None until first needed; then the environment's or the CPUs this process may use
_pool: _Pool | None = None  # get_num_threads() - 1 workers, made by the first parallel_map
_blas: list[Any] | None = None  # threadpoolctl's controllers of the loaded BLAS libraries; [] without threadpoolctl
_small_products: bool | None = None  # see blas_small_products
_worker = threading.local()  # .busy: this thread is running a parallel_map's items


def get_num_threads() -> int:
    """The number of threads zerograd's operations may use (BLAS runs one of them; see the module's docstring)."""
    n = _num_threads
    return n if n is not None else _resolve_num_threads()


def set_num_threads(n: int) -> None:
    """Lets zerograd's compute use n threads (n >= 1); BLAS runs one (the module's docstring says why)."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):  # Integral: NumPy's integers too
        raise ZerogradError(f"set_num_threads({n!r}): the number of threads must be a whole number, e.g. 4")
    n = int(n)
    if n < 1:
        raise ZerogradError(
            f"set_num_threads({n}): the number of threads must be at least 1; pass 1 for one thread, or "
            "leave it unset for the CPUs this process may use"
        )
    with _lock:
        old_pool = _pool if n != _num_threads else None
        if old_pool is not None:
            _pool = None  # the next parallel_map makes one of the new size
        _num_threads = n
        _set_blas_threads(1)
    if old_pool is not None:
        old_pool.close()  # a parallel_map still using it finishes its items first


# Below this many numbers per thread, waking a worker (20-70 us on the 2-core VMs) costs more than it saves.
MIN_SHARD_SIZE = 1 << 15


def batch_shards(n: int, size: int) -> list[slice]:
    """A batch of n samples (size numbers in all) as contiguous runs of samples, one per thread, for parallel_map.

    Fewer runs when a run would hold fewer than MIN_SHARD_SIZE numbers; one (empty) run for an empty batch. The
    split depends only on n, size and the thread count, so whatever an operation adds up over the runs is added
    in the same order on every run of a program: results are bit-identical from run to run at one thread count.
    """
    if n < 2 or size < 2 * MIN_SHARD_SIZE:  # one run: the common case of small arrays, without the arithmetic
        return [slice(0, n)]
    k = max(1, min(get_num_threads(), n, size // MIN_SHARD_SIZE))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def parallel_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """[fn(item) for item in items], the items shared among get_num_threads() threads; results in order.

    For NumPy work only: operations call this inside Function.forward/backward on plain arrays, and the worker
    threads record no graph (a new thread's grad mode is its own). It runs in the calling thread when there is
    one thread or one item, or when called from inside another parallel_map's fn (the pool is busy with that
    one, or another thread's parallel_map holds the pool). Otherwise the calling thread takes items too. An
    exception raised by fn is raised here, once the items already started have finished (of several, that of
    the earliest item).
    """
    items = list(items)
    threads = min(get_num_threads(), len(items))
    if threads <= 1 or getattr(_worker, "busy", False):
        return [fn(item) for item in items]
    results: list[Any] = [None] * len(items)
    failures: list[tuple[int, BaseException]] = []
    pending = enumerate(items)
    take = threading.Lock()

    def work() -> None:
        _worker.busy = True
        index = -1
        try:
            while not failures:  # after a failure, the items not yet started are skipped
                with take:
                    index, item = next(pending, (-1, None))
                if index < 0:
                    return
                results[index] = fn(item)
        except BaseException as err:  # re-raised in the calling thread
            failures.append((index, err))
        finally:
            _worker.busy = False

    with _lock:  # so that set_num_threads in another thread cannot close the pool between the two lines
        pool = _current_pool()
        have_pool = pool.in_use.acquire(blocking=False)
    if not have_pool:  # another thread's parallel_map is on it: the same items and results, in this thread alone
        return [fn(item) for item in items]
    pool.run(work, threads - 1)
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]
    return results


# --- the default count ---------------------------------------------------------------------------------------------
def _resolve_num_threads() -> int:
    """Reads the count from the environment or the CPUs, once (an invalid ZEROGRAD_NUM_THREADS raises each time)."""
    global _num_threads
    with _lock:
        if _num_threads is None:
            _num_threads = _environment_num_threads() or _default_num_threads()
            _set_blas_threads(1)  # the cores are the pool's from now on (see the module's docstring)
        return _num_threads


def _environment_num_threads() -> int | None:
    """ZEROGRAD_NUM_THREADS (a positive whole number, else an error), else OMP_NUM_THREADS when one, else None."""
    value = os.environ.get("ZEROGRAD_NUM_THREADS", "").strip()
    if value:  # ours: a typo should not silently fall back to some other count
        n = _positive_int(value)
        if n is None:
            raise ZerogradError(
                f"ZEROGRAD_NUM_THREADS={value!r} is not a positive whole number: set it to the number of threads "
                "zerograd may use (e.g. 4), or unset it to use every CPU this process may use"
            )
        return n
    # OpenMP's variable may also hold a list per nesting level ("4,2") or nothing; only a plain count applies here
    return _positive_int(os.environ.get("OMP_NUM_THREADS", "").strip())


def _positive_int(text: str) -> int | None:
    try:
        n = int(text)
    except ValueError:
        return None
    return n if n >= 1 else None


def _default_num_threads(cgroup_root: Path = _CGROUP_ROOT) -> int:
    """The CPUs this process may use: its affinity (or all CPUs), capped by a cgroup CPU quota; at least 1."""
    if hasattr(os, "sched_getaffinity"):  # Linux: taskset, docker --cpuset-cpus, a batch system's binding
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root)
    return max(1, min(cpus, quota) if quota is not None else cpus)


def _cgroup_cpu_quota(root: Path) -> int | None:
    """CPUs of the cgroup CPU quota under `root` (docker --cpus, Kubernetes limits), rounded up; None if none.

    A container sees all the host's CPUs in its affinity, but its quota lets it run only so many at once; more
    threads than that are throttled. Files that are missing or unreadable mean no quota.
    """
    v2 = root / "cpu.max"  # cgroup v2: "quota period" in microseconds, or "max period" for no quota
    if v2.is_file():
        fields = _read(v2).split()
        return _quota_cpus(fields[0], fields[1]) if len(fields) == 2 else None
    for folder in ("cpu", "cpu,cpuacct"):  # cgroup v1: the quota is -1 when there is none
        quota, period = root / folder / "cpu.cfs_quota_us", root / folder / "cpu.cfs_period_us"
        if quota.is_file() and period.is_file():
            return _quota_cpus(_read(quota).strip(), _read(period).strip())
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _quota_cpus(quota: str, period: str) -> int | None:
    """ceil(quota / period) when both are positive numbers ("max" and -1 mean no quota, garbage is ignored)."""
    q, p = _positive_int(quota), _positive_int(period)
    return max(1, math.ceil(q / p)) if q is not None and p is not None else None


_CPU_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")  # Linux's description of the first CPU's caches


def l2_cache_bytes(default: int | None = None, caches: Path = _CPU_CACHES) -> int | None:
    """The size of one core's L2 cache as Linux describes it (sysfs), else `default`: what sizes the convolutions'
    im2col buffer (functional.conv), and what the benchmark report names."""
    for index in sorted(caches.glob("index*")):
        if _read(index / "level").strip() == "2" and _read(index / "type").strip() in ("Unified", "Data"):
            size = _read(index / "size").strip().upper()
            digits = size.rstrip("KM")
            return int(digits) << {"K": 10, "M": 20}.get(size[-1:], 0) if digits.isdigit() else default
    return default


# --- the pool and BLAS ---------------------------------------------------------------------------------------------
class _Worker:
    """A daemon thread that runs `task` each time `go` is released, and releases `done` after it; None ends it."""

    def __init__(self, name: str) -> None:
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.task: Callable[[], None] | None = None
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            task = self.task
            if task is None:
                return
            try:
                task()
            finally:
                self.done.release()


class _Pool:
    """The worker threads parallel_map shares its items with, each woken by its own lock.

    A region costs two lock handoffs per worker. On the 2-core Xeon VM an empty parallel_map took 21-23 us
    back to back and 37-67 us after a millisecond's pause, where ThreadPoolExecutor (submit, a Future, wait),
    used before, took 52-56 and 79-112 us; SimpleConvNet's two-thread training step went from 8.2-8.5 to
    7.6-7.9 ms. One parallel_map at a time holds `in_use`.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_use = threading.Lock()
        self._state = threading.Lock()  # orders close() against the end of a run
        self._closing = False
        self._workers = [_Worker(f"zerograd_{i}") for i in range(size)]

    def run(self, work: Callable[[], None], helpers: int) -> None:
        """work() in this thread and in `helpers` workers at once; returns when all have returned. The caller holds
        in_use; run releases it. If waiting is interrupted (Ctrl-C), a worker may still be running: the pool is
        closed once it finishes, and the next parallel_map makes a new one."""
        woken = self._workers[:helpers]
        for worker in woken:
            worker.task = work
            worker.go.release()
        finished = False
        try:
            work()
            for worker in woken:
                worker.done.acquire()
            finished = True
        finally:
            self._release(finished)

    def _release(self, finished: bool) -> None:
        with self._state:
            if finished and not self._closing:
                self.in_use.release()
                return
            self._closing = True
        self._stop()
        _forget_pool(self)

    def close(self) -> None:
        """Ends the workers: now if the pool is idle, else when the parallel_map running on it finishes."""
        with self._state:
            if self._closing:
                return
            self._closing = True
            if not self.in_use.acquire(blocking=False):
                return
        self._stop()

    def _stop(self) -> None:
        for worker in self._workers:
            worker.task = None  # read by a worker still on its item once it is done, or by one not yet awake
            if worker.go.locked():  # only this thread releases it; unlocked, its worker is about to take it
                worker.go.release()


def _current_pool() -> _Pool:
    """The pool of get_num_threads() - 1 workers (called with _lock held, when the count is 2 or more)."""
    global _pool
    size = get_num_threads() - 1
    if _pool is None or _pool.size != size:
        if _pool is not None:
            _pool.close()
        _pool = _Pool(size)
    return _pool


def _forget_pool(pool: _Pool) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None


def _set_blas_threads(n: int) -> None:
    # the loaded libraries' own setters (openblas_set_num_threads, ...): about 1 us, where
    # ThreadpoolController().limit(...) as a context costs 7 us and threadpool_limits(...) 200 us
    for library in _blas_libraries():
        library.set_num_threads(n)


def _blas_libraries() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process, found once ([] without it)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # optional (zerograd[threads]): NumPy stays the only required dependency
            _blas = []
        else:
            import numpy  # noqa: F401  (loads NumPy's BLAS, so that the controller finds it)

            _blas = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas


# OpenBLAS cores with "small matrix" sgemm kernels: a product of M*N*K <= 1e6 runs without packing its operands
# (OpenBLAS's sgemm_small_kernel_permit), measured 25-35% faster per flop on the convolutions' shapes here.
_SMALL_KERNEL_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
SMALL_PRODUCT = 1_000_000


def blas_small_products() -> bool:
    """Whether NumPy's BLAS is OpenBLAS on a core with small-matrix kernels (see SMALL_PRODUCT); False when unknown
    (without threadpoolctl). Operations then cut a large float32 product into pieces below SMALL_PRODUCT."""
    global _small_products
    if _small_products is None:
        _small_products = any(getattr(library, "internal_api", None) == "openblas"
                              and str(getattr(library, "architecture", "")).lower() in _SMALL_KERNEL_CORES
                              for library in _blas_libraries())
    return _small_products


def _forget_pool_after_fork() -> None:
    """A forked child has none of its parent's threads: it makes its own pool (BLAS's setting it inherits)."""
    global _lock, _pool
    _lock, _pool = threading.RLock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)

