"""Fuzzing model files (safetensors + JSON metadata): bad files give ModelFileError, never a big allocation."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from _fuzz import TRIED, clean, fuzz, peak_bytes
from hypothesis import given
from hypothesis import strategies as st

from zerograd import nn
from zerograd.errors import ModelFileError, ZerogradError
from zerograd.io import load_model_file, save_model_file
from zerograd.models import MLP, load_model, save_model
from zerograd.training import load_checkpoint

META = {"format": "zerograd", "format_version": "1", "zerograd_version": "0.1.0"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def valid(folder) -> bytes:
    """A tiny but complete model file: MLP 4-3-2."""
    path = folder / "valid.safetensors"
    save_model(MLP(4, [3], 2, seed=0), path, {"note": "fuzz"})
    return path.read_bytes()


def _load(folder: Path, data: bytes, reader=load_model) -> object:
    path = folder / "x.safetensors"
    path.unlink(missing_ok=True)  # a new file is quicker to write than a truncated one
    path.write_bytes(data)
    result = clean("model file", reader, path)
    assert not isinstance(result, ZerogradError) or isinstance(result, ModelFileError), result
    return result


def _safetensors(header: dict, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def test_every_truncation_is_refused(folder, valid):
    for n in range(len(valid)):
        assert isinstance(_load(folder, valid[:n]), ModelFileError), n
    model, meta = _load(folder, valid)
    assert isinstance(model, MLP) and meta["training"] == {"note": "fuzz"}


@fuzz(120)
@given(data=st.data())
def test_bit_flips(folder, valid, data):
    flipped = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 3))):
        flipped[data.draw(st.integers(0, len(valid) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    result = _load(folder, bytes(flipped))
    assert isinstance(result, (tuple, ZerogradError))
    if isinstance(result, tuple):  # a flip inside the weights (or in a JSON string) still loads
        assert isinstance(result[0], nn.Module)


@fuzz(200)
@given(raw=st.binary(max_size=200) | st.binary(max_size=60).map(lambda b: struct.pack("<Q", len(b)) + b))
def test_random_bytes(folder, raw):
    assert isinstance(_load(folder, raw), ModelFileError)


DIMENSION = st.integers(-2, 6) | st.sampled_from([2**31, 2**32 + 1, 10**6, 10**12, 2**63, 2**64 + 3])
TENSOR_HEADER = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "I32", "U8", "BOOL", "C64", "F8_E4M3", "XYZ", ""]),
    "shape": st.lists(DIMENSION, max_size=4),
    "data_offsets": st.lists(st.integers(-1, 64) | st.sampled_from([2**40, 2**64 - 1]), min_size=0, max_size=3),
})


@fuzz(150)
@given(tensors=st.dictionaries(st.text(min_size=1, max_size=6), TENSOR_HEADER, max_size=3),
       payload=st.integers(0, 64))
def test_headers_that_lie_about_shapes_dtypes_and_offsets(folder, tensors, payload):
    header = {"__metadata__": {**META, "config": json.dumps({"kind": "model", "config": {"arch": "mlp"}})}, **tensors}
    data = _safetensors(header, bytes(range(payload)))
    for reader in (load_model_file, load_model):
        result = _load(folder, data, reader)
        assert isinstance(result, (tuple, ZerogradError))


def test_a_tensor_claiming_10_to_the_12_elements_allocates_nothing(folder):
    header = {"__metadata__": {**META, "config": "{}"},
              "w": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}
    path = folder / "huge.safetensors"
    path.write_bytes(_safetensors(header, bytes(16)))
    result, peak = peak_bytes(load_model_file, path)
    assert isinstance(result, ModelFileError) and "damaged safetensors file" in str(result)
    assert peak < 1_000_000, peak


def _json() -> st.SearchStrategy:
    scalars = (st.none() | st.booleans() | st.floats(allow_nan=False, width=32) | st.text(max_size=4)
               | st.integers(-3, 50) | st.sampled_from([10**6, 10**9, 10**12, 2**63, -(2**70)]))
    return st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c,
                                                                                       max_size=3), max_leaves=8)


SIZE = st.integers(-2, 12) | st.sampled_from([10**5, 10**9, 10**12, 2**64]) | _json()
CONFIG = st.fixed_dictionaries(
    {"arch": st.sampled_from(["mlp", "two-layer", "book-ch3", "simple-cnn", "deep-cnn", "resnet"]) | _json()},
    optional={"input_size": SIZE, "hidden": st.lists(SIZE, max_size=3) | SIZE, "num_classes": SIZE,
              "hidden_size": SIZE, "output_size": SIZE, "input_shape": st.lists(SIZE, max_size=4) | SIZE,
              "filters": SIZE, "kernel_size": SIZE, "activation": st.sampled_from(["relu", "tanh", "x"]) | _json(),
              "dropout": st.floats(-1, 2) | _json(), "batchnorm": st.booleans() | _json(),
              "init": st.sampled_from(["he", "xavier", "normal", "??"]) | _json(), "seed": SIZE, "extra": _json()},
)


@fuzz(80)
@given(config=CONFIG, checkpoint=st.booleans())
def test_configurations_of_any_shape(folder, config, checkpoint):
    """Random architectures and sizes beside real weights: a model or ModelFileError, memory bounded."""
    state = MLP(4, [3], 2, seed=0).state_dict()
    if checkpoint:
        state = {f"model.{k}": v for k, v in state.items()}
    path = folder / "config.safetensors"
    path.unlink(missing_ok=True)
    save_model_file(path, state, {"kind": "checkpoint" if checkpoint else "model", "config": config})
    result, peak = peak_bytes(clean, "model file", load_model, path)
    assert isinstance(result, (tuple, ModelFileError)), result
    # The file holds 23 weights; whatever the configuration says, loading stays within a few MB.
    assert peak < 5_000_000, (config, peak)


@pytest.mark.parametrize("config", [
    {"arch": "mlp", "input_size": 10**9, "hidden": [10**9]},
    {"arch": "mlp", "input_size": 784, "hidden": [100_000, 100_000]},
    {"arch": "two-layer", "input_size": 784, "hidden_size": 10**8},
    {"arch": "simple-cnn", "input_shape": [1, 100_000, 100_000]},
    {"arch": "simple-cnn", "filters": 10**6},
    {"arch": "deep-cnn", "input_shape": [10**5, 28, 28]},
    {"arch": "deep-cnn", "hidden": 10**9},
])
def test_configurations_bigger_than_their_weights_are_refused_before_building(folder, config):
    path = folder / "big.safetensors"
    save_model_file(path, MLP(4, [3], 2).state_dict(), {"kind": "model", "config": config})
    result, peak = peak_bytes(load_model, path)
    assert isinstance(result, ModelFileError) and "the file holds only 23 values" in str(result)
    assert peak < 1_000_000, peak
    save_model_file(path, {f"model.{k}": v for k, v in MLP(4, [3], 2).state_dict().items()},
                    {"kind": "checkpoint", "config": config, "epoch": 1, "iteration": 1, "history": {},
                     "settings": {}, "optimizer": {}, "generators": {}})
    result, peak = peak_bytes(load_checkpoint, path)  # zerograd train --resume reads it this way
    assert isinstance(result, ModelFileError) and "the file holds only 23 values" in str(result)
    assert peak < 1_000_000, peak


NESTED = ["[" * 5000 + "]" * 5000, '{"a": ' * 3000 + "1" + "}" * 3000]


@pytest.mark.parametrize("config_text", ["5", "[1]", "null", *NESTED])
def test_metadata_that_is_not_a_json_object(folder, config_text):
    for meta in ({**META, "config": config_text}, {**META, "config": 5}, {**META, "config": ["x"]}):
        assert isinstance(_load(folder, _safetensors({"__metadata__": meta})), ModelFileError)


def test_a_header_nested_thousands_deep(folder):
    data = _safetensors({"__metadata__": META}).replace(b'{"__metadata__"', b'{"x": ' + b"[" * 100_000
                                                         + b"]" * 100_000 + b', "__metadata__"', 1)
    data = struct.pack("<Q", len(data) - 8) + data[8:]
    assert isinstance(_load(folder, data), ModelFileError)


@pytest.fixture(scope="module")
def checkpoint_run(tmp_path_factory):
    """A finished 2-epoch run on 200 images: (its data folder, the bytes of its checkpoint)."""
    from _small_mnist import write_small_mnist

    from zerograd.cli import main

    root = tmp_path_factory.mktemp("checkpoint")
    data = write_small_mnist(root / "data", train=200, test=50)
    out = root / "run" / "m.safetensors"
    assert main(["train", "--data", str(data), "--hidden", "8", "--epochs", "3", "--out", str(out), "--quiet"]) == 0
    return data, (root / "run" / "m.checkpoint.safetensors").read_bytes()


@pytest.mark.parametrize(
    "old, new, message",
    [
        (b'optimizer\\": \\"adam', b'optimizer\\": \\"idam', "its setting optimizer = 'idam'"),
        (b'\\"epochs\\": 3, \\"iterations', b'\\"epochz\\": 3, \\"iterations', "its setting iterations"),
        (b'batch_size\\": 128', b'batch_size\\": 1.5', "its setting batch_size = 1.5"),
        (b'{\\"epochs\\": [{', b'{\\"epochz\\": [{', "records no finished epoch"),
    ],
)
def test_resuming_a_checkpoint_with_impossible_settings(checkpoint_run, tmp_path, capsys, old, new, message):
    """Bit flips the fuzz test below once met: a setting no command line can give, a history without epochs."""
    from zerograd.cli import main

    _, checkpoint = checkpoint_run
    assert checkpoint.count(old) == 1 and len(old) == len(new)
    path = tmp_path / "m.checkpoint.safetensors"
    path.write_bytes(checkpoint.replace(old, new))
    assert main(["train", "--resume", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged training checkpoint" in err and message in err, err


@fuzz(60)
@given(data=st.data())
def test_resuming_from_a_damaged_checkpoint(checkpoint_run, tmp_path_factory, data):
    """`zerograd train --resume` of a bit-flipped checkpoint: it trains on, or says what is wrong in one line."""
    import contextlib
    import io

    from zerograd.cli import main

    _, checkpoint = checkpoint_run
    header = int.from_bytes(checkpoint[:8], "little")
    # Mostly letters of the JSON header, flipped in their low bits: still valid JSON, but keys and
    # values the resume code does not expect (the damage that reaches furthest); then any byte.
    letters = [i for i in range(8, 8 + header) if chr(checkpoint[i]).isalpha()]
    flipped = bytearray(checkpoint)
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.integers(0, 3)):
            flipped[data.draw(st.sampled_from(letters))] ^= 1 << data.draw(st.integers(0, 4))
        else:
            flipped[data.draw(st.integers(0, len(checkpoint) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    path = tmp_path_factory.mktemp("resume") / "m.checkpoint.safetensors"
    path.write_bytes(bytes(flipped))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        TRIED["model file"] += 1
        code = main(["train", "--resume", str(path), "--quiet"])
    message = err.getvalue()
    assert code in (0, 1) and "internal error" not in message and message.count("\n") == (code == 1), message
