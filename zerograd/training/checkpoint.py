"""Training checkpoints: everything needed to resume a run after an epoch, in one model file.

A checkpoint holds the model's weights (under io's CHECKPOINT_MODEL_PREFIX), the optimizer's state
(its arrays beside the weights, the rest in the JSON header), the scheduler, every random generator
and the history, so that a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..datasets import DataLoader
from ..errors import ModelFileError, ZerogradError
from ..io import CHECKPOINT_MODEL_PREFIX, checkpoint_model_state, load_model_file, save_model_file
from ..models import check_config_fits
from .history import History

__all__ = ["load_checkpoint", "restore_generators", "save_checkpoint"]


def _split_arrays(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able copy of obj with every array moved into `arrays` under a dotted key."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, f"{prefix}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, f"{prefix}.{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join_arrays(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj


def _int_keys(obj: Any) -> Any:
    """JSON turned integer keys (optimizer state by parameter index) into strings: turn them back."""
    if isinstance(obj, dict):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): _int_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_int_keys(v) for v in obj]
    return obj


def _generators(model: nn.Module, loader: DataLoader) -> dict[str, np.random.Generator]:
    gens = {"loader": loader.generator}
    transform_generator = getattr(loader.transform, "generator", None)
    if isinstance(transform_generator, np.random.Generator):
        gens["transform"] = transform_generator
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator):
                gens[f"{name or 'model'}.{attr}"] = value
    return gens


def restore_generators(model: nn.Module, loader: DataLoader, states: dict[str, Any]) -> None:
    """Puts every random generator of the run back in the state a checkpoint recorded."""
    generators = _generators(model, loader)
    for name, state in states.items():
        if name in generators:
            generators[name].bit_generator.state = state


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: Any, scheduler: Any, loader: DataLoader,
                    history: History, epoch: int, iteration: int, settings: dict[str, Any]) -> None:
    """Writes everything needed to resume training after `epoch`, atomically."""
    arrays = {f"{CHECKPOINT_MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
    state = {
        "kind": "checkpoint",
        "config": getattr(model, "config", None),
        "epoch": epoch,
        "iteration": iteration,
        "history": history.to_dict(),
        "settings": settings,
        "optimizer": _split_arrays(optimizer.state_dict(), "optim", arrays),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "generators": {k: g.bit_generator.state for k, g in _generators(model, loader).items()},
    }
    save_model_file(path, arrays, state)


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(model state_dict, everything else) from a checkpoint written by fit."""
    arrays, meta = load_model_file(path)
    if meta.get("kind") != "checkpoint":
        raise ZerogradError(
            f"{path} is a model file, not a training checkpoint: "
            "resume from a *.checkpoint.safetensors file"
        )
    model_state = checkpoint_model_state(arrays)
    missing = [k for k in ("config", "epoch", "iteration", "history", "settings", "optimizer", "generators")
               if k not in meta]
    if missing or not isinstance(meta["config"], dict):
        raise ModelFileError(f"{path} is a damaged training checkpoint (missing {', '.join(missing) or 'config'}); "
                             "start the run again without --resume")
    check_config_fits(meta["config"], model_state, str(path))  # before anything builds the network
    try:
        meta["optimizer"] = _int_keys(_join_arrays(meta["optimizer"], arrays))
    except (KeyError, TypeError, RecursionError) as exc:  # a hand-edited or damaged header
        raise ModelFileError(f"{path} is a damaged training checkpoint (optimizer state: {exc!r}); "
                             "start the run again without --resume") from exc
    return model_state, meta
