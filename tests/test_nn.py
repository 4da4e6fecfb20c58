"""Tests for zerograd.nn: Module registration, state_dict, modes, repr, init, layers and their gradients."""

import copy

import numpy as np
import pytest

import zerograd.functional as F
from zerograd import Tensor, gradcheck, nn
from zerograd.errors import ShapeError, ZerogradError
from zerograd.nn import init
from zerograd.numerical import numerical_gradient


def mlp(seed: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 100, generator=seed), nn.ReLU(), nn.Linear(100, 10, generator=seed + 1))


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8, generator=0)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 3, generator=1)
        self.scale = 2.0  # a plain attribute: not registered

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x)))) * self.scale


# --- Parameter and registration ------------------------------------------------------------------

def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf and p.dtype == np.float32
    assert not nn.Parameter([1.0], requires_grad=False).requires_grad
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32  # Python floats become float32, as for Tensor
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_named_parameters_use_dotted_names_in_registration_order():
    seq = mlp()
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    net = TwoLayer()
    assert [n for n, _ in net.named_parameters()] == [
        "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias",
    ]
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var"]
    assert [n for n, _ in net.named_children()] == ["fc1", "bn", "fc2"]
    assert list(net.children()) == [net.fc1, net.bn, net.fc2]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "fc2"]
    assert len(list(net.modules())) == 4
    assert [p.shape for p in net.parameters()] == [(8, 4), (8,), (8,), (8,), (3, 8), (3,)]
    assert all(b.dtype == np.float32 for b in net.buffers())
    assert "scale" not in dict(net.named_parameters())


def test_weight_shapes_follow_pytorch():
    layer = nn.Linear(3, 5)
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    assert layer.weight.dtype == np.float32 and np.all(layer.bias.data == 0)


def test_shared_parameters_are_listed_and_counted_once():
    a = nn.Linear(3, 3, generator=0)
    net = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(net.parameters())) == 2
    assert net.num_parameters() == 12
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as PyTorch: both names


def test_linear_without_bias_registers_none():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    out = layer(np.ones((4, 3), dtype=np.float32))
    np.testing.assert_allclose(out.data, np.ones((4, 3)) @ layer.weight.data.T, rtol=1e-6)


def test_reassigning_and_deleting_attributes_keeps_registries_in_step():
    net = TwoLayer()
    net.fc1 = nn.Linear(4, 8)  # replace a submodule
    net.extra = nn.Parameter(np.zeros(2, dtype=np.float32))
    assert "extra" in dict(net.named_parameters())
    del net.extra
    assert "extra" not in dict(net.named_parameters())
    net.fc2 = None
    assert [n for n, _ in net.named_children()] == ["fc1", "bn"]
    with pytest.raises(ZerogradError, match="assign a Parameter"):
        net.fc1.weight = Tensor(np.zeros((8, 4), dtype=np.float32))
    with pytest.raises(ZerogradError, match="NumPy array"):
        net.bn.running_mean = [0.0] * 8
    net.bn.running_mean = np.ones(8, dtype=np.float32)  # a buffer may be replaced by an array
    assert dict(net.named_buffers())["bn.running_mean"] is net.bn.running_mean


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(ZerogradError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_sequential_indexing_len_iteration_append_and_names():
    seq = mlp()
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2]
    assert list(seq) == [seq[0], seq[1], seq[2]]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Softmax())
    assert len(seq) == 4 and "3" in dict(seq.named_children())
    with pytest.raises(IndexError):
        seq[10]
    with pytest.raises(ZerogradError, match="Modules"):
        seq.append(F.relu)
    named = nn.Sequential({"fc1": nn.Linear(2, 3), "act": nn.ReLU(), "fc2": nn.Linear(3, 1)})
    assert [n for n, _ in named.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_forward_of_mlp_matches_numpy():
    seq = mlp()
    x = np.random.default_rng(0).standard_normal((5, 784)).astype(np.float32)
    w1, b1, w2, b2 = (p.data for p in seq.parameters())
    expected = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(seq(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ShapeError, match="last dimension must be 784"):
        seq(Tensor(np.zeros((5, 28, 28), dtype=np.float32)))


def test_zero_grad_sets_grads_to_none():
    seq = mlp()
    F.cross_entropy(seq(np.ones((2, 784), dtype=np.float32)), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in seq.parameters())
    seq.zero_grad()
    assert all(p.grad is None for p in seq.parameters())


def test_requires_grad_and_dtype_conversion():
    net = TwoLayer()
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_(True).double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(b.dtype == np.float64 for b in net.buffers())
    assert net.bn.running_var.dtype == np.float64  # the attribute follows the registry
    assert net.float().fc1.weight.dtype == np.float32


def test_apply_visits_every_module():
    net = TwoLayer()
    net.apply(lambda m: init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert np.all(net.fc1.weight.data == 0) and np.all(net.fc2.weight.data == 0)


def test_deepcopy_gives_an_independent_model():
    net = TwoLayer()
    clone = copy.deepcopy(net)
    clone.fc1.weight.data += 1
    assert not np.array_equal(clone.fc1.weight.data, net.fc1.weight.data)
    assert dict(clone.named_parameters())["fc1.weight"] is clone.fc1.weight


# --- state_dict ------------------------------------------------------------------------------------

def test_state_dict_holds_copies_of_parameters_and_buffers():
    net = TwoLayer()
    state = net.state_dict()
    assert list(state) == [
        "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
        "fc2.weight", "fc2.bias",
    ]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["fc1.weight"][...] = 0
    assert not np.all(net.fc1.weight.data == 0)


def test_state_dict_round_trip_is_exact():
    source, target = TwoLayer(), TwoLayer()
    target.fc1 = nn.Linear(4, 8, generator=99)
    x = Tensor(np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32))
    source(x)  # train mode: moves the running statistics away from 0 and 1
    arrays_before = [p.data for p in target.parameters()]
    target.load_state_dict(source.state_dict())
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    # copied into the existing arrays: optimizers and views holding them stay valid
    assert all(p.data is a for p, a in zip(target.parameters(), arrays_before))
    source.eval(), target.eval()
    assert np.array_equal(source(x).data, target(x).data)


def test_load_state_dict_reports_missing_unexpected_and_mismatched_keys():
    net = TwoLayer()
    state = net.state_dict()
    before = net.fc2.weight.data.copy()
    bad = dict(state)
    del bad["bn.running_var"]
    bad["fc3.weight"] = np.zeros((3, 8), dtype=np.float32)
    bad["fc1.bias"] = np.zeros(7, dtype=np.float32)
    bad["fc2.weight"] = before + 1
    with pytest.raises(ZerogradError) as info:
        net.load_state_dict(bad)
    message = str(info.value)
    assert "missing keys: bn.running_var" in message
    assert "unexpected keys: fc3.weight" in message
    assert "fc1.bias: shape (7,) in the state, (8,) in the model" in message
    assert "strict=False" in message
    assert np.array_equal(net.fc2.weight.data, before)  # all or nothing: nothing was copied


def test_load_state_dict_strict_false_skips_keys_but_not_shape_errors():
    net = TwoLayer()
    partial = {"fc1.weight": np.ones((8, 4)), "other": np.zeros(1)}  # float64 is cast to float32
    result = net.load_state_dict(partial, strict=False)
    assert result.unexpected_keys == ["other"] and "fc2.bias" in result.missing_keys
    assert np.all(net.fc1.weight.data == 1) and net.fc1.weight.dtype == np.float32
    with pytest.raises(ZerogradError, match="shape"):
        net.load_state_dict({"fc1.weight": np.ones((4, 8))}, strict=False)
    with pytest.raises(ZerogradError, match="dtype"):
        net.load_state_dict({**net.state_dict(), "fc1.bias": np.array(["a"] * 8)})


# --- repr ------------------------------------------------------------------------------------------

def test_repr_shows_the_architecture_and_the_parameter_count():
    assert repr(mlp()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=100, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=100, out_features=10, bias=True)\n"
        ")\n"
        "Total parameters: 79,510"
    )
    assert mlp().num_parameters() == 79_510


def test_repr_nests_and_counts_only_at_the_top():
    text = repr(nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.Tanh()), nn.Dropout(0.25), nn.BatchNorm1d(3)))
    assert text.count("Total parameters") == 1 and text.endswith("Total parameters: 15")
    assert "  (0): Sequential(\n    (0): Linear(in_features=2, out_features=3, bias=True)\n    (1): Tanh()\n  )" in text
    assert "(1): Dropout(p=0.25)" in text and "(2): BatchNorm1d(3, eps=1e-05, momentum=0.1)" in text
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert "TwoLayer(\n  (fc1): Linear" in repr(TwoLayer())


# --- init ------------------------------------------------------------------------------------------

def test_he_init_has_std_sqrt_2_over_fan_in():
    w = init.kaiming_normal_(np.empty((1000, 1000), dtype=np.float32), generator=0)
    assert abs(w.std() / np.sqrt(2 / 1000) - 1) < 0.02 and abs(w.mean()) < 1e-3
    layer = nn.Linear(1000, 1000, generator=0)  # He is Linear's default
    assert abs(layer.weight.data.std() / np.sqrt(2 / 1000) - 1) < 0.02


@pytest.mark.parametrize("fill, expected_std", [
    (lambda w: init.lecun_normal_(w, generator=1), np.sqrt(1 / 500)),
    (lambda w: init.xavier_normal_(w, generator=1), np.sqrt(2 / (500 + 400))),
    (lambda w: init.xavier_uniform_(w, generator=1), np.sqrt(2 / (500 + 400))),
    (lambda w: init.kaiming_uniform_(w, generator=1), np.sqrt(2 / 500)),
    (lambda w: init.kaiming_normal_(w, mode="fan_out", generator=1), np.sqrt(2 / 400)),
    (lambda w: init.kaiming_normal_(w, nonlinearity="tanh", generator=1), 5 / 3 / np.sqrt(500)),
    (lambda w: init.normal_(w, generator=1), 0.01),
    (lambda w: init.normal_(w, 0.5, mean=3.0, generator=1), 0.5),
])
def test_init_standard_deviations(fill, expected_std):
    w = np.empty((400, 500), dtype=np.float32)
    assert fill(w) is w
    assert abs(w.std() / expected_std - 1) < 0.02


def test_uniform_inits_respect_their_bounds():
    w = init.xavier_uniform_(np.empty((30, 50)), generator=0)
    bound = np.sqrt(6 / 80)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    u = init.uniform_(np.empty(10_000), -2.0, 3.0, generator=0)
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05


def test_fans_for_linear_and_conv_weights():
    assert init.fan_in_and_fan_out((10, 20)) == (20, 10)
    assert init.fan_in_and_fan_out((16, 3, 5, 5)) == (75, 400)
    w = init.kaiming_normal_(np.empty((64, 32, 3, 3), dtype=np.float32), generator=0)
    assert abs(w.std() / np.sqrt(2 / (32 * 9)) - 1) < 0.02
    with pytest.raises(ShapeError, match="zeros_"):
        init.kaiming_normal_(np.empty(5))


def test_init_fills_parameters_in_place_and_seeds_reproduce():
    p = nn.Parameter(np.empty((20, 30), dtype=np.float32))
    array = p.data
    init.kaiming_normal_(p, generator=5)
    assert p.data is array
    q = init.kaiming_normal_(np.empty((20, 30), dtype=np.float32), generator=np.random.default_rng(5))
    assert np.array_equal(p.data, q)
    assert np.all(init.zeros_(p).data == 0) and np.all(init.ones_(p).data == 1)
    assert np.all(init.constant_(np.empty(3), 0.5) == 0.5)
    f64 = init.normal_(np.empty((3, 4)), 1.0, generator=0)
    assert f64.dtype == np.float64
    strided = np.zeros((10, 10), dtype=np.float32)[:, ::2]  # not contiguous: filled through a copy
    init.normal_(strided, 1.0, generator=0)
    assert np.all(strided != 0)


def test_linear_init_argument_follows_the_books_weight_init_std():
    def std(init_arg):
        return nn.Linear(800, 600, generator=0, init=init_arg).weight.data.std()

    assert abs(std("he") / np.sqrt(2 / 800) - 1) < 0.02
    assert abs(std("relu") / np.sqrt(2 / 800) - 1) < 0.02
    assert abs(std("xavier") / np.sqrt(1 / 800) - 1) < 0.02  # the book's Xavier
    assert abs(std("sigmoid") / np.sqrt(1 / 800) - 1) < 0.02
    assert abs(std("glorot") / np.sqrt(2 / 1400) - 1) < 0.02  # PyTorch's Xavier
    assert abs(std("normal") / 0.01 - 1) < 0.02
    assert abs(std(0.05) / 0.05 - 1) < 0.02
    assert np.array_equal(nn.Linear(3, 4, generator=7).weight.data, nn.Linear(3, 4, generator=7).weight.data)
    for bad in ("uniform", -1.0, True):
        with pytest.raises(ZerogradError, match="init"):
            nn.Linear(3, 4, init=bad)


def test_init_rejects_integer_arrays_and_unknown_nonlinearities():
    with pytest.raises(ZerogradError, match="floating-point"):
        init.zeros_(np.zeros(3, dtype=np.int64))
    with pytest.raises(ZerogradError, match="nonlinearity"):
        init.kaiming_normal_(np.empty((3, 3)), nonlinearity="swish")
    assert init.calculate_gain("leaky_relu", 0.0) == pytest.approx(np.sqrt(2))


# --- Dropout ---------------------------------------------------------------------------------------

def test_dropout_zeroes_about_half_and_scales_the_rest_by_two():
    drop = nn.Dropout(0.5, generator=0)
    x = np.random.default_rng(1).uniform(1, 2, size=(200, 500)).astype(np.float32)
    y = drop(Tensor(x)).data
    kept = y != 0
    assert 0.49 < kept.mean() < 0.51
    np.testing.assert_array_equal(y[kept], 2 * x[kept])
    assert y.dtype == np.float32


def test_dropout_is_identity_in_eval_and_reproducible_with_a_seed():
    x = Tensor(np.ones((50, 40), dtype=np.float32))
    assert nn.Dropout(0.5).eval()(x) is x
    a, b = nn.Dropout(0.3, generator=42), nn.Dropout(0.3, generator=42)
    first = a(x).data
    assert np.array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)  # the generator moves on between calls
    with pytest.raises(ZerogradError, match=r"\[0, 1\)"):
        nn.Dropout(1.0)


def test_dropout_gradient_is_the_mask():
    drop = nn.Dropout(0.5, generator=3)
    x = Tensor(np.ones((4, 6), dtype=np.float32), requires_grad=True)
    y = drop(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.data)  # both are mask / (1 - p)


# --- BatchNorm -------------------------------------------------------------------------------------

def test_batchnorm1d_training_matches_the_formula_and_updates_running_stats():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(5, momentum=0.2)
    bn.weight.data[:] = rng.uniform(0.5, 2, 5)
    bn.bias.data[:] = rng.standard_normal(5)
    x = (rng.standard_normal((32, 5)) * 3 + 1).astype(np.float32)
    out = bn(Tensor(x)).data
    mean, var = x.mean(axis=0), x.var(axis=0)
    expected = (x - mean) / np.sqrt(var + 1e-5) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * x.var(axis=0, ddof=1), rtol=1e-5)
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32


def test_batchnorm1d_eval_uses_running_stats_and_leaves_them_alone():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm1d(4)
    for _ in range(3):
        bn(Tensor(rng.standard_normal((16, 4)).astype(np.float32) + 2))
    bn.eval()
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    expected = (x - mean) / np.sqrt(var + 1e-5) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(bn(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(bn.running_mean, mean) and np.array_equal(bn.running_var, var)
    bn(Tensor(x[:1]))  # one sample is fine in eval mode


def test_batchnorm_shape_errors_name_the_fix():
    with pytest.raises(ShapeError, match="C=4"):
        nn.BatchNorm1d(4)(Tensor(np.zeros((8, 5), dtype=np.float32)))
    with pytest.raises(ShapeError, match="eval"):
        nn.BatchNorm1d(4)(Tensor(np.zeros((1, 4), dtype=np.float32)))


def test_batchnorm2d_normalises_per_channel():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(np.float32)
    out = nn.BatchNorm2d(3)(Tensor(x)).data
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)


def test_train_and_eval_switch_every_submodule():
    net = nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Sequential(nn.Dropout(0.5)))
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = Tensor(np.random.default_rng(0).standard_normal((10, 6)).astype(np.float32))
    assert np.array_equal(net(x).data, net(x).data)  # eval: deterministic, no stat updates
    net.train()
    assert all(m.training for m in net.modules())
    assert not np.array_equal(net(x).data, net(x).data)  # train: dropout draws new masks


# --- gradients against numerical differentiation ---------------------------------------------------

def test_gradcheck_sequential_with_batchnorm_in_training_mode():
    model = nn.Sequential(
        nn.Linear(4, 6, generator=0), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3, generator=1), nn.Softmax(),
    ).double()
    model[1].weight.data[:] = np.random.default_rng(2).uniform(0.5, 1.5, 6)
    model[1].bias.data[:] = np.random.default_rng(3).standard_normal(6)
    x = np.random.default_rng(4).standard_normal((8, 4))
    assert model.training
    assert gradcheck(lambda t: model(t), x).ok  # gradient with respect to the input

    # gradients with respect to every parameter, against central differences
    v = np.random.default_rng(5).standard_normal((8, 3))
    xt = Tensor(x)
    model.zero_grad()
    (model(xt) * Tensor(v)).sum().backward()
    params = list(model.parameters())
    numeric = numerical_gradient(lambda _: float((model(xt).data * v).sum()), [p.data for p in params], h=1e-6)
    for (name, p), expected in zip(model.named_parameters(), numeric):
        np.testing.assert_allclose(p.grad, expected, rtol=1e-5, atol=1e-8, err_msg=name)


def test_gradcheck_activation_layers():
    x = np.random.default_rng(0).standard_normal((3, 4))
    for layer in (nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.Softmax(dim=0), nn.Identity()):
        assert gradcheck(lambda t, layer=layer: layer(t) * 1.0, x).ok, layer
    flat = nn.Flatten()
    assert flat(Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 60)
    assert nn.Flatten(start_dim=2)(Tensor(np.zeros((2, 3, 4, 5)))).shape == (2, 3, 20)


def test_identity_takes_and_ignores_arguments_as_pytorchs():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    for layer in (nn.Identity(), nn.Identity(64), nn.Identity(3, affine=False)):
        assert layer(x) is x and repr(layer) == "Identity()" and not list(layer.parameters())


def test_adaptive_avg_pool2d_layer_sizes_any_image_to_its_output():
    pool = nn.AdaptiveAvgPool2d(1)
    assert repr(pool) == "AdaptiveAvgPool2d(output_size=(1, 1))" and not list(pool.parameters())
    for h, w in ((8, 8), (5, 11), (1, 1)):
        x = np.random.default_rng(h).standard_normal((2, 3, h, w)).astype(np.float32)
        out = pool(Tensor(x))
        assert out.shape == (2, 3, 1, 1)
        np.testing.assert_allclose(out.data[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-6)
    assert nn.AdaptiveAvgPool2d((2, None))(Tensor(np.zeros((1, 4, 6, 5)))).shape == (1, 4, 2, 5)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 7))
    assert gradcheck(lambda t: nn.AdaptiveAvgPool2d((3, 2))(t), x).ok
