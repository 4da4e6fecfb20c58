"""`zerograd convert`: one of the book's weight pickles as a zerograd model file that needs no --arch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ZerogradError
from ..models import BOOK_ARCHS, load_model, save_model
from .common import add_debug

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Registers `convert` and its flags."""
    c = sub.add_parser("convert", help="turn one of the book's weight pickles into a zerograd model file",
                       description="Convert the book's pickled weights into a model file that needs no --arch.")
    c.add_argument("pickle", metavar="FILE", help="the book's pickle (sample_weight.pkl, params.pkl, ...)")
    c.add_argument("--arch", required=True, choices=list(BOOK_ARCHS), help="the network the pickle holds")
    c.add_argument("--out", required=True, metavar="MODEL.safetensors", help="model file to write")
    c.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="the type the weights are stored in: float16 rounds them to half precision and halves the "
                        "file (the book's chapter 8.3.4; evaluate then rounds the images too)")
    add_debug(c)


def run(args: argparse.Namespace) -> int:
    """Loads the pickle as the --arch network and writes it to --out, its weights as --dtype."""
    model, _ = load_model(args.pickle, args.arch)
    model.to(np.dtype(args.dtype))
    out = Path(args.out)
    if out.is_dir():
        raise ZerogradError(f"--out {out} is a folder: give the model file's name, e.g. {out / 'model.safetensors'}")
    save_model(model, out, {"converted_from": Path(args.pickle).name, "arch": args.arch})
    print(f"model written to {out}")
    return 0
