"""Optimizers (the book's chapter 6.1) with PyTorch's names, signatures and update formulas.

Every update works in place on `p.data` and on the optimizer's own state arrays. `p.grad` is only
read, never written: the same array may be the gradient of several tensors. Parameters whose grad
is None (unused in this step, or frozen) are skipped and their state does not advance.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import ZerogradError
from ..tensor import Tensor, enable_grad
from ..threads import batch_shards, parallel_map

ParamsLike = Iterable[Tensor] | Iterable[Mapping[str, Any]]


class Optimizer:
    """Base class: param_groups (dicts with "params" and hyperparameters), per-parameter state, step().

    A schedule or the user may change `group["lr"]` (or any hyperparameter) between steps.
    """

    def __init__(self, params: ParamsLike, defaults: Mapping[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}  # keyed by the Parameter object itself
        self.param_groups: list[dict[str, Any]] = []
        self._work: dict[np.dtype, np.ndarray] = {}  # see _scratch
        if isinstance(params, Tensor):
            raise ZerogradError(
                f"{type(self).__name__} takes an iterable of parameters, got a single Tensor: pass [tensor]"
            )
        params = list(params)
        if not params:
            raise ZerogradError(
                f"{type(self).__name__} got an empty parameter list: pass model.parameters() of a model "
                "that has parameters (a generator can only be used once)"
            )
        groups = params if isinstance(params[0], Mapping) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Adds a group of parameters with its own hyperparameters (missing ones take the defaults)."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise ZerogradError("a parameter group is a dict with a 'params' list and optional hyperparameters")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise ZerogradError(
                    f"{type(self).__name__} optimizes Tensors (such as model.parameters()), got {type(p).__name__}"
                )
            if not p.is_leaf:
                raise ZerogradError(
                    f"{type(self).__name__} can only optimize leaf tensors; this one was computed from others: "
                    "optimize the Parameters it came from"
                )
            if id(p) in seen:
                raise ZerogradError(
                    "a parameter appears more than once in the optimizer's groups: give each one to one group"
                )
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raises ZerogradError for an invalid value in `group`; subclasses extend it."""
        lr = group["lr"]
        _check(math.isfinite(lr) and lr >= 0, f"learning rate must be finite and >= 0, got {lr}")
        if "weight_decay" in group:
            _check(group["weight_decay"] >= 0, f"weight_decay must be >= 0, got {group['weight_decay']}")
        if "eps" in group:
            _check(group["eps"] >= 0, f"eps must be >= 0, got {group['eps']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Sets every parameter's .grad to None (or, with set_to_none=False, fills it with zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Updates every parameter that has a gradient; with `closure`, first re-evaluates the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
            for p in group["params"]:
                if p.grad is not None:
                    p._version += 1  # a graph that saved p before this update can no longer backpropagate
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- saving and resuming -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Copies of hyperparameters and per-parameter state, parameters referred to by position.

        {"state": {index: {"step": int, "exp_avg": array, ...}}, "param_groups": [{"lr": ..., "params": [0, 1]}]}
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in s.items()}
            for p, s in self.state.items()
            if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores hyperparameters and state saved by state_dict() into an optimizer over the same parameters."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ZerogradError(
                f"{name}.load_state_dict needs the dict made by state_dict(), with 'state' and 'param_groups'"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ZerogradError(
                f"{name}.load_state_dict: the state has {len(saved_groups)} parameter groups, this optimizer "
                f"has {len(self.param_groups)}: build it over the same parameters as the one saved"
            )
        by_index: dict[Any, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ZerogradError(
                    f"{name}.load_state_dict: group {i} has {len(saved['params'])} parameters in the state and "
                    f"{len(group['params'])} here: build the optimizer over the same parameters as the one saved"
                )
            by_index.update(zip(saved["params"], group["params"]))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, saved_state in state_dict["state"].items():
            if key not in by_index:
                raise ZerogradError(f"{name}.load_state_dict: state for parameter {key}, which no group lists")
            p = by_index[key]
            restored = {}
            for k, v in saved_state.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ZerogradError(
                            f"{name}.load_state_dict: state '{k}' of parameter {key} has shape {v.shape}, "
                            f"the parameter has shape {p.data.shape}: the model differs from the one saved"
                        )
                    v = v.astype(p.data.dtype) if v.dtype.kind == "f" else v.copy()  # astype copies
                else:
                    v = copy.deepcopy(v)
                restored[k] = v
            new_state[p] = restored
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new_group = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            new_group["params"] = group["params"]
            self._check_hyperparameters(new_group)  # also turns betas read back from JSON into a tuple
            new_groups.append(new_group)
        for group, new_group in zip(self.param_groups, new_groups):
            group.update(new_group)  # in place: schedulers hold these dicts
        self.state = new_state

    def _next_state(self, p: Tensor, *buffers: str) -> dict[str, Any]:
        """p's state with its step count advanced; created on the first step with zero arrays named `buffers`."""
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {"step": 0, **{name: np.zeros_like(p.data) for name in buffers}}
        state["step"] += 1
        return state

    def _scratch(self, like: np.ndarray) -> np.ndarray:
        """A work array shaped like `like`, shared by all parameters and reused every step.

        Adam's update needs temporaries the size of each parameter; made anew every step, arrays of a few
        hundred kB go back to the system when freed and are page-faulted in again on the next step.
        """
        work = self._work.get(like.dtype)
        if work is None or work.size < like.size:
            work = self._work[like.dtype] = np.empty(like.size, like.dtype)
        return work[: like.size].reshape(like.shape)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ZerogradError(message)


def _grad_with_l2(p: Tensor, weight_decay: float) -> np.ndarray:
    """The gradient plus weight_decay * p as a new array (p.grad itself is never modified)."""
    return p.grad + weight_decay * p.data if weight_decay else p.grad


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay, as torch.optim.SGD.

    g = grad + weight_decay * p; buf = momentum * buf + (1 - dampening) * g (buf = g on the first step);
    g = g + momentum * buf if nesterov else buf; p -= lr * g. With constant lr this equals the book's
    Momentum (v = momentum * v - lr * grad; p += v), with v = -lr * buf.
    """

    def __init__(
        self, params: ParamsLike, lr: float, momentum: float = 0.0, dampening: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False,
    ) -> None:  # positional order as torch.optim.SGD
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        _check(group["momentum"] >= 0, f"momentum must be >= 0, got {group['momentum']}")
        _check(
            not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
            "Nesterov momentum needs momentum > 0 and dampening = 0",
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        nesterov, weight_decay = group["nesterov"], group["weight_decay"]
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if weight_decay:
                g = _grad_with_l2(p, weight_decay)
            if momentum:
                state = self.state.get(p)
                if state is None:
                    buf = g.copy() if g is p.grad else g  # a fresh array can become the buffer as it is
                    self.state[p] = {"momentum_buffer": buf}
                else:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += (1 - dampening) * g if dampening else g
                g = g + momentum * buf if nesterov else buf
            p.data -= lr * g


class AdaGrad(Optimizer):
    """AdaGrad, as torch.optim.Adagrad: h += g * g; p -= lr * g / (sqrt(h) + eps), g including L2 decay.

    The book's AdaGrad is the same with eps = 1e-7.
    """

    def __init__(self, params: ParamsLike, lr: float = 0.01, *, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        # keyword-only after lr: torch's Adagrad has lr_decay there, so a positional call would mean something else
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = _grad_with_l2(p, weight_decay)
            h = self._next_state(p, "sum")["sum"]
            h += g * g
            t = np.sqrt(h)
            t += eps
            np.divide(g, t, out=t)
            t *= lr
            p.data -= t


Adagrad = AdaGrad  # PyTorch's spelling


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop (not centered).

    v = alpha * v + (1 - alpha) * g * g; u = g / (sqrt(v) + eps); with momentum, buf = momentum * buf + u
    and p -= lr * buf, else p -= lr * u. g includes L2 weight decay. The book's RMSprop is alpha = 0.99,
    eps = 1e-7, no momentum.
    """

    def __init__(
        self, params: ParamsLike, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
        weight_decay: float = 0.0, momentum: float = 0.0,
    ) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum))

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        _check(0 <= group["alpha"] <= 1, f"alpha must be in [0, 1], got {group['alpha']}")
        _check(group["momentum"] >= 0, f"momentum must be >= 0, got {group['momentum']}")

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum = group["weight_decay"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = _grad_with_l2(p, weight_decay)
            state = self._next_state(p, "square_avg")
            v = state["square_avg"]
            v *= alpha
            t = g * g
            t *= 1 - alpha
            v += t
            np.sqrt(v, out=t)
            t += eps
            np.divide(g, t, out=t)
            if momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.zeros_like(p.data)
                buf *= momentum
                buf += t
                np.multiply(buf, lr, out=t)
            else:
                t *= lr
            p.data -= t


class Adam(Optimizer):
    """Adam, as torch.optim.Adam, with L2 weight decay added to the gradient.

    m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g; t = step count;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """

    _decoupled = False  # AdamW: weight decay shrinks p directly instead of entering the gradient

    def __init__(
        self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        betas = group["betas"] = tuple(group["betas"])
        _check(
            len(betas) == 2 and all(0 <= b < 1 for b in betas),
            f"betas must be two numbers in [0, 1), got {betas}",
        )

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        decoupled = self._decoupled
        for p in group["params"]:
            if p.grad is None:
                continue
            if decoupled:
                g = p.grad
                if weight_decay:
                    p.data *= 1 - lr * weight_decay
            else:
                g = _grad_with_l2(p, weight_decay)
            state = self._next_state(p, "exp_avg", "exp_avg_sq")
            step = state["step"]
            _in_parts(functools.partial(_adam, beta1=beta1, beta2=beta2, eps=eps, step_size=lr / (1 - beta1**step),
                                        root_bias_correction2=math.sqrt(1 - beta2**step)),
                      p.data, g, state["exp_avg"], state["exp_avg_sq"], self._scratch(g))


def _adam(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: np.ndarray, *, beta1: float, beta2: float,
          eps: float, step_size: float, root_bias_correction2: float) -> None:
    """One Adam update in place on p, m and v (t: scratch), in torch.optim.Adam's order of operations."""
    m *= beta1
    m += np.multiply(g, 1 - beta1, out=t)
    v *= beta2
    np.multiply(g, g, out=t)
    t *= 1 - beta2
    v += t
    np.sqrt(v, out=t)
    t /= root_bias_correction2
    t += eps
    np.divide(m, t, out=t)
    t *= step_size
    p -= t


def _in_parts(update: Callable[..., None], *arrays: np.ndarray) -> None:
    """update(*arrays) for an elementwise update of same-shaped arrays; large contiguous ones (a CNN's hidden layer)
    in parts of their flattened elements, one per thread. Elementwise: the same result at every thread count."""
    parts = batch_shards(arrays[0].size, arrays[0].size)  # one part below 2 * MIN_SHARD_SIZE numbers
    if len(parts) > 1 and all(a.flags.c_contiguous for a in arrays):
        flat = [a.reshape(-1) for a in arrays]
        parallel_map(lambda part: update(*(a[part] for a in flat)), parts)
    else:
        update(*arrays)


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: p *= 1 - lr * weight_decay, then Adam without L2."""

    _decoupled = True

    def __init__(
        self, params: ParamsLike, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
