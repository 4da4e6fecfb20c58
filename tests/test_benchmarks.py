"""The benchmark suite runs end to end (`benchmarks/run.py --quick`, zerograd and the NumPy floor, no PyTorch).

Timings are not asserted (benchmarks are not tests); what is checked is that every benchmark
produced its rows with sane values, and that zerograd and the hand-written NumPy floor, which start
from the same weights and see the same batches, end with the same accuracy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_ROWS = ["B1", "B2", "B3", "B4 book-ch3", "B4 mlp", "B4 simple-cnn", "B4 deep-cnn",
                 "B5 B1", "B5 B2", "B5 B3", "B6 mlp", "B6 simple-cnn"]


def test_quick_suite_without_torch(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--frameworks", "zerograd,numpy",
         "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = {row["id"]: row for row in result["rows"]}
    assert list(rows) == EXPECTED_ROWS
    assert result["frameworks"] == ["zerograd", "numpy"]
    assert result["environment"]["threads"] == 1 and result["environment"]["quick"] is True

    for rid, row in rows.items():
        sides = ["zerograd"] if rid.startswith("B6") else ["zerograd", "numpy"]
        assert sorted(row["median"]) == sorted(sides), rid
        for fw in sides:
            assert math.isfinite(row["median"][fw]) and row["median"][fw] > 0, (rid, fw)
        if len(sides) == 2:
            assert row["ratio"]["numpy"] == row["median"]["zerograd"] / row["median"]["numpy"]  # one round
        assert "torch" not in row["ratio"] and row["met"] in (True, False, None)

    for rid in ("B5 B1", "B5 B2", "B5 B3"):  # peak RSS in MB: at least the interpreter and NumPy, below 4 GB
        for fw in ("zerograd", "numpy"):
            assert 15 < rows[rid]["median"][fw] < 4000, (rid, fw)
            assert rows[rid]["median"][fw] >= rows[rid]["rss_after_setup_mb"][fw] - 1

    b1 = rows["B1"]["accuracy"]  # 100 SGD steps from the book's initialisation: well above chance, not yet trained
    assert 0.5 < b1["zerograd"] < 0.95 and abs(b1["zerograd"] - b1["numpy"]) <= 0.01
    ch3 = rows["B4 book-ch3"]["accuracy"]  # the book's trained weights: both frameworks compute the same network
    assert ch3["zerograd"] > 0.9 and abs(ch3["zerograd"] - ch3["numpy"]) <= 0.01
    for m in ("mlp", "simple-cnn", "deep-cnn"):
        acc = rows[f"B4 {m}"]["accuracy"]
        assert abs(acc["zerograd"] - acc["numpy"]) <= 0.01, m
    for m in ("mlp", "simple-cnn"):  # one epoch of `zerograd train` on 500 images learns something
        assert 0.3 < rows[f"B6 {m}"]["accuracy"]["zerograd"] <= 1.0, m
    for info in result["models"].values():
        assert info["floor_max_abs_diff"] < 1e-4
    assert "| B1 |" in result["markdown"] and "| B6 simple-cnn |" in result["markdown"]
    env_info = result["environment"]
    assert env_info["pinned_cpus"] == sorted(os.sched_getaffinity(0))[:1]  # one thread: every run on one CPU
    assert env_info["malloc"] == {k: v for k, v in os.environ.items() if k in ("MALLOC_MMAP_THRESHOLD_",
                                                                             "MALLOC_TRIM_THRESHOLD_")}


def test_malloc_keep_is_what_zerograd_train_does() -> None:
    # run.py writes the numbers out (its NumPy and PyTorch workers must not import zerograd)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from zerograd.cli import KEEP_FREED_MEMORY

    assert run.MALLOC_KEEP == {name: str(value) for name, value in KEEP_FREED_MEMORY.items()}
