"""How many threads zerograd's compute may use: the count, its default, the pool, BLAS (zerograd/threads.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import zerograd
from zerograd import ZerogradError, threads


@pytest.fixture
def restore_threads():
    """Gives the test the thread count to change, and puts the old count (and BLAS's) back afterwards."""
    old = zerograd.get_num_threads()
    yield
    zerograd.set_num_threads(old)


# --- the count ---------------------------------------------------------------------------------------------------
def test_top_level_names_are_the_threads_module():
    assert zerograd.get_num_threads is threads.get_num_threads
    assert zerograd.set_num_threads is threads.set_num_threads
    assert {"get_num_threads", "set_num_threads"} <= set(zerograd.__all__)


def test_set_then_get_round_trip(restore_threads):
    for n in (1, 3, np.int64(2)):
        zerograd.set_num_threads(n)
        assert zerograd.get_num_threads() == n and type(zerograd.get_num_threads()) is int


@pytest.mark.parametrize("n", [0, -2])
def test_fewer_than_one_thread_is_refused_naming_the_fix(restore_threads, n):
    before = zerograd.get_num_threads()
    with pytest.raises(ZerogradError, match=rf"set_num_threads\({n}\).*at least 1.*pass 1"):
        zerograd.set_num_threads(n)
    assert zerograd.get_num_threads() == before


@pytest.mark.parametrize("n", [2.0, "2", True, None])
def test_a_count_that_is_not_a_whole_number_is_refused(n):
    with pytest.raises(ZerogradError, match="whole number"):
        zerograd.set_num_threads(n)


def test_the_default_is_the_cpus_this_process_may_use():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= threads._default_num_threads() <= cpus


# --- the environment, read once --------------------------------------------------------------------------------------
def _count_in_child(**env: str) -> subprocess.CompletedProcess:
    child = {k: v for k, v in os.environ.items() if k not in ("ZEROGRAD_NUM_THREADS", "OMP_NUM_THREADS")}
    return subprocess.run([sys.executable, "-c", "import zerograd; print(zerograd.get_num_threads())"],
                          env={**child, **env}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ZEROGRAD_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "5"}, 5),
        ({"ZEROGRAD_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, 3),  # zerograd's own variable wins
        ({"ZEROGRAD_NUM_THREADS": "", "OMP_NUM_THREADS": "4"}, 4),  # set but empty is unset
        ({"OMP_NUM_THREADS": "4,2"}, None),  # OpenMP's per-level list, or no count: OpenMP's business, ignored
        ({"OMP_NUM_THREADS": "0"}, None),
        ({}, None),
    ],
)
def test_environment_overrides_the_default(env, expected):
    result = _count_in_child(**env)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == (expected if expected is not None else threads._default_num_threads())


@pytest.mark.parametrize("value", ["four", "0", "-1", "2.5"])
def test_an_invalid_zerograd_num_threads_is_an_error_naming_the_variable(value):
    result = _count_in_child(ZEROGRAD_NUM_THREADS=value, OMP_NUM_THREADS="2")
    assert result.returncode == 1
    assert f"ZerogradError: ZEROGRAD_NUM_THREADS={value!r} is not a positive whole number" in result.stderr
    assert "unset it" in result.stderr


def test_the_environment_is_read_once_when_first_needed(monkeypatch):
    monkeypatch.setattr(threads, "_num_threads", None)  # as in a fresh process, until the first get
    monkeypatch.setenv("ZEROGRAD_NUM_THREADS", "3")
    assert zerograd.get_num_threads() == 3
    monkeypatch.setenv("ZEROGRAD_NUM_THREADS", "5")
    assert zerograd.get_num_threads() == 3


# --- cgroup CPU quotas -----------------------------------------------------------------------------------------------
def _write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # v2: 1.5 CPUs -> 2 threads
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),  # v2: no quota
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1: no quota
        ({}, None),  # no cgroup files at all (macOS, Windows, a host without them)
        ({"cpu.max": "lots\n"}, None),  # garbage is ignored
        ({"cpu.max": "100000 0\n"}, None),
        ({"cpu.max": ""}, None),
        ({"cpu.max": "\xff\xfe 1"}, None),
        ({"cpu/cpu.cfs_quota_us": "many\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n"}, None),  # half of v1's pair
    ],
)
def test_cgroup_cpu_quota(tmp_path, files, expected):
    for name, text in files.items():
        _write(tmp_path, name, text)
    assert threads._cgroup_cpu_quota(tmp_path) == expected


def test_a_cgroup_quota_caps_the_default_and_never_raises_it(tmp_path):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _write(tmp_path, "cpu.max", "50000 100000\n")
    assert threads._default_num_threads(tmp_path) == 1
    _write(tmp_path, "cpu.max", f"{(cpus + 8) * 100000} 100000\n")
    assert threads._default_num_threads(tmp_path) == cpus
    _write(tmp_path, "cpu.max", "max 100000\n")
    assert threads._default_num_threads(tmp_path) == cpus


# --- parallel_map --------------------------------------------------------------------------------------------------
def test_parallel_map_keeps_the_order(restore_threads):
    zerograd.set_num_threads(2)

    def slow_square(i):
        time.sleep(0.002 * (i % 3))  # items finish out of order
        return i * i

    assert threads.parallel_map(slow_square, range(20)) == [i * i for i in range(20)]
    assert threads.parallel_map(slow_square, iter([3])) == [9]
    assert threads.parallel_map(slow_square, []) == []


def test_parallel_map_uses_the_calling_thread_and_a_worker(restore_threads):
    zerograd.set_num_threads(2)
    both_running = threading.Barrier(2, timeout=30)  # passes only when two threads run items at once

    def ident(_):
        both_running.wait()
        return threading.get_ident()

    idents = threads.parallel_map(ident, range(2))
    assert len(set(idents)) == 2 and threading.get_ident() in idents


def test_a_new_count_makes_a_new_pool(restore_threads):
    zerograd.set_num_threads(2)
    threads.parallel_map(abs, range(4))
    zerograd.set_num_threads(3)
    all_running = threading.Barrier(3, timeout=30)

    def ident(_):
        all_running.wait()
        return threading.get_ident()

    assert len(set(threads.parallel_map(ident, range(3)))) == 3


def test_one_thread_runs_everything_in_the_calling_thread(restore_threads):
    zerograd.set_num_threads(1)
    assert set(threads.parallel_map(lambda _: threading.get_ident(), range(5))) == {threading.get_ident()}


def test_a_parallel_map_inside_one_runs_serially(restore_threads):
    """The pool is busy with the outer items: an inner parallel_map waiting on it could wait forever."""
    zerograd.set_num_threads(2)

    def inner(_):
        return set(threads.parallel_map(lambda _: threading.get_ident(), range(4))) == {threading.get_ident()}

    assert threads.parallel_map(inner, range(4)) == [True] * 4


def _workers_alive() -> int:
    return sum(t.name.startswith("zerograd_") and t.is_alive() for t in threading.enumerate())


def _wait_for_workers(n: int) -> int:
    deadline = time.monotonic() + 30
    while _workers_alive() != n and time.monotonic() < deadline:
        time.sleep(0.01)
    return _workers_alive()


def test_a_new_count_ends_the_old_pools_workers(restore_threads):
    zerograd.set_num_threads(4)
    threads.parallel_map(abs, range(8))
    zerograd.set_num_threads(2)
    assert threads.parallel_map(abs, range(-4, 0)) == [4, 3, 2, 1]
    assert _wait_for_workers(1) == 1


def test_a_new_count_set_while_a_parallel_map_runs_lets_it_finish(restore_threads):
    zerograd.set_num_threads(2)
    both_running, changed = threading.Barrier(2, timeout=30), threading.Event()

    def item(i):
        both_running.wait()
        changed.wait(30)  # the pool is closed under the items
        return i * 10

    result = []
    runner = threading.Thread(target=lambda: result.append(threads.parallel_map(item, range(2))))
    runner.start()
    time.sleep(0.05)
    zerograd.set_num_threads(3)
    changed.set()
    runner.join(30)
    assert result == [[0, 10]]
    assert threads.parallel_map(abs, range(-3, 0)) == [3, 2, 1]
    assert _wait_for_workers(2) == 2  # the old pool's worker ended once its item was done


def test_parallel_maps_from_two_threads_at_once_each_get_their_results(restore_threads):
    """One of them holds the pool; the other runs its items in its own thread, to the same results."""
    zerograd.set_num_threads(2)
    results, failures = {}, []

    def user(k):
        try:
            results[k] = [threads.parallel_map(lambda i, r=r: i * k + r, range(6)) for r in range(200)]
        except BaseException as err:  # noqa: BLE001 (reported below)
            failures.append(err)

    users = [threading.Thread(target=user, args=(k,)) for k in (3, 5)]
    for u in users:
        u.start()
    for u in users:
        u.join(60)
    assert not failures
    for k in (3, 5):
        assert results[k] == [[i * k + r for i in range(6)] for r in range(200)]


def test_a_parallel_map_run_alone_while_the_pool_is_busy_holds_no_lock(restore_threads):
    """Its items run in its own thread without the module's lock: another thread may set the count meanwhile."""
    zerograd.set_num_threads(2)
    pool_busy, release = threading.Barrier(3, timeout=30), threading.Event()

    def pool_item(i):
        pool_busy.wait()  # both of the holder's items are running
        release.wait(30)
        return i

    holder = threading.Thread(target=lambda: threads.parallel_map(pool_item, range(2)))
    holder.start()
    pool_busy.wait()

    def item(i):
        setter = threading.Thread(target=zerograd.set_num_threads, args=(2,))
        setter.start()
        setter.join(10)
        return not setter.is_alive()

    try:
        assert threads.parallel_map(item, range(2)) == [True, True]
    finally:
        release.set()
        holder.join(30)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_while_waiting_for_a_worker_leaves_a_working_pool(restore_threads):
    """Interrupted while its worker still runs an item, the pool is retired; the next parallel_map makes another."""
    zerograd.set_num_threads(2)
    main = threading.get_ident()  # pytest runs tests in the main thread, where SIGINT raises KeyboardInterrupt
    started, release = threading.Event(), threading.Event()

    def item(i):
        if threading.get_ident() == main:
            started.wait(30)  # main's item ends once the worker is inside its own
        else:
            started.set()
            release.wait(30)
        return i

    def interrupt():
        started.wait(30)
        time.sleep(0.1)  # main is waiting for the worker by now
        signal.pthread_kill(main, signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    with pytest.raises(KeyboardInterrupt):
        threads.parallel_map(item, range(2))
    killer.join(30)
    release.set()
    assert _wait_for_workers(0) == 0  # the interrupted pool's worker ended after its item
    assert threads.parallel_map(lambda i: i * i, range(4)) == [0, 1, 4, 9]
    assert _wait_for_workers(1) == 1


def _interruptible_lines(code) -> list[int]:
    """The lines of code where CPython may run a signal handler (and so raise KeyboardInterrupt): those with a call,
    a loop's jump back or a `with` (plain assignments, tests and returns never check for signals)."""
    import dis

    lines, line = set(), None
    for ins in dis.get_instructions(code):
        line = ins.positions.lineno if ins.positions and ins.positions.lineno else line
        if line and line > code.co_firstlineno and (ins.opname.startswith(("CALL", "JUMP_BACKWARD"))
                                                    or ins.opname in ("BEFORE_WITH", "SETUP_WITH")):
            lines.add(line)
    return sorted(lines)


@pytest.mark.parametrize("where", ["parallel_map", "run", "_give_back", "work"])
def test_a_ctrl_c_at_any_line_leaves_a_working_pool(restore_threads, where):
    """KeyboardInterrupt raised in the calling thread at each line in turn where a signal handler could raise it:
    afterwards parallel_map still runs its items on two threads, and the old workers end."""
    import sys

    zerograd.set_num_threads(2)
    threads.parallel_map(abs, range(2))
    code = {"parallel_map": threads.parallel_map.__code__, "run": threads._Pool.run.__code__,
            "_give_back": threads._Pool._give_back.__code__,
            "work": next(c for c in threads.parallel_map.__code__.co_consts if getattr(c, "co_name", "") == "work")}
    code = code[where]
    lines = _interruptible_lines(code)
    assert lines
    for line in lines:
        fired = []

        def local(frame, event, arg, line=line, fired=fired):
            if event == "line" and frame.f_lineno == line and not fired:
                fired.append(line)
                raise KeyboardInterrupt
            return local

        sys.settrace(lambda frame, event, arg: local if frame.f_code is code else None)
        try:
            threads.parallel_map(lambda i: i, range(2))
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        both = threading.Barrier(2, timeout=10)  # broken (an error) unless two threads run the items at once
        assert threads.parallel_map(lambda i, both=both: (both.wait(), i)[1], range(2)) == [0, 1], (where, line)
    assert _wait_for_workers(1) == 1


@pytest.mark.parametrize("n", [1, 2])
def test_parallel_map_raises_what_fn_raised(restore_threads, n):
    zerograd.set_num_threads(n)

    def fail_on_3(i):
        if i == 3:
            raise ValueError(f"item {i}")
        return i

    with pytest.raises(ValueError, match="item 3"):
        threads.parallel_map(fail_on_3, range(8))
    assert threads.parallel_map(fail_on_3, range(3)) == [0, 1, 2]  # and the pool still works


def test_of_several_failures_the_earliest_items_is_raised(restore_threads):
    zerograd.set_num_threads(2)
    both_running = threading.Barrier(2, timeout=30)

    def fail(i):
        both_running.wait()  # items 0 and 1 both start
        if i == 1:
            raise KeyError("second")
        time.sleep(0.05)  # item 0 fails after item 1 has
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        threads.parallel_map(fail, range(2))


# --- BLAS ----------------------------------------------------------------------------------------------------------
def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_blas_runs_one_thread_once_zerograd_knows_its_count(restore_threads, monkeypatch):
    pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401  (its BLAS, to be found)
    from threadpoolctl import threadpool_limits

    if not _blas_threads():
        pytest.skip("NumPy here has no BLAS that threadpoolctl knows")
    threadpool_limits(2, "blas")
    monkeypatch.setattr(threads, "_num_threads", None)  # as in a new process, before the first operation
    assert _blas_threads() == {2}
    zerograd.get_num_threads()  # the first Linear, convolution, ... asks
    assert _blas_threads() == {1}  # idle BLAS threads would spin on the pool's cores
    threadpool_limits(2, "blas")
    zerograd.set_num_threads(3)
    assert _blas_threads() == {1}
    assert threads.parallel_map(lambda _: _blas_threads(), range(2)) == [{1}, {1}]


def test_without_threadpoolctl_blas_is_left_alone(restore_threads, monkeypatch):
    monkeypatch.setattr(threads, "_blas", None)  # forget the controllers found, so they are looked for again
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # `import threadpoolctl` raises ImportError
    zerograd.set_num_threads(2)
    assert threads.parallel_map(lambda i: i + 1, range(3)) == [1, 2, 3]
    assert threads._blas == []


def test_l2_cache_size_is_read_from_sysfs_or_defaults(tmp_path):
    """The im2col buffer is half the L2 cache (conv._CHUNK_BYTES): its size comes from Linux's cache description."""

    def cache(name, level, kind, size):
        (tmp_path / name).mkdir()
        for field, value in (("level", level), ("type", kind), ("size", size)):
            (tmp_path / name / field).write_text(f"{value}\n")

    cache("index0", 1, "Data", "48K")
    cache("index1", 1, "Instruction", "32K")
    cache("index2", 2, "Unified", "2048K")
    cache("index3", 3, "Unified", "307200K")
    assert threads.l2_cache_bytes(1 << 20, tmp_path) == 2 << 20
    (tmp_path / "index2" / "size").write_text("1M\n")
    assert threads.l2_cache_bytes(1 << 20, tmp_path) == 1 << 20
    (tmp_path / "index2" / "size").write_text("unknown\n")
    assert threads.l2_cache_bytes(default=12345, caches=tmp_path) == 12345
    assert threads.l2_cache_bytes(1 << 20, tmp_path / "missing") == 1 << 20
