"""ResNet-20 (He et al. 2016, CIFAR variant): architecture, initialisation, gradients, model files, `zerograd train`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import zerograd as zg
from zerograd import nn
from zerograd.cli import main
from zerograd.datasets import load_mnist, write_idx
from zerograd.errors import ModelFileError, ZerogradError
from zerograd.io import load_model_file
from zerograd.models import BasicBlock, ResNet, build_model, check_config_fits, load_model, save_model
from zerograd.models.resnet import resnet_state_size
from zerograd.training import TrainConfig, train
from zerograd.training.config import InvalidSetting


@pytest.fixture(scope="module")
def digits14(tmp_path_factory):
    """An IDX folder of MNIST digits shrunk to 14x14 (2x2 means): 2,000 for training, 500 for testing."""
    folder = tmp_path_factory.mktemp("digits14")
    (x, t), (xt, tt) = load_mnist(normalize=False, flatten=False)

    def shrink(images):
        return images[:, 0].reshape(len(images), 14, 2, 14, 2).mean(axis=(2, 4)).round().astype(np.uint8)

    write_idx(folder / "train-images-idx3-ubyte", shrink(x[:2000]))
    write_idx(folder / "train-labels-idx1-ubyte", t[:2000].astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", shrink(xt[:500]))
    write_idx(folder / "t10k-labels-idx1-ubyte", tt[:500].astype(np.uint8))
    return folder


# --- the architecture ------------------------------------------------------------------------------

def test_resnet20_is_the_papers_cifar_network():
    model = ResNet(seed=0)
    assert model.num_parameters() == 272_474  # 0.27 M; with option A's parameter-free shortcuts it would be 269,722
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m.kernel_size == (3, 3) for m in convs) == 19 and sum(m.kernel_size == (1, 1) for m in convs) == 2
    assert all(m.bias is None for m in convs)  # batch norm follows every convolution
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 21
    for stage, channels in ((1, 16), (2, 32), (3, 64)):
        blocks = list(getattr(model, f"layer{stage}"))
        assert len(blocks) == 3 and all(isinstance(b, BasicBlock) for b in blocks)
        assert [b.conv1.stride for b in blocks] == [(1, 1) if stage == 1 else (2, 2), (1, 1), (1, 1)]
        assert all(b.conv2.weight.shape == (channels, channels, 3, 3) for b in blocks)
        # the shortcut: identity while the shape stays, a strided 1x1 convolution and batch norm where it changes
        assert [b.downsample is None for b in blocks] == [stage == 1, True, True]
    projection = model.layer2[0].downsample
    assert (projection[0].weight.shape, projection[0].stride) == ((32, 16, 1, 1), (2, 2))
    assert isinstance(projection[1], nn.BatchNorm2d)
    assert model.avgpool.output_size == (1, 1) and model.fc.weight.shape == (10, 64)
    # torchvision's names, so that its state dicts' keys read the same
    assert list(model.state_dict())[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                            "bn1.running_var", "layer1.0.conv1.weight"]
    assert "layer3.0.downsample.0.weight" in model.state_dict()
    assert model.config == {"arch": "resnet", "input_shape": [3, 32, 32], "num_classes": 10, "depth": 20, "width": 16}
    assert model(zg.Tensor(np.zeros((2, 3, 32, 32), np.float32))).shape == (2, 10)


@pytest.mark.parametrize("shape, classes, depth, width", [((1, 28, 28), 10, 20, 16), ((3, 8, 8), 2, 8, 4),
                                                          ((3, 9, 13), 100, 14, 6), ((1, 5, 5), 3, 32, 2)])
def test_resnet_sizes_itself_to_the_data(shape, classes, depth, width):
    model = ResNet(shape, classes, depth=depth, width=width, seed=1)
    n = (depth - 2) // 6
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 3 * n
    x = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    assert model(zg.Tensor(x)).shape == (3, classes)
    assert model.layer3[-1].conv2.weight.shape == (4 * width, 4 * width, 3, 3)
    state = model.state_dict()
    assert resnet_state_size(shape[0], classes, depth, width) == sum(v.size for v in state.values())


def test_resnet_refuses_sizes_it_cannot_build():
    for depth in (7, 9, 2, 21):
        with pytest.raises(ZerogradError, match=rf"^resnet: depth must be 6n \+ 2 .* got {depth}$"):
            ResNet(depth=depth)
    with pytest.raises(ZerogradError, match="width must be at least 1"):
        ResNet(width=0)
    with pytest.raises(ZerogradError, match="input_shape must be"):
        ResNet((28, 28))


def test_he_initialisation_with_fan_out_and_seeds():
    model = ResNet(seed=3)
    w = model.layer3[1].conv1.weight.data  # fan_out = 64 * 3 * 3
    assert w.std() == pytest.approx(math.sqrt(2 / 576), rel=0.02) and abs(w.mean()) < 0.002
    assert model.layer2[0].downsample[0].weight.data.std() == pytest.approx(math.sqrt(2 / 32), rel=0.1)
    bn = model.layer1[0].bn1
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()
    again, other = ResNet(seed=3).state_dict(), ResNet(seed=4).state_dict()
    for key, value in model.state_dict().items():
        assert np.array_equal(value, again[key]), key
    assert not np.array_equal(model.conv1.weight.data, other["conv1.weight"])
    zg.manual_seed(5)
    first = ResNet().state_dict()
    zg.manual_seed(5)
    assert all(np.array_equal(v, first[k]) for k, v in ResNet().state_dict().items())  # seed=None: zerograd's generator


def test_resnet_computes_what_pytorch_computes():
    """ResNet-8 (width 2) in float64: logits in training and then in eval mode, and a running variance, as PyTorch 2.13
    computed them with the same weights (the same network written with torch.nn, loaded with this state_dict)."""
    model = ResNet((3, 8, 8), 3, depth=8, width=2, seed=0).double()
    x = zg.Tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)))
    torch_train = [[-1.180929710336713, -1.4231166152114223, 2.663562775951192],
                   [0.1881898954776552, -0.950753534865805, 0.9877273049296316],
                   [0.46075702109726496, -1.4009155209120543, 1.3129152297958695],
                   [0.1819862068914616, -0.22746054758878254, 1.5289646734694375]]
    torch_eval = [[1.0712427822231982, -2.1308733402166027, 2.7142460156201125],
                  [1.625361906788164, -2.237807732576497, 2.278341896730672],
                  [1.9354990709668396, -3.2961068949506758, 2.517029193297799],
                  [1.165253209765024, -2.068165777830733, 1.713743907857738]]
    torch_running_var = [0.9373676835193403, 0.9295639447822026, 0.9269119466496412, 0.9229018309184496,
                         0.9369820924627285, 0.9266256682244706, 0.9186011559206638, 0.9265026828458225]
    np.testing.assert_allclose(model(x).data, torch_train, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.eval()(x).data, torch_eval, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.layer3[0].bn2.running_var, torch_running_var, rtol=1e-12)


# --- gradients ---------------------------------------------------------------------------------------

def _with_parameters(model: nn.Module):
    """fn(x, *parameters) running `model` with the given tensors as its parameters, and the parameters' arrays."""
    slots = [(module, name) for module in model.modules() for name, p in module._parameters.items() if p is not None]

    def fn(x, *params):
        for (module, name), p in zip(slots, params):
            object.__setattr__(module, name, p)  # forward reads the attribute: gradcheck's tensors are used
        return model(x)

    return fn, [getattr(module, name).data for module, name in slots]


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_resnet_gradients_match_central_differences(mode):
    """ResNet-8 in float64 on (2, 3, 8, 8): both shortcuts, batch norm with batch or running statistics."""
    model = ResNet((3, 8, 8), 3, depth=8, width=2, seed=0).double()
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # away from the identity at the start
            m.weight.data[:] = rng.uniform(0.5, 1.5, m.num_features)
            m.bias.data[:] = rng.standard_normal(m.num_features) * 0.5
            m.running_mean[:] = rng.standard_normal(m.num_features) * 0.2
            m.running_var[:] = rng.uniform(0.5, 2.0, m.num_features)
    getattr(model, mode)()
    fn, params = _with_parameters(model)
    assert len(params) == 1 + 2 + 6 * 3 + 3 * 2 + 2  # conv1, bn1, 3 blocks, 2 projections, fc
    x = rng.standard_normal((2, 3, 8, 8))
    result = zg.gradcheck(fn, x, *params)
    assert result.ok and result.max_abs_error < 1e-6


# --- model files -------------------------------------------------------------------------------------

def test_model_file_round_trip_and_hostile_configurations(tmp_path):
    model = ResNet((1, 14, 14), 4, depth=14, width=4, seed=2)
    model.train()
    model(zg.Tensor(np.random.default_rng(0).random((8, 1, 14, 14), dtype=np.float32)))  # running statistics move
    model.eval()
    save_model(model, tmp_path / "r.safetensors")
    loaded, meta = load_model(tmp_path / "r.safetensors")
    assert isinstance(loaded, ResNet) and meta["config"] == model.config and not loaded.training
    x = zg.Tensor(np.random.default_rng(1).random((5, 1, 14, 14), dtype=np.float32))
    with zg.no_grad():
        assert np.array_equal(loaded(x).data, model(x).data)
    assert isinstance(build_model(model.config), ResNet)
    state = model.state_dict()
    check_config_fits(model.config, state, "r.safetensors")  # exactly what the file holds
    huge = {**model.config, "depth": 6 * 10**9 + 2}  # closed form: no loop over ten billion blocks
    with pytest.raises(ModelFileError, match=r"describes a network of [\d,]+ weights but the file holds only"):
        check_config_fits(huge, state, "r.safetensors")
    with pytest.raises(ModelFileError, match="width must be a positive whole number"):
        check_config_fits({**model.config, "width": "16"}, state, "r.safetensors")


# --- zerograd train --model resnet ----------------------------------------------------------------

def test_train_settings_for_resnet():
    config = TrainConfig(model="resnet").validate()
    assert (config.batch_size, config.dropout, config.augment) == (128, 0.0, False)  # the paper's batch of 128
    assert TrainConfig(model="resnet", batchnorm=True, dropout=0.0).validate().batchnorm  # a no-op: it has BN
    for flags, named in (({"hidden": "64"}, "--hidden"), ({"dropout": 0.3}, "--dropout"),
                         ({"activation": "tanh"}, "--activation"), ({"init": "xavier"}, "--init")):
        with pytest.raises(InvalidSetting, match=f"^{named} set\\(s\\) the mlp's layers; --model resnet has fixed "
                                                 "layers: drop the flag or use --model mlp$"):
            TrainConfig(model="resnet", **flags).validate()


def test_train_resnet_from_the_command_and_from_python(digits14, tmp_path, capsys):
    """20 iterations: the command and train() end with the same weights; the model file predicts as the model did."""
    out = tmp_path / "cli" / "model.safetensors"
    code = main(["train", "--model", "resnet", "--iterations", "20", "--seed", "0", "--data", str(digits14),
                 "--out", str(out), "--quiet", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["iterations"] == 20 and printed["epochs"] == 2  # 16 batches of 128 per epoch
    result = train(TrainConfig(model="resnet", iterations=20, seed=0, data=str(digits14),
                               out=str(tmp_path / "api" / "model.safetensors")))
    assert result.config.batch_size == 128 and result.results["test_accuracy"] == printed["test_accuracy"]
    cli_arrays, cli_meta = load_model_file(out)
    api_arrays, _ = load_model_file(result.model_path)
    assert sorted(cli_arrays) == sorted(api_arrays)
    assert all(cli_arrays[k].tobytes() == api_arrays[k].tobytes() for k in cli_arrays)
    assert cli_meta["config"] == {"arch": "resnet", "input_shape": [1, 14, 14], "num_classes": 10, "depth": 20,
                                  "width": 16}
    loaded, _ = load_model(out)
    x = zg.Tensor(np.random.default_rng(2).random((50, 1, 14, 14), dtype=np.float32))
    result.model.eval()
    with zg.no_grad():
        assert np.array_equal(loaded(x).data, result.model(x).data)


def test_resnet_learns_small_digits(digits14, tmp_path, capsys):
    """ResNet-20 from `zerograd train` on 2,000 14x14 digits: 2 epochs of batch 32 (126 Adam steps)."""
    code = main(["train", "--model", "resnet", "--epochs", "2", "--batch-size", "32", "--seed", "0",
                 "--data", str(digits14), "--out", str(tmp_path / "m.safetensors"), "--quiet", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["iterations"] == 126 and result["test_accuracy"] >= 0.9  # measured 0.912 on the 500 test digits
