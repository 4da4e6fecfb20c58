"""Numerical differentiation (the book's chapter 4): slow and approximate, and so the referee.

Every analytic gradient in zerograd is checked against these central differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """Central difference (f(x+h) - f(x-h)) / 2h: error O(h^2), where (f(x+h) - f(x)) / h is O(h)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def _numerical_gradient_array(f: Callable[[], float], x: np.ndarray, h: float) -> np.ndarray:
    if x.dtype.kind != "f":
        raise TypeError(f"numerical_gradient needs a floating-point array, got {x.dtype}: x +- h would be truncated")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: perturb x in place
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + h
        f_plus = float(f())
        flat_x[i] = original - h
        f_minus = float(f())
        flat_x[i] = original  # restore, so f sees the unperturbed x afterwards
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient(f: Callable[[Any], float], x: np.ndarray | Sequence[np.ndarray], h: float = 1e-4):
    """Gradient of scalar f at x by central differences, perturbing x in place and restoring it.

    `x` is an array (returns an array of its shape) or a list of arrays such as a network's
    parameters (returns a list of gradients); `f` is called as f(x). Use float64 arrays: in float32,
    h = 1e-4 loses most of the digits.
    """
    if isinstance(x, np.ndarray):
        return _numerical_gradient_array(lambda: f(x), x, h)
    return [_numerical_gradient_array(lambda: f(x), p, h) for p in x]


def gradient_descent(
    f: Callable[[np.ndarray], float], init_x: np.ndarray, lr: float = 0.01, step_num: int = 100,
    return_history: bool = False,
):
    """Minimises f from init_x by x -= lr * numerical_gradient(f, x), step_num times (the book's ch.4)."""
    x = np.array(init_x, dtype=np.float64)
    history = []
    for _ in range(step_num):
        history.append(x.copy())
        x -= lr * numerical_gradient(f, x)
    return (x, np.array(history)) if return_history else x


@dataclass
class GradcheckResult:
    """Outcome of gradcheck: truthy when every gradient matched."""

    ok: bool
    max_abs_error: float
    max_rel_error: float
    errors: list[float] = field(default_factory=list)  # max abs error per input

    def __bool__(self) -> bool:
        return self.ok


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with the numerical one."""


def gradcheck(
    fn: Callable[..., Any], *inputs: Any, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
    seed: int = 0, raise_exception: bool = True,
) -> GradcheckResult:
    """Compares backward() with central differences in float64 for every floating-point input.

    A non-scalar output is reduced with fixed random weights v, checking the vector-Jacobian
    product v^T J that backward computes. Returns the largest absolute and relative errors.
    """
    from .tensor import Tensor, no_grad  # numerical sits below tensor: only the checker needs it

    tensors = []
    for x in inputs:
        array = x.data if isinstance(x, Tensor) else np.asarray(x)
        if array.dtype.kind == "f":
            # C order: the numerical side perturbs the array element by element through a flat view
            tensors.append(Tensor(np.array(array, dtype=np.float64, order="C"), requires_grad=True))
        else:
            tensors.append(Tensor(array))
    out = fn(*tensors)
    v = np.random.default_rng(seed).standard_normal(out.shape)

    def scalar() -> float:
        with no_grad():
            return float((fn(*tensors).data.astype(np.float64) * v).sum())

    (out * Tensor(v)).sum().backward()
    max_abs, max_rel, errors, ok = 0.0, 0.0, [], True
    for t in tensors:
        if not t.requires_grad:
            continue
        analytic = t.grad if t.grad is not None else np.zeros_like(t.data)
        numeric = _numerical_gradient_array(scalar, t.data, eps)
        diff = np.abs(analytic - numeric)
        scale = np.maximum(np.abs(analytic), np.abs(numeric))
        errors.append(float(diff.max(initial=0.0)))
        max_abs = max(max_abs, errors[-1])
        significant = scale > atol
        if significant.any():
            max_rel = max(max_rel, float((diff[significant] / scale[significant]).max()))
        ok = ok and bool(np.allclose(analytic, numeric, rtol=rtol, atol=atol))
    result = GradcheckResult(ok, max_abs, max_rel, errors)
    if not ok and raise_exception:
        raise GradcheckError(
            f"analytic and numerical gradients differ: max abs error {max_abs:.3g}, "
            f"max relative error {max_rel:.3g} (atol={atol}, rtol={rtol})"
        )
    return result
