"""Ready-made networks: the MLPs of the book's chapters 3-6, built from nn modules, and their configs.

Every model carries `config`, a JSON-able dict from which `build_model` rebuilds the same
architecture: a model file stores it beside the weights, so loading needs no other flag.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import functional as F
from . import nn
from .errors import ModelFileError, ZerogradError
from .io import load_book_pickle, load_model_file, load_pretrained_arrays, save_model_file
from .numerical import numerical_gradient
from .tensor import Tensor, no_grad

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


class MLP(nn.Sequential):
    """Multi-layer perceptron (N, input_size) -> logits (N, num_classes).

    Each hidden layer is Linear -> [BatchNorm1d] -> activation -> [Dropout]. `init` "auto" picks
    He initialisation for ReLU-like activations and Xavier for sigmoid/tanh, as chapter 6 advises.
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden: Sequence[int] = (100, 100),
        num_classes: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        init: str | float = "auto",
        seed: int | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ZerogradError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if init == "auto":
            init = "he" if activation in ("relu", "leaky_relu") else "xavier"
        rng = None if seed is None else np.random.default_rng(seed)  # None: the default generator
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [input_size, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers.append(nn.Linear(fan_in, fan_out, generator=rng, init=init))
            if batchnorm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout, generator=rng))
        layers.append(nn.Linear(sizes[-1], num_classes, generator=rng, init=init))
        super().__init__(*layers)
        self.config = {
            "arch": "mlp", "input_size": input_size, "hidden": list(hidden), "num_classes": num_classes,
            "activation": activation, "dropout": dropout, "batchnorm": batchnorm, "init": init,
        }


def book_ch3() -> MLP:
    """The book's chapter-3 network: 784 -> 50 -> 100 -> 10, sigmoid hidden layers."""
    model = MLP(784, (50, 100), 10, activation="sigmoid")
    model.config = {"arch": "book-ch3"}
    return model


def load_book_ch3_weights(model: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Loads the book's W1..W3 (in, out) and b1..b3 into `model` (a book_ch3 network)."""
    missing = [k for k in ("W1", "b1", "W2", "b2", "W3", "b3") if k not in arrays]
    if missing:
        raise ModelFileError(f"the book's chapter-3 weights need W1, b1, W2, b2, W3, b3; missing {', '.join(missing)}")
    state = model.state_dict()
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for i, name in enumerate(linears, start=1):
        # the book multiplies x @ W with W (in, out); nn.Linear keeps weight (out, in)
        state[f"{name}.weight"] = np.asarray(arrays[f"W{i}"], dtype=np.float32).T
        state[f"{name}.bias"] = np.asarray(arrays[f"b{i}"], dtype=np.float32)
    model.load_state_dict(state)
    return model


class TwoLayerNet(nn.Module):
    """The book's two-layer network of chapters 4-5: input -> hidden -> output, trained on logits.

    `numerical_gradient(x, t)` (chapter 4) and `gradient(x, t)` (chapter 5, backprop) return the
    gradients of the same loss as dicts keyed by parameter name, so the two can be compared.
    """

    def __init__(
        self, input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
        activation: str = "relu", weight_init_std: float | str = 0.01, seed: int | None = None,
    ) -> None:
        super().__init__()
        rng = None if seed is None else np.random.default_rng(seed)  # None: the default generator
        self.fc1 = nn.Linear(input_size, hidden_size, generator=rng, init=weight_init_std)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden_size, output_size, generator=rng, init=weight_init_std)
        self.config = {
            "arch": "two-layer", "input_size": input_size, "hidden_size": hidden_size,
            "output_size": output_size, "activation": activation, "weight_init_std": weight_init_std,
        }

    def forward(self, x: Tensor) -> Tensor:
        """(N, input_size), or images (N, C, H, W) flattened first -> logits (N, output_size)."""
        if x.ndim > 2:
            x = x.reshape(len(x), -1)
        return self.fc2(self.act(self.fc1(x)))

    def loss(self, x: Any, t: Any) -> Tensor:
        """Mean cross-entropy of softmax(forward(x)) against labels or one-hot t."""
        return F.cross_entropy(self(Tensor(x) if not isinstance(x, Tensor) else x), t)

    def accuracy(self, x: Any, t: Any) -> float:
        """Fraction of rows whose largest logit is the label."""
        with no_grad():
            y = self(Tensor(x)).data.argmax(axis=1)
        t = np.asarray(t)
        return float((y == (t.argmax(axis=1) if t.ndim == 2 else t)).mean())

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) by central differences (slow: two forward passes per weight)."""
        with no_grad():
            return {
                name: numerical_gradient(lambda _: self.loss(x, t).item(), p.data)
                for name, p in self.named_parameters()
            }

    def gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) by backpropagation."""
        self.zero_grad()
        self.loss(x, t).backward()
        return {name: p.grad for name, p in self.named_parameters()}


def _conv_out(size: int, kernel: int, padding: int, stride: int = 1) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class SimpleConvNet(nn.Sequential):
    """The book's chapter-7 SimpleConvNet: (N, C, H, W) images -> logits (N, num_classes).

    conv (30 filters 5x5, stride 1, pad 0) -> [BatchNorm2d] -> ReLU -> max-pool 2x2 stride 2 ->
    Linear (30*12*12 = 4320 for 28x28 digits) -> 100 -> ReLU -> Linear 100 -> num_classes.
    He initialisation throughout (the book uses std 0.01).
    """

    def __init__(
        self, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, filters: int = 30,
        kernel_size: int = 5, hidden: int = 100, batchnorm: bool = False, seed: int | None = None,
    ) -> None:
        channels, height, width = input_shape
        rng = None if seed is None else np.random.default_rng(seed)
        pooled = [_conv_out(_conv_out(n, kernel_size, 0), 2, 0, 2) for n in (height, width)]
        if min(pooled) < 1:
            raise ZerogradError(f"simple-cnn needs images of at least {kernel_size + 1}x{kernel_size + 1} pixels, "
                                f"got {height}x{width}")
        layers: list[nn.Module] = [nn.Conv2d(channels, filters, kernel_size, generator=rng)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(filters))
        layers += [
            nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(filters * pooled[0] * pooled[1], hidden, generator=rng), nn.ReLU(),
            nn.Linear(hidden, num_classes, generator=rng),
        ]
        super().__init__(*layers)
        self.config = {
            "arch": "simple-cnn", "input_shape": [channels, height, width], "num_classes": num_classes,
            "filters": filters, "kernel_size": kernel_size, "hidden": hidden, "batchnorm": batchnorm,
        }


class DeepConvNet(nn.Sequential):
    """The book's chapter-8 DeepConvNet: (N, C, H, W) images -> logits (N, num_classes).

    [conv 3x3 -> ReLU -> conv 3x3 -> ReLU -> max-pool 2x2] x 3 with channels 16,16 / 32,32 / 64,64 and
    paddings 1,1 / 1,2 / 1,1, then Linear (1024 for 28x28) -> 50 -> ReLU -> Dropout -> Linear 50 ->
    num_classes -> Dropout, as in the book. `batchnorm` adds BatchNorm2d after each convolution.
    Dropout here is inverted (scaled in training); the book's scales at inference (see load_book_deep_cnn).
    """

    CHANNELS = (16, 16, 32, 32, 64, 64)
    PADDINGS = (1, 1, 1, 2, 1, 1)

    def __init__(
        self, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, hidden: int = 50,
        dropout: float = 0.5, batchnorm: bool = False, seed: int | None = None,
    ) -> None:
        channels, height, width = input_shape
        rng = None if seed is None else np.random.default_rng(seed)
        layers: list[nn.Module] = []
        size = [height, width]
        for i, (out, pad) in enumerate(zip(self.CHANNELS, self.PADDINGS)):
            layers.append(nn.Conv2d(channels, out, 3, padding=pad, generator=rng))
            if batchnorm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            size = [_conv_out(n, 3, pad) for n in size]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2, 2))
                size = [_conv_out(n, 2, 0, 2) for n in size]
            if min(size) < 1:
                raise ZerogradError(f"deep-cnn needs images of at least 8x8 pixels, got {height}x{width}")
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * size[0] * size[1], hidden, generator=rng), nn.ReLU(),
                   nn.Dropout(dropout, generator=rng), nn.Linear(hidden, num_classes, generator=rng),
                   nn.Dropout(dropout, generator=rng)]
        super().__init__(*layers)
        self.config = {
            "arch": "deep-cnn", "input_shape": [input_shape[0], height, width], "num_classes": num_classes,
            "hidden": hidden, "dropout": dropout, "batchnorm": batchnorm,
        }


def _book_arrays(arrays: dict[str, np.ndarray], count: int, what: str) -> None:
    names = [f"{p}{i}" for i in range(1, count + 1) for p in ("W", "b")]
    missing = [k for k in names if k not in arrays]
    if missing:
        raise ModelFileError(f"the book's {what} weights need {', '.join(names)}; missing {', '.join(missing)}: "
                             "is this the right --arch?")


def _load_book_layers(model: nn.Module, arrays: dict[str, np.ndarray], what: str,
                      scale: dict[str, float] | None = None) -> nn.Module:
    """Loads the book's W1.., b1.. into model's Conv2d and Linear layers in order (Linear W is (in, out))."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    _book_arrays(arrays, len(layers), what)
    state = model.state_dict()
    for i, (name, layer) in enumerate(layers, start=1):
        w, b = np.asarray(arrays[f"W{i}"]), np.asarray(arrays[f"b{i}"])
        w = w.T if isinstance(layer, nn.Linear) else w
        factor = (scale or {}).get(f"W{i}", 1.0)
        if tuple(w.shape) != tuple(layer.weight.shape) or b.shape != (w.shape[0],):
            raise ModelFileError(f"the book's {what} W{i} {np.shape(arrays[f'W{i}'])} / b{i} {b.shape} do not fit "
                                 f"layer {name} (weight {layer.weight.shape}): is this the right --arch?")
        state[f"{name}.weight"] = (w * factor).astype(np.float32)
        state[f"{name}.bias"] = (b * (scale or {}).get(f"b{i}", 1.0)).astype(np.float32)
    model.load_state_dict(state)
    return model


def load_book_simple_cnn(model: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Loads the book's chapter-7 params.pkl (W1 conv (30,1,5,5), W2 (4320,100), W3 (100,10)) into a SimpleConvNet."""
    return _load_book_layers(model, arrays, "SimpleConvNet")


def load_book_deep_cnn(model: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Loads the book's chapter-8 deep_convnet_params.pkl (W1..W6 conv, W7 (1024,50), W8 (50,10)) into a DeepConvNet.

    The book's dropout multiplies by 1 - 0.5 at inference, after the hidden layer and after the output;
    ours is the identity at inference, so those factors are folded into the last layer:
    W8 * 0.5 * 0.5 and b8 * 0.5 (powers of two: the scaling itself is exact).
    """
    return _load_book_layers(model, arrays, "DeepConvNet", scale={"W8": 0.25, "b8": 0.5})


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "book-ch3": book_ch3,
    "two-layer": TwoLayerNet,
    "simple-cnn": SimpleConvNet,
    "deep-cnn": DeepConvNet,
}


def build_model(config: dict[str, Any]) -> nn.Module:
    """Rebuilds an untrained model from its `config` dict (as stored in a model file)."""
    config = dict(config)
    arch = config.pop("arch", None)
    if not isinstance(arch, str) or arch not in ARCHITECTURES:  # a file may hold any JSON there
        known = ", ".join(ARCHITECTURES)
        raise ModelFileError(f"unknown architecture {reprlib.repr(arch)}: this zerograd knows {known}")
    try:
        return ARCHITECTURES[arch](**config)
    except (TypeError, ValueError, OverflowError) as err:
        # reprlib: a configuration read from a file may be megabytes long; the message stays one short line.
        raise ModelFileError(
            f"the {arch} configuration {reprlib.repr(config)} does not fit this zerograd: {err}"
        ) from err


def _whole(value: Any, what: str) -> int:
    """`value` if it is a positive whole number (not a bool), else ModelFileError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelFileError(f"the model configuration's {what} must be a positive whole number, "
                             f"got {reprlib.repr(value)}; the file is damaged or was not written by zerograd")
    return value


def _weight_count(config: dict[str, Any]) -> int | None:
    """Number of weights the model of `config` holds, from the config alone (None: no formula for its arch).

    Computed on Python ints, without building anything: a file must not make zerograd allocate
    a network it cannot hold the weights of.
    """
    arch = config.get("arch")
    if arch == "mlp":
        hidden = config.get("hidden", (100, 100))
        if not isinstance(hidden, (list, tuple)):
            raise ModelFileError(f"the model configuration's hidden must be a list of layer sizes, "
                                 f"got {reprlib.repr(hidden)}")
        sizes = [_whole(config.get("input_size", 784), "input_size"),
                 *(_whole(h, "hidden layer size") for h in hidden),
                 _whole(config.get("num_classes", 10), "num_classes")]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if arch == "two-layer":
        sizes = [_whole(config.get(k, d), k) for k, d in
                 (("input_size", 784), ("hidden_size", 50), ("output_size", 10))]
        return sizes[0] * sizes[1] + sizes[1] * sizes[2]
    if arch in ("simple-cnn", "deep-cnn"):
        shape = config.get("input_shape", (1, 28, 28))
        if not isinstance(shape, (list, tuple)) or len(shape) != 3:
            raise ModelFileError(f"the model configuration's input_shape must be [channels, height, width], "
                                 f"got {reprlib.repr(shape)}")
        channels, height, width = (_whole(d, "input_shape entry") for d in shape)
        hidden = _whole(config.get("hidden", 100 if arch == "simple-cnn" else 50), "hidden")
        classes = _whole(config.get("num_classes", 10), "num_classes")
        if arch == "simple-cnn":
            filters = _whole(config.get("filters", 30), "filters")
            k = _whole(config.get("kernel_size", 5), "kernel_size")
            pooled = [max(_conv_out(_conv_out(n, k, 0), 2, 0, 2), 0) for n in (height, width)]
            return filters * channels * k * k + filters * pooled[0] * pooled[1] * hidden + hidden * classes
        convs, size = 0, [height, width]
        for i, (out, pad) in enumerate(zip(DeepConvNet.CHANNELS, DeepConvNet.PADDINGS)):
            convs, channels = convs + out * channels * 9, out
            size = [max(_conv_out(n, 3, pad), 0) for n in size]
            if i % 2 == 1:
                size = [max(_conv_out(n, 2, 0, 2), 0) for n in size]
        return convs + channels * size[0] * size[1] * hidden + hidden * classes
    return None


def check_config_fits(config: dict[str, Any], state: dict[str, np.ndarray], where: str) -> None:
    """Refuse a configuration that describes more weights than the file's `state` holds, before building it."""
    held = sum(int(np.asarray(v).size) for v in state.values())
    needed = _weight_count(config)
    what = "a network of {:,} weights"
    if needed is None:  # no formula for this architecture: bound every size it names instead
        needed, what = max(_ints(config), default=0), "a layer size of {:,}"
    if needed > held:
        raise ModelFileError(
            f"{where}: its configuration describes {what.format(needed)} but the file holds "
            f"only {held:,} values; the file is damaged or was not written by zerograd"
        )


def _ints(obj: Any) -> list[int]:
    """Every integer inside a JSON value (iteratively: a hostile file may nest deeply)."""
    found, stack = [], [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            found.append(item)
    return found


def input_size(model: nn.Module) -> int:
    """Number of input features the model's first Linear layer expects."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m.weight.shape[1]
    raise ZerogradError("model has no Linear layer, its input size is unknown")


def input_shape(model: nn.Module) -> tuple[int, ...]:
    """Shape of one input the model expects: (C, H, W) for the CNNs, (features,) for the MLPs."""
    config = getattr(model, "config", None) or {}
    if "input_shape" in config:
        return tuple(config["input_shape"])
    return (input_size(model),)


def check_input(model: nn.Module, x: np.ndarray, data: str) -> np.ndarray:
    """x (N, ...) reshaped to what `model` takes, or a ZerogradError naming both sizes."""
    shape = input_shape(model)
    if len(shape) == 1 and int(np.prod(x.shape[1:])) == shape[0]:
        return x  # an MLP flattens whatever image shape it gets
    if tuple(x.shape[1:]) != shape:
        wanted = f"{shape[0]} input features" if len(shape) == 1 else f"images of shape {shape}"
        raise ZerogradError(
            f"the model expects {wanted} but {data} has inputs of shape {tuple(x.shape[1:])} "
            f"({int(np.prod(x.shape[1:]))} values): use data of the size it was trained on"
        )
    return x


BOOK_ARCHS = {
    "book-ch3": (book_ch3, load_book_ch3_weights),
    "simple-cnn": (SimpleConvNet, load_book_simple_cnn),
    "deep-cnn": (DeepConvNet, load_book_deep_cnn),
}
# The book's weights shipped as npz (zerograd/pretrained/NAME.npz) and the test accuracy the book gives them.
BOOK_PRETRAINED_ACCURACY = {"book-ch3": 0.9352}
# Models trained with `zerograd train`, shipped as zerograd/pretrained/NAME.safetensors (README: how each was made).
PRETRAINED_MODELS = {
    "mlp": "the default MLP 784-256-128-10 (ReLU)",
    "simple-cnn": "the book's SimpleConvNet (chapter 7)",
    "deep-cnn": "the book's DeepConvNet (chapter 8)",
}


def list_pretrained() -> list[str]:
    """Names usable as `pretrained:NAME` (and with load_pretrained)."""
    return [*BOOK_PRETRAINED_ACCURACY, *PRETRAINED_MODELS]


def load_pretrained(name: str) -> nn.Module:
    """A pretrained model shipped with zerograd, in eval mode: "book-ch3", "mlp", "simple-cnn" or "deep-cnn"."""
    return load_model(f"pretrained:{name}")[0]


CHECKPOINT_MODEL_PREFIX = "model."  # a training checkpoint keeps the model's weights under this prefix


def checkpoint_model_state(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's state_dict out of a training checkpoint's arrays."""
    n = len(CHECKPOINT_MODEL_PREFIX)
    return {k[n:]: v for k, v in arrays.items() if k.startswith(CHECKPOINT_MODEL_PREFIX)}


def save_model(model: nn.Module, path: str | Path, training: dict[str, Any] | None = None) -> None:
    """Writes weights and config (plus optional training settings/results) to a safetensors file."""
    config = getattr(model, "config", None)
    if config is None:
        raise ZerogradError("save_model needs a model with a .config (built by zerograd.models); "
                            "for other modules save model.state_dict() with zerograd.io.save_model_file")
    save_model_file(path, model.state_dict(), {"kind": "model", "config": config, "training": training or {}})


def load_model(spec: str | Path, arch: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A ready model and its metadata from a model file, "pretrained:NAME", or a book pickle with `arch`.

    Model files (.safetensors) carry their architecture; the book's pickles need `arch`
    (e.g. "book-ch3") since they hold only arrays.
    """
    spec = str(spec)
    if spec.startswith("pretrained:"):
        name = spec.split(":", 1)[1]
        if name in BOOK_PRETRAINED_ACCURACY:
            results = {"test_accuracy": BOOK_PRETRAINED_ACCURACY[name]}
            model = _book_model(name, load_pretrained_arrays(name))
            return model, {"kind": "model", "config": {"arch": name}, "training": {"results": results}}
        if name not in PRETRAINED_MODELS:
            raise ModelFileError(f"no pretrained model named {name!r}; available: {', '.join(list_pretrained())}")
        from importlib.resources import as_file, files

        with as_file(files("zerograd").joinpath("pretrained", f"{name}.safetensors")) as path:
            if not path.is_file():
                raise ModelFileError(f"the pretrained file zerograd/pretrained/{name}.safetensors is missing "
                                     "from this installation; reinstall zerograd")
            return load_model(path)
    if spec.lower().endswith(".onnx"):
        from .onnx import load_model_onnx  # imported only for .onnx files: the onnx extra stays optional

        return load_model_onnx(spec)
    if arch is not None and arch != "auto":
        if arch not in BOOK_ARCHS:
            raise ZerogradError(f"unknown --arch {arch!r}: the book's networks here are {', '.join(BOOK_ARCHS)}")
        return _book_model(arch, load_book_pickle(spec)), {"kind": "model", "config": {"arch": arch}}
    if spec.endswith(".pkl"):
        raise ModelFileError(f"{spec} is a pickle of bare arrays: say which network it holds, e.g. --arch book-ch3")
    state, meta = load_model_file(spec)
    if "config" not in meta or not isinstance(meta["config"], dict):
        raise ModelFileError(f"{spec} holds no model configuration: it was not written by zerograd.save_model")
    if meta.get("kind") == "checkpoint":
        state = checkpoint_model_state(state)
    check_config_fits(meta["config"], state, spec)
    try:
        model = build_model(meta["config"])
    except ZerogradError as err:  # an activation or init this zerograd lacks: name the file it came from
        raise ModelFileError(f"{spec}: {err}") from err
    try:
        model.load_state_dict(state)
    except ZerogradError as err:
        raise ModelFileError(f"{spec}: the weights do not fit its architecture: {err}") from err
    model.eval()
    return model, meta


def _book_model(name: str, arrays: dict[str, np.ndarray]) -> nn.Module:
    if name not in BOOK_ARCHS:
        raise ZerogradError(f"unknown network {name!r}: known are {', '.join(BOOK_ARCHS)}")
    build, load = BOOK_ARCHS[name]
    model = load(build(), arrays)
    model.eval()
    return model
