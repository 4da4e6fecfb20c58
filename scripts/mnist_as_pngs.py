"""MNIST written out as 70,000 PNG files in class folders, and the time to load them with zerograd.

    python scripts/mnist_as_pngs.py /tmp/mnist-png          # writes train/ and test/, then times the loads
    zerograd train --data /tmp/mnist-png --model resnet      # the folder trains like any folder of images

Each split is loaded twice with zerograd.datasets.load_image_folder, the first time with an empty cache (the
PNGs decoded), the second from the cache; the arrays are checked equal to the bundled MNIST, pixel for pixel.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from zerograd.datasets import load_image_folder, load_mnist
from zerograd.threads import get_num_threads


def write(root: Path) -> None:
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=False, flatten=False)
    for split, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        for digit in range(10):
            (root / split / str(digit)).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(x, t)):
            Image.fromarray(image[0]).save(root / split / str(label) / f"{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if not (args.folder / "test").is_dir():
        start = time.perf_counter()
        write(args.folder)
        print(f"wrote 70,000 PNGs to {args.folder} in {time.perf_counter() - start:.1f} s")
    os.environ["ZEROGRAD_DATA"] = tempfile.mkdtemp()  # an empty cache: the first load decodes
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize=False, flatten=False)
    print(f"threads: {get_num_threads()}")
    for split, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        order = np.argsort(t, kind="stable")  # class folders, each in file-name order
        start = time.perf_counter()
        first = load_image_folder(args.folder / split)
        decoded = time.perf_counter() - start
        start = time.perf_counter()
        second = load_image_folder(args.folder / split)
        cached = time.perf_counter() - start
        same = np.array_equal(first.x, x[order]) and np.array_equal(second.x, first.x)
        print(f"{split}: {len(first.y)} images, first load {decoded:.2f} s, second load {cached:.2f} s "
              f"(equal to MNIST: {same and np.array_equal(first.y, t[order])})")
    shutil.rmtree(os.environ["ZEROGRAD_DATA"])


if __name__ == "__main__":
    main()
