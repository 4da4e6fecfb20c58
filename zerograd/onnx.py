"""ONNX interchange: export a model by tracing its recorded graph, import an ONNX graph as a trainable Module.

Export works as `torch.onnx` tracing does: one forward pass in eval mode records the graph (define-by-run),
and each recorded Function becomes ONNX operators; Parameters and running statistics become initializers
named by their state_dict keys, and the batch dimension stays dynamic. Import reads the protobuf (nothing
in the file is executed), builds one Module per ONNX node (nn.Linear for Gemm, nn.Conv2d for Conv, ...)
with the initializers as Parameters, and runs the nodes in the graph's order.

Needs the `onnx` package (`pip install "zerograd[onnx]"`); `import zerograd` does not import it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from . import functional as F
from . import nn
from ._atomic import atomic_write_bytes
from .errors import ModelFileError, ZerogradError
from .functional import activation as _act
from .functional import conv as _conv
from .functional import math as _math
from .functional import norm as _norm
from .functional import shape as _shape
from .tensor import Function, Tensor, _topological_order, enable_grad

if TYPE_CHECKING:  # only for annotations: the real import happens on first use, behind the extra
    import onnx

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "OnnxError", "OnnxModel", "export", "export_model_file", "load",
           "load_model_onnx", "max_opset", "OnnxOp"]

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax, Gemm, Reshape, ... have today's meaning from opset 13 on


class OnnxError(ModelFileError):
    """A model cannot be exported to ONNX, or an ONNX file cannot be imported (the message says why)."""


def _onnx() -> Any:
    """The onnx package, or an error naming the extra to install."""
    try:
        import onnx  # the top-level package: imports are absolute, this module's own name does not shadow it
        import onnx.numpy_helper  # noqa: F401
        import onnx.shape_inference  # noqa: F401
    except ImportError as err:
        raise ZerogradError('ONNX export and import need the onnx package: pip install "zerograd[onnx]"') from err
    return onnx


def max_opset() -> int:
    """The newest ONNX opset the installed onnx package knows."""
    return int(_onnx().defs.onnx_opset_version())


def _check_opset(opset: int) -> None:
    newest = max_opset()
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise OnnxError(f"opset must be a whole number from {MIN_OPSET} to {newest} (the newest this onnx "
                        f"package knows), got {opset!r}")


# ===================================================================================================
# Export: trace, then map each recorded Function to ONNX nodes
# ===================================================================================================

class _Exporter:
    """Builds the nodes and initializers of one traced forward pass."""

    def __init__(self, module: nn.Module, x: Tensor, input_name: str, labels: dict[int, str]) -> None:
        self.onnx = _onnx()
        self.labels, self.current = labels, x
        self.x, self.batch = x, x.shape[0]
        self.param_names = {id(p): name for name, p in module.named_parameters()}
        self.buffer_names = {id(b): name for name, b in module.named_buffers()}
        self.names: dict[int, str] = {id(x): input_name}
        self.nodes: list[Any] = []
        self.initializers: dict[str, Any] = {}
        self.array_names: dict[int, str] = {}
        self.used: set[str] = {input_name}
        self.keep: list[Any] = []  # arrays named by id() stay alive until the export is done

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def initializer(self, array: np.ndarray, name: str) -> str:
        """Adds `array` as an initializer once (by identity) and returns its name."""
        if id(array) in self.array_names:
            return self.array_names[id(array)]
        name = self.unique(name)
        self.initializers[name] = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.array_names[id(array)] = name
        self.keep.append(array)
        return name

    def value(self, t: Tensor) -> str:
        """The ONNX name of tensor t: the input, an initializer (Parameter), a Constant, or a node's output."""
        if id(t) in self.names:
            return self.names[id(t)]
        if t._ctx is not None:  # unreachable: nodes are emitted inputs first
            raise OnnxError("ONNX export: graph order broken")
        if id(t) in self.param_names:
            name = self.initializer(t.data, self.param_names[id(t)])
        elif t.requires_grad:  # a learnable leaf outside the module: still a weight
            name = self.initializer(t.data, "param")
        else:  # a constant the forward pass made (a scalar, a mask): not a weight
            name = self.unique("const")
            self.nodes.append(self.onnx.helper.make_node(
                "Constant", [], [name], name=name, value=self.onnx.numpy_helper.from_array(np.asarray(t.data))))
        self.names[id(t)] = name
        self.keep.append(t)
        return name

    def array(self, a: np.ndarray, fallback: str) -> str:
        """An array kept in a Function's settings (running statistics): an initializer under its buffer name."""
        return self.initializer(a, self.buffer_names.get(id(a), fallback))

    def node_name(self, fn: Function, op: str) -> str:
        """Named after the layer that ran it ("2" for a ReLU at index 2, "1" for "1.weight"), else the operator."""
        label = self.labels.get(id(self.current))
        if label is not None:
            return self.unique(label)
        for t in fn.inputs:
            name = self.param_names.get(id(t), "")
            if "." in name:
                prefix = name.rsplit(".", 1)[0]
                if prefix not in self.used:
                    self.used.add(prefix)
                    return prefix
        return self.unique(f"{op}_{len(self.nodes)}")

    def emit(self, op: str, inputs: Sequence[str], name: str, output: str | None = None, **attrs: Any) -> str:
        out = output or self.unique(f"{name}_out")
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def const_ints(self, values: Sequence[int], name: str) -> str:
        """An int64 initializer (a shape): a setting of the graph, never a weight."""
        return self.initializer(np.asarray(values, dtype=np.int64), name)

    # --- one recorded Function ---------------------------------------------------------------------
    def function(self, t: Tensor) -> None:
        fn = t._ctx
        kind = type(fn)
        emitter = _EMITTERS.get(kind)
        if emitter is None:
            known = ", ".join(sorted({k.__name__ for k in _EMITTERS}))
            hint = ""
            if kind is _norm.BatchNorm:
                hint = (": batch norm with batch statistics (training mode, or no running statistics) has no "
                        "fixed ONNX form; keep running statistics (nn.BatchNorm1d/2d) and export in eval mode")
            elif kind is _norm.Dropout:
                hint = ": dropout in training mode; export runs the model in eval mode, where it is the identity"
            raise OnnxError(f"ONNX export: cannot map the operation {kind.__name__} ({kind.__module__}) to ONNX"
                            f"{hint}. Operations that export: {known}")
        ins = [self.value(i) for i in fn.inputs]
        self.current = t
        self.names[id(t)] = emitter(self, fn, t, ins)


def _simple(op: str) -> Callable[..., str]:
    def emit(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
        return ex.emit(op, ins, ex.node_name(fn, op))
    return emit


def _emit_linear(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    name = ex.node_name(fn, "Gemm")
    x = fn.inputs[0]
    if x.ndim == 2:  # Gemm: y = x @ W.T + b with W kept (out, in) as nn.Linear stores it
        return ex.emit("Gemm", ins, name, transB=1)
    # other ranks: rows of features through the same Gemm, so that import finds an nn.Linear again
    rows_shape = ex.const_ints([-1, x.shape[-1]], f"{name}/rows_shape")
    rows = ex.emit("Reshape", [ins[0], rows_shape], ex.unique(f"{name}/rows"))
    y = ex.emit("Gemm", [rows, *ins[1:]], name, transB=1)
    back = [-1, *t.shape[1:]] if t.ndim > 1 else [t.shape[0]]  # -1: the batch stays dynamic
    return ex.emit("Reshape", [y, ex.const_ints(back, f"{name}/out_shape")], ex.unique(f"{name}/unrows"))


def _short(value: float) -> float:
    """A float32 attribute as the shortest decimal that gives it back (1e-05, not 9.999999747378752e-06)."""
    return float(str(np.float32(value)))


def _emit_leaky_relu(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    return ex.emit("LeakyRelu", ins, ex.node_name(fn, "LeakyRelu"),
                   alpha=float(fn.params.get("negative_slope", 0.01)))


def _emit_softmax(op: str) -> Callable[..., str]:
    def emit(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
        return ex.emit(op, ins, ex.node_name(fn, op), axis=int(fn.params.get("axis", -1)))
    return emit


def _emit_reshape(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    in_shape, out_shape = fn.inputs[0].shape, t.shape
    target = [int(s) for s in fn.params["shape"]]
    keeps_batch = len(in_shape) >= 1 and len(target) >= 1 and in_shape[0] == ex.batch and target[0] == in_shape[0]
    if keeps_batch and len(out_shape) == 2 and len(in_shape) >= 2:
        return ex.emit("Flatten", ins, ex.node_name(fn, "Flatten"), axis=1)  # (N, d1, ...) -> (N, d1*...)
    if keeps_batch:
        target[0] = 0  # ONNX Reshape: 0 copies the input's dimension, so the batch stays dynamic
    name = ex.node_name(fn, "Reshape")
    return ex.emit("Reshape", [ins[0], ex.const_ints(target, f"{name}/shape")], name)


def _emit_transpose(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    axes = fn.params.get("axes")
    perm = list(range(fn.inputs[0].ndim))[::-1] if axes is None else [int(a) for a in axes]
    return ex.emit("Transpose", ins, ex.node_name(fn, "Transpose"), perm=perm)


def _emit_cast(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    to = ex.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(fn.params["dtype"]))
    return ex.emit("Cast", ins, ex.node_name(fn, "Cast"), to=to)


def _emit_batch_norm(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    name = ex.node_name(fn, "BatchNormalization")
    mean = ex.array(fn.params["mean"], f"{name}.running_mean")
    var = ex.array(fn.params["var"], f"{name}.running_var")
    return ex.emit("BatchNormalization", [*ins, mean, var], name, epsilon=float(fn.params.get("eps", 1e-5)))


def _emit_conv(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    (sh, sw), (ph, pw) = fn.params.get("stride", (1, 1)), fn.params.get("padding", (0, 0))
    kernel = list(fn.inputs[1].shape[2:])
    return ex.emit("Conv", ins, ex.node_name(fn, "Conv"), kernel_shape=kernel, strides=[sh, sw],
                   pads=[ph, pw, ph, pw])


def _emit_pool(op: str) -> Callable[..., str]:
    def emit(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
        kh, kw = fn.params.get("kernel_size", (2, 2))
        sh, sw = fn.params.get("stride", (kh, kw))
        ph, pw = fn.params.get("padding", (0, 0))
        extra = {"count_include_pad": 1} if op == "AveragePool" else {}  # zerograd averages over padding zeros
        return ex.emit(op, ins, ex.node_name(fn, op), kernel_shape=[kh, kw], strides=[sh, sw],
                       pads=[ph, pw, ph, pw], **extra)
    return emit


_EMITTERS: dict[type, Callable[[_Exporter, Function, Tensor, list[str]], str]] = {
    _math.Linear: _emit_linear,
    _math.Add: _simple("Add"), _math.Sub: _simple("Sub"), _math.Mul: _simple("Mul"), _math.Div: _simple("Div"),
    _math.Pow: _simple("Pow"), _math.MatMul: _simple("MatMul"), _math.Neg: _simple("Neg"),
    _math.Exp: _simple("Exp"), _math.Log: _simple("Log"), _math.Sqrt: _simple("Sqrt"), _math.Abs: _simple("Abs"),
    _math.Cast: _emit_cast,
    _act.ReLU: _simple("Relu"), _act.LeakyReLU: _emit_leaky_relu, _act.Sigmoid: _simple("Sigmoid"),
    _act.Tanh: _simple("Tanh"), _act.Softmax: _emit_softmax("Softmax"), _act.LogSoftmax: _emit_softmax("LogSoftmax"),
    _shape.Reshape: _emit_reshape, _shape.Transpose: _emit_transpose,
    _norm._BatchNormEval: _emit_batch_norm,
    _conv.Conv2d: _emit_conv, _conv.MaxPool2d: _emit_pool("MaxPool"), _conv.AvgPool2d: _emit_pool("AveragePool"),
}


def _trace(module: nn.Module, x: Tensor) -> tuple[Any, dict[int, str]]:
    """module(x) in eval mode with the graph recorded, and for each tensor made the path of the layer that made it.

    Each leaf module's forward is wrapped for the pass, so nodes can be named as the model's layers are.
    """
    labels: dict[int, str] = {}

    def label(out: Any, path: str, given: set[int]) -> None:
        # back from the layer's output to its inputs: what lies between was computed by this layer
        stack = [out] if isinstance(out, Tensor) else []
        while stack:
            t = stack.pop()
            if t._ctx is None or id(t) in labels or id(t) in given:
                continue
            labels[id(t)] = path
            stack.extend(t._ctx.inputs)

    def wrap(forward: Callable[..., Any], path: str) -> Callable[..., Any]:
        def traced(*args: Any, **kwargs: Any) -> Any:
            out = forward(*args, **kwargs)
            label(out, path, {id(a) for a in (*args, *kwargs.values()) if isinstance(a, Tensor)})
            return out
        return traced

    modes = [(m, m.training) for m in module.modules()]
    leaves = [(path, m) for path, m in module.named_modules() if path and not m._modules]
    wrapped = [(m, m.__dict__.get("forward")) for _, m in leaves]
    for path, m in leaves:
        object.__setattr__(m, "forward", wrap(m.forward, path))
    module.eval()
    try:
        with enable_grad():
            out = module(x)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
        for m, own in wrapped:
            if own is None:
                m.__dict__.pop("forward", None)
            else:
                object.__setattr__(m, "forward", own)
    return out, labels


def _check_out(path: str | Path | None) -> None:
    """Refuses an output path that cannot be written, before any work is done."""
    if path is None:
        return
    out = Path(path)
    if out.is_dir():
        raise OnnxError(f"{out} is a folder: give the ONNX file's name, e.g. {out / 'model.onnx'}")
    if not out.parent.is_dir():
        raise OnnxError(f"cannot write {out}: the folder {out.parent} does not exist")


def _value_info(onnx: Any, name: str, array: np.ndarray, batch: int | None) -> Any:
    dims: list[Any] = list(array.shape)
    if batch is not None and dims and dims[0] == batch:
        dims[0] = "batch"  # dynamic: any batch size runs through the same file
    elem = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def export(module: nn.Module, example_input: Any, path: str | Path | None = None, opset: int = DEFAULT_OPSET, *,
           input_name: str = "input", output_name: str = "output") -> onnx.ModelProto:
    """Traces module(example_input) in eval mode and returns (and writes to `path`) the ONNX model.

    example_input is one batch, e.g. (N, 1, 28, 28) float32 images; axis 0 becomes the dynamic batch
    dimension. Raises OnnxError naming any operation that has no ONNX form.
    """
    onnx = _onnx()
    _check_opset(opset)
    _check_out(path)
    if not isinstance(module, nn.Module):
        raise OnnxError(f"export needs an nn.Module, got {type(module).__name__}")
    data = np.array(example_input.data if isinstance(example_input, Tensor) else example_input)
    if data.dtype.kind != "f" or data.ndim == 0:
        raise OnnxError(f"export needs a floating-point example batch such as (N, 1, 28, 28) float32 images, got "
                        f"{data.dtype} of shape {data.shape}")
    x = Tensor(data, requires_grad=True)  # so that even the first operation on the input is recorded
    out, labels = _trace(module, x)
    if not isinstance(out, Tensor):
        raise OnnxError(f"export traces a module that returns one Tensor, this one returned {type(out).__name__}")

    ex = _Exporter(module, x, input_name, labels)
    # the engine's order lists each tensor before its inputs; ONNX nodes go inputs first
    for t in ([] if out._ctx is None else reversed(_topological_order(out))):
        ex.function(t)
    result = ex.value(out) if out is not x else input_name
    if result in ex.initializers or result == input_name or out._ctx is None:
        result = ex.emit("Identity", [result], ex.unique("Identity"), output=output_name)
    else:  # the last node writes the graph output directly
        for node in ex.nodes:
            node.output[:] = [output_name if o == result else o for o in node.output]
            node.input[:] = [output_name if i == result else i for i in node.input]
    config = getattr(module, "config", None)
    config = config if isinstance(config, dict) else None
    graph = onnx.helper.make_graph(
        ex.nodes, str(config.get("arch", type(module).__name__)) if config else type(module).__name__,
        [_value_info(onnx, input_name, data, None if data.ndim == 0 else data.shape[0])],
        [_value_info(onnx, output_name, out.data, data.shape[0])],
        initializer=list(ex.initializers.values()),
    )
    opsets = [onnx.helper.make_opsetid("", int(opset))]
    from . import __version__

    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="zerograd", producer_version=__version__)
    model.ir_version = onnx.helper.find_min_ir_version_for(opsets)  # the oldest IR that has this opset: runs widest
    if config:
        onnx.helper.set_model_props(model, {"zerograd.config": json.dumps(config)})
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise OnnxError(f"ONNX export produced a model the ONNX checker refuses (a zerograd bug): {err}") from err
    if path is not None:
        atomic_write_bytes(path, model.SerializeToString())  # a crash leaves the old file or the whole new one
    return model


def _example_batch(model: nn.Module) -> np.ndarray:
    """A batch of two zero images in the shape `model` takes: (2, C, H, W) for images, (2, features) else."""
    from .models import input_size

    shape = getattr(model, "input_shape", None)
    if shape is None:
        config = getattr(model, "config", None) or {}
        shape = config.get("input_shape") or config.get("input_dim")
    if shape is None:
        n = input_size(model)
        side = math.isqrt(n)
        shape = (1, side, side) if side * side == n else (n,)
    # two samples, not one: a batch of 1 could not be told apart from other axes of size 1
    return np.zeros((2, *tuple(int(s) for s in shape)), dtype=np.float32)


def export_model_file(spec: str, out: str | Path, opset: int = DEFAULT_OPSET,
                      arch: str | None = None) -> dict[str, Any]:
    """Exports a model file, "pretrained:NAME" or a book pickle (with arch) to ONNX; returns a summary."""
    from .models import load_model

    _onnx()
    _check_opset(opset)
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # as `zerograd train --out` does
    _check_out(out)
    model, _ = load_model(spec, arch)
    example = _example_batch(model)
    proto = export(model, example, out, opset)
    return {"path": str(out), "opset": int(opset), "input_shape": ["batch", *example.shape[1:]],
            "nodes": len(proto.graph.node), "parameters": sum(p.data.size for p in model.parameters())}


# ===================================================================================================
# Import: ONNX graph -> Module
# ===================================================================================================

SUPPORTED_OPS = (
    "Gemm", "MatMul", "Conv", "MaxPool", "AveragePool", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Softmax", "LogSoftmax", "Flatten", "Reshape", "Transpose", "Dropout", "Identity", "Constant", "Add", "Sub",
    "Mul", "Div", "Pow", "Neg", "Exp", "Log", "Sqrt", "Abs", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze",
    "Concat",
)


_NONE = Tensor(np.zeros(0, np.float32))  # the slot of an optional input the node leaves out


class OnnxOp(nn.Module):
    """One ONNX node without a ready zerograd layer: its attributes, and its weights as Parameters."""

    def __init__(self, op_type: str, attrs: dict[str, Any], compute: Callable[..., Tensor], slots: list[Any]) -> None:
        super().__init__()
        self.op_type, self.attrs, self._compute = op_type, attrs, compute
        # per input: None (comes from the graph at run time), the name of a Parameter of this module,
        # a constant Tensor, or _NONE (an optional input left out)
        self._slots = slots

    def forward(self, *runtime: Tensor) -> Tensor:
        """The node's inputs from the graph (N-first tensors) -> its output."""
        it = iter(runtime)
        args = [next(it) if s is None else None if s is _NONE else s if isinstance(s, Tensor) else getattr(self, s)
                for s in self._slots]
        return self._compute(self, *args)

    def extra_repr(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.attrs.items())
        return f"{self.op_type}" + (f", {shown}" if shown else "")


def _gemm(op: OnnxOp, a: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    at = op.attrs
    if at["transA"]:
        a = F.transpose(a)
    if at["transB"]:
        b = F.transpose(b)
    y = a @ b
    if at["alpha"] != 1.0:
        y = y * at["alpha"]
    if c is not None:
        y = y + (c * at["beta"] if at["beta"] != 1.0 else c)
    return y


def _reshape(op: OnnxOp, x: Tensor, shape: Tensor) -> Tensor:
    target = [int(s) for s in np.asarray(shape.data).reshape(-1)]
    if not op.attrs.get("allowzero", 0):
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return F.reshape(x, tuple(target))


def _flatten(op: OnnxOp, x: Tensor) -> Tensor:
    axis = op.attrs["axis"] % max(x.ndim, 1) if op.attrs["axis"] < 0 else op.attrs["axis"]
    return F.reshape(x, (int(np.prod(x.shape[:axis], dtype=np.int64)), -1))


def _axes(op: OnnxOp, given: Tensor | None) -> list[int]:
    """Unsqueeze/Squeeze axes: an input from opset 13 on, an attribute before."""
    if given is not None:
        return [int(a) for a in np.asarray(given.data).reshape(-1)]
    return [int(a) for a in op.attrs.get("axes", [])]


def _unsqueeze(op: OnnxOp, x: Tensor, axes: Tensor | None = None) -> Tensor:
    wanted = _axes(op, axes)
    rank = x.ndim + len(wanted)
    shape = list(x.shape)
    for a in sorted(a % rank for a in wanted):
        shape.insert(a, 1)
    return F.reshape(x, tuple(shape))


def _squeeze(op: OnnxOp, x: Tensor, axes: Tensor | None = None) -> Tensor:
    wanted = {a % max(x.ndim, 1) for a in _axes(op, axes)} or {i for i, n in enumerate(x.shape) if n == 1}
    return F.reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in wanted))


def _gather(op: OnnxOp, x: Tensor, indices: Tensor) -> Tensor:
    index = np.asarray(indices.data).astype(np.int64)
    return F.getitem(x, (slice(None),) * (op.attrs["axis"] % x.ndim) + (index,))


def _shape_of(op: OnnxOp, x: Tensor) -> Tensor:
    # shape arithmetic (torch's x.view(x.size(0), -1)) runs on plain int64 arrays at every call: the batch stays free
    return Tensor(np.array(x.shape[op.attrs["start"]:op.attrs["end"]], dtype=np.int64))


_GENERIC: dict[str, Callable[..., Tensor]] = {
    "Shape": _shape_of, "Gather": _gather, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Concat": lambda op, *xs: F.cat(list(xs), axis=op.attrs["axis"]),
    "Gemm": _gemm,
    "MatMul": lambda op, a, b: a @ b,
    "Add": lambda op, a, b: a + b, "Sub": lambda op, a, b: a - b,
    "Mul": lambda op, a, b: a * b, "Div": lambda op, a, b: a / b, "Pow": lambda op, a, b: a**b,
    "Neg": lambda op, a: -a, "Exp": lambda op, a: F.exp(a), "Log": lambda op, a: F.log(a),
    "Sqrt": lambda op, a: F.sqrt(a), "Abs": lambda op, a: F.abs(a),
    "Cast": lambda op, a: F.cast(a, op.attrs["to"]),
    "LogSoftmax": lambda op, a: F.log_softmax(a, axis=op.attrs["axis"]),
    "Transpose": lambda op, a: F.permute(a, op.attrs["perm"]) if op.attrs["perm"] else F.transpose(a),
    "Reshape": _reshape,
    "Flatten": _flatten,
}
_SLOT_NAMES = {"Gemm": ("input", "weight", "bias"), "MatMul": ("input", "weight"),
               "Add": ("input", "other"), "Sub": ("input", "other"), "Mul": ("input", "other"),
               "Div": ("input", "other"), "Pow": ("input", "exponent")}


class OnnxModel(nn.Module):
    """An imported ONNX graph: one child module per node, run in the graph's order.

    Weights are Parameters (trainable with zerograd.optim); batch-norm statistics are buffers. Called with
    the graph's inputs (e.g. (N, 1, 28, 28) images); an input with the right number of values per sample in
    another layout ((N, 784) for (N, 1, 28, 28)) is reshaped to the declared one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_names: list[str] = []
        self.input_shapes: list[tuple[Any, ...]] = []
        self.output_names: list[str] = []
        self.opset = 0
        self.producer = ""
        self.config: dict[str, Any] = {"arch": "onnx"}
        self._steps: list[tuple[nn.Module, list[str], str]] = []
        self._values: dict[str, Tensor] = {}  # Parameters and constants the graph reads by name

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample of the first input, e.g. (1, 28, 28), when the file declares it."""
        if not self.input_shapes:
            return None
        dims = self.input_shapes[0][1:]
        return tuple(dims) if all(isinstance(d, int) for d in dims) else None

    def forward(self, *inputs: Any) -> Tensor | tuple[Tensor, ...]:
        """The graph's inputs in order -> its output (a tuple when the graph has several)."""
        if len(inputs) != len(self.input_names):
            raise ZerogradError(f"this ONNX model takes {len(self.input_names)} input(s) "
                                f"({', '.join(self.input_names)}), got {len(inputs)}")
        env = dict(self._values)
        for name, declared, value in zip(self.input_names, self.input_shapes, inputs):
            env[name] = self._fit(F.as_tensor(value), declared)
        for module, ins, out in self._steps:
            env[out] = module(*[env[i] for i in ins])
        outs = tuple(env[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    @staticmethod
    def _fit(x: Tensor, declared: tuple[Any, ...]) -> Tensor:
        dims = declared[1:]
        if (declared and x.ndim >= 1 and all(isinstance(d, int) for d in dims) and tuple(x.shape[1:]) != dims
                and math.prod(x.shape[1:]) == math.prod(dims)):
            return F.reshape(x, (x.shape[0], *dims))
        return x

    def extra_repr(self) -> str:
        return f"opset={self.opset}, inputs={self.input_names}, outputs={self.output_names}"


class _Builder:
    """Turns a checked ModelProto into an OnnxModel."""

    def __init__(self, proto: Any, source: str) -> None:
        self.onnx = _onnx()
        self.proto, self.source = proto, source
        self.graph = proto.graph
        self.model = OnnxModel()
        self.arrays: dict[str, np.ndarray] = {}  # initializers and Constant outputs
        self.params: dict[str, nn.Parameter] = {}  # float initializers, once each
        self.ranks: dict[str, int] = {}  # tensor name -> rank, from ONNX shape inference
        self.initializer_names: set[str] = set()
        self.counter = 0

    def fail(self, message: str) -> OnnxError:
        return OnnxError(f"{self.source}: {message}")

    # --- pieces ------------------------------------------------------------------------------------
    def attrs(self, node: Any) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str) -> np.ndarray | None:
        return self.arrays.get(name) if name else None

    def param(self, name: str) -> nn.Parameter:
        if name not in self.params:
            self.params[name] = nn.Parameter(np.array(self.arrays[name]))
        return self.params[name]

    def is_weight(self, name: str) -> bool:
        """A float initializer: it becomes a trainable Parameter."""
        return name in self.initializer_names and self.arrays[name].dtype.kind == "f"

    def place(self, node: Any, module: nn.Module, weights: Sequence[str]) -> None:
        """Registers the node's module under the layer path its weights name ("fc1" for "fc1.weight")."""
        prefixes = {w.rsplit(".", 1)[0] for w in weights if "." in w}
        path = prefixes.pop() if len(prefixes) == 1 and all("." in w for w in weights) else ""
        if not self._free(path):
            path = re.sub(r"[^0-9A-Za-z_.]+", "_", node.name).strip("_.")
            if not self._free(path):
                path = ""
        if not path:
            path = f"{node.op_type}_{self.counter}"
            while not self._free(path):
                self.counter += 1
                path = f"{node.op_type}_{self.counter}"
        self.counter += 1
        parent: nn.Module = self.model
        parts = path.split(".")
        for part in parts[:-1]:
            child = parent._modules.get(part)
            if child is None:
                child = nn.Module()
                parent.add_module(part, child)
            parent = child
        parent.add_module(parts[-1], module)

    def _free(self, path: str) -> bool:
        """Whether a module can be registered at this dotted path (new, a clean name, no clash)."""
        if not path:
            return False
        node: nn.Module = self.model
        parts = path.split(".")
        for i, part in enumerate(parts):
            if not part or part.startswith("_") or hasattr(type(node), part) or part in node.__dict__ and \
                    part not in node._modules:
                return False
            child = node._modules.get(part)
            if child is None:
                return True
            if i == len(parts) - 1 or type(child) is not nn.Module:  # taken, or a layer cannot hold layers
                return False
            node = child
        return False

    # --- nodes -------------------------------------------------------------------------------------
    def build(self) -> OnnxModel:
        g = self.graph
        numpy_helper = self.onnx.numpy_helper
        if len(g.sparse_initializer):
            raise self.fail("sparse initializers are not supported; store the weights as dense initializers")
        external = [i.name for i in g.initializer if i.data_location == self.onnx.TensorProto.EXTERNAL]
        if external:
            raise self.fail(f"weights {', '.join(external[:3])} are stored in external files: load the model with "
                            "onnx.load(path) (which reads them) and pass the ModelProto to zerograd.onnx.load")
        self.initializer_names = {init.name for init in g.initializer}
        for init in g.initializer:
            self.arrays[init.name] = numpy_helper.to_array(init)
        try:
            inferred = self.onnx.shape_inference.infer_shapes(self.proto).graph
        except Exception:  # ranks are only a hint; a node that needs one says so itself
            inferred = g
        for vi in [*inferred.input, *inferred.value_info, *inferred.output]:
            if vi.type.tensor_type.HasField("shape"):
                self.ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
        m = self.model
        for vi in g.input:
            if vi.name in self.initializer_names:
                continue  # old files list initializers among the inputs
            tt = vi.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim)
            m.input_names.append(vi.name)
            m.input_shapes.append(dims)
        if not m.input_names:
            raise self.fail("the graph has no input")
        m.output_names = [o.name for o in g.output]
        for node in g.node:
            self.node(node)
        for name, p in self.params.items():
            m._values[name] = p
        for name, a in self.arrays.items():
            if name not in self.params:
                m._values[name] = Tensor(a)
        m.eval()
        return m

    def node(self, node: Any) -> None:
        op, at = node.op_type, self.attrs(node)
        ins = list(node.input)
        if op == "Constant":
            self.arrays[node.output[0]] = self.constant(node, at)
            return
        if not node.output[0] or self.consumed(node.output[1:]):
            raise self.fail(f"{op} node {node.name!r}: only its first output can be used (zerograd does not "
                            "import Dropout's mask, MaxPool's indices or batch norm's training outputs)")
        module, runtime, weights = self.layer(node, op, at, ins)
        self.place(node, module, weights)
        self.model._steps.append((module, runtime, node.output[0]))

    def consumed(self, names: Sequence[str]) -> bool:
        names = {n for n in names if n}
        return any(i in names for n in self.graph.node for i in n.input) or any(
            o.name in names for o in self.graph.output)

    def constant(self, node: Any, at: dict[str, Any]) -> np.ndarray:
        if "value" in at:
            return self.onnx.numpy_helper.to_array(at["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                           ("value_ints", np.int64)):
            if key in at:
                return np.asarray(at[key], dtype=dtype)
        raise self.fail(f"Constant node {node.name} uses {', '.join(at)}; zerograd reads value, value_float(s), "
                        "value_int(s)")

    def require(self, cond: bool, node: Any, what: str) -> None:
        if not cond:
            raise self.fail(f"{node.op_type} node {node.name!r}: {what} is not supported by zerograd's import")

    def layer(self, node: Any, op: str, at: dict[str, Any], ins: list[str]) -> tuple[nn.Module, list[str], list[str]]:
        """(module, names of its run-time inputs, names of the weights it holds) for one node."""
        if op == "Gemm":
            at = {"alpha": float(at.get("alpha", 1.0)), "beta": float(at.get("beta", 1.0)),
                  "transA": int(at.get("transA", 0)), "transB": int(at.get("transB", 0))}
            w = self.const(ins[1]) if len(ins) > 1 and self.is_weight(ins[1]) else None
            b = ins[2] if len(ins) > 2 and ins[2] else ""
            if (w is not None and w.ndim == 2 and at["transB"] == 1 and not at["transA"] and at["alpha"] == 1.0
                    and (not b or (self.is_weight(b) and self.arrays[b].shape == (w.shape[0],)
                                   and at["beta"] == 1.0))):
                layer = nn.Linear(w.shape[1], w.shape[0], bias=bool(b))
                layer.weight = self.param(ins[1])
                if b:
                    layer.bias = self.param(b)
                return layer, [ins[0]], [ins[1]] + ([b] if b else [])
            return self.generic(node, op, at, ins)
        if op == "Conv":
            w = self.const(ins[1]) if self.is_weight(ins[1]) else None
            self.require(w is not None and w.ndim == 4, node, "a weight that is not a 4-D initializer (2-D conv)")
            group = int(at.get("group", 1))
            self.require(group == 1, node, f"group={group}")
            self.require(all(d == 1 for d in at.get("dilations", [1, 1])), node, f"dilations={at.get('dilations')}")
            strides, pads = self.window(node, at, w.shape[2:])
            b = ins[2] if len(ins) > 2 and ins[2] else ""
            layer = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), strides, pads, bias=bool(b))
            layer.weight = self.param(ins[1])
            if b:
                layer.bias = self.param(b)
            return layer, [ins[0]], [ins[1]] + ([b] if b else [])
        if op in ("MaxPool", "AveragePool"):
            kernel = tuple(int(k) for k in at.get("kernel_shape", []))
            self.require(len(kernel) == 2, node, f"kernel_shape={list(kernel)} (2-D pooling only)")
            self.require(int(at.get("ceil_mode", 0)) == 0, node, "ceil_mode=1")
            self.require(all(d == 1 for d in at.get("dilations", [1, 1])), node, f"dilations={at.get('dilations')}")
            self.require(int(at.get("storage_order", 0)) == 0, node, "storage_order=1")
            strides, pads = self.window(node, at, kernel)
            self.require(2 * pads[0] <= kernel[0] and 2 * pads[1] <= kernel[1], node,
                         f"pads {list(pads)} larger than half the kernel {list(kernel)}")
            if op == "AveragePool":
                self.require(pads == (0, 0) or int(at.get("count_include_pad", 0)) == 1, node,
                             "padding left out of the average (count_include_pad=0 with pads)")
                return nn.AvgPool2d(kernel, strides, pads), [ins[0]], []
            return nn.MaxPool2d(kernel, strides, pads), [ins[0]], []
        if op == "BatchNormalization":
            self.require(int(at.get("training_mode", 0)) == 0, node, "training_mode=1")
            self.require(all(self.is_weight(i) for i in ins[1:5]), node,
                         "scale, bias, mean or variance that is not an initializer")
            rank = self.ranks.get(ins[0])
            self.require(rank in (2, 4), node, f"input of rank {rank} (zerograd has (N, C) and (N, C, H, W))")
            c = self.arrays[ins[1]].shape[0]
            # ONNX's momentum weighs the running value, PyTorch's (and zerograd's) the new batch
            layer = (nn.BatchNorm1d if rank == 2 else nn.BatchNorm2d)(
                c, eps=_short(at.get("epsilon", 1e-5)), momentum=_short(1.0 - _short(at.get("momentum", 0.9))))
            layer.weight, layer.bias = self.param(ins[1]), self.param(ins[2])
            layer.register_buffer("running_mean", np.array(self.arrays[ins[3]]))
            layer.register_buffer("running_var", np.array(self.arrays[ins[4]]))
            return layer, [ins[0]], ins[1:5]
        if op == "Dropout":
            ratio = self.const(ins[1]) if len(ins) > 1 else None
            self.require(len(ins) < 2 or not ins[1] or ratio is not None, node, "a ratio computed by the graph")
            training = self.const(ins[2]) if len(ins) > 2 and ins[2] else np.array(False)
            self.require(training is not None and not bool(training), node, "training_mode set to true")
            p = float(ratio) if ratio is not None else float(at.get("ratio", 0.5))
            self.require(0 <= p < 1, node, f"ratio {p}")
            return nn.Dropout(p), [ins[0]], []
        simple = {"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "Identity": nn.Identity}
        if op in simple:
            return simple[op](), [ins[0]], []
        if op == "LeakyRelu":
            return nn.LeakyReLU(_short(at.get("alpha", 0.01))), [ins[0]], []
        if op == "Softmax":
            return nn.Softmax(dim=int(at.get("axis", -1))), [ins[0]], []
        if op == "Flatten" and int(at.get("axis", 1)) == 1:
            return nn.Flatten(1), [ins[0]], []
        if op == "Flatten":
            return self.generic(node, op, {"axis": int(at.get("axis", 1))}, ins)
        if op == "LogSoftmax":
            return self.generic(node, op, {"axis": int(at.get("axis", -1))}, ins)
        if op == "Transpose":
            return self.generic(node, op, {"perm": [int(p) for p in at.get("perm", [])]}, ins)
        if op == "Reshape":
            return self.generic(node, op, {"allowzero": int(at.get("allowzero", 0))}, ins)
        if op == "Shape":
            end = at.get("end")
            return self.generic(node, op, {"start": int(at.get("start", 0)), "end": None if end is None else int(end)},
                                ins)
        if op in ("Gather", "Concat"):
            self.require(op == "Gather" or "axis" in at, node, "Concat without an axis")
            return self.generic(node, op, {"axis": int(at.get("axis", 0))}, ins)
        if op in ("Unsqueeze", "Squeeze"):
            return self.generic(node, op, {"axes": [int(a) for a in at.get("axes", [])]} if "axes" in at else {}, ins)
        if op == "Cast":
            to = self.onnx.helper.tensor_dtype_to_np_dtype(int(at["to"]))
            return self.generic(node, op, {"to": np.dtype(to)}, ins)
        return self.generic(node, op, {}, ins)

    def window(self, node: Any, at: dict[str, Any], kernel: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """(strides, symmetric pads) of a Conv or pooling node."""
        auto_pad = at.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        self.require(auto_pad in ("NOTSET", "VALID"), node, f"auto_pad={auto_pad} (give explicit pads)")
        strides = [int(s) for s in at.get("strides", [1, 1])]
        pads = [int(p) for p in at.get("pads", [0, 0, 0, 0])] if auto_pad == "NOTSET" else [0, 0, 0, 0]
        self.require(len(strides) == 2 and len(pads) == 4, node, f"strides {strides} / pads {pads} (2-D only)")
        self.require(pads[0] == pads[2] and pads[1] == pads[3], node, f"asymmetric pads {pads}")
        return (strides[0], strides[1]), (pads[0], pads[1])

    def generic(self, node: Any, op: str, at: dict[str, Any], ins: list[str]) -> tuple[nn.Module, list[str], list[str]]:
        names = _SLOT_NAMES.get(op, ())
        slots: list[Any] = []
        runtime: list[str] = []
        weights: list[str] = []
        module = OnnxOp(op, at, _GENERIC[op], slots)
        for i, name in enumerate(ins):
            if not name:
                slots.append(_NONE)
            elif self.is_weight(name):
                attr = names[i] if i < len(names) else f"input{i}"
                module.register_parameter(attr, self.param(name))
                slots.append(attr)
                weights.append(name)
            elif name in self.arrays:
                slots.append(Tensor(self.arrays[name]))
            else:
                slots.append(None)
                runtime.append(name)
        return module, runtime, weights


def _check_proto(onnx: Any, proto: Any, source: str) -> None:
    """Refuses files zerograd cannot import, naming what is missing, before anything is built."""
    if not proto.HasField("graph") or not proto.graph.node:
        raise OnnxError(f"{source} holds no ONNX graph (an empty or non-ONNX file)")
    default = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not default:
        raise OnnxError(f"{source} does not import the default ONNX operator set")
    opset = default[0]
    if opset < MIN_OPSET:
        raise OnnxError(f"{source} uses opset {opset}; zerograd imports opsets {MIN_OPSET} to {max_opset()}: convert "
                        f"it first with onnx.version_converter.convert_version(model, {MIN_OPSET})")
    unknown = sorted({(n.domain + "::" if n.domain not in ("", "ai.onnx") else "") + n.op_type
                      for n in proto.graph.node
                      if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS})
    if unknown:
        raise OnnxError(f"{source} uses operators zerograd cannot import: {', '.join(unknown)} "
                        f"(zerograd imports {', '.join(SUPPORTED_OPS)})")
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OnnxError(f"{source} is not a valid ONNX model: {first}") from err


def load(path: str | Path | bytes | onnx.ModelProto) -> OnnxModel:
    """An ONNX file (or bytes, or ModelProto) as an OnnxModel in eval mode, its initializers as Parameters.

    Raises OnnxError naming the problem for a malformed file or operators outside zerograd's set.
    Nothing in the file is executed: ONNX is a protobuf description of a graph.
    """
    onnx = _onnx()
    if isinstance(path, onnx.ModelProto):
        proto, source = path, "this ONNX model"
    elif isinstance(path, (bytes, bytearray)):
        proto, source = _parse(onnx, bytes(path), "this ONNX data"), "this ONNX data"
    else:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise OnnxError(f"{source}: no such ONNX file")
        proto = _parse(onnx, p.read_bytes(), source)
    try:
        _check_proto(onnx, proto, source)
        builder = _Builder(proto, source)
        model = builder.build()
    except ZerogradError:
        raise
    except (TypeError, ValueError) as err:
        # The file is untrusted: a damaged one holds bytes where ONNX wants text (UnicodeDecodeError,
        # TypeError) or initializers whose shape does not fit their data (ValueError from NumPy).
        first = (str(err).strip().splitlines() or [""])[0][:300]
        raise OnnxError(f"{source} is a damaged ONNX file ({type(err).__name__}: {first}); "
                        "export or download it again") from err
    model.opset = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")][0]
    model.producer = f"{proto.producer_name} {proto.producer_version}".strip()
    props = {p.key: p.value for p in proto.metadata_props}
    if model.input_shape is not None:
        model.config["input_shape"] = list(model.input_shape)  # what evaluate and predict check their data against
    if "zerograd.config" in props:
        try:
            model.config["exported_from"] = json.loads(props["zerograd.config"])
        except ValueError:
            pass  # a broken note is no reason to refuse the weights
    return model


def _parse(onnx: Any, data: bytes, source: str) -> Any:
    from google.protobuf.message import DecodeError

    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise OnnxError(f"{source} is not an ONNX file (its protobuf does not parse: {err})") from err
    return proto


def load_model_onnx(path: str | Path) -> tuple[OnnxModel, dict[str, Any]]:
    """(model, metadata) for zerograd.models.load_model: the imported graph in eval mode."""
    model = load(path)
    meta = {"kind": "model", "config": model.config, "onnx": {"opset": model.opset, "producer": model.producer}}
    return model, meta
