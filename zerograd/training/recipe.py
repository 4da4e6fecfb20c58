"""train(config): what `zerograd train` does, callable from Python.

Data, model, optimizer and schedule from a TrainConfig; fit with a checkpoint after every epoch; then the
model file, the history (JSON and CSV) and the plots asked for. `zerograd train` is this function between
its flags and its printed lines, so the two end with bit-identical weights.

A run shared among the processes of an MPI job passes `job` (zerograd.cli.distributed.Job): every process
trains its share of each batch, and only the one where `job.is_main` writes files.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import nn, optim
from ..datasets.augment import RandomAffine, RandomCropFlip
from ..distributed import Parallel
from ..errors import ZerogradError
from ..io import require_safetensors
from ..models import MLP, DeepConvNet, ResNet, SimpleConvNet, build_model, check_input, save_model
from ..plots import first_conv, plot_filters, plot_history
from .checkpoint import load_checkpoint
from .config import DEFAULT_LR, InvalidSetting, TrainConfig, parse_hidden, parse_init
from .data import load_data, load_run_data
from .history import History, train_seconds
from .loop import fit
from .reporters import Reporter, Reporters, TensorBoardReporter

__all__ = ["Job", "TrainResult", "augmentation", "load_data", "train"]


class Job(Protocol):
    """This process's place in a run shared among processes (zerograd.cli.distributed.Job implements it)."""

    is_main: bool

    def start_training(self, model: nn.Module, x: np.ndarray, t: np.ndarray, batch_size: int, seed: int,
                       transform: Any) -> tuple[Any, Parallel]:
        """Collective: (this process's loader of shards, the hooks through which fit shares the run)."""


@dataclass
class TrainResult:
    """What a run made: the trained model, its history and results, and the files written (None: not this process)."""

    model: nn.Module
    history: History
    config: TrainConfig  # the settings the run used, every default filled in
    results: dict[str, Any]  # test_accuracy, test_loss, train_loss, epochs, iterations, train_seconds
    model_path: Path | None
    checkpoint_path: Path | None
    history_path: Path | None

    @property
    def stopped_early(self) -> bool:
        return self.history.stopped_early


def train(config: TrainConfig, *, reporter: Reporter | None = None, progress: bool = False,
          job: Job | None = None) -> TrainResult:
    """Trains as `zerograd train` does with these settings; returns the model, its history and the files written.

    `reporter` receives the progress of every epoch (silent by default; `config.tensorboard` adds a
    TensorBoardReporter), `progress` shows a bar while a dataset downloads. With `config.resume`, the run
    continues from that checkpoint with the settings it was started with (any other setting given is refused).
    """
    require_safetensors("writing the model file")  # fail before training, not after it
    if config.tensorboard and (job is None or job.is_main):  # every epoch's metrics for TensorBoard too
        reporter = Reporters(TensorBoardReporter(config.tensorboard), reporter or Reporter())
    config, model = _resumed(config) if config.resume else (config.validate(), None)
    if config.out is None:
        config = dataclasses.replace(
            config, out=str(Path("runs") / f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}" / "model.safetensors"))
    out = Path(config.out)
    if out.is_dir():
        raise ZerogradError(f"--out {out} is a folder: give the model file's name, e.g. {out / 'model.safetensors'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("") if out.suffix == ".safetensors" else out
    checkpoint = Path(f"{stem}.checkpoint.safetensors")

    speaks = job is None or job.is_main  # in an MPI job only rank 0 writes files
    data = load_run_data(config.data, image_size=config.image_size, val_split=config.val_split, seed=config.seed,
                         skip_bad_images=config.skip_bad_images, progress=progress and speaks)
    (x_train, t_train), (x_test, t_test) = (data.x_train, data.t_train), (data.x_test, data.t_test)
    if model is None:
        model = new_model(config, x_train.shape[1:], len(data.classes))
    else:
        check_input(model, x_train, config.data)
    if config.plot_filters:  # the filters before training: a fresh model of the run's seed has them
        initial = new_model(config, x_train.shape[1:], model.config["num_classes"]) if config.resume else model
        filters_before = first_conv(initial, "--plot-filters").weight.data.copy()
    optimizer = new_optimizer(config, model.parameters())
    batches = -(-len(x_train) // config.batch_size)
    epochs = config.epochs if config.epochs is not None else -(-config.iterations // batches)
    scheduler = new_scheduler(config.schedule, optimizer, epochs)
    transform = augmentation(config, data.info["channels"])
    train_data, parallel = (x_train, t_train), None
    if job is not None:  # every process is set up: each trains on its share of every batch
        train_data, parallel = job.start_training(model, x_train, t_train, config.batch_size, config.seed, transform)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends in one TrainingDiverged line
        history = fit(
            model, optimizer, train_data, (x_test, t_test),
            epochs=config.epochs, iterations=config.iterations, batch_size=config.batch_size, seed=config.seed,
            scheduler=scheduler, transform=transform, early_stopping=config.early_stopping,
            checkpoint=checkpoint if speaks else None, resume=config.resume,
            reporter=reporter, settings=config.settings(), parallel=parallel,
        )
    if not speaks:
        return TrainResult(model, history, config, {}, None, None, None)
    if not history.records:  # only a damaged checkpoint resumes into a run with nothing done and nothing to do
        raise ZerogradError(f"{config.resume} is a damaged training checkpoint (it records no finished epoch and "
                            "leaves none to train); start the run again without --resume")
    final = history.records[-1]
    results = {"test_accuracy": final.test_accuracy, "test_loss": final.test_loss, "train_loss": final.loss,
               "epochs": len(history), "iterations": final.iterations,
               "train_seconds": round(train_seconds(history), 3)}
    if data.info.get("skipped"):  # --skip-bad-images left some out: say how many
        results["skipped_images"] = data.info["skipped"]
    save_model(model, out, {"settings": config.settings(), "results": results}, data=data.info)
    history.save_json(f"{stem}.history.json")
    history.save_csv(f"{stem}.history.csv")
    if config.plot:
        plot_history(history, config.plot)
    if config.plot_filters:
        plot_filters(first_conv(model, "--plot-filters").weight, config.plot_filters, before=filters_before)
    return TrainResult(model, history, config, results, out, checkpoint, Path(f"{stem}.history.json"))


def _resumed(config: TrainConfig) -> tuple[TrainConfig, nn.Module]:
    """The settings and the (untrained) model of the run config.resume names: it continues as it started."""
    given = config.given_settings()
    if given:
        raise ZerogradError(
            f"--resume continues a run with the settings it was started with; drop {', '.join(given)} "
            "(or start a new run without --resume)"
        )
    _, meta = load_checkpoint(config.resume)
    settings = meta["settings"]
    if not isinstance(settings, dict):
        raise ZerogradError(f"{config.resume} is a damaged training checkpoint (its settings are not a dict); "
                            "start the run again without --resume")
    # only the run's settings: a checkpoint from elsewhere must not choose what to resume or where to draw
    resumed = dataclasses.replace(config, **{k: v for k, v in settings.items() if k in TrainConfig.setting_names()})
    try:
        resumed.validate()
        resumed.check_complete()  # a checkpoint holds the settings its run resolved
    except InvalidSetting as err:
        raise ZerogradError(
            f"{config.resume} is a damaged training checkpoint (its setting {err.setting} = "
            f"{getattr(resumed, err.setting)!r} is not one a run can have); start the run again without --resume"
        ) from err
    return resumed, build_model(meta["config"])


def augmentation(config: TrainConfig, channels: int) -> Any:
    """The run's random augmentation of training batches, or None: shifts and rotations for grey images (digits),
    random crops of the zero-padded image and horizontal flips for colour ones (He et al. 2016's CIFAR recipe)."""
    if not config.augment:
        return None
    if channels == 3:
        return RandomCropFlip(padding=4, seed=config.seed + 1)
    return RandomAffine(max_shift=2, max_degrees=10, seed=config.seed + 1)


def new_model(config: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The network of a fresh run (config validated), sized for the data: images (C, H, W) in, num_classes out."""
    if config.model == "simple-cnn":
        return SimpleConvNet(image_shape, num_classes, batchnorm=config.batchnorm, seed=config.seed)
    if config.model == "deep-cnn":
        return DeepConvNet(image_shape, num_classes, dropout=config.dropout, batchnorm=config.batchnorm,
                           seed=config.seed)
    if config.model == "resnet":  # ResNet-20: batch norm after every convolution whatever --batchnorm says
        return ResNet(image_shape, num_classes, seed=config.seed)
    return MLP(math.prod(image_shape), parse_hidden(config.hidden), num_classes, activation=config.activation,
               dropout=config.dropout, batchnorm=config.batchnorm, init=parse_init(config.init), seed=config.seed)


def new_optimizer(config: TrainConfig, params: Any) -> optim.Optimizer:
    """The optimizer config.optimizer names, at config.lr (or its default) with config.weight_decay."""
    name, decay = config.optimizer, config.weight_decay
    lr = DEFAULT_LR[name] if config.lr is None else config.lr
    if name == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=decay)
    if name in ("momentum", "nesterov"):
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=name == "nesterov", weight_decay=decay)
    if name == "adagrad":
        return optim.AdaGrad(params, lr=lr, weight_decay=decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=decay)
    return optim.Adam(params, lr=lr, weight_decay=decay)


def new_scheduler(name: str, optimizer: optim.Optimizer, epochs: int) -> Any:
    """The learning-rate schedule over `epochs`: cosine annealing, a step /10 every third of the run, or None."""
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(epochs // 3, 1), gamma=0.1)
    return None
