"""ONNX export (tracing the recorded graph) and import (graph -> trainable Module), checked against ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import zerograd as zg
import zerograd.functional as F
from zerograd import nn, optim
from zerograd import onnx as zonnx
from zerograd.cli import main
from zerograd.datasets import load_mnist
from zerograd.models import MLP, ResNet, load_model, save_model

TOL = 1e-5  # absolute, on probabilities


@pytest.fixture(scope="module")
def mnist():
    """1,000 MNIST test images (N, 1, 28, 28) float32 in [0, 1] and their labels, plus 500 training images."""
    (x, t), (xt, tt) = load_mnist(normalize=True, flatten=False)
    return xt[:1000], tt[:1000], x[:500], t[:500]


def _mlp_bn_dropout(x: np.ndarray, t: np.ndarray) -> nn.Module:
    """An MLP with batch norm and dropout after 20 SGD steps: weights and running statistics far from their start."""
    model = MLP(784, (64, 32), 10, batchnorm=True, dropout=0.3, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = rng.choice(len(x), 100, replace=False)
        loss = F.cross_entropy(model(zg.Tensor(x[idx])), t[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _resnet(x: np.ndarray, t: np.ndarray) -> nn.Module:
    """ResNet-8 (width 8) after 10 Adam steps: both kinds of shortcut (identity, projection), trained statistics."""
    model = ResNet((1, 28, 28), 10, depth=8, width=8, seed=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for i in range(10):
        loss = F.cross_entropy(model(zg.Tensor(x[i * 50 : (i + 1) * 50])), t[i * 50 : (i + 1) * 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _build(name: str, mnist) -> nn.Module:
    x, t = mnist[2], mnist[3]
    if name == "mlp-bn-dropout":
        return _mlp_bn_dropout(x, t)
    if name == "resnet":
        return _resnet(x, t)
    return load_model(f"pretrained:{name}")[0]  # shipped trained; mlp is the default `zerograd train` network


MODELS = ["book-ch3", "mlp", "mlp-bn-dropout", "simple-cnn", "deep-cnn", "resnet"]


@pytest.fixture(scope="module")
def exported(mnist, tmp_path_factory):
    """name -> (model, path of its ONNX file, zerograd's probabilities on the 1,000 images): each built once."""
    folder, cache = tmp_path_factory.mktemp("onnx"), {}

    def get(name: str):
        if name not in cache:
            model = _build(name, mnist)
            path = folder / f"{name}.onnx"
            zonnx.export(model, mnist[0][:2], path)
            with zg.no_grad():
                probs = F.softmax(model(zg.Tensor(mnist[0]))).data
            cache[name] = (model, path, probs)
        return cache[name]

    return get


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _session(model) -> ort.InferenceSession:
    """An ONNX Runtime session on a file path or serialized bytes."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def _newest_ort_opset() -> int:
    """The newest opset that both the onnx package and ONNX Runtime accept."""
    for opset in range(zonnx.max_opset(), zonnx.MIN_OPSET - 1, -1):
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        opsets = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = helper.find_min_ir_version_for(opsets)
        try:
            _session(model.SerializeToString())
            return opset
        except Exception:  # this runtime does not know the opset yet
            continue
    raise AssertionError("ONNX Runtime accepts no opset from 13 on")


# --- export ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_export_matches_onnxruntime_at_batch_1000_and_1(name, exported, mnist):
    model, path, probs = exported(name)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = _session(path)
    x = mnist[0]
    got = _softmax(session.run(None, {"input": x})[0])
    assert got.shape == (1000, 10)
    assert np.abs(got - probs).max() <= TOL
    assert (got.argmax(1) == probs.argmax(1)).all()
    singles = np.concatenate([session.run(None, {"input": x[i : i + 1]})[0] for i in range(1000)])
    assert np.abs(_softmax(singles) - probs).max() <= TOL


def test_exported_graphs_use_the_expected_operators(exported):
    ops = {name: [n.op_type for n in onnx.load(str(exported(name)[1])).graph.node] for name in MODELS}
    assert ops["book-ch3"] == ["Flatten", "Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm"]
    assert ops["mlp-bn-dropout"] == ["Flatten", "Gemm", "BatchNormalization", "Relu", "Gemm", "BatchNormalization",
                                     "Relu", "Gemm"]  # dropout is the identity at inference: no node
    assert ops["simple-cnn"] == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]
    assert ops["deep-cnn"].count("Conv") == 6 and ops["deep-cnn"].count("MaxPool") == 3
    # ResNet-8: conv1, then a block per stage (two 3x3 convolutions; stages 2 and 3 a 1x1 projection too)
    block = ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization"]
    projection = ["Conv", "BatchNormalization"]
    assert ops["resnet"] == ["Conv", "BatchNormalization", "Relu", *block, "Add", "Relu",
                             *block, *projection, "Add", "Relu", *block, *projection, "Add", "Relu",
                             "GlobalAveragePool", "Flatten", "Gemm"]
    graph = onnx.load(str(exported("mlp")[1])).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == [1, 28, 28]
    assert {i.name for i in graph.initializer} == set(exported("mlp")[0].state_dict())  # weights by state_dict key


def test_two_layer_net_exports_its_relu_as_its_own_node(mnist, tmp_path):
    """TwoLayerNet runs fc1 and its ReLU as one node (as nn.Sequential does); the exported graph has both layers."""
    from zerograd.models import TwoLayerNet

    model = TwoLayerNet(784, 20, 10, weight_init_std="he", seed=0)
    zonnx.export(model, mnist[0][:2], tmp_path / "two.onnx")
    assert [n.op_type for n in onnx.load(str(tmp_path / "two.onnx")).graph.node] == ["Flatten", "Gemm", "Relu", "Gemm"]
    with zg.no_grad():
        logits = model(zg.Tensor(mnist[0][:100])).data
    out = _session(tmp_path / "two.onnx").run(None, {"input": mnist[0][:100]})[0]
    np.testing.assert_allclose(out, logits, rtol=1e-5, atol=1e-5)


def test_export_covers_the_other_layers_and_opsets(mnist, tmp_path):
    """LeakyReLU, Tanh, AvgPool2d with padding, BatchNorm2d, Softmax, Linear on 3-D input, arithmetic."""
    gen = np.random.default_rng(1)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1, generator=gen), nn.BatchNorm2d(6), nn.LeakyReLU(0.2),
                          nn.AvgPool2d(3, stride=2, padding=1), nn.Conv2d(6, 4, 3, stride=2, bias=False, generator=gen),
                          nn.Tanh(), nn.MaxPool2d(2, padding=1), nn.Flatten(), nn.Linear(64, 10, generator=gen),
                          nn.Softmax(dim=1))
    model.train()
    model(zg.Tensor(mnist[2][:200]))  # running statistics away from 0 and 1
    model.eval()

    class Rows(nn.Module):  # Linear on (N, 28, 28): each image row through the same weights
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28, 5, generator=2)

        def forward(self, x):
            y = self.fc(x.reshape(x.shape[0], 28, 28)) * 2 - 1
            return F.sigmoid(y.transpose(1, 2).reshape(x.shape[0], -1) / 3)

    x = mnist[0][:300]
    for net in (model, Rows()):
        with zg.no_grad():
            want = net(zg.Tensor(x)).data
        for opset in (13, 17, _newest_ort_opset()):
            path = tmp_path / f"net-{opset}.onnx"
            zonnx.export(net, x[:2], path, opset=opset)
            assert onnx.load(str(path)).opset_import[0].version == opset
            assert np.abs(_session(path).run(None, {"input": x})[0] - want).max() <= TOL
            with zg.no_grad():
                assert np.abs(zonnx.load(path)(x).data - want).max() <= TOL


@pytest.mark.parametrize("size, ops", [(1, ["GlobalAveragePool"]), ((3, 2), ["AveragePool"]),
                                       ((5, None), ["Constant", "Constant", "MatMul", "MatMul"])])
def test_adaptive_avg_pool_exports_at_every_output_size(size, ops, tmp_path):
    """1x1 is GlobalAveragePool, windows tiling the image an AveragePool, uneven ones forward's averaging matrices."""
    model = nn.Sequential(nn.Conv2d(2, 3, 3, generator=0), nn.AdaptiveAvgPool2d(size), nn.Flatten())
    x = np.random.default_rng(3).standard_normal((6, 2, 14, 10)).astype(np.float32)  # pooled from 12x8
    with zg.no_grad():
        want = model(zg.Tensor(x)).data
    for opset in (13, _newest_ort_opset()):
        path = tmp_path / f"pool-{opset}.onnx"
        zonnx.export(model, x[:2], path, opset=opset)
        assert [n.op_type for n in onnx.load(str(path)).graph.node] == ["Conv", *ops, "Flatten"]
        assert np.abs(_session(path).run(None, {"input": x})[0] - want).max() <= TOL
        with zg.no_grad():
            assert np.abs(zonnx.load(path)(x).data - want).max() <= TOL


def test_cli_export_of_a_resnet_model_file(capsys, tmp_path, exported, mnist):
    model = exported("resnet")[0]
    save_model(model, tmp_path / "resnet.safetensors")
    code, out, _ = _run(capsys, "export", str(tmp_path / "resnet.safetensors"), str(tmp_path / "resnet.onnx"))
    assert code == 0 and "opset 17" in out
    got = _softmax(_session(tmp_path / "resnet.onnx").run(None, {"input": mnist[0]})[0])
    assert np.abs(got - exported("resnet")[2]).max() <= TOL


def test_export_names_an_operation_it_cannot_map(tmp_path):
    class Peak(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3, generator=0)

        def forward(self, x):
            return self.fc(x).max(axis=1)

    with pytest.raises(zonnx.OnnxError, match="cannot map the operation Max"):
        zonnx.export(Peak(), np.ones((2, 4), np.float32), tmp_path / "peak.onnx")
    assert not (tmp_path / "peak.onnx").exists()
    with pytest.raises(zonnx.OnnxError, match="opset must be a whole number from 13"):
        zonnx.export(Peak(), np.ones((2, 4), np.float32), tmp_path / "old.onnx", opset=11)


def test_export_leaves_the_model_in_training_mode_when_it_was(mnist, tmp_path):
    model = MLP(784, (16,), 10, dropout=0.5, seed=0)
    assert model.training
    zonnx.export(model, mnist[0][:2], tmp_path / "m.onnx")
    assert all(m.training for m in model.modules())


# --- import ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_round_trip_gives_the_same_parameters_and_outputs(name, exported, mnist):
    model, path, probs = exported(name)
    imported = zonnx.load(path)
    assert not imported.training
    original, back = model.state_dict(), imported.state_dict()
    assert list(back) == list(original)
    for key in original:
        assert np.array_equal(back[key], original[key]), key
    if name != "resnet":  # a Sequential: the same layers in the same order
        assert [type(m).__name__ for m in imported.children()] == [
            type(m).__name__ for m in model.children() if not isinstance(m, nn.Dropout)]
    # every layer with weights comes back as the same kind of layer at the same path ("layer2.0.downsample.0")
    weighted = {path: type(m).__name__ for path, m in model.named_modules() if m._parameters}
    assert {path: type(m).__name__ for path, m in imported.named_modules() if m._parameters} == weighted
    x = mnist[0][:200]  # the 1,000-image comparison with ONNX Runtime is the export test's
    with zg.no_grad():
        got = F.softmax(imported(zg.Tensor(x))).data
    assert np.abs(got - probs[:200]).max() <= 1e-6
    ort_probs = _softmax(_session(path).run(None, {"input": x})[0])
    assert np.abs(got - ort_probs).max() <= TOL


def _foreign_model(opset: int) -> onnx.ModelProto:
    """A graph as another framework might write it: Gemm variants, MatMul + Add, Conv pads, pooling, Reshape."""
    r = np.random.default_rng(7)

    def init(name, *shape, scale=0.3):
        return numpy_helper.from_array((r.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("conv.w", 4, 1, 3, 3), init("conv.b", 4), init("bn.scale", 4), init("bn.bias", 4), init("bn.mean", 4),
        numpy_helper.from_array(r.uniform(0.5, 2.0, 4).astype(np.float32), "bn.var"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"),
        init("gemm.w", 196, 32, scale=0.05), init("gemm.c", 1, 32),
        init("mm.w", 32, 16, scale=0.2), init("mm.b", 16),
        init("out.w", 10, 16), init("out.b", 10),
        numpy_helper.from_array(np.array(0.25, np.float32), "ratio"),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "conv.w", "conv.b"], ["c"], name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b"], name="/bn/BN",
          epsilon=1e-3),
        n("LeakyRelu", ["b"], ["l"], alpha=0.05),
        n("MaxPool", ["l"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        n("AveragePool", ["p"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
        n("Reshape", ["a", "flat_shape"], ["f"]),
        n("Gemm", ["f", "gemm.w", "gemm.c"], ["g"], alpha=0.5, beta=2.0),  # W (in, out): transB=0
        n("Tanh", ["g"], ["h"]),
        n("Dropout", ["h", "ratio"], ["d"]),
        n("MatMul", ["d", "mm.w"], ["m"]),
        n("Add", ["m", "mm.b"], ["s0"]),
        n("Sigmoid", ["s0"], ["s"]),
        n("Identity", ["s"], ["i"]),
        n("Gemm", ["i", "out.w", "out.b"], ["o"], transB=1),
        n("Flatten", ["o"], ["z"], axis=1),
        n("Softmax", ["z"], ["y"], axis=1),
    ]
    graph = helper.make_graph(nodes, "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], initializer=inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="elsewhere")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("opset", [13, 17, "newest"])
def test_import_of_a_foreign_graph_matches_onnxruntime(opset, mnist, tmp_path):
    opset = _newest_ort_opset() if opset == "newest" else opset
    proto = _foreign_model(opset)
    path = tmp_path / "foreign.onnx"
    onnx.save(proto, str(path))
    model = zonnx.load(path)
    assert model.opset == opset and model.producer == "elsewhere"
    x = mnist[0]
    want = _session(path).run(None, {"x": x})[0]
    with zg.no_grad():
        got = model(zg.Tensor(x)).data
    assert np.abs(got - want).max() <= TOL
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "Linear", "Dropout"} <= kinds
    assert dict(model.named_modules())["bn"].eps == pytest.approx(1e-3)
    with zg.no_grad():  # (N, 784) works too: reshaped to the declared (N, 1, 28, 28)
        assert np.abs(model(zg.Tensor(x[:10].reshape(10, 784))).data - want[:10]).max() <= TOL


def test_import_of_torch_style_shape_arithmetic(mnist):
    """x.view(x.size(0), -1) as PyTorch's exporter writes it: Shape, Gather, Unsqueeze, Concat, then Reshape."""
    r = np.random.default_rng(3)
    n = helper.make_node
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array((r.standard_normal((10, 784)) * 0.05).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")]
    nodes = [n("Shape", ["x"], ["shape"]), n("Gather", ["shape", "zero"], ["batch"], axis=0),
             n("Unsqueeze", ["batch", "axis0"], ["batch1"]), n("Concat", ["batch1", "minus1"], ["target"], axis=0),
             n("Reshape", ["x", "target"], ["flat"]), n("Gemm", ["flat", "fc.weight", "fc.bias"], ["z"], transB=1),
             n("Unsqueeze", ["z", "axis0"], ["z1"]), n("Squeeze", ["z1", "axis0"], ["y"])]
    graph = helper.make_graph(nodes, "view", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], initializer=inits)
    opsets = [helper.make_opsetid("", 13)]
    proto = helper.make_model(graph, opset_imports=opsets)
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    model = zonnx.load(proto)
    assert isinstance(dict(model.named_modules())["fc"], nn.Linear)
    session = _session(proto.SerializeToString())
    for batch in (1, 7):
        x = mnist[0][:batch]
        with zg.no_grad():
            assert np.abs(model(zg.Tensor(x)).data - session.run(None, {"x": x})[0]).max() <= TOL


def test_imported_model_trains_with_zerograd_optim(mnist, tmp_path):
    model = zonnx.load(_foreign_model(17))
    names = {name for name, _ in model.named_parameters()}
    # layers where the initializers' names say ("conv.w" -> conv), else named after the node
    assert names == {"conv.weight", "conv.bias", "bn.weight", "bn.bias", "gemm.weight", "gemm.bias", "mm.weight",
                     "Add_10.other", "out.weight", "out.bias"}
    x, t = mnist[2][:200], mnist[3][:200]
    model.train()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    before = model.state_dict()

    def loss_now():
        with zg.no_grad():
            model.eval()
            value = F.nll_loss(F.log(model(zg.Tensor(x))), t).item()
            model.train()
        return value

    start = loss_now()
    for _ in range(15):
        loss = F.nll_loss(F.log(model(zg.Tensor(x))), t)  # the graph ends in Softmax
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = loss_now()
    assert end < start - 0.3, (start, end)  # measured: 2.72 -> 2.22
    after = model.state_dict()
    assert not np.array_equal(after["gemm.weight"], before["gemm.weight"])  # the general Gemm (transB=0) learns too
    assert not np.array_equal(after["bn.running_mean"], before["bn.running_mean"])  # batch norm trains as a layer
    model.eval()  # fine-tuned, it exports again
    zonnx.export(model, x[:2], tmp_path / "tuned.onnx")
    with zg.no_grad():
        want = model(zg.Tensor(x)).data
    assert np.abs(_session(tmp_path / "tuned.onnx").run(None, {"input": x})[0] - want).max() <= TOL


def _with_node(node, extra_inits=(), opset=17):
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c", "d"])],
                              initializer=list(extra_inits))
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = helper.find_min_ir_version_for(opsets)
    return model


@pytest.mark.parametrize(
    "model, message",
    [
        (_with_node(helper.make_node("Erf", ["x"], ["y"])), "operators zerograd cannot import: Erf"),
        (_with_node(helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")), "ai.onnx.contrib::PyOp"),
        (_with_node(helper.make_node("Relu", ["x"], ["y"]), opset=11), "opset 11.*version_converter"),
        (_with_node(helper.make_node("Conv", ["x", "w"], ["y"], group=2),
                    [numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")]), "group=2"),
        (_with_node(helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], ceil_mode=1)), "ceil_mode=1"),
        (_with_node(helper.make_node("Relu", ["nowhere"], ["y"])), "not a valid ONNX model"),
    ],
)
def test_import_refuses_what_it_cannot_run_naming_it(model, message):
    with pytest.raises(zonnx.OnnxError, match=message):
        zonnx.load(model)


@pytest.mark.parametrize("content", [b"", b"not an onnx model\n", bytes(range(256)) * 4, b"\x08\x07\x12"])
def test_malformed_files_give_a_clear_error(content, tmp_path, exported):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(zonnx.OnnxError, match=r"bad\.onnx.*(not an ONNX file|holds no ONNX graph|not a valid)"):
        zonnx.load(path)
    truncated = exported("book-ch3")[1].read_bytes()
    path.write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(zonnx.OnnxError, match=r"bad\.onnx"):
        zonnx.load(path)
    with pytest.raises(zonnx.OnnxError, match="no such ONNX file"):
        zonnx.load(tmp_path / "missing.onnx")


def test_missing_extra_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(zg.ZerogradError, match=r'pip install "zerograd\[onnx\]"'):
        zonnx.load("model.onnx")


def test_import_zerograd_does_not_import_onnx():
    code = ("import sys, zerograd, zerograd.models, zerograd.cli; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'zerograd.onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the command line -----------------------------------------------------------------------------

def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_then_evaluate_and_predict_the_onnx_file(capsys, tmp_path, mnist):
    path = tmp_path / "book.onnx"
    code, out, _ = _run(capsys, "export", "pretrained:book-ch3", str(path), "--opset", "13")
    assert code == 0 and str(path) in out
    assert onnx.load(str(path)).opset_import[0].version == 13
    code, out, _ = _run(capsys, "evaluate", str(path), "--json")
    assert code == 0 and json.loads(out)["accuracy"] == 0.9352  # as the book's weights in zerograd
    digits = (mnist[0][:5, 0] * 255).astype(np.uint8)
    files = []
    for i, d in enumerate(digits):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(d).save(files[-1])
    code, out, _ = _run(capsys, "predict", str(path), *map(str, files), "--json")
    assert code == 0
    assert [r["label"] for r in json.loads(out)] == [int(v) for v in mnist[1][:5]]


def test_cli_export_of_a_book_pickle(capsys, tmp_path, book_weights, exported, mnist):
    path = tmp_path / "pickle.onnx"
    code, out, _ = _run(capsys, "export", str(book_weights), str(path), "--arch", "book-ch3")
    assert code == 0 and "opset 17" in out
    got = _softmax(_session(path).run(None, {"input": mnist[0]})[0])
    assert np.abs(got - exported("book-ch3")[2]).max() <= TOL  # the same network as pretrained:book-ch3


def test_cli_export_errors_are_one_line(capsys, tmp_path):
    code, _, err = _run(capsys, "export", "pretrained:book-ch3", str(tmp_path / "m.onnx"), "--opset", "9")
    assert code == 1 and "opset must be a whole number from 13" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "export", "pretrained:book-ch3", str(tmp_path))
    assert code == 1 and "is a folder" in err and len(err.strip().splitlines()) == 1
    code, _, _ = _run(capsys, "export", "pretrained:book-ch3", str(tmp_path / "new" / "m.onnx"))
    assert code == 0 and (tmp_path / "new" / "m.onnx").is_file()
    with pytest.raises(zonnx.OnnxError, match="does not exist"):
        zonnx.export(nn.ReLU(), np.ones((2, 3), np.float32), tmp_path / "missing" / "relu.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    code, _, err = _run(capsys, "evaluate", str(tmp_path / "junk.onnx"))
    assert code == 1 and "not an ONNX file" in err and len(err.strip().splitlines()) == 1


def test_fused_nodes_export_their_relu_and_pooling(tmp_path):
    """A model that calls the fused functions itself (tracing runs nn's layers one by one, so only such a model has
    these nodes): the ReLU and the max-pooling become ONNX nodes after the Conv and the Gemm."""
    from zerograd.functional.conv import conv2d_relu_max_pool2d
    from zerograd.functional.math import linear_relu

    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 3, 3, padding=1, generator=0), nn.Linear(3 * 4 * 4, 5, generator=1)

        def forward(self, x):
            h = conv2d_relu_max_pool2d(x, self.conv.weight, self.conv.bias, padding=1, pool=2)
            return linear_relu(h.reshape(len(h), -1), self.fc.weight, self.fc.bias)

    model = Fused()
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32)
    zonnx.export(model, x[:2], tmp_path / "fused.onnx")
    nodes = [(n.op_type, n.name) for n in onnx.load(str(tmp_path / "fused.onnx")).graph.node]
    assert nodes == [("Conv", "conv"), ("Relu", "conv/relu"), ("MaxPool", "conv/pool"), ("Flatten", "Flatten_3"),
                     ("Gemm", "fc"), ("Relu", "fc/relu")]  # named after the layer whose node computed them
    with zg.no_grad():
        expected = model(zg.Tensor(x)).data
    assert (expected == 0).any()
    out = _session(tmp_path / "fused.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
