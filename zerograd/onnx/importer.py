"""ONNX import: a checked ModelProto becomes an OnnxModel, one Module per node, built by the op registry below."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .. import functional as F
from .. import nn
from ..errors import ZerogradError
from ..tensor import Tensor
from ._base import MIN_OPSET, OnnxError, _onnx, max_opset

if TYPE_CHECKING:  # only for annotations: the real import happens on first use, behind the extra
    import onnx

__all__ = ["SUPPORTED_OPS", "OnnxModel", "OnnxOp", "load", "load_model_onnx"]

_Layer = tuple[nn.Module, list[str], list[str]]  # (module, names of its run-time inputs, names of the weights it holds)

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

    def layer(self, node: Any, op: str, at: dict[str, Any], ins: list[str]) -> _Layer:
        """(module, names of its run-time inputs, names of the weights it holds) for one node."""
        return _OPS[op](self, node, at, ins)  # _check_proto let only SUPPORTED_OPS through

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

    def generic(self, node: Any, at: dict[str, Any], ins: list[str], compute: Callable[..., Tensor],
                slot_names: Sequence[str] = ()) -> _Layer:
        """An OnnxOp running compute(op, *inputs); float initializers become its Parameters, named by slot_names."""
        slots: list[Any] = []
        runtime: list[str] = []
        weights: list[str] = []
        module = OnnxOp(node.op_type, at, compute, slots)
        for i, name in enumerate(ins):
            if not name:
                slots.append(_NONE)
            elif self.is_weight(name):
                attr = slot_names[i] if i < len(slot_names) else f"input{i}"
                module.register_parameter(attr, self.param(name))
                slots.append(attr)
                weights.append(name)
            elif name in self.arrays:
                slots.append(Tensor(self.arrays[name]))
            else:
                slots.append(None)
                runtime.append(name)
        return module, runtime, weights


# ===================================================================================================
# Operators: the one registry, op type -> builder. Adding an op is one @_op function or one _computed line.
# ===================================================================================================

_Build = Callable[[_Builder, Any, dict[str, Any], list[str]], _Layer]
_Attrs = Callable[[dict[str, Any]], dict[str, Any]]  # a node's attributes -> the OnnxOp's attrs
_OPS: dict[str, _Build] = {}


def _op(*op_types: str) -> Callable[[_Build], _Build]:
    """Registers build(builder, node, attrs, inputs) -> (module, run-time input names, weight names) for op_types."""
    def register(build: _Build) -> _Build:
        for op_type in op_types:
            assert op_type not in _OPS, f"{op_type} is registered twice"
            _OPS[op_type] = build
        return build
    return register


def _computed(op_type: str, compute: Callable[..., Tensor], attrs: _Attrs | None = None,
              slot_names: Sequence[str] = ()) -> None:
    """Registers op_type as an OnnxOp running compute(op, *inputs) -> Tensor, for ops without a zerograd layer.

    attrs turns the node's attributes into op.attrs (none are kept without it); slot_names name the inputs that
    are weights ("weight", "bias"), which become the OnnxOp's Parameters under these names (else input0, ...).
    """
    def build(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
        return builder.generic(node, attrs(at) if attrs else {}, ins, compute, slot_names)
    _op(op_type)(build)


def _short(value: float) -> float:
    """A float32 attribute as the shortest decimal that gives it back (1e-05, not 9.999999747378752e-06)."""
    return float(str(np.float32(value)))


# --- layers ----------------------------------------------------------------------------------------
def _gemm(op: OnnxOp, a: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    """alpha * A' @ B' + beta * C, A' and B' transposed as transA and transB say."""
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


@_op("Gemm")
def _build_gemm(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.Linear for x @ W.T + b with W an (out, in) initializer; any other Gemm is an OnnxOp whose weights train."""
    at = {"alpha": float(at.get("alpha", 1.0)), "beta": float(at.get("beta", 1.0)),
          "transA": int(at.get("transA", 0)), "transB": int(at.get("transB", 0))}
    w = builder.const(ins[1]) if len(ins) > 1 and builder.is_weight(ins[1]) else None
    b = ins[2] if len(ins) > 2 and ins[2] else ""
    if (w is not None and w.ndim == 2 and at["transB"] == 1 and not at["transA"] and at["alpha"] == 1.0
            and (not b or (builder.is_weight(b) and builder.arrays[b].shape == (w.shape[0],)
                           and at["beta"] == 1.0))):
        layer = nn.Linear(w.shape[1], w.shape[0], bias=bool(b))
        layer.weight = builder.param(ins[1])
        if b:
            layer.bias = builder.param(b)
        return layer, [ins[0]], [ins[1]] + ([b] if b else [])
    return builder.generic(node, at, ins, _gemm, ("input", "weight", "bias"))


_computed("MatMul", lambda op, a, b: a @ b, slot_names=("input", "weight"))


@_op("Conv")
def _build_conv(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.Conv2d for a 2-D convolution, weight (out, in, kh, kw) an initializer: group 1, no dilation."""
    w = builder.const(ins[1]) if builder.is_weight(ins[1]) else None
    builder.require(w is not None and w.ndim == 4, node, "a weight that is not a 4-D initializer (2-D conv)")
    group = int(at.get("group", 1))
    builder.require(group == 1, node, f"group={group}")
    builder.require(all(d == 1 for d in at.get("dilations", [1, 1])), node, f"dilations={at.get('dilations')}")
    strides, pads = builder.window(node, at, w.shape[2:])
    b = ins[2] if len(ins) > 2 and ins[2] else ""
    layer = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), strides, pads, bias=bool(b))
    layer.weight = builder.param(ins[1])
    if b:
        layer.bias = builder.param(b)
    return layer, [ins[0]], [ins[1]] + ([b] if b else [])


@_op("MaxPool", "AveragePool")
def _build_pool(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.MaxPool2d or nn.AvgPool2d for 2-D pooling with symmetric pads of at most half the kernel."""
    kernel = tuple(int(k) for k in at.get("kernel_shape", []))
    builder.require(len(kernel) == 2, node, f"kernel_shape={list(kernel)} (2-D pooling only)")
    builder.require(int(at.get("ceil_mode", 0)) == 0, node, "ceil_mode=1")
    builder.require(all(d == 1 for d in at.get("dilations", [1, 1])), node, f"dilations={at.get('dilations')}")
    builder.require(int(at.get("storage_order", 0)) == 0, node, "storage_order=1")
    strides, pads = builder.window(node, at, kernel)
    builder.require(2 * pads[0] <= kernel[0] and 2 * pads[1] <= kernel[1], node,
                    f"pads {list(pads)} larger than half the kernel {list(kernel)}")
    if node.op_type == "AveragePool":
        builder.require(pads == (0, 0) or int(at.get("count_include_pad", 0)) == 1, node,
                        "padding left out of the average (count_include_pad=0 with pads)")
        return nn.AvgPool2d(kernel, strides, pads), [ins[0]], []
    return nn.MaxPool2d(kernel, strides, pads), [ins[0]], []


@_op("GlobalAveragePool")
def _build_global_average_pool(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.AdaptiveAvgPool2d(1): the mean of each channel of (N, C, H, W), kept as (N, C, 1, 1)."""
    rank = builder.ranks.get(ins[0])
    builder.require(rank == 4, node, f"input of rank {rank} (zerograd pools images (N, C, H, W))")
    return nn.AdaptiveAvgPool2d(1), [ins[0]], []


@_op("BatchNormalization")
def _build_batch_norm(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.BatchNorm1d for (N, C) or nn.BatchNorm2d for (N, C, H, W), its running statistics as buffers."""
    builder.require(int(at.get("training_mode", 0)) == 0, node, "training_mode=1")
    builder.require(all(builder.is_weight(i) for i in ins[1:5]), node,
                    "scale, bias, mean or variance that is not an initializer")
    rank = builder.ranks.get(ins[0])
    builder.require(rank in (2, 4), node, f"input of rank {rank} (zerograd has (N, C) and (N, C, H, W))")
    c = builder.arrays[ins[1]].shape[0]
    # ONNX's momentum weighs the running value, PyTorch's (and zerograd's) the new batch
    layer = (nn.BatchNorm1d if rank == 2 else nn.BatchNorm2d)(
        c, eps=_short(at.get("epsilon", 1e-5)), momentum=_short(1.0 - _short(at.get("momentum", 0.9))))
    layer.weight, layer.bias = builder.param(ins[1]), builder.param(ins[2])
    layer.register_buffer("running_mean", np.array(builder.arrays[ins[3]]))
    layer.register_buffer("running_var", np.array(builder.arrays[ins[4]]))
    return layer, [ins[0]], ins[1:5]


@_op("Dropout")
def _build_dropout(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.Dropout with a constant ratio, outside training mode (the identity in eval mode)."""
    ratio = builder.const(ins[1]) if len(ins) > 1 else None
    builder.require(len(ins) < 2 or not ins[1] or ratio is not None, node, "a ratio computed by the graph")
    training = builder.const(ins[2]) if len(ins) > 2 and ins[2] else np.array(False)
    builder.require(training is not None and not bool(training), node, "training_mode set to true")
    p = float(ratio) if ratio is not None else float(at.get("ratio", 0.5))
    builder.require(0 <= p < 1, node, f"ratio {p}")
    return nn.Dropout(p), [ins[0]], []


# --- activations -----------------------------------------------------------------------------------
_PLAIN_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "Identity": nn.Identity,
}


@_op(*_PLAIN_LAYERS)
def _build_plain(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """The zerograd layer of the same name, which has no settings (elementwise: same shape out as in)."""
    return _PLAIN_LAYERS[node.op_type](), [ins[0]], []


@_op("LeakyRelu")
def _build_leaky_relu(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.LeakyReLU with the node's alpha as its negative slope."""
    return nn.LeakyReLU(_short(at.get("alpha", 0.01))), [ins[0]], []


@_op("Softmax")
def _build_softmax(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.Softmax over the node's axis."""
    return nn.Softmax(dim=int(at.get("axis", -1))), [ins[0]], []


_computed("LogSoftmax", lambda op, a: F.log_softmax(a, axis=op.attrs["axis"]),
          attrs=lambda at: {"axis": int(at.get("axis", -1))})


# --- shapes ----------------------------------------------------------------------------------------
def _flatten(op: OnnxOp, x: Tensor) -> Tensor:
    """(d0, ..., dn) -> (d0 * ... * d(axis-1), d(axis) * ... * dn)."""
    axis = op.attrs["axis"] % max(x.ndim, 1) if op.attrs["axis"] < 0 else op.attrs["axis"]
    return F.reshape(x, (int(np.prod(x.shape[:axis], dtype=np.int64)), -1))


@_op("Flatten")
def _build_flatten(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """nn.Flatten for axis 1, (N, d1, ...) -> (N, d1 * ...); other axes are an OnnxOp."""
    if int(at.get("axis", 1)) == 1:
        return nn.Flatten(1), [ins[0]], []
    return builder.generic(node, {"axis": int(at.get("axis", 1))}, ins, _flatten)


def _reshape(op: OnnxOp, x: Tensor, shape: Tensor) -> Tensor:
    """x in the shape the second input gives; a 0 there keeps x's dimension unless allowzero is set."""
    target = [int(s) for s in np.asarray(shape.data).reshape(-1)]
    if not op.attrs.get("allowzero", 0):
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return F.reshape(x, tuple(target))


_computed("Reshape", _reshape, attrs=lambda at: {"allowzero": int(at.get("allowzero", 0))})
_computed("Transpose", lambda op, a: F.permute(a, op.attrs["perm"]) if op.attrs["perm"] else F.transpose(a),
          attrs=lambda at: {"perm": [int(p) for p in at.get("perm", [])]})


# --- arithmetic: an initializer input becomes a Parameter named by its slot ("other", "exponent") --
_computed("Add", lambda op, a, b: a + b, slot_names=("input", "other"))
_computed("Sub", lambda op, a, b: a - b, slot_names=("input", "other"))
_computed("Mul", lambda op, a, b: a * b, slot_names=("input", "other"))
_computed("Div", lambda op, a, b: a / b, slot_names=("input", "other"))
_computed("Pow", lambda op, a, b: a**b, slot_names=("input", "exponent"))
_computed("Neg", lambda op, a: -a)
_computed("Exp", lambda op, a: F.exp(a))
_computed("Log", lambda op, a: F.log(a))
_computed("Sqrt", lambda op, a: F.sqrt(a))
_computed("Abs", lambda op, a: F.abs(a))
_computed("Cast", lambda op, a: F.cast(a, op.attrs["to"]),
          attrs=lambda at: {"to": np.dtype(_onnx().helper.tensor_dtype_to_np_dtype(int(at["to"])))})


# --- shape arithmetic: what PyTorch's exporter writes for x.view(x.size(0), -1) --------------------
def _shape_of(op: OnnxOp, x: Tensor) -> Tensor:
    """x's shape (from start to end) as an int64 vector."""
    # computed from x at every call, as plain int64 arrays: the batch stays free
    return Tensor(np.array(x.shape[op.attrs["start"]:op.attrs["end"]], dtype=np.int64))


_computed("Shape", _shape_of, attrs=lambda at: {"start": int(at.get("start", 0)),
                                                "end": None if at.get("end") is None else int(at["end"])})


def _gather(op: OnnxOp, x: Tensor, indices: Tensor) -> Tensor:
    """The entries of x at `indices` along axis (x[:, indices] for axis 1)."""
    index = np.asarray(indices.data).astype(np.int64)
    return F.getitem(x, (slice(None),) * (op.attrs["axis"] % x.ndim) + (index,))


_computed("Gather", _gather, attrs=lambda at: {"axis": int(at.get("axis", 0))})


def _axes(op: OnnxOp, given: Tensor | None) -> list[int]:
    """Unsqueeze/Squeeze axes: an input from opset 13 on, an attribute before."""
    if given is not None:
        return [int(a) for a in np.asarray(given.data).reshape(-1)]
    return [int(a) for a in op.attrs.get("axes", [])]


def _axes_attr(at: dict[str, Any]) -> dict[str, Any]:
    """The axes attribute of an Unsqueeze or Squeeze, when the node has one."""
    return {"axes": [int(a) for a in at.get("axes", [])]} if "axes" in at else {}


def _unsqueeze(op: OnnxOp, x: Tensor, axes: Tensor | None = None) -> Tensor:
    """x with a dimension of size 1 inserted at each of the axes."""
    wanted = _axes(op, axes)
    rank = x.ndim + len(wanted)
    shape = list(x.shape)
    for a in sorted(a % rank for a in wanted):
        shape.insert(a, 1)
    return F.reshape(x, tuple(shape))


def _squeeze(op: OnnxOp, x: Tensor, axes: Tensor | None = None) -> Tensor:
    """x without the given axes of size 1 (without all of them when no axes are given)."""
    wanted = {a % max(x.ndim, 1) for a in _axes(op, axes)} or {i for i, n in enumerate(x.shape) if n == 1}
    return F.reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in wanted))


_computed("Unsqueeze", _unsqueeze, attrs=_axes_attr)
_computed("Squeeze", _squeeze, attrs=_axes_attr)


def _concat(op: OnnxOp, *xs: Tensor) -> Tensor:
    """The inputs joined along axis."""
    return F.cat(list(xs), axis=op.attrs["axis"])


@_op("Concat")
def _build_concat(builder: _Builder, node: Any, at: dict[str, Any], ins: list[str]) -> _Layer:
    """An OnnxOp running _concat along the node's axis, which ONNX requires."""
    builder.require("axis" in at, node, "Concat without an axis")
    return builder.generic(node, {"axis": int(at.get("axis", 0))}, ins, _concat)


# Constant is no module: the builder keeps its value as an array that the nodes using it read.
SUPPORTED_OPS = (*_OPS, "Constant")


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
