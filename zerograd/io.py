"""Reading and writing weights: the book's pickles (safely), the bundled pretrained arrays, model files.

Everything here works on plain dicts of NumPy arrays so that it sits below the model and training
code: a model turns itself into such a dict (its state dict) and back.

Model files are safetensors files. Any safetensors reader can open their weights; zerograd adds, in the
header's ``__metadata__`` (which holds only str -> str), the keys

    "format": "zerograd"          marks the file as ours
    "format_version": "1"         bumped if this layout ever changes
    "zerograd_version": "0.1.0"   the library that wrote it, for error messages
    "config": "<JSON text>"       the caller's metadata dict (architecture, training settings, ...)

so a model file alone is enough to rebuild and evaluate the model.
"""

from __future__ import annotations

import codecs
import errno
import importlib
import io
import json
import os
import pickle
import pickletools
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zerograd._atomic import atomic_write_bytes
from zerograd.errors import ModelFileError, ZerogradError

__all__ = [
    "load_book_pickle",
    "list_pretrained",
    "load_pretrained_arrays",
    "save_model_file",
    "load_model_file",
    "MODEL_FILE_FORMAT",
    "MODEL_FILE_FORMAT_VERSION",
]

MODEL_FILE_FORMAT = "zerograd"
MODEL_FILE_FORMAT_VERSION = "1"

# Name -> what it is. Each name is shipped as zerograd/pretrained/<name>.npz (see
# scripts/convert_book_weights.py); npz needs no unpickling, unlike the book's .pkl originals.
PRETRAINED: dict[str, str] = {
    "book-ch3": "the book's chapter 3 network 784-50-100-10 (sigmoid, softmax): W1 b1 W2 b2 W3 b3, float32",
}

# safetensors caps its JSON header at 100 MB; zerograd's headers (architecture, settings, a checkpoint's
# history) take kilobytes, and parsing 100 MB of JSON would cost several times that in memory.
_HEADER_LIMIT = 16 * 1024 * 1024


# --------------------------------------------------------------------------------------------------
# The book's pickles
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Pretrained arrays shipped with the package
# --------------------------------------------------------------------------------------------------


def list_pretrained() -> list[str]:
    """Names accepted by load_pretrained_arrays, e.g. ["book-ch3"]."""
    return sorted(PRETRAINED)


def load_pretrained_arrays(name: str) -> dict[str, np.ndarray]:
    """Load weights bundled with zerograd -> {name: array}; "book-ch3" gives W1 (784, 50) ... b3 (10,)."""
    if name not in PRETRAINED:
        raise ModelFileError(f"no pretrained weights named {name!r}; available: {', '.join(list_pretrained())}")
    from importlib.resources import as_file, files

    resource = files("zerograd").joinpath("pretrained").joinpath(f"{name}.npz")
    try:
        with as_file(resource) as npz_path, np.load(npz_path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"the pretrained file zerograd/pretrained/{name}.npz is missing from this installation; "
            "reinstall zerograd (in a source checkout: python scripts/convert_book_weights.py)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"the pretrained file zerograd/pretrained/{name}.npz is damaged ({exc}); reinstall zerograd"
        ) from exc


# --------------------------------------------------------------------------------------------------
# Model files (safetensors + JSON metadata)
# --------------------------------------------------------------------------------------------------


def require_safetensors(task: str) -> Any:
    """Import safetensors.numpy, or say how to install it."""
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ZerogradError(f'{task} needs safetensors, which is not installed: pip install "zerograd[io]"') from exc
    return safetensors.numpy


def _zerograd_version() -> str:
    """Installed zerograd version, recorded in model files to explain format mismatches later."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zerograd")
    except PackageNotFoundError:
        return "unknown"


def _tensor(key: str, value: Any) -> np.ndarray:
    """Turn one state-dict value into a C-contiguous little-endian array safetensors can store."""
    arr = np.asarray(value)
    if arr.dtype.hasobject or arr.dtype.kind not in "biuf":
        raise TypeError(f"state_dict[{key!r}] has dtype {arr.dtype}; model files store bool, integer and float arrays")
    # safetensors stores little-endian only; the values are unchanged by the byte swap.
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    # Not np.ascontiguousarray: it turns 0-d arrays (a step counter, say) into shape (1,).
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _json_scalar(value: Any) -> Any:
    """json.dumps fallback: NumPy scalars (a loss as np.float32, a count as np.int64) become Python numbers."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable; store arrays as tensors, not metadata")


def save_model_file(
    path: str | os.PathLike[str], state_dict: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
) -> None:
    """Write arrays {name: array of any shape} and a JSON-serialisable metadata dict to a .safetensors file.

    Metadata comes back from load_model_file as JSON gives it: tuples as lists, NumPy scalars as
    Python numbers.
    """
    st = require_safetensors(f"saving the model file {path}")
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"state_dict keys must be non-empty strings, got {key!r}")
        if key == "__metadata__":
            raise ValueError('"__metadata__" is reserved by the safetensors format; rename that array')
        tensors[key] = _tensor(key, value)
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        config = json.dumps(dict(metadata), default=_json_scalar)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable (str, numbers, bools, None, lists, dicts): {exc}") from exc
    header = {
        "format": MODEL_FILE_FORMAT,
        "format_version": MODEL_FILE_FORMAT_VERSION,
        "zerograd_version": _zerograd_version(),
        "config": config,
    }
    payload = st.save(tensors, metadata=header)

    folder = path.parent
    if path.is_dir():
        raise ZerogradError(
            f"cannot write the model file {path}: it is a folder; give a file name such as model.safetensors"
        )
    if not folder.is_dir():
        raise ZerogradError(f"cannot write the model file {path}: the folder {folder} does not exist; create it first")
    # Write beside the target and rename (see zerograd._atomic): a crash, a kill or a full disk
    # mid-write leaves the old file intact instead of a truncated one, and readers never see a
    # half-written model or checkpoint.
    try:
        atomic_write_bytes(path, payload)
    except OSError as exc:
        hint = {errno.ENOSPC: "the disk is full: free some space",
                errno.EROFS: "the folder is on a read-only file system: write elsewhere",
                errno.EACCES: "no permission to write there: write elsewhere"}.get(exc.errno, "")
        kept = "; the previous file under that name, if any, is unchanged"
        raise ZerogradError(
            f"cannot write the model file {path}: {exc.strerror or exc}{'; ' + hint if hint else ''}{kept}"
        ) from exc


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (an .npz file?)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
)


def _describe(data: bytes) -> str:
    """Guess what a non-model file is, so the error can tell the user what they passed."""
    if not data:
        return "the file is empty"
    for magic, what in _SIGNATURES:
        if data.startswith(magic):
            return f"it looks like {what}"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it looks like a Python pickle (for the book's .pkl weights use zerograd.io.load_book_pickle)"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "it is not in safetensors format"
    return "it looks like a text file"


def _read_safetensors_metadata(data: bytes, path: Path) -> dict[str, str]:
    """Parse the safetensors header of `data` -> its __metadata__ dict, or raise ModelFileError."""
    expected = "expected a .safetensors model file written by zerograd (save_model_file)"
    if len(data) < 8:
        raise ModelFileError(f"{path} is not a zerograd model file: {_describe(data)}; {expected}")
    header_len = int.from_bytes(data[:8], "little")
    header_bytes = data[8 : 8 + header_len]
    if header_len > _HEADER_LIMIT or not data[8:9] == b"{":
        raise ModelFileError(f"{path} is not a zerograd model file: {_describe(data)}; {expected}")
    if len(data) < 8 + header_len:
        raise ModelFileError(
            f"{path} is truncated: its safetensors header says {header_len} bytes but the file ends early; "
            "the file was cut off while copying or saving - copy or train it again"
        )
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise ModelFileError(f"{path} has a corrupt safetensors header ({exc}); {expected}") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{path} has a corrupt safetensors header (not a JSON object); {expected}")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FILE_FORMAT:
        raise ModelFileError(
            f"{path} is a safetensors file but not a zerograd model file (its metadata has no "
            f'"format": "{MODEL_FILE_FORMAT}" entry, so the architecture is unknown); {expected}'
        )
    return meta


def load_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by save_model_file -> ({name: array}, metadata dict as saved)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelFileError(f"the model file {path} {what}; give the path of a .safetensors file saved by zerograd")
    st = require_safetensors(f"loading the model file {path}")
    try:
        # One read into memory rather than a memory map: the arrays stay valid after the file is
        # replaced (e.g. by the next save), and Windows lets os.replace overwrite it meanwhile.
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file {path}: {exc.strerror or exc}") from exc

    meta = _read_safetensors_metadata(data, path)
    version = meta.get("format_version", "")
    if version != MODEL_FILE_FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses zerograd model file format {version!r} (written by zerograd "
            f"{meta.get('zerograd_version', 'unknown')}); this zerograd reads format "
            f"{MODEL_FILE_FORMAT_VERSION!r} - upgrade zerograd to load it"
        )
    config_text = meta.get("config", "")
    if not isinstance(config_text, str):  # safetensors metadata is str -> str; a hand-made header may lie
        raise ModelFileError(f"{path} has zerograd metadata that is not JSON text; save the model again")
    try:
        config = json.loads(config_text)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise ModelFileError(f"{path} has unreadable zerograd metadata ({exc}); save the model again") from exc
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} has zerograd metadata that is not a JSON object; save the model again")
    try:
        tensors = st.load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError for every defect
        raise ModelFileError(
            f"{path} is a damaged safetensors file ({exc}); the file was probably cut off - copy or save it again"
        ) from exc
    return dict(tensors), config
