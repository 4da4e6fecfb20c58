"""Ready models by name or file: the pretrained list, and model files saved, loaded and exported to ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import nn
from ..errors import ModelFileError, ZerogradError
from ..io import checkpoint_model_state, load_book_pickle, load_model_file, load_pretrained_arrays, save_model_file
from .book import BOOK_ARCHS, book_model
from .config import build_model, check_config_fits
from .inputs import example_batch

__all__ = ["BOOK_PRETRAINED_ACCURACY", "PRETRAINED_MODELS", "export_model_file", "list_pretrained", "load_model",
           "load_pretrained", "save_model"]

# The book's weights shipped as npz (zerograd/pretrained/NAME.npz) and the test accuracy the book gives them.
BOOK_PRETRAINED_ACCURACY = {"book-ch3": 0.9352}
# Models trained with `zerograd train`, shipped as zerograd/pretrained/NAME.safetensors (how each was made:
# docs/library/cnn.md).
PRETRAINED_MODELS = {
    "mlp": "the default MLP 784-256-128-10 (ReLU)",
    "simple-cnn": "the book's SimpleConvNet (chapter 7)",
    "deep-cnn": "the book's DeepConvNet (chapter 8)",
}


def list_pretrained() -> list[str]:
    """Names usable as `pretrained:NAME` (and with load_pretrained)."""
    return [*BOOK_PRETRAINED_ACCURACY, *PRETRAINED_MODELS]


def load_pretrained(name: str) -> nn.Module:
    """A pretrained model shipped with zerograd, in eval mode: "book-ch3", "mlp", "simple-cnn" or "deep-cnn"."""
    return load_model(f"pretrained:{name}")[0]


def save_model(model: nn.Module, path: str | Path, training: dict[str, Any] | None = None,
               data: dict[str, Any] | None = None) -> None:
    """Writes weights and config (plus optional training settings/results) to a safetensors file.

    `data` records how the model's inputs were prepared (zerograd.training.data: class names, channels, image
    size, per-channel mean and std); `predict`, `evaluate` and `serve` prepare new images the same way.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise ZerogradError("save_model needs a model with a .config (built by zerograd.models); "
                            "for other modules save model.state_dict() with zerograd.io.save_model_file")
    meta: dict[str, Any] = {"kind": "model", "config": config, "training": training or {}}
    if data is not None:
        meta["data"] = data
    save_model_file(path, model.state_dict(), meta)


def load_model(spec: str | Path, arch: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A ready model and its metadata from a model file, "pretrained:NAME", or a book pickle with `arch`.

    Model files (.safetensors) carry their architecture; the book's pickles need `arch`
    (e.g. "book-ch3") since they hold only arrays. A model file's weights may be stored in float16 (half the
    file; `zerograd convert --dtype float16`): the model computes in float32 with those values, and
    meta["dtype"] names the type the file stores.
    """
    spec = str(spec)
    if spec.startswith("pretrained:"):
        name = spec.split(":", 1)[1]
        if name in BOOK_PRETRAINED_ACCURACY:
            results = {"test_accuracy": BOOK_PRETRAINED_ACCURACY[name]}
            model = book_model(name, load_pretrained_arrays(name))
            return model, {"kind": "model", "config": {"arch": name}, "training": {"results": results}}
        if name not in PRETRAINED_MODELS:
            raise ModelFileError(f"no pretrained model named {name!r}; available: {', '.join(list_pretrained())}")
        from importlib.resources import as_file, files

        with as_file(files("zerograd").joinpath("pretrained", f"{name}.safetensors")) as path:
            if not path.is_file():
                raise ModelFileError(f"the pretrained file zerograd/pretrained/{name}.safetensors is missing "
                                     "from this installation; reinstall zerograd")
            return load_model(path)
    if spec.lower().endswith(".onnx"):
        from ..onnx import load_model_onnx  # imported for .onnx files only: `import zerograd.models` stays light

        return load_model_onnx(spec)
    if arch is not None and arch != "auto":
        if arch not in BOOK_ARCHS:
            raise ZerogradError(f"unknown --arch {arch!r}: the book's networks here are {', '.join(BOOK_ARCHS)}")
        return book_model(arch, load_book_pickle(spec)), {"kind": "model", "config": {"arch": arch}}
    if spec.endswith(".pkl"):
        raise ModelFileError(f"{spec} is a pickle of bare arrays: say which network it holds, e.g. --arch book-ch3")
    state, meta = load_model_file(spec)
    if "config" not in meta or not isinstance(meta["config"], dict):
        raise ModelFileError(f"{spec} holds no model configuration: it was not written by zerograd.save_model")
    if meta.get("kind") == "checkpoint":
        state = checkpoint_model_state(state)
    stored = {str(v.dtype) for v in state.values() if v.dtype.kind == "f"}
    if len(stored) == 1:  # the type the file stores the weights in; the model computes in float32
        meta["dtype"] = stored.pop()
    check_config_fits(meta["config"], state, spec)
    try:
        model = build_model(meta["config"])
    except ZerogradError as err:  # an activation or init this zerograd lacks: name the file it came from
        raise ModelFileError(f"{spec}: {err}") from err
    try:
        model.load_state_dict(state)
    except ZerogradError as err:
        raise ModelFileError(f"{spec}: the weights do not fit its architecture: {err}") from err
    model.eval()
    return model, meta


def export_model_file(spec: str, out: str | Path, opset: int | None = None,
                      arch: str | None = None) -> dict[str, Any]:
    """Exports a model file, "pretrained:NAME" or a book pickle (with arch) to ONNX (default opset: the
    onnx module's DEFAULT_OPSET); returns a summary."""
    from .. import onnx  # imported when exporting only: `import zerograd.models` stays light

    opset = onnx.DEFAULT_OPSET if opset is None else opset
    onnx.check_opset(opset)  # the settings first, before the model is loaded
    Path(out).parent.mkdir(parents=True, exist_ok=True)  # as `zerograd train --out` does
    onnx.check_export_path(out)
    model, _ = load_model(spec, arch)
    example = example_batch(model)
    proto = onnx.export(model, example, out, opset)
    return {"path": str(out), "opset": int(opset), "input_shape": ["batch", *example.shape[1:]],
            "nodes": len(proto.graph.node), "parameters": sum(p.data.size for p in model.parameters())}
