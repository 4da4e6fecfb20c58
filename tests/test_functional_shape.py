"""reshape, transpose/permute, indexing, cat and stack (zerograd/functional/shape.py)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zerograd.functional as F
from zerograd import ShapeError, Tensor, gradcheck

SETTINGS = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)


def arrays(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(-3, 3))


def check(fn, *inputs):
    assert gradcheck(fn, *inputs).max_abs_error < 1e-6


def grad_of(fn, a, seed=None):
    """Gradient of sum(fn(x) * seed) with respect to x (seed of ones by default)."""
    x = Tensor(a, requires_grad=True)
    y = fn(x)
    y.backward(np.ones(y.shape) if seed is None else seed)
    return x.grad


# --- reshape / flatten -----------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), shape=shapes)
def test_reshape(data, shape):
    a = data.draw(arrays(shape))
    target = tuple(data.draw(st.permutations(shape)))[::-1]
    out = F.reshape(Tensor(a), target)
    np.testing.assert_array_equal(out.data, a.reshape(target))
    np.testing.assert_array_equal(Tensor(a).reshape(-1).data, a.reshape(-1))
    check(lambda x: x.reshape(target), a)


def test_reshape_argument_forms():
    a = np.arange(6.0)
    assert Tensor(a).reshape(2, 3).shape == (2, 3)
    assert Tensor(a).reshape((3, 2)).shape == (3, 2)
    assert Tensor(a).reshape([3, -1]).shape == (3, 2)
    assert F.reshape(Tensor(a), 1, -1).shape == (1, 6)


def test_reshape_error():
    with pytest.raises(ShapeError, match=r"reshape.*\(6,\)"):
        Tensor(np.arange(6.0)).reshape(4, 2)


def test_flatten():
    a = np.arange(24.0).reshape(2, 3, 4)
    assert Tensor(a).flatten().shape == (24,)  # all dimensions, as torch.flatten
    assert F.flatten(Tensor(a), start_dim=1).shape == (2, 12)
    assert F.flatten(Tensor(a), 2).shape == (2, 3, 4)
    check(lambda x: x.flatten(), a)


# --- transpose / permute ---------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), shape=shapes)
def test_permute(data, shape):
    a = data.draw(arrays(shape))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    np.testing.assert_array_equal(F.permute(Tensor(a), axes).data, np.transpose(a, axes))
    np.testing.assert_array_equal(Tensor(a).permute(*axes).data, np.transpose(a, axes))
    check(lambda x: x.permute(axes), a)


@SETTINGS
@given(data=st.data(), shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=3))
def test_transpose_two_axes(data, shape):
    a = data.draw(arrays(shape))
    i = data.draw(st.integers(-len(shape), len(shape) - 1))
    j = data.draw(st.integers(-len(shape), len(shape) - 1))
    np.testing.assert_array_equal(F.transpose(Tensor(a), i, j).data, np.swapaxes(a, i, j))
    check(lambda x: x.transpose(i, j), a)


def test_transpose_reverses_all_axes_and_T():
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(Tensor(a).transpose().data, a.T)
    np.testing.assert_array_equal(Tensor(a).T.data, a.T)
    check(lambda x: x.T, a)
    v = np.arange(3.0)
    np.testing.assert_array_equal(Tensor(v).T.data, v)


def test_transpose_needs_two_axes():
    with pytest.raises(TypeError, match="permute"):
        Tensor(np.ones((2, 3, 4))).transpose(2, 0, 1)


def test_permute_nchw_to_nhwc():
    assert Tensor(np.ones((2, 3, 4, 5))).permute(0, 2, 3, 1).shape == (2, 4, 5, 3)


# --- getitem ---------------------------------------------------------------------------------
@SETTINGS
@given(data=st.data(), shape=shapes)
def test_getitem_basic_indices(data, shape):
    a = data.draw(arrays(shape))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    np.testing.assert_array_equal(Tensor(a)[index].data, a[index])
    check(lambda x: x[index], a)


@SETTINGS
@given(data=st.data(), shape=shapes)
def test_getitem_boolean_mask(data, shape):
    a = data.draw(arrays(shape))
    mask = data.draw(hnp.arrays(bool, shape))
    np.testing.assert_array_equal(Tensor(a)[mask].data, a[mask])
    np.testing.assert_array_equal(grad_of(lambda x: x[mask], a), mask.astype(float))
    check(lambda x: x[mask], a)


@SETTINGS
@given(data=st.data(), shape=shapes)
def test_getitem_integer_array(data, shape):
    a = data.draw(arrays(shape))
    idx = np.array(data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6)))
    np.testing.assert_array_equal(Tensor(a)[idx].data, a[idx])
    expected = np.zeros(shape)
    np.add.at(expected, idx, 1.0)
    np.testing.assert_array_equal(grad_of(lambda x: x[idx], a), expected)
    check(lambda x: x[idx], a)


@pytest.mark.parametrize(
    "index",
    [
        1,
        -1,
        (0, 2),
        slice(None, None, -1),
        (slice(None), slice(3, 0, -2)),
        (Ellipsis, 1),
        (None, 1, slice(1, 3)),
        [0, 0, 2, 0],  # a list with repeats
        (np.array([0, 2, 2]), np.array([1, 1, 3])),  # pairs of integer arrays
        (slice(None), [3, 3, 0]),
        (np.arange(3), np.array([0, 1, 0])),  # the cross-entropy pick
    ],
)
def test_getitem_examples(index):
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(Tensor(a)[index].data, a[index])
    check(lambda x: x[index], a)


def test_getitem_repeated_indices_accumulate():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


def test_getitem_negative_step_gradient():
    seed = np.array([1.0, 10.0, 100.0])
    np.testing.assert_array_equal(grad_of(lambda x: x[::-1], np.zeros(3), seed), [100.0, 10.0, 1.0])


def test_getitem_with_tensor_index():
    a = np.arange(5.0)
    idx = Tensor(np.array([4, 1]))
    np.testing.assert_array_equal(Tensor(a)[idx].data, [4.0, 1.0])
    np.testing.assert_array_equal(F.getitem(Tensor(a), (idx,)).data, [4.0, 1.0])
    mask = Tensor(a) > 2
    np.testing.assert_array_equal(Tensor(a)[mask].data, [3.0, 4.0])


# --- cat / stack / broadcast_to --------------------------------------------------------------
@SETTINGS
@given(data=st.data(), shape=shapes, sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3))
def test_cat(data, shape, sizes):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for n in sizes:
        s = list(shape)
        s[axis] = n
        parts.append(data.draw(arrays(tuple(s))))
    out = F.cat([Tensor(p) for p in parts], axis=axis)
    np.testing.assert_array_equal(out.data, np.concatenate(parts, axis=axis))
    check(lambda *xs: F.concatenate(list(xs), axis=axis), *parts)


def test_cat_shape_error():
    with pytest.raises(ShapeError, match=r"concatenate.*\(2, 3\).*\(2, 4\)"):
        F.cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))], axis=0)


@SETTINGS
@given(data=st.data(), shape=shapes, count=st.integers(1, 3))
def test_stack(data, shape, count):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [data.draw(arrays(shape)) for _ in range(count)]
    np.testing.assert_array_equal(F.stack([Tensor(p) for p in parts], axis=axis).data, np.stack(parts, axis=axis))
    check(lambda *xs: F.stack(list(xs), axis=axis), *parts)


def test_stack_gradient_goes_to_each_input():
    a = Tensor(np.zeros(2), requires_grad=True)
    b = Tensor(np.zeros(2), requires_grad=True)
    F.stack([a, b], axis=1).backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(a.grad, [1.0, 3.0])
    np.testing.assert_array_equal(b.grad, [2.0, 4.0])


def test_stack_shape_error():
    with pytest.raises(ShapeError, match="stack"):
        F.stack([Tensor(np.ones(2)), Tensor(np.ones(3))])


def test_broadcast_to():
    a = np.array([[1.0], [2.0]])
    out = F.broadcast_to(Tensor(a), (3, 2, 4))
    np.testing.assert_array_equal(out.data, np.broadcast_to(a, (3, 2, 4)))
    np.testing.assert_array_equal(grad_of(lambda x: F.broadcast_to(x, (3, 2, 4)), a), np.full((2, 1), 12.0))
    check(lambda x: F.broadcast_to(x, (3, 2, 4)), a)
