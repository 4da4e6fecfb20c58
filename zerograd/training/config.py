"""TrainConfig: every setting of `zerograd train` in one dataclass, checked by one validate().

A field left at None takes the default that depends on the model (validate() fills it in): the book's
batch of 100 for the CNNs and 128 for the MLP, dropout 0.5 and augmentation for deep-cnn, 10 epochs.
validate() raises InvalidSetting, a ZerogradError whose message names the command-line flag, so the
CLI and a Python user see the same one line.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ZerogradError

__all__ = ["CHOICES", "DEFAULT_LR", "InvalidSetting", "TrainConfig", "parse_hidden", "parse_init"]

# The choices of the settings that take a name; a checkpoint's settings are checked against them too (--resume).
CHOICES: dict[str, tuple[str, ...]] = {
    "model": ("mlp", "simple-cnn", "deep-cnn", "resnet"),
    "activation": ("relu", "leaky_relu", "sigmoid", "tanh"),
    "optimizer": ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"),
    "schedule": ("none", "step", "cosine"),
}
# Learning rate per optimizer when lr is None: the book's chapter-6 comparison, Adam's paper for adam(w).
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 1e-3,
              "adam": 1e-3, "adamw": 1e-3}


class InvalidSetting(ZerogradError):
    """A setting no run can use; `setting` names the TrainConfig field, the message its flag."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def _run_option(default: Any = None) -> Any:
    """A field that says how to run (where to draw, what to resume), not what to train: not saved with the run."""
    return field(default=default, metadata={"run_option": True})


@dataclass
class TrainConfig:
    """Every setting of `zerograd train`; the field names are its flags' (--batch-size is batch_size)."""

    model: str = "mlp"  # mlp, or the book's simple-cnn (chapter 7) / deep-cnn (chapter 8), or resnet (ResNet-20)
    hidden: str | None = None  # mlp hidden layer sizes, comma-separated (default: 256,128)
    activation: str = "relu"  # mlp hidden activation (the CNNs use ReLU)
    init: str = "auto"  # mlp weight init: auto, he, xavier, normal, or a std such as "0.01"
    optimizer: str = "adam"
    lr: float | None = None  # default: DEFAULT_LR[optimizer]
    weight_decay: float = 0.0
    schedule: str = "cosine"  # learning-rate schedule over the epochs: none, step or cosine
    dropout: float | None = None  # after each hidden layer (default: none; deep-cnn: 0.5, as the book)
    batchnorm: bool = False
    augment: bool | None = None  # random shifts and rotations of the training images (default: deep-cnn only)
    batch_size: int | None = None  # default: 128 (mlp, resnet), 100 (the book's CNNs)
    epochs: int | None = None  # passes over the training set (default: 10) ...
    iterations: int | None = None  # ... or this many mini-batches instead
    early_stopping: int | None = None  # stop after this many epochs without a better test accuracy
    seed: int = 0
    data: str = "mnist"  # mnist, fashion-mnist, kmnist, cifar10, or a folder (images in class folders, CIFAR-10, IDX)
    image_size: int = 32  # images of a folder whose sizes differ are resized to this (shorter side, centre crop)
    val_split: float = 0.2  # a folder of class folders: this share of each class is held out for evaluation
    skip_bad_images: bool = False  # skip (and count) unreadable images in a folder instead of refusing it
    out: str | None = None  # model file to write (default: runs/<model>-<time>/model.safetensors)
    plot: str | None = _run_option()  # learning curves as PNG
    plot_filters: str | None = _run_option()  # the first convolution's filters before and after training
    resume: str | None = _run_option()  # a checkpoint: continue its run with the settings it was started with
    tensorboard: str | None = _run_option()  # a folder: every epoch's metrics as TensorBoard scalars

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The fields that define a run (saved in its checkpoint and model file), in the flags' order."""
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata.get("run_option"))

    def settings(self) -> dict[str, Any]:
        """The run's settings as saved with it."""
        return {name: getattr(self, name) for name in self.setting_names()}

    def given_settings(self) -> list[str]:
        """The flags of the settings that differ from their defaults, e.g. ["--epochs"]."""
        default = TrainConfig()
        return [f"--{name.replace('_', '-')}" for name in self.setting_names()
                if getattr(self, name) != getattr(default, name)]

    def validate(self) -> TrainConfig:
        """Checks every setting; returns a copy with the defaults that depend on the model filled in.

        Raises InvalidSetting naming the flag and what it takes.
        """
        self._check_types()
        mlp = self.model == "mlp"
        if not mlp:
            given = [flag for flag, value, default in (("--hidden", self.hidden, None),
                     ("--activation", self.activation, "relu"), ("--init", self.init, "auto")) if value != default]
            if self.model in ("simple-cnn", "resnet") and self.dropout not in (None, 0.0):  # 0.0: none, as they have
                given.append("--dropout")
            if given:  # (--batchnorm is a no-op for resnet, which has batch norm after every convolution)
                raise InvalidSetting("model", f"{', '.join(given)} set(s) the mlp's layers; --model {self.model} has "
                                              "fixed layers: drop the flag or use --model mlp")
        defaults: dict[str, Any] = {}
        if self.hidden is None and mlp:
            defaults["hidden"] = "256,128"
        if self.dropout is None:
            defaults["dropout"] = 0.5 if self.model == "deep-cnn" else 0.0
        if self.batch_size is None:
            defaults["batch_size"] = 128 if mlp or self.model == "resnet" else 100  # resnet: the paper's 128
        if self.augment is None:  # deep-cnn reaches 0.9925 in 10 epochs without, 0.993+ with (docs/library/cnn.md)
            defaults["augment"] = self.model == "deep-cnn"
        if self.epochs is None and self.iterations is None:
            defaults["epochs"] = 10
        config = dataclasses.replace(self, **defaults)
        if (config.epochs is not None and config.epochs < 1) or (config.iterations is not None
                                                                 and config.iterations < 1):
            raise InvalidSetting("epochs" if config.epochs is not None else "iterations",
                                 "--epochs and --iterations must be at least 1")
        if config.batch_size < 1:
            raise InvalidSetting("batch_size", "--batch-size must be at least 1")
        if not 0 <= config.dropout < 1:
            raise InvalidSetting("dropout", f"--dropout must be in [0, 1), got {config.dropout}")
        if config.early_stopping is not None and config.early_stopping < 1:
            raise InvalidSetting("early_stopping", "--early-stopping takes a patience of at least 1 epoch, "
                                                   f"got {config.early_stopping}")
        if config.seed < 0:
            raise InvalidSetting("seed", f"--seed must be a whole number >= 0, got {config.seed}")
        if config.lr is not None and not (config.lr > 0 and math.isfinite(config.lr)):
            raise InvalidSetting("lr", f"--lr must be a positive number, got {config.lr}")
        if not math.isfinite(config.weight_decay):
            raise InvalidSetting("weight_decay", f"--weight-decay must be a finite number, got {config.weight_decay}")
        if config.image_size < 1:
            raise InvalidSetting("image_size", f"--image-size must be at least 1 pixel, got {config.image_size}")
        if not 0 < config.val_split < 1:
            raise InvalidSetting("val_split", f"--val-split must be a share between 0 and 1 (exclusive), "
                                              f"got {config.val_split}")
        if mlp:
            parse_hidden(config.hidden)
        return config

    def check_complete(self) -> None:
        """Refuses settings with a default left open: those saved with a run (its checkpoint's) are resolved."""
        for name in ("batch_size", "dropout", "augment", "out"):
            if getattr(self, name) is None:
                raise InvalidSetting(name, f"--{name.replace('_', '-')} is not set")
        if (self.epochs is None) == (self.iterations is None):
            raise InvalidSetting("iterations", "give one of --epochs and --iterations")

    def _check_types(self) -> None:
        """Refuses a value of the wrong kind (a Python caller's, or a damaged checkpoint's) before any range check."""
        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def number(value: Any) -> bool:  # inf and nan included: the range checks name them
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if not isinstance(value, str) or value not in choices:
                raise InvalidSetting(name, f"--{name} must be one of {', '.join(choices)}; got {value!r}")
        if self.epochs is not None and self.iterations is not None:
            raise InvalidSetting("iterations", "--epochs and --iterations are alternatives: give one of them")
        kinds = {
            "batch_size": (whole, True, "a whole number"), "seed": (whole, False, "a whole number"),
            "epochs": (whole, True, "a whole number"), "iterations": (whole, True, "a whole number"),
            "early_stopping": (whole, True, "a whole number"), "lr": (number, True, "a number"),
            "image_size": (whole, False, "a whole number"), "val_split": (number, False, "a number"),
            "skip_bad_images": (lambda v: isinstance(v, bool), False, "True or False"),
            "weight_decay": (number, False, "a number"), "dropout": (number, True, "a number"),
            "batchnorm": (lambda v: isinstance(v, bool), False, "True or False"),
            "augment": (lambda v: isinstance(v, bool), True, "True or False"),
            "hidden": (lambda v: isinstance(v, str), True, "text such as '256,128'"),
            "init": (lambda v: isinstance(v, str), False, "text such as 'he' or '0.01'"),
            "data": (lambda v: isinstance(v, str), False, "text"), "out": (lambda v: isinstance(v, str), True, "text"),
        }
        for name, (ok, may_be_none, what) in kinds.items():
            value = getattr(self, name)
            if not (ok(value) or (may_be_none and value is None)):
                raise InvalidSetting(name, f"--{name.replace('_', '-')} takes {what}, got {value!r}")


def parse_hidden(text: str) -> list[int]:
    """Layer sizes from "256,128", or InvalidSetting."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise InvalidSetting("hidden", "--hidden takes positive layer sizes separated by commas, e.g. 256,128; "
                                       f"got {text!r}")
    return sizes


def parse_init(text: str) -> str | float:
    """An init scheme's name ("he"), or a standard deviation given as text ("0.01" -> 0.01)."""
    try:
        return float(text)
    except ValueError:
        return text
