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
import signal
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
_pools: list[_Pool] = []  # every pool whose workers have not all been told to end (see _current_pool)
_blas: list[Any] | None = None  # threadpoolctl's controllers of the loaded BLAS libraries; [] without threadpoolctl
_small_products: bool | None = None  # see blas_small_products
_worker = threading.local()  # .busy: running a parallel_map's items; .claimed: the _Pool this thread owns


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
        if _pool is not None and n != _num_threads:
            old, _pool = _pool, None  # the next parallel_map makes one of the new size
            old.close()  # a parallel_map still using it finishes its items first
        _num_threads = n
        _set_blas_threads(1)


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
        index = -1
        try:
            _worker.busy = True
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

    me = threading.get_ident()
    stale = getattr(_worker, "claimed", None)
    if stale is not None:  # a parallel_map of this thread was interrupted (Ctrl-C) before it gave its pool back
        stale.retire_if_claimed_by(me)
    with _lock:  # so that set_num_threads in another thread cannot close the pool between taking and claiming it
        pool = _current_pool()
        claimed = pool.owner is None
        if claimed:  # no call between the test and the two stores: a signal cannot land in between
            pool.owner, _worker.claimed = me, pool
    if not claimed:  # another thread's parallel_map is on it: the same items and results, in this thread alone
        return [fn(item) for item in items]
    try:
        pool.run(work, threads - 1)
    except BaseException as err:  # interrupted: the workers take no more items
        failures.append((-1, err))
        raise
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
# Signals sent to the process (Ctrl-C, kill, timers), blocked in the pool's workers: the kernel then delivers them to
# the main thread, where Python runs their handlers anyway. (Delivered to a worker waiting on its lock, they lost that
# wake-up now and then under CPython 3.11: a region waited forever, in a test sending thousands of them.)
_ASYNC_SIGNALS = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGALRM", "SIGHUP", "SIGQUIT", "SIGUSR1",
                                                     "SIGUSR2", "SIGCHLD", "SIGWINCH") if hasattr(signal, name)}


class _Worker:
    """A daemon thread (started by its pool) that runs `task` each time `go` is released, and releases `done` after
    it; None ends it."""

    def __init__(self, name: str) -> None:
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.task: Callable[[], None] | None = None
        self.ready = False  # in its loop: a thread whose start a Ctrl-C broke (CPython 3.11) may never get there
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        self.ready = True
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
    7.6-7.9 ms. One parallel_map at a time runs on the pool: the thread in `owner`, claimed and given back under
    the module's _lock (the claim is also kept in that thread's _worker.claimed, for a Ctrl-C at a bad moment).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.owner: int | None = None
        self._closing = self._stopped = False
        self._workers: list[_Worker] = []
        _pools.append(self)  # first: whatever interrupts what follows, the next _current_pool ends its workers
        # blocked while the workers start, which inherit that: a Ctrl-C waits until they have (CPython 3.11's
        # Thread.start interrupted can leave the new thread stuck before it runs), and never goes to a worker
        masked = hasattr(signal, "pthread_sigmask")
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS) if masked else None
        try:
            for i in range(size):
                self._workers.append(_Worker(f"zerograd_{i}"))
                self._workers[-1].thread.start()
        except BaseException:  # interrupted (a Ctrl-C that came just before) while starting them: end those started
            self._stop()
            raise
        finally:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def run(self, work: Callable[[], None], helpers: int) -> None:
        """work() in this thread and in `helpers` workers at once; returns when all have returned, giving the pool
        back. If interrupted (Ctrl-C), a worker may still be running: the pool is closed once it finishes, and the
        next parallel_map makes a new one."""
        finished = False
        try:
            woken = [worker for worker in self._workers[:helpers] if worker.ready]
            for worker in woken:
                worker.task = work
                worker.go.release()
            work()
            for worker in woken:
                worker.done.acquire()
            finished = True
        finally:
            self._give_back(finished)

    def _give_back(self, finished: bool) -> None:
        global _pool
        with _lock:  # no call inside: a Ctrl-C lands before or after, never halfway
            if finished and not self._closing:
                self.owner = _worker.claimed = None
                return
            self._closing = True  # never used again, though a worker may still be on an item
            if _pool is self:
                _pool = None
            self.owner = None
        self._stop()
        _worker.claimed = None

    def retire_if_claimed_by(self, thread: int) -> None:
        """Closes the pool if `thread`, which is not running a parallel_map, still holds it (a Ctrl-C landed between
        its claim and its give-back; if it was given back after all, another thread may be using it now), and
        ends its workers if a Ctrl-C stopped that before."""
        global _pool
        with _lock:
            if self.owner == thread:
                self._closing = True
                if _pool is self:
                    _pool = None
                self.owner = None
            stop = self._closing and self.owner is None and not self._stopped
        if stop:
            self._stop()
        _worker.claimed = None

    def close(self) -> None:
        """Ends the workers: now if the pool is idle, else when the parallel_map running on it finishes. With _lock
        held."""
        if not self._closing:
            self._closing = True
            if self.owner is None:
                self._stop()

    def _stop(self) -> None:
        """Ends the workers (again, if a Ctrl-C cut this short before: retire_if_claimed_by)."""
        for worker in self._workers:
            worker.task = None  # read by a worker still on its item once it is done, or by one not yet awake
            if worker.go.locked():  # only its owner or closer releases it; unlocked, its worker is about to take it
                worker.go.release()
        self._stopped = True
        if self in _pools:
            _pools.remove(self)


def _current_pool() -> _Pool:
    """The pool of get_num_threads() - 1 workers (called with _lock held, when the count is 2 or more)."""
    global _pool
    for old in [pool for pool in _pools if pool is not _pool and pool.owner is None]:  # a Ctrl-C left them running
        old._stop()
    size = get_num_threads() - 1
    if _pool is None or _pool.size != size or _pool._closing:  # closing: a Ctrl-C interrupted its closer
        old, _pool = _pool, None
        if old is not None:
            old.close()
        _pool = _Pool(size)
    return _pool


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
    _pools.clear()
    _worker.claimed = None  # a pool of the parent's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)

