"""Regenerate zerograd/pretrained/book-ch3.npz from the book's sample_weight.pkl.

Usage: python scripts/convert_book_weights.py [path/to/sample_weight.pkl]

The pickle is read with zerograd's restricted unpickler and the arrays are stored unchanged (float32,
keys W1 b1 W2 b2 W3 b3) as an .npz, which np.load reads without unpickling. The zip entries get a fixed
timestamp so that re-running the script reproduces the file byte for byte.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

from zerograd.io import load_book_pickle

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PICKLE = REPO / "tests" / "data" / "book" / "sample_weight.pkl"
OUTPUT = REPO / "zerograd" / "pretrained" / "book-ch3.npz"
EXPECTED_SHAPES = {"W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write {name: array} as an uncompressed .npz (the layout np.savez produces) with fixed zip dates."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pickle", nargs="?", type=Path, default=DEFAULT_PICKLE, help="the book's sample_weight.pkl")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT.relative_to(REPO)}")
    args = parser.parse_args(argv)

    arrays = load_book_pickle(args.pickle)
    shapes = {k: v.shape for k, v in arrays.items()}
    if shapes != EXPECTED_SHAPES or any(v.dtype != np.float32 for v in arrays.values()):
        print(f"error: {args.pickle} is not the chapter 3 sample_weight.pkl: {shapes}", file=sys.stderr)
        return 1
    arrays = {k: arrays[k] for k in EXPECTED_SHAPES}  # the book's order; the pickle stores b2 first
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_npz(args.output, arrays)

    with np.load(args.output, allow_pickle=False) as npz:
        assert all(np.array_equal(npz[k], v) and npz[k].dtype == v.dtype for k, v in arrays.items())
    summary = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes): {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
