"""The benchmark suite runs end to end (`benchmarks/run.py --quick`, zerograd and the NumPy floor, no PyTorch).

Timings are not asserted (benchmarks are not tests); what is checked is that every benchmark
produced its rows with sane values in both tables (each framework's default threads, then one thread),
that the threads each framework ran with are recorded, that the scaling report is there, and that
zerograd and the hand-written NumPy floor, which start from the same weights and see the same batches,
end with the same accuracy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_ROWS = ["B1", "B2", "B3", "B4 book-ch3", "B4 mlp", "B4 simple-cnn", "B4 deep-cnn",
                 "B5 B1", "B5 B2", "B5 B3", "B6 mlp", "B6 simple-cnn", "B6 deep-cnn"]
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "ZEROGRAD_NUM_THREADS")


def _run_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return run


def _default_zerograd_threads() -> int:
    """What zerograd.get_num_threads() gives a process with no thread variable set (the default table's count)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-c", "import zerograd; print(zerograd.get_num_threads())"],
                         capture_output=True, text=True, env=env, check=True, timeout=120)
    return int(out.stdout.strip())


def _blas_threads(report: dict) -> list[int]:
    return [pool["threads"] for pool in report["pools"] or [] if pool["api"] == "blas"]


def test_quick_suite_without_torch(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    # thread variables in the parent's environment: the default-threads table must not pass them on
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "ZEROGRAD_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--frameworks", "zerograd,numpy",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["frameworks"] == ["zerograd", "numpy"]
    assert result["environment"]["quick"] is True
    assert "cpu_details" in result["environment"]  # None where Linux's descriptions cannot be read
    assert result["settings"]["threads"] == ["default", 1]  # two tables by default, default threads first
    default, one = result["tables"]
    assert default["threads"] == "default" and one["threads"] == 1

    # how each table set the threads, and which each framework reported
    assert default["environment_variables"] == {var: None for var in THREAD_VARIABLES}
    assert default["pinned_cpus"] == [] and default["torch_set_num_threads"] is None
    assert one["environment_variables"] == {var: None if var == "GOTO_NUM_THREADS" else "1" for var in THREAD_VARIABLES}
    assert one["pinned_cpus"] == sorted(os.sched_getaffinity(0))[:1]  # one thread: every run on one CPU
    n = _default_zerograd_threads()
    for table, zerograd_threads in ((default, n), (one, 1)):
        reports = table["threads_used"]
        assert sorted(reports) == ["numpy", "zerograd"]
        assert {r["zerograd"] for r in reports["zerograd"]} == {zerograd_threads}, table["threads"]
        for r in reports["zerograd"]:  # zerograd runs its BLAS at one thread (threadpoolctl is in the test extra)
            assert r["pools"] is not None and set(_blas_threads(r)) == {1}
        for r in reports["numpy"]:
            assert _blas_threads(r), r  # NumPy's OpenBLAS found
            if table is one:
                assert set(_blas_threads(r)) == {1}
        for row in table["rows"]:
            if "threads_used" in row:  # every run's report: `zerograd train` (B6) too
                assert all(rep for reps in row["threads_used"].values() for rep in reps), row["id"]

    for table in (default, one):
        rows = {row["id"]: row for row in table["rows"]}
        assert list(rows) == EXPECTED_ROWS
        for rid, row in rows.items():
            sides = ["zerograd"] if rid.startswith("B6") else ["zerograd", "numpy"]
            assert sorted(row["median"]) == sorted(sides), rid
            for fw in sides:
                assert math.isfinite(row["median"][fw]) and row["median"][fw] > 0, (rid, fw)
            if len(sides) == 2:
                assert row["ratio"]["numpy"] == row["median"]["zerograd"] / row["median"]["numpy"]  # one round
            assert "torch" not in row["ratio"] and row["met"] in (True, False, None)
        assert rows["B6 deep-cnn"]["target"] == {"torch": 1.0} and rows["B6 deep-cnn"]["batch"] == 100

        for rid in ("B5 B1", "B5 B2", "B5 B3"):  # peak RSS in MB: at least the interpreter and NumPy, below 4 GB
            for fw in ("zerograd", "numpy"):
                assert 15 < rows[rid]["median"][fw] < 4000, (rid, fw)
                assert rows[rid]["median"][fw] >= rows[rid]["rss_after_setup_mb"][fw] - 1

        b1 = rows["B1"]["accuracy"]  # 100 SGD steps from the book's initialisation: above chance, not yet trained
        assert 0.5 < b1["zerograd"] < 0.95 and abs(b1["zerograd"] - b1["numpy"]) <= 0.01
        ch3 = rows["B4 book-ch3"]["accuracy"]  # the book's trained weights: both frameworks compute the same network
        assert ch3["zerograd"] > 0.9 and abs(ch3["zerograd"] - ch3["numpy"]) <= 0.01
        for m in ("mlp", "simple-cnn", "deep-cnn"):
            acc = rows[f"B4 {m}"]["accuracy"]
            assert abs(acc["zerograd"] - acc["numpy"]) <= 0.01, m
        for m in ("mlp", "simple-cnn"):  # one epoch of `zerograd train` on 500 images learns something
            assert 0.3 < rows[f"B6 {m}"]["accuracy"]["zerograd"] <= 1.0, m
        assert 0.0 <= rows["B6 deep-cnn"]["accuracy"]["zerograd"] <= 1.0  # 5 steps with dropout: anything
    for info in result["models"].values():
        assert info["floor_max_abs_diff"] < 1e-4
    assert "b6-deep-cnn" in result["models"]

    # the scaling report: B2 and B3 for both frameworks, zerograd's target, the projection when N >= 2
    scaling = result["scaling"]
    assert scaling["from"] == "1 thread" and scaling["to"] == "default threads"
    assert [(e["bench"], e["framework"]) for e in scaling["rows"]] == [
        ("B2", "zerograd"), ("B2", "numpy"), ("B3", "zerograd"), ("B3", "numpy")]
    for e in scaling["rows"]:
        assert e["speedup"] == e["t1_ms"] / e["tn_ms"] and e["t1_ms"] > 0
        if e["framework"] == "zerograd":
            assert e["threads"] == n and e["target"] == 1.7 and e["met"] in (True, False)
        else:
            assert "target" not in e and e["threads"] >= 1  # OpenBLAS's own count
        if e["threads"] >= 2:
            assert 0.0 <= e["serial_fraction"] <= 1.0 and sorted(e["projection_ms"]) == ["16", "8"]
            if e["framework"] == "zerograd":
                assert e["regions_per_step"] > 0 and e["region_us"] > 0
        else:  # one CPU: nothing to fit
            assert "projection_ms" not in e

    md = result["markdown"]
    assert md.count("| B1 |") == 2 and md.count("| B6 deep-cnn |") == 2
    assert "**Default threads**" in md and "**1 thread per framework**" in md and "**Scaling**" in md
    first_lines = [line for line in md.splitlines() if line.startswith(("**Default threads**", "**1 thread"))]
    assert f"ran with zerograd {n} thread" in first_lines[0] and "ran with zerograd 1 thread " in first_lines[1]
    assert "pinned to CPU" in first_lines[1] and "not pinned" in first_lines[0]
    assert "--no-augment" in md and "model, not a measurement" in md
    assert md.index("**Default threads**") < md.index("**1 thread per framework**") < md.index("**Scaling**")
    assert result["environment"]["malloc"] == {k: v for k, v in os.environ.items()
                                               if k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}



def test_issue_targets_and_thread_settings() -> None:
    run = _run_module()
    for rid, limit in (("B1", 0.6), ("B2", 1.0), ("B3", 1.5), ("B6 simple-cnn", 1.0), ("B6 deep-cnn", 1.0)):
        assert run.DEFAULT_THREADS_TARGETS[rid]["torch"] == limit, rid
    assert run.TARGETS["B3"]["torch"] == 1.5  # at one thread too
    assert run.SPEEDUP_TARGET == {"B2": 1.7, "B3": 1.7}

    assert run._parse_args([]).threads == ["default", 1]
    assert run._parse_args(["--threads", "default"]).threads == ["default"]
    assert run._parse_args(["--threads", "2,1,2"]).threads == [2, 1]
    for bad in ("0", "two", ""):
        with pytest.raises(SystemExit):
            run._parse_args(["--threads", bad])

    parent = {"PATH": "/bin", **{var: "3" for var in run.THREAD_VARIABLES}}
    assert run._table_env(parent, "default") == {"PATH": "/bin"}
    assert run._table_env(parent, 2) == {"PATH": "/bin", **{var: "2" for var in run.THREAD_VARIABLES
                                                           if var != "GOTO_NUM_THREADS"}}


def test_cpu_details_tell_apart_cpus_that_share_a_name(tmp_path: Path) -> None:
    """The report's machine line: a VM may call every Xeon 'Intel(R) Xeon(R) Processor'; family, model, vector
    extension and L2 size come from the first CPU's block of /proc/cpuinfo and Linux's cache description."""
    run = _run_module()
    from zerograd.threads import l2_cache_bytes

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\n"
                       "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n\n"
                       "processor\t: 1\ncpu family\t: 99\nmodel\t\t: 1\nflags\t\t: fpu\n")
    caches = tmp_path / "cache"
    for name, level, size in (("index0", 1, "48K"), ("index1", 1, "32K"), ("index2", 2, "2048K"),
                              ("index3", 3, "300M")):
        (caches / name).mkdir(parents=True)
        (caches / name / "level").write_text(f"{level}\n")
        (caches / name / "type").write_text("Unified\n" if level > 1 else "Data\n")
        (caches / name / "size").write_text(f"{size}\n")
    unknown = l2_cache_bytes(caches=tmp_path / "none")
    details = run._cpu_details(run._cpuinfo(cpuinfo), l2_cache_bytes(caches=caches))
    assert details == "family 6 model 207, AVX-512, L2 2048K"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nflags\t\t: fpu avx2\n")
    assert run._cpu_details(run._cpuinfo(cpuinfo), unknown) == "family 25 model 17, AVX2"
    assert run._cpu_details(run._cpuinfo(tmp_path / "missing"), unknown) is None
    env = {"date": "d", "cpu": "Intel(R) Xeon(R) Processor", "cpu_details": "family 6 model 207, AVX-512, L2 2048K",
           "cpus": 2, "python": "3.11", "numpy": "2", "blas": "openblas", "torch": None, "zerograd": "0.1",
           "clock": "wall", "suite_seconds": 1.0, "quick": False}
    line = run.markdown({"environment": env, "frameworks": ["zerograd"], "tables": [], "scaling": None}).splitlines()[0]
    assert line.startswith("d; Intel(R) Xeon(R) Processor (family 6 model 207, AVX-512, L2 2048K), 2 CPUs; ")


def test_scaling_model() -> None:
    run = _run_module()
    # Amdahl: 20 ms serial + 80 ms parallel at one thread; 60 ms at two
    p = run._project(100.0, 60.0, 2, {})
    assert p["serial_fraction"] == pytest.approx(0.2)
    assert p["projection_ms"] == {"8": pytest.approx(30.0), "16": pytest.approx(25.0)}
    # slower at two threads than at one: no parallel part
    assert run._project(100.0, 120.0, 2, {})["projection_ms"]["16"] == pytest.approx(100.0)
    # zerograd: two regions of equal work, one split at most 2 ways; 10 regions at 50 us (+10 us per extra worker)
    row = {"zerograd_regions": 10, "zerograd_region_cost": {"threads": 2, "region_us": 50.0, "wake_us": 10.0},
           "zerograd_region_profile": [[2, 2, 0.020], [2, 64, 0.020]]}
    p = run._project(100.0, 60.0, 2, row)
    overhead = {2: 0.5, 8: 10 * (50 + 6 * 10) / 1e3, 16: 10 * (50 + 14 * 10) / 1e3}
    parallel = (100.0 - 60.0 + overhead[2]) / 0.5
    serial = 100.0 - parallel
    assert p["serial_fraction"] == pytest.approx(serial / 100.0)
    for k in (8, 16):  # half the parallel work at 1/2, half at 1/k
        assert p["projection_ms"][str(k)] == pytest.approx(serial + parallel * (0.5 / 2 + 0.5 / k) + overhead[k])
    assert p["capped_share"] == {"8": pytest.approx(0.5), "16": pytest.approx(0.5)}


def test_malloc_keep_is_what_zerograd_train_does() -> None:
    # run.py writes the numbers out (its NumPy and PyTorch workers must not import zerograd)
    run = _run_module()
    from zerograd.cli import KEEP_FREED_MEMORY

    assert run.MALLOC_KEEP == {name: str(value) for name, value in KEEP_FREED_MEMORY.items()}


def test_region_cost_times_the_pool_and_ends_the_worker_it_woke() -> None:
    import threading

    import zerograd

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sides
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    old = zerograd.get_num_threads()
    try:
        zerograd.set_num_threads(1)
        assert sides.ZerogradSide(None).region_cost() is None  # no pool at one thread
        zerograd.set_num_threads(2)
        cost = sides.ZerogradSide(None).region_cost()
        assert cost["threads"] == 2 and 0 < cost["wake_us"] < cost["region_us"] < 1e5
        deadline = time.monotonic() + 30  # its own pool's worker ends; the pool of the 2 threads stays
        while sum(t.name.startswith("zerograd_") for t in threading.enumerate()) != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(t.name.startswith("zerograd_") for t in threading.enumerate()) == 1
    finally:
        zerograd.set_num_threads(old)
