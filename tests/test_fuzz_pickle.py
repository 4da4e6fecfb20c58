"""Fuzzing the restricted unpickler of the book's pickles: it rebuilds arrays and runs nothing else."""

from __future__ import annotations

import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from _fuzz import clean, fuzz, peak_bytes
from conftest import BOOK_DATA
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zerograd.errors import ModelFileError
from zerograd.io.pickle import _ALLOWED_GLOBALS, MAX_PICKLE_INSTRUCTIONS, load_book_pickle

# A module of our own that a malicious pickle names: if anything calls canary.fire, the test sees it.
CANARY = types.ModuleType("zerograd_fuzz_canary")
CANARY.calls = []
CANARY.fire = lambda *a, **k: CANARY.calls.append(a)
CANARY.Fire = type("Fire", (), {"__init__": lambda self, *a: CANARY.calls.append(a),
                                "__setstate__": lambda self, s: CANARY.calls.append(s)})
sys.modules[CANARY.__name__] = CANARY

# Globals a pickle may name to run code, of every kind: shells, eval, import machinery, file access,
# attribute tricks, and NumPy functions other than array reconstruction.
FORBIDDEN = [
    ("zerograd_fuzz_canary", "fire"), ("zerograd_fuzz_canary", "Fire"),
    ("os", "system"), ("posix", "system"), ("nt", "system"), ("os", "popen"), ("os", "execv"), ("os", "remove"),
    ("subprocess", "Popen"), ("subprocess", "check_output"), ("subprocess", "run"), ("pty", "spawn"),
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "compile"), ("builtins", "getattr"),
    ("builtins", "setattr"), ("builtins", "__import__"), ("builtins", "open"), ("builtins", "globals"),
    ("builtins", "type"), ("builtins", "object"), ("builtins", "breakpoint"), ("builtins", "input"),
    ("__builtin__", "eval"), ("__builtin__", "execfile"), ("builtins", "dict.fromkeys"), ("builtins", "str.format"),
    ("importlib", "import_module"), ("importlib", "__import__"), ("importlib.util", "spec_from_file_location"),
    ("runpy", "run_path"), ("runpy", "run_module"), ("code", "interact"), ("pdb", "set_trace"),
    ("shutil", "rmtree"), ("webbrowser", "open"), ("pickle", "loads"), ("_pickle", "loads"), ("marshal", "loads"),
    ("copyreg", "_reconstructor"), ("functools", "partial"), ("functools", "reduce"), ("operator", "attrgetter"),
    ("operator", "methodcaller"), ("operator", "getitem"), ("ctypes", "CDLL"), ("sys", "exit"), ("socket", "socket"),
    ("numpy", "load"), ("numpy", "save"), ("numpy", "frombuffer"), ("numpy", "fromfile"), ("numpy", "loadtxt"),
    ("numpy", "array"), ("numpy", "empty"), ("numpy", "ones"), ("numpy", "ndarray.tofile"),
    ("numpy", "ndarray.__new__"),
    ("numpy.lib.npyio", "load"), ("numpy.testing._private.utils", "runstring"), ("numpy.f2py", "compile"),
    ("numpy.core.multiarray", "array"), ("numpy._core.multiarray", "fromstring"), ("numpy.core.numeric", "ones"),
    ("numpy.core.multiarray", "_reconstruct.__globals__"), ("numpy.ctypeslib", "load_library"),
    ("zerograd.io", "save_model_file"), ("zerograd.io", "_numpy_core"), ("collections", "namedtuple"),
]


def _str(proto: int, text: str) -> bytes:
    """Instructions pushing the str `text` (protocol 0's STRING, else BINUNICODE)."""
    if proto == 0:
        return b"V" + text.encode("raw_unicode_escape") + b"\n"
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _global(proto: int, module: str, name: str) -> bytes:
    """Instructions pushing module.name: GLOBAL, or STACK_GLOBAL from protocol 4."""
    if proto >= 4:
        return _str(proto, module) + _str(proto, name) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _header(proto: int) -> bytes:
    return b"\x80" + bytes([proto]) if proto >= 2 else b""


def _attacks(module: str, name: str) -> dict[str, bytes]:
    """Pickles that call or instantiate module.name by each route the format offers."""
    arg = "touch /tmp/zerograd-pwned"
    out = {}
    for proto in range(6):
        h = _header(proto)
        out[f"REDUCE p{proto}"] = h + _global(proto, module, name) + b"(" + _str(proto, arg) + b"tR."
        out[f"nested REDUCE p{proto}"] = (h + b"}" + _str(proto, "W") + _global(proto, module, name) + b"("
                                          + _str(proto, arg) + b"tRs.")
        out[f"BUILD state p{proto}"] = (h + _global(proto, "collections", "OrderedDict") + b")R"
                                        + _global(proto, module, name) + b"b.")
    out["INST"] = b"(" + _str(0, arg) + b"i" + module.encode() + b"\n" + name.encode() + b"\n."
    out["OBJ"] = b"(" + _global(0, module, name) + _str(0, arg) + b"o."
    out["NEWOBJ"] = _header(2) + _global(2, module, name) + b"(" + _str(2, arg) + b"t\x81."
    out["NEWOBJ_EX"] = _header(4) + _global(4, module, name) + b")}\x92."
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pkl")


def _load(folder: Path, data: bytes) -> object:
    path = folder / "x.pkl"
    path.unlink(missing_ok=True)  # a new file is quicker to write than a truncated one
    path.write_bytes(data)
    return clean("pickle", load_book_pickle, path, error=ModelFileError)


@pytest.mark.parametrize("module,name", FORBIDDEN)
def test_forbidden_globals_are_refused_by_every_route(folder, module, name):
    for route, data in _attacks(module, name).items():
        result = _load(folder, data)
        assert isinstance(result, ModelFileError), (route, result)
        assert f"refusing to load {module}.{name}" in str(result), route
    assert CANARY.calls == []
    assert not Path("/tmp/zerograd-pwned").exists()


@fuzz(150)
@given(module=st.text(min_size=1, max_size=30), name=st.text(min_size=1, max_size=30), proto=st.integers(4, 5))
def test_any_other_global_is_refused(folder, module, name, proto):
    if (module, name) in _ALLOWED_GLOBALS:
        return
    result = _load(folder, _header(proto) + _global(proto, module, name) + b")R.")
    assert isinstance(result, ModelFileError)


def test_allowed_globals_cannot_be_turned_into_allocations_or_calls(folder):
    """Admitted names used the wrong way: each would allocate what the file says, or build an odd object."""
    core = "numpy.core.multiarray"
    g = lambda m, n: _global(2, m, n)  # noqa: E731
    big = b"J\x40\x42\x0f\x00J\x40\x42\x0f\x00\x86"  # the tuple (10**6, 10**6) as two BININTs and TUPLE2
    tricks = {
        "ndarray(shape) by REDUCE": g("numpy", "ndarray") + b"(" + big + b"tR.",
        "ndarray(shape) by NEWOBJ": g("numpy", "ndarray") + b"(" + big + b"t\x81.",
        "bytes(10**12)": g("builtins", "bytes") + b"(\x8a\x06\x00\x10\xa5\xd4\xe8\x00tR.",
        "bytearray(10**12)": g("__builtin__", "bytearray") + b"(\x8a\x06\x00\x10\xa5\xd4\xe8\x00tR.",
        "_reconstruct with a huge shape": g(core, "_reconstruct") + b"(" + g("numpy", "ndarray") + big + b"C\x01btR.",
        "_reconstruct of another class": g(core, "_reconstruct") + b"(" + g("collections", "OrderedDict")
        + b"K\x00\x85C\x01btR.",
        "BUILD lying about the shape": g(core, "_reconstruct") + b"(" + g("numpy", "ndarray") + b"K\x00\x85C\x01btR"
        + b"(K\x01" + big + g("numpy", "dtype") + b"(X\x02\x00\x00\x00f8K\x00K\x01tRK\x00C\x08\x00\x00\x00\x00"
        b"\x00\x00\x00\x00tb.",
        "_frombuffer of a huge shape": g("numpy.core.numeric", "_frombuffer") + b"(C\x00" + g("numpy", "dtype")
        + b"(X\x02\x00\x00\x00f8K\x00K\x01tR" + big + b"X\x01\x00\x00\x00CtR.",
        "huge sub-array dtype": g("numpy", "dtype") + b"((X\x02\x00\x00\x00f8" + big + b"tK\x00K\x01tR.",
        "scalar of a huge void dtype": g(core, "scalar") + b"(" + g("numpy", "dtype")
        + b"(X\x0b\x00\x00\x00V1000000000K\x00K\x01tRC\x00tR.",
        "persistent id": b"P1\n.",
        "binary persistent id": b"K\x01Q.",
        "extension code": b"\x82\x01.",
        "dict holding a list": b"}X\x01\x00\x00\x00W]s.",
        "array of objects": b"}X\x01\x00\x00\x00W" + g(core, "_reconstruct") + b"(" + g("numpy", "ndarray")
        + b"K\x00\x85C\x01btR(K\x01K\x01\x85" + g("numpy", "dtype") + b"(X\x02\x00\x00\x00O8K\x00K\x01tR\x89]"
        + b"Natbs.",
    }
    for what, body in tricks.items():
        result, peak = peak_bytes(load_book_pickle, _write(folder, _header(2) + body))
        assert isinstance(result, ModelFileError), (what, result)
        assert peak < 5_000_000, (what, peak)
    assert CANARY.calls == []


def _write(folder: Path, data: bytes) -> Path:
    path = folder / "trick.pkl"
    path.write_bytes(data)
    return path


def test_pickles_nested_deeper_than_the_c_stack_are_refused_without_a_crash(tmp_path):
    # A dict key nested 200,000 tuples deep: plain pickle.loads dies of a C stack overflow (SIGSEGV)
    # while hashing it. Run in a child process so that a regression shows as a failure, not a dead suite.
    path = tmp_path / "deep.pkl"
    path.write_bytes(b"\x80\x02}" + b")" + b"\x85" * 200_000 + b"K\x01s.")
    code = ("import sys\nfrom zerograd.io import load_book_pickle\nfrom zerograd.errors import ModelFileError\n"
            "try:\n    load_book_pickle(sys.argv[1])\nexcept ModelFileError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"more than {MAX_PICKLE_INSTRUCTIONS:,} pickle instructions" in done.stdout


@pytest.mark.parametrize("depth", [100, 4_000])
def test_deep_but_short_pickles_are_refused_cleanly(folder, depth):
    key = b"\x80\x02}" + b")" + b"\x85" * depth + b"K\x01s."  # a nested tuple as a key
    value = b"\x80\x02}X\x01\x00\x00\x00W" + b"]" * depth + b"a" * (depth - 1) + b"s."  # nested lists
    for data in (key, value):
        result = _load(folder, data)
        assert isinstance(result, ModelFileError) and len(str(result)) < 1000


def test_long_pickles_are_refused_before_building_anything(folder):
    data = b"\x80\x02]" + b"(" + b"}" * 5_000_000 + b"e."  # 5 million empty dicts: ~300 MB if built
    result, peak = peak_bytes(load_book_pickle, _write(folder, data))
    assert isinstance(result, ModelFileError) and "pickle instructions" in str(result)
    assert peak < 3 * len(data), peak


ARRAYS = st.dictionaries(
    st.text(min_size=1, max_size=8),
    hnp.arrays(st.sampled_from(["<f4", ">f8", "<i8", "|u1", "|b1", "<c8", "<f2", ">i2"]),
               hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    max_size=4,
)


@fuzz(80)
@given(arrays=ARRAYS, proto=st.integers(0, 5))
def test_dicts_of_arrays_load_at_every_protocol(folder, arrays, proto):
    data = pickle.dumps(arrays, protocol=proto)
    back, expected = _load(folder, data), pickle.loads(data)  # our own pickle: plain pickle is the oracle
    assert back.keys() == arrays.keys()
    for key, value in expected.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape == arrays[key].shape
        assert back[key].tobytes() == value.tobytes()


@pytest.mark.parametrize("proto", range(6))
def test_every_truncation_is_refused(folder, proto):
    data = pickle.dumps({"W1": np.arange(6, dtype=np.float32).reshape(2, 3), "b1": np.zeros(3)}, protocol=proto)
    for n in range(len(data) - 1):  # without its final STOP instruction the pickle is incomplete too
        assert isinstance(_load(folder, data[:n]), ModelFileError), n


BOOK = (BOOK_DATA / "sample_weight.pkl").read_bytes()


@fuzz(150)
@given(data=st.data())
def test_bit_flips_of_the_books_pickle(folder, data):
    flipped = bytearray(BOOK)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, 2000) | st.integers(0, len(BOOK) - 1))  # mostly the structure, then the data
        flipped[i] ^= 1 << data.draw(st.integers(0, 7))
    result = _load(folder, bytes(flipped))
    assert isinstance(result, (dict, ModelFileError))


@fuzz(300)
@given(raw=st.binary(max_size=200) | st.binary(max_size=100).map(lambda b: b"\x80\x04" + b))
def test_random_bytes(folder, raw):
    result = _load(folder, raw)
    assert isinstance(result, (dict, ModelFileError))
    assert CANARY.calls == []
