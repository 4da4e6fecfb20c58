"""Model files: a state dict's arrays in a safetensors file, with zerograd's metadata in its header.

Everything here works on plain dicts of NumPy arrays so that it sits below the model and training
code: a model turns itself into such a dict (its state dict) and back.

Model files are safetensors files. Any safetensors reader can open their weights; zerograd adds, in the
header's ``__metadata__`` (which holds only str -> str), the keys

    "format": "zerograd"          marks the file as ours
    "format_version": "1"         bumped if this layout ever changes
    "zerograd_version": "0.1.0"   the library that wrote it, for error messages
    "config": "<JSON text>"       the caller's metadata dict (architecture, training settings, ...)

so a model file alone is enough to rebuild and evaluate the model. Arrays keep their dtype: weights stored
as float16 (`zerograd convert --dtype float16`) take half the bytes and load into a float32 model unchanged.
A training checkpoint is a model file too: its model's arrays are stored under the prefix
CHECKPOINT_MODEL_PREFIX beside the optimizer's.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import ModelFileError, ZerogradError
from .atomic import atomic_write_bytes

__all__ = [
    "CHECKPOINT_MODEL_PREFIX",
    "MODEL_FILE_FORMAT",
    "MODEL_FILE_FORMAT_VERSION",
    "checkpoint_model_state",
    "load_model_file",
    "require_safetensors",
    "save_model_file",
]

MODEL_FILE_FORMAT = "zerograd"
MODEL_FILE_FORMAT_VERSION = "1"
CHECKPOINT_MODEL_PREFIX = "model."  # a training checkpoint keeps the model's weights under this prefix

# safetensors caps its JSON header at 100 MB; zerograd's headers (architecture, settings, a checkpoint's
# history) take kilobytes, and parsing 100 MB of JSON would cost several times that in memory.
_HEADER_LIMIT = 16 * 1024 * 1024


def require_safetensors(task: str) -> Any:
    """Import safetensors.numpy, or say how to install it."""
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ZerogradError(f'{task} needs safetensors, which is not installed: pip install "zerograd[io]"') from exc
    return safetensors.numpy


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
        "zerograd_version": __version__,  # explains a format mismatch later
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


def checkpoint_model_state(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's state_dict out of a training checkpoint's arrays."""
    n = len(CHECKPOINT_MODEL_PREFIX)
    return {k[n:]: v for k, v in arrays.items() if k.startswith(CHECKPOINT_MODEL_PREFIX)}
