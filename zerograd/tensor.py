"""The computational graph: Tensor, Function, backward and the grad-mode switch.

A Tensor wraps a NumPy array. Calling a Function on tensors computes the result (define-by-run)
and, when some input needs a gradient, records the Function as the result's creator. `backward()`
walks those creators from the output back to the leaves in reverse order of creation (a valid
topological order: a result is always made after its inputs), asking each Function for the
gradients of its inputs. Operators and methods such as `+`, `@` and `x.sum()` are bound to Tensor by
`zerograd.functional.methods.bind`, beside the operations that keep their forward and backward side by
side; tensor.pyi declares them for type checkers and editors.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import ShapeError, ZerogradError


class _GradModeState(threading.local):
    """Is the graph being recorded? One answer per thread, as in PyTorch: a `no_grad()` in one thread (a
    server's inference) never changes what another (a training loop) records."""

    enabled = True  # the class attribute is what every thread sees until it changes its own: new threads record

    def __init__(self) -> None:
        self.saved: list[bool] = []  # the modes that the open no_grad/enable_grad blocks of this thread replaced


_grad_mode = _GradModeState()  # one object for the process, one value per thread


def is_grad_enabled() -> bool:
    """Whether operations in this thread currently record the graph."""
    return _grad_mode.enabled


class _GradMode(contextlib.ContextDecorator):
    """Sets this thread's grad mode inside a `with` block or a decorated function, restoring it afterwards.

    The mode it replaces is kept in the thread's own state, not on self: one `@no_grad()` function (one
    instance) may run in several threads at once, and blocks nest.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        state = _grad_mode
        state.saved.append(state.enabled)
        state.enabled = self.enabled

    def __exit__(self, *exc: Any) -> None:
        state = _grad_mode
        state.enabled = state.saved.pop()


def no_grad() -> _GradMode:
    """Context manager and decorator under which operations in this thread record nothing (inference, updates)."""
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Context manager and decorator that turns graph recording back on inside `no_grad` (in this thread)."""
    return _GradMode(True)


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Array for a Tensor: float32 for Python floats and lists; NumPy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    array = np.asarray(data)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


class Tensor:
    """An n-dimensional array that can remember how it was computed, for automatic gradients."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_version", "__weakref__")
    __array_priority__ = 1000  # so `ndarray + Tensor` calls Tensor.__radd__ instead of NumPy

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        self.data = _as_array(data, dtype)
        self.grad: np.ndarray | None = None
        self._ctx: Function | None = None  # the Function that produced this tensor; None for leaves
        self.name = name
        self._version = 0  # bumped by in-place updates (optimizer steps): backward checks it
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array: np.ndarray) -> Tensor:
        """Tensor around an array that is already right: the fast path used by Function.apply."""
        t = cls.__new__(cls)
        t.data, t.grad, t._ctx, t.name, t.requires_grad, t._version = array, None, None, None, False, 0
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Marks this leaf as needing a gradient (floating-point tensors only)."""
        if requires_grad and self.data.dtype.kind != "f":
            raise ZerogradError(
                f"only floating-point tensors can require gradients, this one is {self.data.dtype}: "
                "create it from float data or convert it with .float()"
            )
        self.requires_grad = requires_grad
        return self

    # --- array-like properties -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.data.dtype != np.float32:
            extra = f", dtype={self.data.dtype}" + extra
        return f"tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ZerogradError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous: use .any() or .all(), "
                "or compare one element"
            )
        return bool(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ZerogradError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut off from the graph."""
        return Tensor._wrap(self.data)

    # --- backpropagation -----------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulates d(self)/d(leaf) into `.grad` of every leaf that requires a gradient."""
        if not self.requires_grad:
            raise ZerogradError(
                "backward() called on a tensor that does not require a gradient: "
                "no input of its graph has requires_grad=True (or it was computed under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ZerogradError(
                    f"backward() without a gradient needs a scalar output, this one has shape {self.shape}: "
                    "reduce it first (e.g. .sum() or .mean()) or pass grad= of the same shape"
                )
            grad = np.ones(self.data.shape, self.data.dtype) if self.data.ndim else np.array(1, self.data.dtype)
        else:
            grad = _as_array(grad, self.data.dtype)
            if grad.shape != self.shape:
                raise ZerogradError(f"backward(): grad has shape {grad.shape}, the tensor has shape {self.shape}")
        if self._ctx is None:
            self.grad = np.array(grad) if self.grad is None else np.asarray(self.grad + grad)
            return
        # Every recorded Function has a sequence number, increasing in the order they ran, and a result is
        # always made after its inputs. So taking the pending Function with the highest number first visits
        # each one after all those that used its result (its gradient is complete), with no separate sort:
        # a heap of (-seq, Function). The gradient on its way to a Function waits on it (`pending`). This
        # loop runs once per operation of every training step; for the book's small networks its Python
        # overhead is a visible share of a step, hence the plain loops.
        handed_out = {id(grad)}  # arrays already used as some gradient: a leaf must not share them
        fn = _check_not_freed(self._ctx)
        fn.pending = grad  # the gradient summed so far for the Function's result
        heap = [(-fn.seq, fn)]
        try:
            while heap:
                fn = heapq.heappop(heap)[1]
                g, fn.pending = fn.pending, None
                inputs = fn.inputs
                for inp, version in zip(inputs, fn.input_versions):
                    if inp._version != version:
                        raise ZerogradError(
                            f"backward() through {type(fn).__name__}: an input it saved was modified in place "
                            "after the forward pass (e.g. by optimizer.step()); call backward() before step(), "
                            "or run the forward pass again"
                        )
                input_grads = fn.backward(g)
                if type(input_grads) is not tuple:
                    input_grads = (input_grads,)
                for inp, ig, needed in zip(inputs, input_grads, fn.needs_input_grad):
                    if ig is None or not needed:
                        continue
                    data = inp.data
                    if ig.shape != data.shape:
                        ig = _unbroadcast(ig, data.shape)
                    if ig.dtype is not data.dtype and ig.dtype != data.dtype:
                        ig = ig.astype(data.dtype)
                    ctx = inp._ctx
                    if ctx is not None:  # an intermediate result: sum what reaches it, pass it on later
                        handed_out.add(id(ig))
                        if ctx.pending is None:
                            ctx.pending = ig
                            heapq.heappush(heap, (-_check_not_freed(ctx).seq, ctx))
                        else:
                            ctx.pending = ctx.pending + ig
                    elif inp.grad is not None:
                        inp.grad = np.asarray(inp.grad + ig)  # 0-d sums are numpy scalars
                    else:
                        # the same (or a read-only or borrowed) array may be several inputs' gradient: each
                        # leaf gets its own, so scaling one .grad in place leaves the others alone
                        if id(ig) in handed_out or ig.base is not None or not ig.flags.writeable:
                            ig = np.array(ig)
                        inp.grad = ig
                        handed_out.add(id(ig))
                if not retain_graph:
                    fn.release()
        finally:  # after an error, nothing half-summed is left behind for a later backward()
            for _, fn in heap:
                fn.pending = None


def _check_not_freed(fn: Function) -> Function:
    if fn.inputs is None:
        raise ZerogradError(
            "backward() through a graph whose buffers were already freed by an earlier backward(): "
            "pass retain_graph=True to the first backward() to go through the graph twice"
        )
    return fn


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sums a broadcast gradient back down to the input's `shape`."""
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


_NO_GRAD = tuple((False,) * n for n in range(16))  # needs_input_grad when nothing is recorded
_sequence = itertools.count(1)  # numbers recorded Functions in the order they ran (see Tensor.backward)


class Function:
    """One differentiable operation: `forward` and `backward` on plain NumPy arrays.

    Subclasses implement `forward(*arrays, **params) -> array` and `backward(grad) -> grad or tuple`
    (one gradient per input, None where none is needed); they may keep on `self` what backward needs.
    `self.needs_input_grad` tells forward and backward which input gradients are wanted.
    """

    inputs: tuple[Tensor, ...] | None = None
    seq = 0  # the running number of a recorded Function: results always have higher ones than their inputs
    pending: np.ndarray | None = None  # during backward(): the gradient of the result summed so far
    input_versions: tuple[int, ...] = ()
    needs_input_grad: tuple[bool, ...] = ()

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | tuple[np.ndarray | None, ...]:
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Runs the operation on tensors, recording it in the graph when a gradient is needed."""
        fn = cls()
        # this runs for every operation: a list comprehension and `in` are the cheapest way in CPython
        record = _grad_mode.enabled and True in (needs := tuple([t.requires_grad for t in inputs]))
        fn.needs_input_grad = needs if record else _NO_GRAD[len(inputs)]
        try:
            out = fn.forward(*[t.data for t in inputs], **params)
        except ShapeError:
            raise
        except ValueError as err:
            shapes = ", ".join(str(t.shape) for t in inputs)
            raise ShapeError(f"{cls.__name__.lower()}: inputs of shapes {shapes} do not fit: {err}") from err
        if type(out) is not np.ndarray:
            out = np.asarray(out)  # ufuncs on 0-d arrays return numpy scalars
        result = Tensor._wrap(out)
        if record:
            fn.inputs = inputs
            fn.input_versions = tuple([t._version for t in inputs])
            fn.params = params  # the keyword settings (axis, stride, eps, ...): what ONNX export reads
            fn.seq = next(_sequence)
            result._ctx = fn
            result.requires_grad = True
        return result

    def release(self) -> None:
        """Drops the inputs and saved arrays, freeing memory once backward has used them."""
        self.__dict__.clear()
        self.inputs = None


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A Tensor holding a copy of `data`, as `torch.tensor` does (`Tensor(array)` shares the array)."""
    source = data.data if isinstance(data, Tensor) else data
    array = _as_array(source, dtype)
    if isinstance(source, np.ndarray) and np.shares_memory(array, source):
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def graph_nodes(root: Tensor) -> Iterator[tuple[Tensor, Function | None, Sequence[Tensor]]]:
    """Yields (tensor, creator, creator's inputs) for every tensor of root's graph, outputs first.

    The one walk of a recorded graph (viz and ONNX export read it; backward needs none, see Tensor.backward):
    each tensor once, leaves with creator None, a creator freed by backward() with no inputs.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:  # a stack, not recursion: graphs can be deeper than Python's recursion limit
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        fn = t._ctx
        inputs = fn.inputs if fn is not None and fn.inputs is not None else ()
        yield t, fn, inputs
        stack.extend(inputs)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Non-leaf tensors of root's graph, each before the inputs it was made from: newest first by their
    Functions' running numbers, the order backward() visits them in. Raises if backward() freed part of it."""
    nodes = [t for t, fn, _ in graph_nodes(root) if fn is not None]
    nodes.sort(key=lambda t: _check_not_freed(t._ctx).seq, reverse=True)  # release() also drops the number
    return nodes
