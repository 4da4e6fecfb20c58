"""Dataset, TensorDataset, DataLoader, and the augmentations used as DataLoader transforms."""

import threading
import traceback

import numpy as np
import pytest

import zerograd.datasets as zd
from zerograd.datasets import (
    DataLoader,
    Dataset,
    RandomAffine,
    RandomRotation,
    RandomShift,
    TensorDataset,
    affine_images,
    rotate_images,
    shift_images,
)
from zerograd.errors import ShapeError, ZerogradError


def _toy(n=10):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    t = np.arange(n, dtype=np.int64) * 10
    return x, t


# ------------------------------------------------------------------ TensorDataset


def test_tensor_dataset_items_and_length():
    x, t = _toy()
    ds = TensorDataset(x, t)
    assert len(ds) == 10
    xi, ti = ds[3]
    assert xi.tolist() == [9.0, 10.0, 11.0] and ti == 30


def test_tensor_dataset_rejects_mismatched_lengths():
    with pytest.raises(ShapeError, match=r"different numbers of samples \(shapes \(10, 3\), \(9,\)\)"):
        TensorDataset(np.zeros((10, 3)), np.zeros(9))
    with pytest.raises(ZerogradError, match=r"at least one array"):
        TensorDataset()
    with pytest.raises(ShapeError, match=r"scalar"):
        TensorDataset(np.float32(1.0))


# ------------------------------------------------------------------ DataLoader


def test_sequential_batches_exact_contents_and_len():
    x, t = _toy()
    loader = DataLoader(TensorDataset(x, t), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [b[1].tolist() for b in batches] == [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90]]
    np.testing.assert_array_equal(batches[2][0], x[8:])
    assert batches[0][0].dtype == np.float32  # float data come out as float32
    assert batches[0][1].dtype == np.int64  # integer labels keep their type


def test_drop_last():
    x, t = _toy()
    loader = DataLoader(TensorDataset(x, t), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[1].tolist() for b in loader] == [[0, 10, 20, 30], [40, 50, 60, 70]]
    assert len(DataLoader(TensorDataset(x), batch_size=20, drop_last=True)) == 0
    assert list(DataLoader(TensorDataset(x), batch_size=20, drop_last=True)) == []


def test_default_batch_size_is_one():
    x, t = _toy(3)
    batches = list(DataLoader(TensorDataset(x, t)))
    assert len(batches) == 3 and batches[1][0].shape == (1, 3) and batches[1][1].tolist() == [10]


def test_shuffle_is_seeded_new_each_epoch_and_covers_every_sample():
    x, t = _toy(50)
    def epochs(loader, count):
        return [np.concatenate([b[1] for b in loader]).tolist() for _ in range(count)]

    a = epochs(DataLoader(TensorDataset(x, t), batch_size=8, shuffle=True, seed=123), 3)
    b = epochs(DataLoader(TensorDataset(x, t), batch_size=8, shuffle=True, seed=123), 3)
    c = epochs(DataLoader(TensorDataset(x, t), batch_size=8, shuffle=True, seed=124), 1)
    assert a == b  # same seed, same sequence of epochs
    assert a[0] != a[1] != a[2]  # a new permutation every epoch
    assert a[0] != c[0]
    assert a[0] != sorted(a[0])
    for epoch in a:
        assert sorted(epoch) == t.tolist()
    # rows stay together with their labels
    for xb, tb in DataLoader(TensorDataset(x, t), batch_size=8, shuffle=True, seed=1):
        np.testing.assert_array_equal(xb, x[tb // 10])


def test_generator_argument():
    x, t = _toy(20)
    first = [b[1].tolist() for b in DataLoader(TensorDataset(x, t), 5, True, generator=np.random.default_rng(7))]
    again = [b[1].tolist() for b in DataLoader(TensorDataset(x, t), 5, True, seed=7)]
    assert first == again
    with pytest.raises(ZerogradError, match=r"generator or seed, not both"):
        DataLoader(TensorDataset(x), generator=np.random.default_rng(0), seed=0)
    with pytest.raises(ZerogradError, match=r"numpy Generator"):
        DataLoader(TensorDataset(x), generator=7)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_bad_batch_size(bad):
    with pytest.raises(ZerogradError, match=r"batch_size must be a positive integer"):
        DataLoader(TensorDataset(np.zeros(3)), batch_size=bad)


class _RecordingDataset(TensorDataset):
    def __init__(self, *arrays):
        super().__init__(*arrays)
        self.requests = []

    def get_batch(self, indices):
        self.requests.append(indices)
        return super().get_batch(indices)


@pytest.mark.parametrize("shuffle", [False, True])
def test_fast_path_gathers_batch_by_batch_and_never_aliases_the_data(shuffle):
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    ds = _RecordingDataset(x.copy())
    for (xb,) in DataLoader(ds, batch_size=6, shuffle=shuffle, seed=0):
        xb[:] = -1  # a caller editing its batch in place
    np.testing.assert_array_equal(ds.arrays[0], x)
    sizes = [len(range(20)[i]) if isinstance(i, slice) else len(i) for i in ds.requests]
    assert sizes == [6, 6, 6, 2]  # one request per batch, never the whole dataset


class _Squares(Dataset):
    """A dataset computed on the fly: samples are (float image, int label)."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.full((2, 2), float(i)), i * i


class _OnlyImages(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return np.full(4, i, dtype=np.float64)


def test_generic_dataset_is_collated():
    batches = list(DataLoader(_Squares(), batch_size=2))
    assert len(batches) == 3
    xb, tb = batches[1]
    assert xb.shape == (2, 2, 2) and xb.dtype == np.float32 and xb[:, 0, 0].tolist() == [2.0, 3.0]
    assert tb.dtype == np.int64 and tb.tolist() == [4, 9]
    (only,) = next(iter(DataLoader(_OnlyImages(), batch_size=3)))  # single-array samples: 1-tuples
    assert only.shape == (3, 4) and only.dtype == np.float32


def test_collate_and_as_batch_are_the_batch_rule_loaders_share():
    from zerograd.datasets.loader import as_batch, collate

    x, t, flag = collate([(np.ones(2), 1, True), (np.zeros(2, np.float16), 2, False)])
    assert (x.shape, x.dtype, t.dtype, flag.dtype) == ((2, 2), np.float32, np.int64, np.bool_)
    assert t.tolist() == [1, 2] and flag.tolist() == [True, False]
    (only,) = collate([np.full(3, k, dtype=np.float64) for k in range(4)])  # single arrays: 1-tuples
    assert only.shape == (4, 3) and only.dtype == np.float32 and only[:, 0].tolist() == [0, 1, 2, 3]
    rows, labels = np.arange(6, dtype=np.float32).reshape(3, 2), np.arange(3)
    same, same_labels = as_batch([rows, labels])  # already right: no copy
    assert same is rows and same_labels is labels
    copied, copied_labels = as_batch([rows, labels], copy=True)
    assert not np.shares_memory(copied, rows) and not np.shares_memory(copied_labels, labels)
    (converted,) = as_batch([rows.astype(np.float64).tolist()])
    assert converted.dtype == np.float32 and converted.tolist() == rows.tolist()


def test_dataset_base_class_must_be_filled_in():
    with pytest.raises(NotImplementedError):
        len(Dataset())
    with pytest.raises(NotImplementedError):
        Dataset()[0]


def test_transform_applies_to_inputs_only():
    x, t = _toy(6)
    loader = DataLoader(TensorDataset(x, t), batch_size=3, transform=lambda xb: xb * 2)
    xb, tb = next(iter(loader))
    np.testing.assert_array_equal(xb, x[:3] * 2)
    assert tb.tolist() == [0, 10, 20]


def test_one_epoch_over_mnist():
    (x_train, t_train), _ = zd.load_mnist()
    loader = DataLoader(TensorDataset(x_train, t_train), batch_size=100, shuffle=True, seed=0)
    assert len(loader) == 600
    counts = np.zeros(10, dtype=np.int64)
    for xb, tb in loader:
        assert xb.shape == (100, 784) and xb.dtype == np.float32
        counts += np.bincount(tb, minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ------------------------------------------------------------------ augmentation


def _random_images(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, 256, shape).astype(dtype)
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("shape,dtype", [((3, 784), np.float32), ((3, 1, 28, 28), np.uint8),
                                         ((3, 28, 28), np.float64), ((2, 3, 5, 7), np.float32)])
def test_zero_shift_and_zero_rotation_are_identity(shape, dtype):
    x = _random_images(shape, dtype)
    for y in (affine_images(x), shift_images(x, 0, 0), rotate_images(x, 0.0),
              RandomAffine(0, 0.0, seed=1)(x), RandomAffine(0, 0.0, seed=1, mode="nearest")(x)):
        assert y.shape == x.shape and y.dtype == x.dtype
        np.testing.assert_array_equal(y, x)


def test_shift_by_one_moves_a_known_pixel():
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    x[0, 0, 5, 7] = 1.0
    right = shift_images(x, 1, 0)
    assert np.argwhere(right[0, 0]).tolist() == [[5, 8]] and right.sum() == 1.0
    down = shift_images(x, 0, 1)
    assert np.argwhere(down[0, 0]).tolist() == [[6, 7]]
    up_left = shift_images(x, -2, -3)
    assert np.argwhere(up_left[0, 0]).tolist() == [[2, 5]]
    # per-image shifts, flattened input
    flat = np.zeros((2, 784), dtype=np.float32)
    flat[:, 5 * 28 + 7] = 1.0
    moved = shift_images(flat, [1, -1], [0, 2])
    assert moved.shape == (2, 784)
    assert np.flatnonzero(moved[0]).tolist() == [5 * 28 + 8]
    assert np.flatnonzero(moved[1]).tolist() == [7 * 28 + 6]


def test_shift_past_the_edge_fills_with_zero():
    x = np.ones((1, 4, 4), dtype=np.uint8) * 9
    y = shift_images(x, 1, 0)
    assert y[0].tolist() == [[0, 9, 9, 9]] * 4


def test_rotate_90_degrees_centered_pattern():
    # A horizontal bar through the centre of a 28x28 image becomes a vertical bar.
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    x[0, 0, 13:15, 4:24] = 1.0
    y = rotate_images(x, 90)
    expected = np.zeros_like(x)
    expected[0, 0, 4:24, 13:15] = 1.0
    np.testing.assert_allclose(y, expected, atol=1e-6)
    # An arrow pointing right points up after a counter-clockwise quarter turn.
    arrow = np.zeros((1, 28, 28), dtype=np.uint8)
    arrow[0, 13, 10:20] = 255
    arrow[0, 12, 18] = arrow[0, 14, 18] = 255
    up = rotate_images(arrow, 90)
    assert up[0, 8:18, 13].tolist() == [255] * 10 and up[0, 18:, 13].sum() == 0
    assert up[0, 9, 12] == up[0, 9, 14] == 255  # the head is now at the top


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("degrees,k", [(90, 1), (180, 2), (-90, -1), (270, 3)])
def test_quarter_turns_match_rot90(degrees, k, mode):
    x = _random_images((2, 1, 28, 28), np.uint8)
    np.testing.assert_array_equal(rotate_images(x, degrees, mode=mode), np.rot90(x, k, axes=(2, 3)))
    f = _random_images((2, 6, 6), np.float32)
    np.testing.assert_allclose(rotate_images(f, degrees, mode=mode), np.rot90(f, k, axes=(1, 2)), atol=1e-6)


def test_small_rotation_keeps_centre_and_mass():
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    x[0, 0, 10:18, 10:18] = 1.0
    y = rotate_images(x, 10)
    assert y[0, 0, 13, 13] == pytest.approx(1.0)
    assert y.sum() == pytest.approx(x.sum(), rel=0.02)
    assert not np.array_equal(y, x)


def test_random_shift_is_seeded_and_bounded():
    x = np.zeros((200, 1, 28, 28), dtype=np.float32)
    x[:, 0, 14, 14] = 1.0
    a = RandomShift(2, seed=5)(x)
    b = RandomShift(2, seed=5)(x)
    np.testing.assert_array_equal(a, b)
    where = np.argwhere(a[:, 0] == 1.0)
    assert where.shape == (200, 3)  # every image still holds its pixel, moved whole
    dy, dx = where[:, 1] - 14, where[:, 2] - 14
    assert dy.min() == dx.min() == -2 and dy.max() == dx.max() == 2
    transform = RandomShift(2, seed=5)
    assert not np.array_equal(transform(x), transform(x))  # a new draw each batch


def test_random_rotation_angles_are_bounded():
    # A dot right of the centre, rotated by at most 15 degrees, stays within that arc (measured at its centroid).
    x = np.zeros((50, 28, 28), dtype=np.float32)
    x[:, 13:15, 23:25] = 1.0  # centred on the row axis: at angle 0
    y = RandomRotation(15, seed=0)(x)
    rows, cols = np.mgrid[0:28, 0:28]
    mass = y.sum(axis=(1, 2))
    np.testing.assert_allclose(mass, 4.0, rtol=0.01)  # bilinear resampling: close, not exact
    cy = (y * rows).sum(axis=(1, 2)) / mass - 13.5
    cx = (y * cols).sum(axis=(1, 2)) / mass - 13.5
    angles = np.degrees(np.arctan2(-cy, cx))
    assert np.all(np.abs(angles) <= 15.5)
    assert angles.min() < -8 and angles.max() > 8
    np.testing.assert_allclose(np.hypot(cx, cy), 10.0, atol=0.3)


def test_augmentation_output_types_and_errors():
    x = _random_images((4, 784), np.float32)
    y = RandomAffine(2, 10, seed=0)(x)
    assert y.shape == (4, 784) and y.dtype == np.float32 and 0.0 <= y.min() and y.max() <= 1.0
    u = RandomAffine(2, 10, seed=0)(_random_images((4, 1, 28, 28), np.uint8))
    assert u.dtype == np.uint8 and u.shape == (4, 1, 28, 28)
    with pytest.raises(ShapeError, match=r"783 pixels is not a square number"):
        RandomShift(1)(np.zeros((2, 783)))
    with pytest.raises(ShapeError, match=r"one entry per image \(2\)"):
        shift_images(np.zeros((2, 4, 4)), [1, 2, 3], 0)
    with pytest.raises(ZerogradError, match=r"max_shift must be a whole number"):
        RandomShift(1.5)
    with pytest.raises(ZerogradError, match=r"unknown interpolation mode 'cubic'"):
        rotate_images(np.zeros((1, 4, 4)), 10, mode="cubic")


def test_augmentation_as_dataloader_transform():
    (x_train, t_train), _ = zd.load_mnist()
    loader = DataLoader(TensorDataset(x_train[:64], t_train[:64]), batch_size=32,
                        transform=RandomAffine(2, 10, seed=0))
    batches = list(loader)
    assert len(batches) == 2
    xb, tb = batches[0]
    assert xb.shape == (32, 784) and xb.dtype == np.float32
    assert tb.tolist() == t_train[:32].tolist()
    assert not np.array_equal(xb, x_train[:32])
    # the ink moves but is roughly conserved
    np.testing.assert_allclose(xb.sum(axis=1), x_train[:32].sum(axis=1), rtol=0.25)


# ------------------------------------------------------------------ DataLoader(num_workers=...): background threads


def _workers():
    return [t for t in threading.enumerate() if t.name.startswith("zerograd-DataLoader-worker")]


class _Images(Dataset):
    """Images (1, 6, 6) with labels and no get_batch: the loader collates them sample by sample."""

    def __init__(self, n=23):
        self.x = np.random.default_rng(5).random((n, 1, 6, 6)).astype(np.float64)
        self.t = np.arange(n) % 7

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.t[i]


def _loader(kind, workers, prefetch=None, **kwargs):
    images = _Images()
    dataset = TensorDataset(images.x, images.t) if kind == "get_batch" else images
    return DataLoader(dataset, 5, generator=np.random.default_rng(11), num_workers=workers,
                      prefetch_factor=prefetch, transform=RandomAffine(1, 15, seed=3), **kwargs)


def _states(loader):
    return loader.generator.bit_generator.state, loader.transform.generator.bit_generator.state


@pytest.mark.parametrize("kind", ["get_batch", "samples"])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize("workers,prefetch", [(1, None), (1, 1), (3, 2)])
def test_workers_give_the_same_batches_and_generator_states(kind, shuffle, drop_last, workers, prefetch):
    plain = _loader(kind, 0, shuffle=shuffle, drop_last=drop_last)
    ahead = _loader(kind, workers, prefetch, shuffle=shuffle, drop_last=drop_last)
    assert len(ahead) == len(plain) == (4 if drop_last else 5)
    for _ in range(3):  # epochs: a new order and new draws each, the same with and without workers
        expected, got = list(plain), list(ahead)
        assert len(got) == len(expected)
        for a, b in zip(expected, got):
            assert all(x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))
        assert _states(ahead) == _states(plain)  # what a checkpoint after this epoch saves
    assert not _workers()


def test_workers_run_in_background_threads_and_stay_within_prefetch_factor():
    seen, fetched = [], threading.Semaphore(0)

    class Recording(TensorDataset):
        def get_batch(self, indices):
            seen.append(threading.current_thread().name)
            fetched.release()
            return super().get_batch(indices)

    loader = DataLoader(Recording(np.arange(40.0)), 4, num_workers=1, prefetch_factor=2)
    assert (loader.num_workers, loader.prefetch_factor) == (1, 2)
    it = iter(loader)
    assert not seen and not _workers()  # nothing is drawn or started before the first batch is asked for
    assert next(it)[0].tolist() == [0, 1, 2, 3]
    for _ in range(3):  # batch 0, then two ahead of the consumer ...
        assert fetched.acquire(timeout=10)
    assert not fetched.acquire(timeout=0.2)  # ... and no more until the consumer takes one
    assert len(seen) == 3 and all(name.startswith("zerograd-DataLoader-worker") for name in seen)
    assert [b[0][0] for b in it] == [4.0 * k for k in range(1, 10)]
    assert not _workers()


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("stop_after", [0, 1, 3, 4])
def test_an_epoch_left_early_stops_its_threads_and_leaves_the_generators_as_without_workers(workers, stop_after):
    baseline = threading.active_count()
    plain, ahead = _loader("get_batch", 0, shuffle=True), _loader("get_batch", workers, shuffle=True)
    for loader in (plain, ahead):
        for k, _ in enumerate(loader):
            if k == stop_after:
                break
    # The workers had transformed batches ahead: the transform's generator is put back to where batch
    # `stop_after` left it, so a checkpoint written now (fit's last iteration) is the same as without workers.
    assert _states(ahead) == _states(plain)
    assert threading.active_count() == baseline and not _workers()
    for a, b in zip(list(plain), list(ahead)):  # and the next epoch goes on alike
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert _states(ahead) == _states(plain)


def test_dropping_an_unfinished_iterator_and_iterating_twice_leak_no_thread():
    baseline = threading.active_count()
    loader = _loader("get_batch", 2, shuffle=True)
    it = iter(loader)
    next(it)
    assert _workers()
    del it  # garbage: __del__ stops and joins its threads
    assert threading.active_count() == baseline and not _workers()
    first, second = iter(loader), iter(loader)  # two epochs at once: each its own threads
    next(first)
    next(second)
    first.close()
    list(second)
    list(loader)
    assert threading.active_count() == baseline and not _workers()

    def consume():
        for _ in loader:
            raise KeyError("the training step failed")

    with pytest.raises(KeyError):
        consume()
    assert threading.active_count() == baseline and not _workers()


class _Boom(Exception):
    pass


def _failing_get_batch(ds, indices):
    if 12 in np.atleast_1d(np.arange(len(ds))[indices]):
        raise _Boom("cannot read sample 12")
    return TensorDataset.get_batch(ds, indices)


class _Failing(TensorDataset):
    get_batch = _failing_get_batch


def _failing_transform(x):
    if 12.0 in x:
        raise _Boom("cannot transform")
    return x + 1


@pytest.mark.parametrize("workers", [0, 1, 3])
@pytest.mark.parametrize("where", ["dataset", "transform"])
def test_an_error_preparing_a_batch_surfaces_at_that_batch_with_its_type_and_traceback(workers, where):
    x = np.arange(20.0).reshape(20, 1)  # batch 3 (of 5) holds sample 12, on which reading or transforming fails
    if where == "dataset":
        loader, origin = DataLoader(_Failing(x), 4, num_workers=workers), "_failing_get_batch"
    else:
        loader = DataLoader(TensorDataset(x), 4, num_workers=workers, transform=_failing_transform)
        origin = "_failing_transform"
    got = []
    with pytest.raises(_Boom) as info:
        for (xb,) in loader:
            got.append(xb[:, 0].tolist())
    assert len(got) == 3
    assert origin in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert not _workers()


def test_errors_keep_the_transform_generator_where_they_left_it():
    class Failing(RandomAffine):
        def __call__(self, x):
            out = super().__call__(x)  # draws, then fails: the draws stay drawn, as without workers
            if x[0, 0, 0, 0] > 0.9:
                raise _Boom("too bright")
            return out

    x = np.zeros((30, 1, 4, 4), np.float32)
    x[15, 0, 0, 0] = 1.0  # the first sample of batch 3 (batches of 5, in sequence)
    states = []
    for workers in (0, 1, 2):
        loader = DataLoader(TensorDataset(x), 5, num_workers=workers, transform=Failing(1, 5, seed=0))
        with pytest.raises(_Boom):
            list(loader)
        states.append(loader.transform.generator.bit_generator.state)
    assert states[0] == states[1] == states[2]
    assert not _workers()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_bad_num_workers(bad):
    with pytest.raises(ZerogradError, match=r"num_workers must be a whole number >= 0"):
        DataLoader(TensorDataset(np.zeros(3)), num_workers=bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_prefetch_factor(bad):
    with pytest.raises(ZerogradError, match=r"prefetch_factor must be a whole number >= 1"):
        DataLoader(TensorDataset(np.zeros(3)), num_workers=1, prefetch_factor=bad)


def test_prefetch_factor_needs_workers_as_in_pytorch():
    with pytest.raises(ZerogradError, match=r"prefetch_factor=2 needs background workers: pass num_workers=1"):
        DataLoader(TensorDataset(np.zeros(3)), prefetch_factor=2)
    assert DataLoader(TensorDataset(np.zeros(3))).prefetch_factor is None
    assert DataLoader(TensorDataset(np.zeros(3)), num_workers=2).prefetch_factor == 2
    assert DataLoader(TensorDataset(np.zeros(3)), num_workers=np.int64(1), prefetch_factor=5).prefetch_factor == 5


def test_distributed_loader_takes_the_same_workers():
    from zerograd import distributed as D  # rank and world_size given: no MPI needed

    x = np.random.default_rng(0).random((9, 2, 2)).astype(np.float32)
    for transform in (None, 1):
        shares = {}
        for workers in (0, 1, 2):
            loaders = [D.DistributedLoader(TensorDataset(x, np.arange(9)), 4, shuffle=True, rank=r, world_size=2,
                                           num_workers=workers,
                                           transform=RandomAffine(1, 10, seed=3) if transform else None)
                       for r in range(2)]
            shares[workers] = [[b[k].tolist() for b in loader for k in range(2)] for loader in loaders
                               for _ in range(2)]
        assert shares[0] == shares[1] == shares[2]
    assert not _workers()


def test_a_half_read_epoch_at_interpreter_exit_does_not_hang(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "exit.py"
    script.write_text(
        "import numpy as np\n"
        "from zerograd.datasets import DataLoader, RandomAffine, TensorDataset\n"
        "loader = DataLoader(TensorDataset(np.zeros((100, 784), np.float32)), 10, num_workers=2,\n"
        "                    transform=RandomAffine(seed=0))\n"
        "held = iter(loader)\n"
        "next(held)\n"
    )
    assert subprocess.run([sys.executable, str(script)], timeout=60).returncode == 0
