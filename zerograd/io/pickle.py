"""The book's .pkl weight files, read safely: a restricted unpickler that rebuilds NumPy arrays and nothing else.

The book ships its trained weights as pickles, and loading a pickle can run any code. This unpickler
admits only the globals a pickled dict of NumPy arrays names (by exact module and name), bounds the
number of instructions before it runs any, and never lets the file choose how much memory is allocated.
"""

from __future__ import annotations

import codecs
import importlib
import io
import os
import pickle
import pickletools
import reprlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError

__all__ = ["MAX_PICKLE_INSTRUCTIONS", "load_book_pickle"]

def _numpy_core(submodule: str, name: str) -> Any:
    """Fetch numpy._core.<submodule>.<name> (NumPy 2), falling back to numpy.core (NumPy 1)."""
    # Pickles from NumPy 1 name numpy.core.multiarray; importing numpy.core under NumPy 2 warns, so
    # both spellings resolve to whichever module this NumPy really has.
    try:
        module = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:
        module = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(module, name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for _codecs.encode, which protocol 0-2 pickles use to rebuild an array's raw bytes."""
    # The real _codecs.encode looks codecs up by name; only the one pickle itself uses is admitted.
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"unexpected encoding {encoding!r} for array data")
    return text.encode("latin1")


class _NdarrayType:
    """Stands for numpy.ndarray in a pickle: only _reconstruct may use it, nothing may call it.

    NumPy pickles name ndarray only as the first argument of _reconstruct; calling it (by REDUCE or
    NEWOBJ) would allocate an array of any shape the file names, so the real class is never handed out.
    """


_NDARRAY = _NdarrayType()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """Stand-in for numpy's _reconstruct, admitting only the empty placeholder NumPy itself pickles."""
    # NumPy always writes _reconstruct(ndarray, (0,), b'b') and then fills the array with BUILD, whose
    # __setstate__ checks the data's length against the shape before allocating anything.
    if subtype is not _NDARRAY or shape != (0,):
        raise pickle.UnpicklingError("unexpected arguments to numpy's _reconstruct (not a plain array)")
    return _numpy_core("multiarray", "_reconstruct")(np.ndarray, (0,), dtype)


def _sized_by_content(kind: type) -> Any:
    """bytes/bytearray that accept only content to copy: bytes(10**12) would allocate what a file asks."""

    def make(*args: Any) -> Any:
        if args and not isinstance(args[0], (str, bytes, bytearray)):
            raise pickle.UnpicklingError(f"{kind.__name__} may only be rebuilt from its content in a book pickle")
        return kind(*args)

    return make


# Everything a pickled dict of NumPy arrays refers to, under the names NumPy 1 and NumPy 2 write.
# Admission is by exact (module, name): numpy.save, say, is refused although numpy is trusted.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): lambda: _NDARRAY,
    ("numpy", "dtype"): lambda: np.dtype,
    ("collections", "OrderedDict"): lambda: __import__("collections").OrderedDict,
    ("_codecs", "encode"): lambda: _latin1_encode,
}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = lambda: _reconstruct
    _ALLOWED_GLOBALS[(f"{_core}.multiarray", "scalar")] = lambda: _numpy_core("multiarray", "scalar")
    _ALLOWED_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = lambda: _numpy_core("numeric", "_frombuffer")
_PLAIN_TYPES = ("dict", "list", "tuple", "set", "frozenset", "bytearray", "bytes",
                "int", "float", "complex", "bool", "str")
for _name in _PLAIN_TYPES:
    _ALLOWED_GLOBALS[("builtins", _name)] = lambda _name=_name: __import__("builtins").__dict__[_name]
    _ALLOWED_GLOBALS[("__builtin__", _name)] = _ALLOWED_GLOBALS[("builtins", _name)]  # Python 2 pickles
for _kind in (bytes, bytearray):
    _ALLOWED_GLOBALS[("builtins", _kind.__name__)] = _ALLOWED_GLOBALS[("__builtin__", _kind.__name__)] = (
        lambda _kind=_kind: _sized_by_content(_kind)
    )
# The book's pickles hold a few hundred instructions. Refusing more than this bounds the memory
# (an instruction of one byte can create a 60-byte object) and the nesting depth: hashing a dict key
# nested 100,000 tuples deep overflows the C stack and kills Python outright.
MAX_PICKLE_INSTRUCTIONS = 10_000


def _shown(text: str) -> str:
    """`text` for an error message: as is when short and printable, else quoted and cut (one short line)."""
    return text if len(text) <= 200 and text.isprintable() else repr(text[:200])


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays and plain containers and nothing else."""

    def __init__(self, file: Any, source: str) -> None:
        # latin1 lets Python 2 pickles (array bytes stored as str) load; it changes nothing for Python 3 ones.
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global; refuse every other one before it is imported."""
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise ModelFileError(
                f"refusing to load {_shown(module + '.' + name)} from {self._source}: book pickles may hold only "
                "NumPy arrays, and this one asks to run other code (it may be malicious; "
                "only load .pkl files from a source you trust, e.g. the book's repository)"
            )
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: plain pickles of arrays never use them."""
        raise ModelFileError(
            f"refusing persistent id {pid!r} in {self._source}: book pickles may hold only NumPy arrays"
        )


def _check_pickle_size(data: bytes, path: Path) -> None:
    """Refuse a pickle of more than MAX_PICKLE_INSTRUCTIONS instructions, reading it without running any."""
    # pickletools.genops only decodes instructions (and checks each one's length against the data);
    # it executes nothing, so this runs before the unpickler builds a single object.
    for count, _ in enumerate(pickletools.genops(data), start=1):
        if count > MAX_PICKLE_INSTRUCTIONS:
            raise ModelFileError(
                f"{path} holds more than {MAX_PICKLE_INSTRUCTIONS:,} pickle instructions; the book's weight "
                "files hold a few hundred, so this is not one of them (it may be malicious)"
            )


def load_book_pickle(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Safely read one of the book's .pkl weight files -> {name: array} (e.g. W1 (784, 50), b1 (50,), ...)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelFileError(f"{path} {what}; give the path of a .pkl weight file from the book")
    try:
        data = path.read_bytes()
        _check_pickle_size(data, path)
        obj = _ArraysOnlyUnpickler(io.BytesIO(data), str(path)).load()
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or garbage input fails in many different ways
        raise ModelFileError(
            f"{path} is not a readable pickle ({type(exc).__name__}: {exc}); expected one of the book's "
            ".pkl weight files (a pickled dict of NumPy arrays) - the file may be truncated, re-download it"
        ) from exc

    if not isinstance(obj, dict):
        raise ModelFileError(f"{path} holds a {type(obj).__name__}, expected a dict of NumPy arrays as in the book")
    arrays: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):  # reprlib: a hostile key may be nested thousands deep or huge
            raise ModelFileError(f"{path} has a non-string key {reprlib.repr(key)}; "
                                 "expected a dict of name -> NumPy array")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biufc":
            kind = f"an array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ModelFileError(f"{path} entry {reprlib.repr(key)} is {kind}; expected a numeric NumPy array")
        arrays[key] = value
    return arrays


