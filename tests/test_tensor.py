"""The computational graph: Tensor, Function, backward, no_grad (zerograd/tensor.py)."""

import sys
import threading
from typing import ClassVar

import numpy as np
import pytest

import zerograd
import zerograd.functional as F
from zerograd import Function, Tensor, ZerogradError, no_grad
from zerograd.functional.math import Linear
from zerograd.tensor import graph_nodes


# --- construction and attributes -------------------------------------------------------------
@pytest.mark.parametrize("data", [1.5, [1.0, 2.0], [[1.0], [2.5]], np.float32(3.0), np.ones(2, np.float32)])
def test_float_input_is_float32(data):
    assert Tensor(data).dtype == np.float32


def test_float64_array_keeps_float64():
    a = np.array([1.0, 2.0])
    assert Tensor(a).dtype == np.float64
    assert Tensor(np.float64(2.0)).dtype == np.float64


def test_integer_input_stays_integer_and_dtype_argument_wins():
    assert Tensor([1, 2]).dtype.kind == "i"
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert zerograd.tensor([0.5], dtype=np.float64).dtype == np.float64


def test_attributes():
    x = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    assert isinstance(x.data, np.ndarray)
    assert x.grad is None
    assert x.requires_grad is True
    assert x.shape == (1, 3) and x.ndim == 2 and x.size() == (1, 3) and x.numel() == 3 and len(x) == 1
    assert x.dtype == np.float32
    assert x.is_leaf
    assert Tensor([1.0]).requires_grad is False


def test_numpy_shares_memory_and_item():
    a = np.array([4.0])
    t = Tensor(a)
    assert t.numpy() is a
    assert t.item() == 4.0 and isinstance(t.item(), float)
    with pytest.raises(ZerogradError, match=r"one element.*\(2,\)"):
        Tensor([1.0, 2.0]).item()


def test_detach_astype_float_double():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and np.shares_memory(d.data, y.data)
    assert x.float().dtype == np.float32 and x.double() is x
    # casts are differentiable, as torch's .float(): the gradient comes back in the input's dtype
    (x.float() * 3).sum().backward()
    assert x.grad.dtype == np.float64 and np.array_equal(x.grad, [3.0, 3.0])


def test_in_place_update_after_forward_is_caught_in_backward():
    from zerograd import optim

    w = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    loss = (w * w).sum()
    opt = optim.SGD([w], lr=0.1)
    w.grad = np.ones(2, dtype=np.float32)
    opt.step()  # changes w in place: the saved w of `w * w` is no longer what forward used
    with pytest.raises(ZerogradError, match="modified in place"):
        loss.backward()


def test_tensor_copies_but_Tensor_shares():
    a = np.zeros(3, dtype=np.float32)
    assert not np.shares_memory(zerograd.tensor(a).data, a)
    assert np.shares_memory(Tensor(a).data, a)
    assert bool(Tensor(1.0)) and not bool(Tensor([0.0]))
    with pytest.raises(ZerogradError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_repr():
    assert repr(Tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(Tensor(np.array([1.0]), requires_grad=True)) == "tensor([1.], dtype=float64, requires_grad=True)"


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(ZerogradError, match="floating-point"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(ZerogradError, match="int"):
        Tensor(np.arange(3)).requires_grad_()


def test_op_results_on_0d_tensors_are_arrays():
    x = Tensor(2.0, requires_grad=True)
    y = (x * x).exp()
    assert isinstance(y.data, np.ndarray) and y.shape == ()
    y.backward()
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == ()


# --- backward --------------------------------------------------------------------------------
def test_input_used_twice_accumulates():
    x = Tensor(np.array(3.0), requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad == pytest.approx(7.0)
    assert y.item() == pytest.approx(12.0)


def test_diamond_graph():
    x = Tensor(np.array(1.5), requires_grad=True)
    a = 2 * x
    y = a * a + a * 3  # y = 4x^2 + 6x, dy/dx = 8x + 6
    y.backward()
    assert x.grad == pytest.approx(18.0)


def test_diamond_with_paths_of_different_length():
    # a is needed by a long and a short path: its gradient must be complete before it is propagated
    x = Tensor(np.array(2.0), requires_grad=True)
    a = x * x
    b = a
    for _ in range(20):
        b = b * 1.0 + 0.0
    y = b + a  # 2 x^2
    y.backward()
    assert x.grad == pytest.approx(8.0)


class Square(Function):
    calls = 0

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        type(self).calls += 1
        return 2 * self.a * g


def test_each_function_backward_runs_once_in_reverse_topological_order():
    Square.calls = 0
    x = Tensor(np.array(3.0), requires_grad=True)
    s = Square.apply(x)  # 9
    y = s * s + s + s.exp() * 0.0  # s used by three consumers
    y.backward()
    assert Square.calls == 1
    assert x.grad == pytest.approx((2 * 9 + 1) * 6)  # dy/ds * ds/dx


def test_broadcast_gradients_reduce_to_input_shapes():
    a = Tensor(np.arange(3.0).reshape(3, 1), requires_grad=True)
    b = Tensor(np.arange(4.0), requires_grad=True)
    c = a + b
    assert c.shape == (3, 4)
    c.sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(a.grad, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad, np.full(4, 3.0))


def test_broadcast_mul_gradient_values():
    a = Tensor(np.array([[1.0], [2.0]]), requires_grad=True)  # (2, 1)
    b = Tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)  # (3,)
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad, [[60.0], [60.0]])
    np.testing.assert_allclose(b.grad, [3.0, 3.0, 3.0])


def test_backward_with_explicit_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [3.0, 30.0])


def test_backward_on_leaf():
    x = Tensor(np.array(2.0), requires_grad=True)
    x.backward()
    assert x.grad == 1.0
    x.backward()
    assert x.grad == 2.0


def test_second_backward_without_retain_graph_raises():
    x = Tensor(np.array(2.0), requires_grad=True)
    y = x * x
    y.backward()
    with pytest.raises(ZerogradError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward_and_grads_accumulate():
    x = Tensor(np.array(2.0), requires_grad=True)
    y = x * x * x  # 3x^2 = 12
    y.backward(retain_graph=True)
    assert x.grad == pytest.approx(12.0)
    y.backward()
    assert x.grad == pytest.approx(24.0)


def test_backward_that_fails_leaves_no_half_summed_gradient_behind():
    a = Tensor(np.array(1.0), requires_grad=True)
    w = Tensor(np.array(2.0), requires_grad=True)
    y = a * 3
    loss1 = (y * w).sum() + (y * 5).sum()  # backward reaches y from y * 5 before it reaches y * w
    with no_grad():
        w.add_(1)  # y * w saved w: its backward must refuse
    with pytest.raises(ZerogradError, match="modified in place"):
        loss1.backward()
    assert a.grad is None
    loss2 = (y * 2).sum()  # shares y with the failed graph: only its own gradient reaches a
    loss2.backward()
    assert a.grad == pytest.approx(6.0)


def test_graph_shared_by_two_outputs_that_was_freed_is_refused():
    x = Tensor(np.array(2.0), requires_grad=True)
    y = x * x
    a, b = y * 2, y * 3
    a.backward()  # frees y's node
    with pytest.raises(ZerogradError, match="retain_graph=True"):
        (a + b).backward()


def test_backward_frees_saved_buffers():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * x).sum()
    mul = y._ctx.inputs[0]._ctx
    assert hasattr(mul, "a")
    y.backward()
    assert y._ctx.inputs is None and not hasattr(mul, "a")


def test_leaf_grads_are_separate_writable_arrays():
    p = Tensor(np.ones(3), requires_grad=True)
    q = Tensor(np.ones(3), requires_grad=True)
    (p + q).sum().backward()  # Add returns the same array for both inputs, Sum a broadcast view
    assert p.grad is not q.grad
    p.grad *= 0.5  # in place, as gradient clipping does
    np.testing.assert_array_equal(q.grad, np.ones(3))
    np.testing.assert_array_equal(p.grad, np.full(3, 0.5))


def test_user_grad_array_is_not_aliased():
    x = Tensor(np.zeros(2), requires_grad=True)
    seed = np.array([1.0, 2.0])
    x.backward(seed)
    seed[:] = 0
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_gradient_dtype_matches_input():
    x = Tensor([1.0, 2.0], requires_grad=True)  # float32
    (x * Tensor(np.array([1.0, 1.0]))).sum().backward()  # float64 on the way
    assert x.grad.dtype == np.float32


def test_deep_graph_does_not_recurse():
    limit = sys.getrecursionlimit()
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0 + 0.0  # 20,000 operations
    y.backward()
    assert x.grad == 1.0
    assert sys.getrecursionlimit() == limit


def test_deep_graph_can_be_freed_without_backward():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y + 1.0
    del y  # must not overflow the C stack while deallocating the chain


def test_backward_of_non_scalar_without_grad_raises():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ZerogradError, match=r"scalar output.*\(2, 3\).*\.sum\(\)"):
        (x * 2).backward()


def test_backward_with_grad_of_wrong_shape_raises():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ZerogradError, match=r"\(2,\).*\(3,\)"):
        (x * 2).backward(np.ones(2))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(ZerogradError, match="does not require a gradient"):
        (Tensor([1.0]) * 2).sum().backward()


# --- which gradients are computed ------------------------------------------------------------
def test_only_tensors_that_need_gradients_get_them():
    image = Tensor(np.random.default_rng(0).standard_normal((4, 3)))
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.zeros(2), requires_grad=True)
    F.linear(image, w, b).sum().backward()
    assert image.grad is None
    np.testing.assert_allclose(w.grad, np.tile(image.data.sum(0), (2, 1)))
    np.testing.assert_allclose(b.grad, [4.0, 4.0])


class RecordingLinear(Linear):
    seen: ClassVar[list] = []

    def backward(self, g):
        grads = super().backward(g)
        RecordingLinear.seen.append((self.needs_input_grad, grads))
        return grads


def test_needs_input_grad_skips_unneeded_input_gradients():
    RecordingLinear.seen = []
    x = Tensor(np.ones((4, 3)))
    w = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.zeros(2), requires_grad=True)
    RecordingLinear.apply(x, w, b).sum().backward()
    (needs, (gx, gw, gb)), = RecordingLinear.seen
    assert needs == (False, True, True)
    assert gx is None and gw is not None and gb is not None


def test_subtraction_does_not_compute_unneeded_gradient():
    x = Tensor(np.ones(2))
    y = Tensor(np.ones(2), requires_grad=True)
    z = x - y
    assert z._ctx.needs_input_grad == (False, True)
    z.sum().backward()
    assert x.grad is None
    np.testing.assert_array_equal(y.grad, [-1.0, -1.0])


def test_result_of_non_grad_inputs_records_nothing():
    y = Tensor([1.0]) * Tensor([2.0])
    assert not y.requires_grad and y._ctx is None


# --- no_grad ---------------------------------------------------------------------------------
def test_no_grad_context_manager():
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        assert not zerograd.is_grad_enabled()
        y = x * 2 + 1
    assert zerograd.is_grad_enabled()
    assert y.requires_grad is False and y._ctx is None
    np.testing.assert_array_equal(y.data, [3.0, 3.0])


def test_no_grad_decorator():
    x = Tensor(np.ones(2), requires_grad=True)

    @no_grad()
    def infer(t):
        return (t * t).sum()

    y = infer(x)
    assert y.requires_grad is False and y._ctx is None
    assert zerograd.is_grad_enabled()
    assert infer(x)._ctx is None  # the decorator works on every call


def test_no_grad_restores_mode_after_exception_and_nesting():
    with pytest.raises(RuntimeError), no_grad():
        raise RuntimeError
    assert zerograd.is_grad_enabled()
    x = Tensor(np.ones(1), requires_grad=True)
    with no_grad():
        with no_grad():
            pass
        assert not zerograd.is_grad_enabled()
        with zerograd.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    assert zerograd.is_grad_enabled()


# --- grad mode is per thread -------------------------------------------------------------------
def _in_thread(target, *args):
    """Starts target(*args) in a new thread; join() re-raises what it raised (an assert) in the test's thread."""
    errors = []

    def run():
        try:
            target(*args)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()

    def join():
        thread.join(timeout=30)
        assert not thread.is_alive(), "the thread did not finish"
        if errors:
            raise errors[0]

    return join


def _record_and_backward():
    """A graph recorded in this thread: the result has a grad_fn and backward() reaches the leaf."""
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * 3).sum()
    assert zerograd.is_grad_enabled() and y.requires_grad and y.grad_fn is not None
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_no_grad_in_another_thread_leaves_this_thread_recording():
    inside, done = threading.Event(), threading.Event()

    def infer():
        with no_grad():
            inside.set()
            assert done.wait(timeout=30)  # stays inside no_grad while the test's thread records
            assert not zerograd.is_grad_enabled()
            assert (Tensor([1.0], requires_grad=True) * 2).grad_fn is None
        assert zerograd.is_grad_enabled()

    join = _in_thread(infer)
    assert inside.wait(timeout=30)
    try:
        _record_and_backward()
    finally:
        done.set()
    join()


def test_no_grad_in_this_thread_leaves_another_thread_recording():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        _in_thread(_record_and_backward)()  # the other thread records while this one waits inside no_grad
        assert not zerograd.is_grad_enabled() and (x * 2).grad_fn is None
    assert zerograd.is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled_whatever_its_creator_has():
    seen = []
    with no_grad():
        _in_thread(lambda: seen.append(zerograd.is_grad_enabled()))()
        with zerograd.enable_grad(), no_grad():
            _in_thread(lambda: seen.append(zerograd.is_grad_enabled()))()
    assert seen == [True, True]


def test_inplace_updates_are_judged_by_their_own_threads_grad_mode():
    """An optimizer step (in place, under no_grad) in one thread while another records the graph."""
    w = Tensor(np.ones(2), requires_grad=True)
    inside, done = threading.Event(), threading.Event()

    def step():
        with no_grad():
            inside.set()
            assert done.wait(timeout=30)
            w.sub_(Tensor(np.ones(2)))  # allowed here: this thread records nothing

    join = _in_thread(step)
    assert inside.wait(timeout=30)
    try:
        with pytest.raises(ZerogradError, match="leaf tensor that requires grad"):
            w.add_(1.0)  # refused here: this thread records
    finally:
        done.set()
    join()
    np.testing.assert_array_equal(w.data, [0.0, 0.0])


def test_one_no_grad_function_in_two_threads_at_once_restores_each_threads_mode():
    """One decorated function is one _GradMode: what each call replaced must not mix between threads."""
    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()

    @no_grad()
    def infer(signal, wait_for):
        assert not zerograd.is_grad_enabled()
        signal.set()
        assert wait_for.wait(timeout=30)

    def first():  # enters first, leaves first, with grad enabled around the call
        try:
            infer(first_inside, second_inside)
            assert zerograd.is_grad_enabled()
        finally:
            first_done.set()

    join = _in_thread(first)
    assert first_inside.wait(timeout=30)
    with no_grad():  # this thread enters second, leaves last, with grad disabled around the call
        infer(second_inside, first_done)
        assert not zerograd.is_grad_enabled()
    join()
    assert zerograd.is_grad_enabled()


# --- bad input -------------------------------------------------------------------------------
def test_shape_mismatch_names_operation_and_shapes():
    with pytest.raises(zerograd.ShapeError, match=r"add.*\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(zerograd.ShapeError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    err = zerograd.ShapeError("x")
    assert isinstance(err, ZerogradError) and isinstance(err, ValueError)


def test_nan_and_inf_propagate():
    with np.errstate(divide="ignore", invalid="ignore"):
        x = Tensor(np.array([0.0, -1.0, np.inf, np.nan]))
        y = x.log()
    assert y.data[0] == -np.inf
    assert np.isnan(y.data[1])
    assert y.data[2] == np.inf
    assert np.isnan(y.data[3])
    z = Tensor(np.array([np.nan, 1.0]), requires_grad=True)
    (z * 2).sum().backward()
    np.testing.assert_array_equal(z.grad, [2.0, 2.0])
    assert np.isnan((z * 2).data[0])


# --- graph_nodes -----------------------------------------------------------------------------
def test_graph_nodes_visits_each_tensor_once_outputs_first():
    x = Tensor(np.ones(2), requires_grad=True)
    a = x * x
    y = (a + a).sum()
    nodes = list(graph_nodes(y))
    assert nodes[0][0] is y
    assert len(nodes) == 4  # y, a + a, a, x
    assert sum(t is x for t, _, _ in nodes) == 1
    leaf = next(n for n in nodes if n[0] is x)
    assert leaf[1] is None and tuple(leaf[2]) == ()


def test_topological_order_is_graph_nodes_non_leaves_newest_first():
    from zerograd.tensor import _topological_order  # what ONNX export reads

    x = Tensor(np.ones(3), requires_grad=True)
    a = x * x
    b = a.exp() + a * x
    y = (b + a).sum()
    order = _topological_order(y)
    assert {id(t) for t in order} == {id(t) for t, fn, _ in graph_nodes(y) if fn is not None}
    assert len(order) == 6 and order[0] is y and order[-1] is a
    position = {id(t): k for k, t in enumerate(order)}
    for t in order:  # each tensor before the inputs it was made from
        assert all(position[id(t)] < position[id(i)] for i in t._ctx.inputs if i._ctx is not None)
    assert [t._ctx.seq for t in order] == sorted((t._ctx.seq for t in order), reverse=True)


def test_topological_order_refuses_a_freed_graph_graph_nodes_shows_it():
    from zerograd.tensor import _topological_order

    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(ZerogradError, match="already freed"):
        _topological_order(y)
    assert [(t is y, tuple(inputs)) for t, _, inputs in graph_nodes(y)] == [(True, ())]


# --- the book's shopping example (chapter 5) -------------------------------------------------
def _f64(v):
    return Tensor(np.array(v, dtype=np.float64), requires_grad=True)


def test_buy_apple():
    apple, apple_num, tax = _f64(100.0), _f64(2.0), _f64(1.1)
    price = apple * apple_num * tax
    assert price.item() == pytest.approx(220.0)
    price.backward()
    assert apple.grad == pytest.approx(2.2)
    assert apple_num.grad == pytest.approx(110.0)
    assert tax.grad == pytest.approx(200.0)


def test_buy_apple_orange():
    apple, apple_num = _f64(100.0), _f64(2.0)
    orange, orange_num = _f64(150.0), _f64(3.0)
    tax = _f64(1.1)
    price = (apple * apple_num + orange * orange_num) * tax
    assert price.item() == pytest.approx(715.0)
    price.backward()
    assert apple.grad == pytest.approx(2.2)
    assert apple_num.grad == pytest.approx(110.0)
    assert orange.grad == pytest.approx(3.3)
    assert orange_num.grad == pytest.approx(165.0)
    assert tax.grad == pytest.approx(650.0)
