"""zerograd.save / zerograd.load: state dicts and checkpoints as safetensors files, never pickles.

torch.save pickles, and loading a pickle can run any code. Here the arrays go into a safetensors
file and the structure around them (nested dicts, lists and tuples, numbers, strings, None) into
its JSON header, so loading only ever parses JSON and copies bytes. Tensors come back as Tensors
(Parameters as Parameters) and NumPy arrays as arrays; NumPy scalars come back as Python numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ModelFileError, ZerogradError
from .io import load_model_file, save_model_file
from .nn.module import Parameter
from .tensor import Tensor

_KIND = "zerograd.save"


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON tree for obj; its arrays go into `arrays` under their path."""
    if isinstance(obj, (Tensor, np.ndarray)):
        key = path or "tensor"
        while key in arrays:  # "a/b" could name both {"a/b": x} and {"a": {"b": y}}
            key += "'"
        arrays[key] = obj.data if isinstance(obj, Tensor) else obj
        kind = "parameter" if isinstance(obj, Parameter) else "tensor" if isinstance(obj, Tensor) else "array"
        return {"$": kind, "key": key, "requires_grad": bool(getattr(obj, "requires_grad", False))}
    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise ZerogradError(f"zerograd.save: dict keys must be str or int, got {k!r} at '{path}'")
            items.append([k, _encode(v, f"{path}/{k}" if path else str(k), arrays)])
        return {"$": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"$": kind, "items": [_encode(v, f"{path}/{i}" if path else str(i), arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"$": "value", "value": obj}
    raise ZerogradError(
        f"zerograd.save stores tensors, arrays, numbers, strings, None and dicts/lists/tuples of them; "
        f"'{path or 'the object'}' is a {type(obj).__name__}: save its state_dict() instead"
    )


def _decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    kind = node["$"]
    if kind == "value":
        return node["value"]
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    array = arrays[node["key"]]
    if kind == "array":
        return array
    if kind == "parameter":
        return Parameter(array, requires_grad=node["requires_grad"])
    return Tensor(array, requires_grad=node["requires_grad"])


def save(obj: Any, f: str | os.PathLike[str]) -> None:
    """Writes a state dict, or nested dicts/lists of tensors, arrays and numbers, to the safetensors file f."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, "", arrays)
    save_model_file(f, arrays, {"kind": _KIND, "object": tree})


def load(f: str | os.PathLike[str], map_location: Any = None, weights_only: bool = True) -> Any:
    """Reads what zerograd.save wrote; map_location and weights_only are accepted for PyTorch code (nothing runs)."""
    arrays, meta = load_model_file(f)
    if meta.get("kind") != _KIND or "object" not in meta:
        raise ModelFileError(
            f"{f} is a zerograd model file, not one written by zerograd.save: "
            "read it with zerograd.models.load_model or zerograd.io.load_model_file"
        )
    try:
        return _decode(meta["object"], arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{f} has a damaged zerograd.save structure ({exc}); save it again") from exc
