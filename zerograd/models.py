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
        rng = np.random.default_rng(seed)
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
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(input_size, hidden_size, generator=rng, init=weight_init_std)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden_size, output_size, generator=rng, init=weight_init_std)
        self.config = {
            "arch": "two-layer", "input_size": input_size, "hidden_size": hidden_size,
            "output_size": output_size, "activation": activation, "weight_init_std": weight_init_std,
        }

    def forward(self, x: Tensor) -> Tensor:
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


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "book-ch3": book_ch3,
    "two-layer": TwoLayerNet,
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


BOOK_ARCHS = {"book-ch3": (book_ch3, load_book_ch3_weights)}
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
        return _book_model(name, load_pretrained_arrays(name)), {"kind": "model", "config": {"arch": name}}
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
    model = build_model(meta["config"])
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
