"""Tests for zerograd.io: restricted unpickling, bundled pretrained arrays, safetensors model files."""

from __future__ import annotations

import builtins
import collections
import gzip
import importlib.util
import json
import os
import pickle
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from zerograd.errors import ModelFileError, ZerogradError
from zerograd.io import (
    MODEL_FILE_FORMAT_VERSION,
    list_pretrained,
    load_book_pickle,
    load_model_file,
    load_pretrained_arrays,
    save_model_file,
)

REPO = Path(__file__).resolve().parent.parent
from conftest import BOOK_DATA, MNIST_DATA  # noqa: E402

BOOK = BOOK_DATA
MNIST = MNIST_DATA

CH3_SHAPES = {"W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------------------------------
# load_book_pickle
# --------------------------------------------------------------------------------------------------


def test_book_ch3_pickle_loads_with_book_shapes() -> None:
    arrays = load_book_pickle(BOOK / "sample_weight.pkl")
    assert {k: v.shape for k, v in arrays.items()} == CH3_SHAPES
    assert all(v.dtype == np.float32 for v in arrays.values())
    assert type(arrays) is dict


def test_book_convnet_pickles_load() -> None:
    simple = load_book_pickle(BOOK / "simple_convnet_params.pkl")
    assert simple["W1"].shape == (30, 1, 5, 5) and simple["W2"].shape == (4320, 100)
    assert all(v.dtype == np.float64 for v in simple.values())
    deep = load_book_pickle(BOOK / "deep_convnet_params.pkl")
    assert sorted(deep) == sorted([f"W{i}" for i in range(1, 9)] + [f"b{i}" for i in range(1, 9)])
    assert deep["W1"].shape == (16, 1, 3, 3) and deep["W6"].shape == (64, 64, 3, 3)
    assert deep["W7"].shape == (1024, 50) and deep["b8"].shape == (10,)


def _sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "W": rng.standard_normal((4, 3)).astype(np.float32),
        "b": rng.standard_normal(3),
        "big_endian": np.arange(5, dtype=">i4"),
        "fortran": np.asfortranarray(rng.standard_normal((3, 2))),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3)),
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("container", [dict, collections.OrderedDict])
def test_pickles_of_arrays_load_at_every_protocol(tmp_path: Path, protocol: int, container: type) -> None:
    arrays = _sample_arrays()
    data = pickle.dumps(container(arrays), protocol=protocol)
    path = tmp_path / "w.pkl"
    path.write_bytes(data)
    loaded = load_book_pickle(path)
    # The trusted unpickler is the reference (NumPy itself turns >i4 into <i4 below protocol 5).
    reference = pickle.loads(data)
    assert type(loaded) is dict and list(loaded) == list(arrays)
    for key, arr in arrays.items():
        assert _bits_equal(loaded[key], reference[key]), key
        assert np.array_equal(loaded[key], arr), key


def test_numpy1_module_path_loads_under_numpy2(tmp_path: Path) -> None:
    # Protocol 2 spells globals as text, so a NumPy 2 pickle can be turned into what NumPy 1 writes.
    data = pickle.dumps({"W": np.arange(6.0).reshape(2, 3)}, protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in data
    path = tmp_path / "old.pkl"
    path.write_bytes(data)
    assert np.array_equal(load_book_pickle(path)["W"], np.arange(6.0).reshape(2, 3))


class _Payload:
    """Pickles as a call of `func(*args)`, the way a malicious pickle runs code on load."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _payloads(target: Path) -> dict[str, object]:
    return {
        "builtins.open": _Payload(builtins.open, str(target), "w"),
        "os.system": _Payload(os.system, f"touch {target}"),
        "builtins.exec": _Payload(builtins.exec, f"open({str(target)!r}, 'w').close()"),
        # numpy itself is trusted for arrays, but only the exact names arrays need are admitted.
        "numpy.save": _Payload(np.save, str(target), np.zeros(1)),
        "pathlib.Path.touch": _Payload(Path.touch, target),
    }


@pytest.mark.parametrize("name", ["builtins.open", "os.system", "builtins.exec", "numpy.save", "pathlib.Path.touch"])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path: Path, name: str) -> None:
    target = tmp_path / "pwned"
    payload = _payloads(target)[name]
    # Hide the payload after a real array, where a careless loader would already be committed.
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"W1": np.ones((2, 2), np.float32), "b1": payload}, protocol=4))
    with pytest.raises(ModelFileError) as info:
        load_book_pickle(evil)
    assert not target.exists() and not target.with_suffix(".npy").exists()
    message = str(info.value)
    assert "evil.pkl" in message and "refusing to load" in message and "only NumPy arrays" in message
    assert name.rsplit(".", 1)[-1] in message


def test_refusal_names_the_forbidden_global(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")  # protocol 0: os.system('echo hi')
    with pytest.raises(ModelFileError, match=r"refusing to load os\.system from .*evil\.pkl"):
        load_book_pickle(evil)


@pytest.mark.parametrize(
    "obj, problem",
    [
        ([np.zeros(2)], "holds a list"),
        ({1: np.zeros(2)}, "non-string key"),
        ({"W": 3.0}, "entry 'W' is float"),
        ({"W": [1.0, 2.0]}, "entry 'W' is list"),
        ({"W": np.array([1, "a"], dtype=object)}, "dtype object"),
    ],
)
def test_pickle_that_is_not_a_dict_of_numeric_arrays(tmp_path: Path, obj: object, problem: str) -> None:
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(ModelFileError, match=problem) as info:
        load_book_pickle(path)
    assert "odd.pkl" in str(info.value)


def test_truncated_book_pickle(tmp_path: Path) -> None:
    path = tmp_path / "sample_weight.pkl"
    path.write_bytes((BOOK / "sample_weight.pkl").read_bytes()[:100_000])
    with pytest.raises(ModelFileError, match=r"sample_weight\.pkl is not a readable pickle.*truncated"):
        load_book_pickle(path)


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n", bytes(range(256)) * 4, b"\x80\x04\x95"])
def test_garbage_pickle(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="garbage.pkl"):
        load_book_pickle(path)


def test_missing_pickle(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="nope.pkl does not exist"):
        load_book_pickle(tmp_path / "nope.pkl")
    with pytest.raises(ModelFileError, match="is a folder"):
        load_book_pickle(tmp_path)


# --------------------------------------------------------------------------------------------------
# Pretrained arrays
# --------------------------------------------------------------------------------------------------


def test_list_pretrained() -> None:
    with pytest.deprecated_call(match="renamed list_pretrained_arrays"):
        assert list_pretrained() == ["book-ch3"]


def test_book_ch3_npz_is_shipped_in_the_package_and_needs_no_pickle() -> None:
    npz_path = REPO / "zerograd" / "pretrained" / "book-ch3.npz"
    with np.load(npz_path, allow_pickle=False) as npz:
        assert npz.files == list(CH3_SHAPES)
    arrays = load_pretrained_arrays("book-ch3")
    assert {k: v.shape for k, v in arrays.items()} == CH3_SHAPES
    assert all(v.dtype == np.float32 for v in arrays.values())


def test_book_ch3_npz_equals_the_pickle_exactly() -> None:
    from_pickle = load_book_pickle(BOOK / "sample_weight.pkl")
    shipped = load_pretrained_arrays("book-ch3")
    assert sorted(shipped) == sorted(from_pickle)
    for key in from_pickle:
        assert _bits_equal(shipped[key], from_pickle[key]), key


def test_book_ch3_weights_reach_the_books_accuracy() -> None:
    # The book reports 0.9352 on the MNIST test set for sample_weight.pkl.
    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    with gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        t = np.frombuffer(f.read(), np.uint8, offset=8)
    p = load_pretrained_arrays("book-ch3")

    def sigmoid(a: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-a))

    scores = sigmoid(sigmoid(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]) @ p["W3"] + p["b3"]
    assert (scores.argmax(axis=1) == t).mean() == pytest.approx(0.9352, abs=1e-12)


def test_unknown_pretrained_name_lists_the_available_ones() -> None:
    with pytest.raises(ModelFileError, match=r"no pretrained weights named 'book-ch7'; available: book-ch3"):
        load_pretrained_arrays("book-ch7")


def test_convert_script_reproduces_the_shipped_npz_byte_for_byte(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("convert_book_weights", REPO / "scripts" / "convert_book_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "book-ch3.npz"
    assert module.main([str(BOOK / "sample_weight.pkl"), "--output", str(out)]) == 0
    assert out.read_bytes() == (REPO / "zerograd" / "pretrained" / "book-ch3.npz").read_bytes()


# --------------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------------


def _state_dict() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    special = np.array([np.nan, -0.0, np.inf, -np.inf, np.finfo(np.float32).tiny / 2, 1e-45], dtype=np.float32)
    return {
        "layers.0.weight": rng.standard_normal((784, 50)).astype(np.float32),
        "layers.0.bias": np.zeros(50, np.float32),
        "conv.weight": rng.standard_normal((30, 1, 5, 5)),  # float64
        "specials": special,
        "optimizer.step": np.array(1234, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "counts": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "empty": np.zeros((0, 7), np.float32),
    }


METADATA = {
    "architecture": {"type": "mlp", "sizes": [784, 50, 100, 10], "activation": "sigmoid"},
    "training": {"lr": 0.1, "epochs": 3, "batch_size": 100, "seed": None, "augment": False},
    "notes": "μ-law 测试 \"quoted\"",
}


def test_model_file_round_trip_is_bit_exact(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    state = _state_dict()
    save_model_file(path, state, METADATA)
    loaded, meta = load_model_file(path)
    assert meta == METADATA
    assert sorted(loaded) == sorted(state)
    for key, arr in state.items():
        assert _bits_equal(loaded[key], arr), key
        assert loaded[key].flags.writeable


def test_unusual_layouts_are_stored_by_value(tmp_path: Path) -> None:
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    state = {"strided": base[::2, 1::2], "transposed": base.T, "big_endian": base.astype(">f8")}
    path = tmp_path / "m.safetensors"
    save_model_file(path, state, {})
    loaded, meta = load_model_file(path)
    assert meta == {}
    for key, arr in state.items():
        assert loaded[key].shape == arr.shape and np.array_equal(loaded[key], arr), key


def test_model_file_opens_with_plain_safetensors(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = tmp_path / "model.safetensors"
    state = _state_dict()
    save_model_file(path, state, METADATA)
    plain = load_file(str(path))
    assert all(_bits_equal(plain[k], v) for k, v in state.items())
    with safe_open(str(path), framework="np") as f:
        header = f.metadata()
    assert header["format"] == "zerograd"
    assert header["format_version"] == MODEL_FILE_FORMAT_VERSION
    assert header["zerograd_version"]
    assert json.loads(header["config"]) == METADATA


def test_save_overwrites_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_model_file(path, {"w": np.ones(3, np.float32)}, {"v": 1})
    save_model_file(path, {"w": np.zeros(5, np.float32)}, {"v": 2})
    loaded, meta = load_model_file(path)
    assert meta == {"v": 2} and np.array_equal(loaded["w"], np.zeros(5, np.float32))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    save_model_file(path, {"w": np.ones(3, np.float32)}, {"v": 1})
    before = path.read_bytes()

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ZerogradError, match=r"cannot write the model file .*model\.safetensors: No space left"):
        save_model_file(path, {"w": np.zeros(3, np.float32)}, {"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_metadata_comes_back_as_json_gives_it(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    meta = {"loss": np.float32(0.25), "steps": np.int64(7), "sizes": (784, 10), "seed_state": 2**127 + 1,
            "best": float("inf")}
    save_model_file(path, {}, meta)
    _, loaded = load_model_file(path)
    assert loaded == {"loss": 0.25, "steps": 7, "sizes": [784, 10], "seed_state": 2**127 + 1, "best": float("inf")}
    assert type(loaded["loss"]) is float and type(loaded["steps"]) is int


def test_save_rejects_what_it_cannot_store(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError, match="dtype object"):
        save_model_file(path, {"w": np.array([1, "x"], dtype=object)}, {})
    with pytest.raises(TypeError, match="JSON-serialisable"):
        save_model_file(path, {"w": np.ones(2)}, {"shape": np.ones(2)})
    with pytest.raises(TypeError, match="keys must be non-empty strings"):
        save_model_file(path, {3: np.ones(2)}, {})
    with pytest.raises(ValueError, match="reserved"):
        save_model_file(path, {"__metadata__": np.ones(2)}, {})
    with pytest.raises(ZerogradError, match="does not exist; create it first"):
        save_model_file(tmp_path / "missing" / "m.safetensors", {"w": np.ones(2)}, {})
    assert list(tmp_path.iterdir()) == []


def _safetensors_bytes(metadata: dict[str, str] | None) -> bytes:
    from safetensors.numpy import save

    return save({"w": np.ones((3, 3), np.float32)}, metadata=metadata)


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    return buf.getvalue()


def _model_bytes(tmp_path: Path) -> bytes:
    save_model_file(tmp_path / "good.safetensors", {"w": np.ones((64, 64), np.float32)}, {"a": 1})
    return (tmp_path / "good.safetensors").read_bytes()


@pytest.mark.parametrize(
    "make, expected_message",
    [
        (lambda tmp: b"", "the file is empty"),
        (lambda tmp: b"epochs: 3\nlr: 0.1\n", "looks like a text file"),
        (lambda tmp: _png_bytes(), "looks like a PNG image"),
        (lambda tmp: pickle.dumps({"W1": np.ones(2)}), "looks like a Python pickle"),
        (lambda tmp: _model_bytes(tmp)[:40], "is truncated"),
        (lambda tmp: _model_bytes(tmp)[:-100], "damaged safetensors file"),
        (lambda tmp: _safetensors_bytes(None), "safetensors file but not a zerograd model file"),
        (lambda tmp: _safetensors_bytes({"format": "pt"}), "safetensors file but not a zerograd model file"),
    ],
    ids=["empty", "text", "png", "pickle", "truncated-header", "truncated-data", "no-metadata", "foreign-metadata"],
)
def test_files_that_are_not_model_files(tmp_path: Path, make, expected_message: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(make(tmp_path))
    with pytest.raises(ModelFileError) as info:
        load_model_file(path)
    message = str(info.value)
    assert str(path) in message and expected_message in message


def test_newer_format_version_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "future.safetensors"
    header = {"format": "zerograd", "format_version": "99", "zerograd_version": "9.0", "config": "{}"}
    path.write_bytes(_safetensors_bytes(header))
    with pytest.raises(ModelFileError, match=r"format '99' \(written by zerograd 9\.0\).*upgrade zerograd"):
        load_model_file(path)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"model file .*nope\.safetensors does not exist"):
        load_model_file(tmp_path / "nope.safetensors")


def test_missing_safetensors_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # makes the import fail
    with pytest.raises(ZerogradError, match=r'pip install "zerograd\[io\]"'):
        save_model_file(tmp_path / "m.safetensors", {"w": np.ones(2)}, {})
    (tmp_path / "m.safetensors").write_bytes(b"x")
    with pytest.raises(ZerogradError, match=r'pip install "zerograd\[io\]"'):
        load_model_file(tmp_path / "m.safetensors")
