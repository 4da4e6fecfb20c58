"""Fuzzing the ONNX importer: random, truncated, bit-flipped and lying files give OnnxError, nothing else."""

from __future__ import annotations

import functools

import numpy as np
import onnx  # the test extra installs it: a missing one fails, never skips
import pytest
from _fuzz import clean, fuzz, peak_bytes
from hypothesis import given
from hypothesis import strategies as st

from zerograd import Tensor
from zerograd.errors import ZerogradError
from zerograd.models import MLP
from zerograd.onnx import OnnxError, export, load


@functools.cache
def _valid() -> bytes:
    """A small exported network (MLP 784-8-10, batch norm): what a user downloads."""
    model = MLP(784, [8], 10, batchnorm=True, seed=0)
    model.eval()
    proto = export(model, np.zeros((1, 1, 28, 28), dtype=np.float32))
    return proto.SerializeToString()


@pytest.fixture
def valid() -> bytes:
    return _valid()


def _load(data: bytes, run: bool = True) -> object:
    result = clean("onnx", load, data)
    assert not isinstance(result, ZerogradError) or isinstance(result, OnnxError), result
    if run and not isinstance(result, ZerogradError):
        with np.errstate(all="ignore"):  # flipped weights may overflow: the model still runs
            out = clean("onnx model run", result, np.zeros((2, 1, 28, 28), dtype=np.float32))
        assert isinstance(out, (Tensor, ZerogradError))  # a rewired graph may ignore its input: any shape
    return result


def test_the_valid_file_loads(valid):
    assert not isinstance(_load(valid), ZerogradError)


def test_every_truncation(valid):
    step = max(1, len(valid) // 400)  # the weights are most of the file: every length of the graph part
    for n in [*range(0, 600), *range(600, len(valid), step)]:
        _load(valid[:n])


@fuzz(200)
@given(data=st.data())
def test_bit_flips(data):
    valid = _valid()
    flipped = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, 600) | st.integers(0, len(valid) - 1))  # mostly the graph, then weights
        flipped[i] ^= 1 << data.draw(st.integers(0, 7))
    _load(bytes(flipped))


@fuzz(200)
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw):
    _load(raw)


def _with_initializer_dims(valid: bytes, dims: list[int]) -> bytes:
    proto = onnx.ModelProto()
    proto.ParseFromString(valid)
    init = proto.graph.initializer[0]
    del init.dims[:]
    init.dims.extend(dims)
    return proto.SerializeToString()


@pytest.mark.parametrize("dims", [[10**6, 10**6], [-5, 3], [0], [2**62, 4], [1, 1, 1, 1, 1, 1, 1, 1]])
def test_initializers_that_lie_about_their_shape(valid, dims):
    result, peak = peak_bytes(_load, _with_initializer_dims(valid, dims))
    assert isinstance(result, OnnxError), result
    assert peak < 20 * len(valid) + 5_000_000, peak


OPS = ["Gemm", "MatMul", "Conv", "MaxPool", "AveragePool", "BatchNormalization", "Relu", "Softmax", "Flatten",
       "Reshape", "Transpose", "Dropout", "Identity", "Add", "Mul", "Div", "Pow", "Cast", "Shape", "Gather",
       "Unsqueeze", "Squeeze", "Concat", "Constant", "Loop", "If", "Scan"]


@fuzz(200)
@given(data=st.data())
def test_graphs_rewired_and_reconfigured(data):
    """Structural damage a bit flip rarely makes: other operators, inputs and attribute values."""
    proto = onnx.ModelProto()
    proto.ParseFromString(_valid())
    nodes = proto.graph.node
    names = [i.name for i in proto.graph.initializer] + [n.output[0] for n in nodes] + ["", "missing"]
    for _ in range(data.draw(st.integers(1, 3))):
        node = nodes[data.draw(st.integers(0, len(nodes) - 1))]
        change = data.draw(st.sampled_from(["op", "input", "attribute", "drop input"]))
        if change == "op":
            node.op_type = data.draw(st.sampled_from(OPS))
        elif change == "input" and node.input:
            node.input[data.draw(st.integers(0, len(node.input) - 1))] = data.draw(st.sampled_from(names))
        elif change == "drop input" and node.input:
            del node.input[-1]
        elif change == "attribute":
            value = data.draw(st.integers(-3, 5) | st.sampled_from([2**31 - 1, -(2**31), 2**40]))
            name = data.draw(st.sampled_from(["axis", "transB", "transA", "perm", "kernel_shape", "strides",
                                              "pads", "group", "to", "axes", "epsilon", "alpha", "keepdims"]))
            kind = data.draw(st.sampled_from(["int", "ints", "float"]))
            if kind == "int":
                attr = onnx.helper.make_attribute(name, value)
            elif kind == "ints":
                attr = onnx.helper.make_attribute(name, [value] * data.draw(st.integers(0, 4)),
                                                  attr_type=onnx.AttributeProto.INTS)
            else:
                attr = onnx.helper.make_attribute(name, float(value))
            kept = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend([*kept, attr])
    _load(proto.SerializeToString())
