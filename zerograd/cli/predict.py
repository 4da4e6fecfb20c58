"""`zerograd predict`: classify your own digit images after MNIST-style preprocessing."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from .. import functional as F
from ..images import load_digit_image
from ..models import check_input, load_model
from ..tensor import Tensor, no_grad
from .common import ARCH_HELP, MODEL_HELP, add_debug

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Registers `predict` and its flags."""
    p = sub.add_parser("predict", help="classify your own digit images (PNG, JPEG)",
                       description="Classify digit images after MNIST-style preprocessing.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--arch", default=None, help=ARCH_HELP)
    p.add_argument("--json", action="store_true", help="print a JSON list on stdout")
    add_debug(p)


def run(args: argparse.Namespace) -> int:
    """Prints each image's label and probability (or a JSON list with every class's probability)."""
    model, _ = load_model(args.model, args.arch)
    check_input(model, np.zeros((1, 1, 28, 28), dtype=np.float32), "predict's 28x28 digits")
    images = np.stack([load_digit_image(path).reshape(1, 28, 28) for path in args.images])
    with no_grad():
        probs = F.softmax(model(Tensor(images))).data
    results = [
        {"file": str(path), "label": int(p.argmax()), "probability": float(p.max()),
         "probabilities": [round(float(v), 6) for v in p]}
        for path, p in zip(args.images, probs)
    ]
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['file']}: {r['label']} ({r['probability']:.3f})")
    return 0
