"""ONNX export: trace one forward pass in eval mode, then map each recorded Function to ONNX nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .. import nn
from .._version import __version__
from ..functional import activation as _act
from ..functional import conv as _conv
from ..functional import math as _math
from ..functional import norm as _norm
from ..functional import shape as _shape
from ..io.atomic import atomic_write_bytes
from ..tensor import Function, Tensor, _topological_order, enable_grad
from ._base import DEFAULT_OPSET, OnnxError, _onnx, check_opset

if TYPE_CHECKING:  # only for annotations: the real import happens on first use, behind the extra
    import onnx

__all__ = ["export"]


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

    def fused_after(self, fn: Function, out: str, name: str) -> str:
        """The ReLU and max-pooling that a node of fused layers (a "Linear + ReLU" or "Conv2d + ReLU + MaxPool2d"
        node of functional.math.linear_relu, functional.conv.conv2d_relu_max_pool2d, ...) computed after its Gemm or
        Conv `name`, as ONNX nodes of their own, "<name>/relu" and "<name>/pool". Tracing runs a model's layers one
        by one, so only a model that calls those functions itself has such nodes."""
        params = getattr(fn, "params", {})
        if params.get("relu"):
            out = self.emit("Relu", [out], self.unique(f"{name}/relu"))
        if params.get("pool"):
            kernel = list(params["pool"])
            out = self.emit("MaxPool", [out], self.unique(f"{name}/pool"), kernel_shape=kernel,
                            strides=kernel, pads=[0, 0, 0, 0])
        return out


def _simple(op: str) -> Callable[..., str]:
    def emit(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
        return ex.emit(op, ins, ex.node_name(fn, op))
    return emit


def _emit_linear(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    name = ex.node_name(fn, "Gemm")
    x = fn.inputs[0]
    if x.ndim == 2:  # Gemm: y = x @ W.T + b with W kept (out, in) as nn.Linear stores it
        return ex.fused_after(fn, ex.emit("Gemm", ins, name, transB=1), name)
    # other ranks: rows of features through the same Gemm, so that import finds an nn.Linear again
    rows_shape = ex.const_ints([-1, x.shape[-1]], f"{name}/rows_shape")
    rows = ex.emit("Reshape", [ins[0], rows_shape], ex.unique(f"{name}/rows"))
    y = ex.emit("Gemm", [rows, *ins[1:]], name, transB=1)
    back = [-1, *t.shape[1:]] if t.ndim > 1 else [t.shape[0]]  # -1: the batch stays dynamic
    y = ex.emit("Reshape", [y, ex.const_ints(back, f"{name}/out_shape")], ex.unique(f"{name}/unrows"))
    return ex.fused_after(fn, y, name)


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
    name = ex.node_name(fn, "Conv")
    out = ex.emit("Conv", ins, name, kernel_shape=kernel, strides=[sh, sw], pads=[ph, pw, ph, pw])
    return ex.fused_after(fn, out, name)


def _emit_pool(op: str) -> Callable[..., str]:
    def emit(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
        kh, kw = fn.params.get("kernel_size", (2, 2))
        sh, sw = fn.params.get("stride", (kh, kw))
        ph, pw = fn.params.get("padding", (0, 0))
        extra = {"count_include_pad": 1} if op == "AveragePool" else {}  # zerograd averages over padding zeros
        return ex.emit(op, ins, ex.node_name(fn, op), kernel_shape=[kh, kw], strides=[sh, sw],
                       pads=[ph, pw, ph, pw], **extra)
    return emit


def _emit_adaptive_avg_pool(ex: _Exporter, fn: Function, t: Tensor, ins: list[str]) -> str:
    """GlobalAveragePool for 1x1, AveragePool when the windows tile the image, else forward's averaging matrices."""
    (h, w), (oh, ow) = fn.inputs[0].shape[2:], t.shape[2:]
    if (oh, ow) == (1, 1):
        return ex.emit("GlobalAveragePool", ins, ex.node_name(fn, "GlobalAveragePool"))
    if h % oh == 0 and w % ow == 0:
        kernel = [h // oh, w // ow]
        return ex.emit("AveragePool", ins, ex.node_name(fn, "AveragePool"), kernel_shape=kernel, strides=kernel)
    # windows of varying sizes: A_h (OH, H) @ x @ A_w.T (W, OW), MatMul broadcasting over (N, C) as NumPy's does
    name = ex.node_name(fn, "MatMul")
    rows = ex.value(Tensor(_conv._adaptive_weights(h, oh, t.dtype)))
    cols = ex.value(Tensor(np.ascontiguousarray(_conv._adaptive_weights(w, ow, t.dtype).T)))
    return ex.emit("MatMul", [ex.emit("MatMul", [rows, ins[0]], ex.unique(f"{name}/rows")), cols], name)


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
    _conv.AdaptiveAvgPool2d: _emit_adaptive_avg_pool,
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


def check_export_path(path: str | Path | None) -> None:
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
    check_opset(opset)
    check_export_path(path)
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
