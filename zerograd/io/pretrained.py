"""Weights shipped inside the package as plain .npz arrays (the book's chapter-3 network), no unpickling needed."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ModelFileError

__all__ = ["PRETRAINED", "list_pretrained_arrays", "load_pretrained_arrays"]

# Name -> what it is. Each name is shipped as zerograd/pretrained/<name>.npz (see
# scripts/convert_book_weights.py); npz needs no unpickling, unlike the book's .pkl originals.
PRETRAINED: dict[str, str] = {
    "book-ch3": "the book's chapter 3 network 784-50-100-10 (sigmoid, softmax): W1 b1 W2 b2 W3 b3, float32",
}


def list_pretrained_arrays() -> list[str]:
    """Names accepted by load_pretrained_arrays, e.g. ["book-ch3"] (models: zerograd.models.list_pretrained)."""
    return sorted(PRETRAINED)


def list_pretrained() -> list[str]:
    """Deprecated name of list_pretrained_arrays; zerograd.models.list_pretrained lists the ready models."""
    warnings.warn("zerograd.io.list_pretrained lists bundled weight arrays and is renamed list_pretrained_arrays; "
                  "for the models usable as pretrained:NAME call zerograd.models.list_pretrained",
                  DeprecationWarning, stacklevel=2)
    return list_pretrained_arrays()


def load_pretrained_arrays(name: str) -> dict[str, np.ndarray]:
    """Load weights bundled with zerograd -> {name: array}; "book-ch3" gives W1 (784, 50) ... b3 (10,)."""
    if name not in PRETRAINED:
        raise ModelFileError(f"no pretrained weights named {name!r}; available: {', '.join(list_pretrained_arrays())}")
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


