"""Seconds per CIFAR-10 epoch of `zerograd train --model resnet`, estimated without the data set.

    python scripts/resnet_cifar_epoch.py [--steps 30] [--threads N]

Times ResNet-20 training steps (Adam, batch 128, 3x32x32 inputs, random data: the time does not depend on the
pixels) and one evaluation of 10,000 images, then gives 391 steps + one evaluation: one epoch of the 50,000
training images and the 10,000 test images. With CIFAR-10 at hand, `zerograd train --data cifar10 --model
resnet --epochs 1` measures the same thing directly.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import zerograd
from zerograd import functional as F
from zerograd import optim
from zerograd.models import ResNet
from zerograd.training import predict_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        zerograd.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 3, 32, 32), dtype=np.float32)
    t = rng.integers(0, 10, 128)
    model = ResNet((3, 32, 32), 10, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(zerograd.Tensor(x)), t).backward()
        optimizer.step()

    for _ in range(3):  # warm-up: the first steps allocate
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    per_step = (time.perf_counter() - start) / args.steps
    test = rng.standard_normal((10_000, 3, 32, 32), dtype=np.float32)
    start = time.perf_counter()
    predict_logits(model, test, batch_size=1000)
    evaluation = time.perf_counter() - start
    print(f"threads {zerograd.get_num_threads()}: {per_step * 1e3:.0f} ms per step, evaluation {evaluation:.1f} s, "
          f"epoch ~ {391 * per_step + evaluation:.0f} s")


if __name__ == "__main__":
    main()
