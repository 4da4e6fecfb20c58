"""What export and import share: the lazily imported onnx package, OnnxError, and the opsets zerograd handles."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelFileError, ZerogradError

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax, Gemm, Reshape, ... have today's meaning from opset 13 on


class OnnxError(ModelFileError):
    """A model cannot be exported to ONNX, or an ONNX file cannot be imported (the message says why)."""


def _onnx() -> Any:
    """The onnx package, or an error naming the extra to install."""
    try:
        import onnx  # the top-level package: imports are absolute, this package's own name does not shadow it
        import onnx.numpy_helper  # noqa: F401
        import onnx.shape_inference  # noqa: F401
    except ImportError as err:
        raise ZerogradError('ONNX export and import need the onnx package: pip install "zerograd[onnx]"') from err
    return onnx


def max_opset() -> int:
    """The newest ONNX opset the installed onnx package knows."""
    return int(_onnx().defs.onnx_opset_version())


def check_opset(opset: int) -> None:
    """Refuses an opset outside MIN_OPSET to max_opset()."""
    newest = max_opset()
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise OnnxError(f"opset must be a whole number from {MIN_OPSET} to {newest} (the newest this onnx "
                        f"package knows), got {opset!r}")
