"""`zerograd predict`: classify your own digit images after MNIST-style preprocessing."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from .. import functional as F
from ..images import load_digit_image
from ..models import check_input, class_names, image_info, load_model, prepare_images
from ..tensor import Tensor, no_grad
from .common import ARCH_HELP, MODEL_HELP, add_debug

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Registers `predict` and its flags."""
    p = sub.add_parser("predict", help="classify your own images (PNG, JPEG, ...)",
                       description="Classify images: digits after MNIST-style preprocessing, or any image as the "
                                   "model's training images were prepared.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--arch", default=None, help=ARCH_HELP)
    p.add_argument("--json", action="store_true", help="print a JSON list on stdout")
    add_debug(p)


def run(args: argparse.Namespace) -> int:
    """Prints each image's class and probability (or a JSON list with every class's probability).

    A model trained on a folder of images (or CIFAR-10) gets each image converted, resized and normalised as its
    training images were, and answers with class names; a model of MNIST-format data gets the digit
    preprocessing (invert, crop, centre by mass) of 28x28 digits.
    """
    model, meta = load_model(args.model, args.arch)
    info = image_info(meta)
    if info is None:
        check_input(model, np.zeros((1, 1, 28, 28), dtype=np.float32), "predict's 28x28 digits")
        images = np.stack([load_digit_image(path).reshape(1, 28, 28) for path in args.images])
    else:
        images = prepare_images(args.images, info)
        check_input(model, images, "the prepared images")
    with no_grad():
        probs = F.softmax(model(Tensor(images))).data
    classes = class_names(meta, probs.shape[1])
    results = [
        {"file": str(path), "label": int(p.argmax()), "class": classes[int(p.argmax())],
         "probability": float(p.max()), "probabilities": [round(float(v), 6) for v in p]}
        for path, p in zip(args.images, probs)
    ]
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['file']}: {r['class']} ({r['probability']:.3f})")
    return 0
