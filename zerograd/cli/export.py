"""`zerograd export`: a model as an ONNX file, traced from one forward pass (needs zerograd[onnx])."""

from __future__ import annotations

import argparse
from typing import Any

from ..models import export_model_file
from .common import ARCH_HELP, MODEL_HELP, add_debug

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Registers `export` and its flags."""
    x = sub.add_parser("export", help="write a model as an ONNX file (needs zerograd[onnx])",
                       description="Export a model to ONNX by tracing one forward pass; the batch size stays free.")
    x.add_argument("model", help=MODEL_HELP)
    x.add_argument("out", metavar="OUT.onnx", help="ONNX file to write")
    # zerograd.onnx.DEFAULT_OPSET, written out: `zerograd --help` does not import the onnx module
    x.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 or newer (default: 17)")
    x.add_argument("--arch", default=None, help=ARCH_HELP)
    add_debug(x)


def run(args: argparse.Namespace) -> int:
    """Writes args.out and prints what it holds."""
    info = export_model_file(args.model, args.out, opset=args.opset, arch=args.arch)
    print(f"ONNX model written to {info['path']} (opset {info['opset']}, {info['nodes']} nodes, "
          f"input {tuple(info['input_shape'])})")
    return 0
