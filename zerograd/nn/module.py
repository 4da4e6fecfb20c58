"""Parameter, Module and Sequential: the tree that replaces the book's dicts of 'W1', 'b1', ...

A Module registers what is assigned to it: Parameters (learned), sub-Modules (the tree) and
buffers (arrays that are state but not learned, such as BatchNorm's running statistics). Every
registered object also lives in the instance `__dict__`, so `self.weight` in `forward` is a plain
attribute lookup rather than PyTorch's `__getattr__` fallback: this is on the per-step path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import ZerogradError
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that a Module registers as learnable; requires_grad=True by default."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` skipped: missing = in the model only, unexpected = in the state only."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and networks: subclasses set attributes in `__init__` and define `forward`."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # --- registration --------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if params is None:
            if isinstance(value, (Parameter, Module)):
                raise ZerogradError(
                    f"cannot assign {type(value).__name__} '{name}' before Module.__init__(): "
                    f"call super().__init__() first in {type(self).__name__}.__init__"
                )
            object.__setattr__(self, name, value)
            return
        modules, buffers = d["_modules"], d["_buffers"]
        if isinstance(value, Parameter):
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise ZerogradError(
                    f"cannot assign {type(value).__name__} to parameter '{name}' of {type(self).__name__}: "
                    "assign a Parameter (or None), or change the values in place through .data"
                )
            params[name] = None
        elif name in modules:
            if value is not None:
                raise ZerogradError(
                    f"cannot assign {type(value).__name__} to submodule '{name}' of {type(self).__name__}: "
                    "assign a Module (or None)"
                )
            modules[name] = None
        elif name in buffers:
            buffers[name] = _check_buffer(name, value)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Registers `param` (or None, a declared but absent parameter such as bias=False) as `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise ZerogradError(
                f"register_parameter('{name}') needs a Parameter or None, got {type(param).__name__}: "
                "wrap the data in nn.Parameter(...)"
            )
        if "_parameters" not in self.__dict__:
            raise ZerogradError(f"call super().__init__() first in {type(self).__name__}.__init__")
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, array: np.ndarray | Tensor | None) -> None:
        """Registers an array or Tensor that is saved in state_dict but not learned (e.g. running statistics)."""
        if "_buffers" not in self.__dict__:
            raise ZerogradError(f"call super().__init__() first in {type(self).__name__}.__init__")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = _check_buffer(name, array)
        object.__setattr__(self, name, array)

    def add_module(self, name: str, module: Module | None) -> None:
        """Registers `module` as the child `name` (names such as "0" need not be identifiers)."""
        if module is not None and not isinstance(module, Module):
            raise ZerogradError(f"add_module('{name}') needs a Module, got {type(module).__name__}")
        if "_modules" not in self.__dict__:
            raise ZerogradError(f"call super().__init__() first in {type(self).__name__}.__init__")
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # --- walking the tree ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their attribute names."""
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        """Direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all below it, pre-order, with dotted names ("" for self); each once."""
        seen: set[int] = set()

        def walk(module: Module, path: str) -> Iterator[tuple[str, Module]]:
            if id(module) in seen:
                return
            seen.add(id(module))
            yield path, module
            for name, child in module.named_children():
                yield from walk(child, f"{path}.{name}" if path else name)

        yield from walk(self, prefix)

    def modules(self) -> Iterator[Module]:
        """This module and all below it, pre-order."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs such as ("0.weight", ...); a shared Parameter appears once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for path, module in modules:
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{path}.{name}" if path else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every learnable Parameter, each once: what an optimizer takes."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) pairs of the buffers, such as ("1.running_mean", ...)."""
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for path, module in modules:
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{path}.{name}" if path else name), b

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        """Every buffer array (the arrays themselves, not copies)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self) -> int:
        """Number of scalars in all parameters, frozen ones included (each shared Parameter counted once)."""
        return sum(p.data.size for p in self.parameters())

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Calls fn(module) on this module and every module below it (e.g. to re-initialise); returns self."""
        for m in list(self.modules()):
            fn(m)
        return self

    # --- modes, gradients, dtype ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Sets training mode (Dropout drops, BatchNorm uses batch statistics) here and below; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Sets evaluation mode (Dropout is identity, BatchNorm uses running statistics); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Sets every parameter's .grad to None (new arrays come with the next backward), or to zeros in place."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freezes (False) or unfreezes every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any) -> Module:
        """Converts floating-point parameters and buffers to `dtype` (before making an optimizer); returns self."""
        if isinstance(dtype, str) and dtype.split(":")[0] == "cpu":  # PyTorch's model.to(device): all is on the CPU
            return self
        if isinstance(dtype, str) and dtype not in np.sctypeDict:
            raise ZerogradError(f"zerograd runs on the CPU only (NumPy): to('{dtype}') is not available, use 'cpu'")
        dtype = np.dtype(dtype)
        for p in self.parameters():
            if p.data.dtype.kind == "f" and p.data.dtype != dtype:
                p.data = p.data.astype(dtype)
                if p.grad is not None:
                    p.grad = p.grad.astype(dtype)
        for m in self.modules():
            for name, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    was_tensor = isinstance(getattr(m, name), Tensor)
                    m.register_buffer(name, Tensor(b.astype(dtype)) if was_tensor else b.astype(dtype))
        return self

    def float(self) -> Module:
        """Converts parameters and buffers to float32; returns self."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Converts parameters and buffers to float64 (for gradient checks); returns self."""
        return self.to(np.float64)

    # --- saving and loading --------------------------------------------------------------------
    def _state_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """name -> the live array of every parameter and buffer, in state_dict order (no copies)."""
        out: dict[str, np.ndarray] = {}
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p.data
        for name, b in self._buffers.items():
            if b is not None:
                out[prefix + name] = b
        for name, m in self._modules.items():
            if m is not None:
                out.update(m._state_arrays(f"{prefix}{name}."))
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers by dotted name, in registration order."""
        return {name: array.copy() for name, array in self._state_arrays().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copies arrays from `state_dict` into this module's parameters and buffers, in place.

        Nothing is changed unless every key fits: with strict=True, missing or unexpected keys raise
        ZerogradError; a shape or dtype-kind mismatch always raises. Returns the skipped keys.
        """
        targets = self._state_arrays()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        sources: dict[str, np.ndarray] = {}
        problems: list[str] = []
        for key, target in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            source = value.data if isinstance(value, Tensor) else np.asarray(value)
            if source.shape != target.shape:
                problems.append(f"{key}: shape {source.shape} in the state, {target.shape} in the model")
            elif not np.can_cast(source.dtype, target.dtype, "same_kind"):
                problems.append(f"{key}: dtype {source.dtype} in the state cannot become {target.dtype}")
            else:
                sources[key] = source
        if strict and (missing or unexpected):
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            hint = ""
            if strict and (missing or unexpected):
                hint = " (or pass strict=False to skip missing and unexpected keys)"
            raise ZerogradError(
                f"load_state_dict: the state does not fit {type(self).__name__}: " + "; ".join(problems)
                + f". Build the model with the same layers and sizes as the one saved{hint}"
            )
        for key, source in sources.items():
            np.copyto(targets[key], source, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    # --- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in repr (its constructor arguments)."""
        return ""

    def _repr_body(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): " + m._repr_body().replace("\n", "\n  ") for name, m in self.named_children()]
        head = type(self).__name__ + "("
        if len(lines) == 1 and not children:
            return head + lines[0] + ")"
        if not lines and not children:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines + children) + "\n)"

    def __repr__(self) -> str:
        body = self._repr_body()
        if not self._parameters and not self._modules:
            return body  # a parameter-free leaf such as ReLU(): a count of 0 says nothing
        return f"{body}\nTotal parameters: {self.num_parameters():,}"


def _check_buffer(name: str, value: Any) -> np.ndarray | None:
    """The array a buffer holds: the value itself, or a Tensor's data (the attribute keeps the Tensor)."""
    if isinstance(value, Tensor):
        return value.data
    if value is not None and not isinstance(value, np.ndarray):
        raise ZerogradError(
            f"buffer '{name}' must be a Tensor, a NumPy array or None, got {type(value).__name__}: "
            "buffers hold arrays such as running statistics"
        )
    return value


# Runs of layers that Sequential runs as one node, by the type of their first layer: the types of the layers that
# follow it, and the method of the first that runs them all, called with the input and the other layers; longest
# first, as the first that matches wins (see fused_run). nn.layers registers Linear + ReLU, Conv2d + ReLU and
# Conv2d + ReLU + MaxPool2d.
FUSED_LAYERS: dict[type, list[tuple[tuple[type, ...], str]]] = {}


def register_fused(first: type, followers: tuple[type, ...], method: str) -> None:
    """Let Sequential run a `first` layer and the layers of types `followers` right after it as one node: the first
    layer's `method`, called as method(x, *the other layers), must give the same numbers as the layers in turn."""
    runs = FUSED_LAYERS.setdefault(first, [])
    runs[:] = sorted([r for r in runs if r[0] != followers] + [(followers, method)], key=lambda r: -len(r[0]))


def fused_run(layers: Sequence[Module], start: int = 0) -> tuple[Callable[..., Any], int] | None:
    """The run of FUSED_LAYERS that layers[start:] begins with: (the method of layers[start] that runs it as one
    node, called as method(x, *the run's other layers); the run's length), or None. Exact types only (a subclass may
    change forward), and only while no layer of the run has a forward of its own set on the instance (as the ONNX
    exporter's tracing does)."""
    first = layers[start]
    for followers, name in FUSED_LAYERS.get(type(first), ()):
        run = layers[start + 1 : start + 1 + len(followers)]
        if tuple(map(type, run)) == followers and all("forward" not in m.__dict__ for m in (first, *run)):
            return getattr(first, name), 1 + len(run)
    return None


class Sequential(Module):
    """Modules applied one after another: Sequential(Linear(784, 100), ReLU(), Linear(100, 10)).

    A Linear or a Conv2d directly followed by a ReLU runs as one operation (nn.Linear.forward_relu,
    nn.Conv2d.forward_relu), and a Conv2d and a ReLU with a MaxPool2d after them whose windows tile the image do too
    (nn.Conv2d.forward_relu_max_pool2d): the same numbers as the layers one after the other, with fewer nodes, fewer
    passes over the activations and fewer parallel regions (see functional.conv.Conv2d); the model's graph then shows
    one "Linear + ReLU", "Conv2d + ReLU" or "Conv2d + ReLU + MaxPool2d" node.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():  # Sequential({"fc1": ..., "relu1": ...}) names the layers
                self.add_module(str(name), m)
        else:
            for m in modules:
                self.append(m)

    def append(self, module: Module) -> Sequential:
        """Adds `module` at the end, named by its index; returns self."""
        if not isinstance(module, Module):
            hint = "wrap it in a Module"
            if isinstance(module, (list, tuple)):
                hint = "pass the layers unpacked, Sequential(*layers)"
            raise ZerogradError(f"Sequential holds Modules, got {type(module).__name__}: {hint}")
        self.add_module(str(len(self._modules)), module)
        return self

    def forward(self, x: Any) -> Any:
        """x through every module in order (a run of layers in FUSED_LAYERS as one operation)."""
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            if (run := fused_run(modules, i)) is None:
                x = modules[i](x)
                i += 1
            else:
                method, length = run
                x = method(x, *modules[i + 1 : i + length])
                i += length
        return x

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(dict(items[index]))
        try:
            return items[index][1]
        except IndexError:
            raise IndexError(f"Sequential index {index} out of range for {len(items)} modules") from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))
