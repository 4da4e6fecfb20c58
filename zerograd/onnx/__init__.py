"""ONNX interchange: export a model by tracing its recorded graph, import an ONNX graph as a trainable Module.

Export works as `torch.onnx` tracing does: one forward pass in eval mode records the graph (define-by-run),
and each recorded Function becomes ONNX operators; Parameters and running statistics become initializers
named by their state_dict keys, and the batch dimension stays dynamic. Import reads the protobuf (nothing
in the file is executed), builds one Module per ONNX node (nn.Linear for Gemm, nn.Conv2d for Conv, ...)
with the initializers as Parameters, and runs the nodes in the graph's order.

Needs the `onnx` package (`pip install "zerograd[onnx]"`); `import zerograd` does not import it.

- `_base`: the lazily imported onnx package, OnnxError, the opsets
- `exporter`: export, tracing a forward pass and mapping each recorded Function to ONNX nodes
- `importer`: load, OnnxModel and OnnxOp, and the registry of the ONNX operators import builds
"""

from ._base import DEFAULT_OPSET, MIN_OPSET, OnnxError, check_opset, max_opset
from .exporter import check_export_path, export
from .importer import SUPPORTED_OPS as SUPPORTED_OPS  # public, though (as before) not in __all__
from .importer import OnnxModel, OnnxOp, load, load_model_onnx

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "OnnxError", "OnnxModel", "check_export_path", "check_opset", "export", "load",
           "load_model_onnx", "max_opset", "OnnxOp"]
