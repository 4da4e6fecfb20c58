"""The `zerograd` command: train, evaluate and predict. Parses flags, speaks, sets exit codes.

Errors a user can cause come out as one line on stderr with exit code 1 (2 for bad flags);
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__
from .errors import ZerogradError

# the choices of train's settings, also checked when a checkpoint hands them back (--resume)
TRAIN_CHOICES = {
    "model": ["mlp", "simple-cnn", "deep-cnn"],
    "activation": ["relu", "leaky_relu", "sigmoid", "tanh"],
    "optimizer": ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"],
    "schedule": ["none", "step", "cosine"],
}
ARCH_HELP = "network of a book pickle: book-ch3, simple-cnn (chapter 7) or deep-cnn (chapter 8)"
DATA_HELP = "mnist (bundled), fashion-mnist, kmnist (downloaded once), or a folder of MNIST-format IDX files"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerograd",
        description="Deep learning from zero on NumPy: train, evaluate and use digit classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"zerograd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", help="show the full traceback on errors")

    # --- train ---
    t = sub.add_parser("train", help="train a network on MNIST (or another dataset) and save it",
                       description="Train a network and write a model file (safetensors).")
    t.add_argument("--model", default="mlp", choices=TRAIN_CHOICES["model"],
                   help="architecture: mlp, or the book's simple-cnn (chapter 7) / deep-cnn (chapter 8); default: mlp")
    t.add_argument("--hidden", default=None, help="mlp hidden layer sizes, comma-separated (default: 256,128)")
    t.add_argument("--activation", default="relu", choices=TRAIN_CHOICES["activation"],
                   help="mlp hidden activation (the CNNs use ReLU)")
    t.add_argument("--init", default="auto", help="mlp weight init: auto, he, xavier, normal, or a std such as 0.01")
    t.add_argument("--optimizer", default="adam",
                   choices=TRAIN_CHOICES["optimizer"])
    t.add_argument("--lr", type=float, default=None, help="learning rate (default depends on the optimizer)")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--schedule", default="cosine", choices=TRAIN_CHOICES["schedule"],
                   help="learning-rate schedule over the epochs (default: cosine)")
    t.add_argument("--dropout", type=float, default=None,
                   help="dropout probability after each hidden layer (default: none; deep-cnn: 0.5, as the book)")
    t.add_argument("--batchnorm", action="store_true",
                   help="batch normalisation after each hidden Linear (mlp) or each convolution (CNNs)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts (2 px) and rotations (10 degrees) of the training images "
                        "(default: on for deep-cnn, off otherwise)")
    t.add_argument("--batch-size", type=int, default=None, help="default: 128 (mlp), 100 (CNNs, as the book)")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None, help="passes over the training set (default: 10)")
    length.add_argument("--iterations", type=int, default=None, help="train for this many mini-batches instead")
    t.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better test accuracy")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data", default="mnist", help=DATA_HELP)
    t.add_argument("--out", default=None, help="model file to write (default: runs/<model>-<time>/model.safetensors)")
    t.add_argument("--plot", default=None, metavar="PATH", help="save learning curves as PNG (needs matplotlib)")
    t.add_argument("--plot-filters", default=None, metavar="PATH",
                   help="save the first convolution's filters before and after training as PNG (CNNs)")
    t.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue an interrupted run from its checkpoint, with the settings it was started with")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    t.add_argument("--distributed", action="store_true",
                   help="share the run among the processes of `mpiexec -n K` (needs zerograd[mpi]); "
                        "--batch-size stays the global batch")
    common(t)

    # --- evaluate ---
    e = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a model",
                       description="Evaluate a model on a test set.")
    e.add_argument("model", help="model file (.safetensors), pretrained:NAME, or a book pickle with --arch")
    e.add_argument("--arch", default=None, help=ARCH_HELP)
    e.add_argument("--data", default="mnist", help=DATA_HELP)
    e.add_argument("--batch-size", type=int, default=1000, help="images per forward pass (1 = one at a time)")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--plot", default=None, metavar="PATH", help="save the confusion matrix as PNG")
    e.add_argument("--plot-errors", default=None, metavar="PATH",
                   help="save the misclassified test digits, with predicted and true labels, as PNG")
    e.add_argument("--plot-filters", default=None, metavar="PATH", help="save the first convolution's filters (CNNs)")
    e.add_argument("--plot-features", default=None, metavar="PATH",
                   help="save the feature maps of the first test image through each convolution (CNNs)")
    common(e)

    # --- convert ---
    c = sub.add_parser("convert", help="turn one of the book's weight pickles into a zerograd model file",
                       description="Convert the book's pickled weights into a model file that needs no --arch.")
    c.add_argument("pickle", metavar="FILE", help="the book's pickle (sample_weight.pkl, params.pkl, ...)")
    c.add_argument("--arch", required=True, choices=["book-ch3", "simple-cnn", "deep-cnn"],
                   help="the network the pickle holds")
    c.add_argument("--out", required=True, metavar="MODEL.safetensors", help="model file to write")
    common(c)

    # --- predict ---
    p = sub.add_parser("predict", help="classify your own digit images (PNG, JPEG)",
                       description="Classify digit images after MNIST-style preprocessing.")
    p.add_argument("model", help="model file (.safetensors), pretrained:NAME, or a book pickle with --arch")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--arch", default=None, help=ARCH_HELP)
    p.add_argument("--json", action="store_true", help="print a JSON list on stdout")
    common(p)

    # --- export (implementation: zerograd/onnx.py) ---
    x = sub.add_parser("export", help="write a model as an ONNX file (needs zerograd[onnx])",
                       description="Export a model to ONNX by tracing one forward pass; the batch size stays free.")
    x.add_argument("model", help="model file (.safetensors), pretrained:NAME, or a book pickle with --arch")
    x.add_argument("out", metavar="OUT.onnx", help="ONNX file to write")
    x.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 or newer (default: 17)")
    x.add_argument("--arch", default=None, help=ARCH_HELP)
    common(x)

    # --- serve (implementation: zerograd/serve/command.py) ---
    s = sub.add_parser("serve", help="a web page to draw digits and watch a model read them",
                       description="Serve a draw-a-digit page and its JSON API (needs zerograd[serve]).")
    s.add_argument("models", nargs="*", metavar="MODEL",
                   help="model file or pretrained:NAME, one or more (default: the most accurate pretrained model)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    common(s)
    return parser


# --- commands ------------------------------------------------------------------------------------
def _load_data(name: str, quiet: bool = True) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, t_train), (x_test, t_test)) of a named dataset or folder, images as (N, 1, H, W) in [0, 1]."""
    from .datasets import load_dataset

    (x_train, t_train), (x_test, t_test) = load_dataset(name, normalize=True, flatten=False, progress=not quiet)
    for what, x in (("training", x_train), ("test", x_test)):
        if len(x) == 0:  # a folder of empty IDX files: say so rather than fail on an empty maximum later
            raise ZerogradError(f"the dataset {name} holds no {what} images: train and evaluate need both")
    return (x_train, t_train), (x_test, t_test)


def _check_input_size(model: Any, x: np.ndarray, data: str) -> None:
    from .models import check_input

    check_input(model, x, data)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .models import load_model
    from .training import evaluate

    if args.batch_size < 1:
        raise ZerogradError("--batch-size must be at least 1")
    model, meta = load_model(args.model, args.arch)
    _, (x, t) = _load_data(args.data)
    _check_input_size(model, x, args.data)
    result = evaluate(model, x, t, batch_size=args.batch_size)
    predictions = result.pop("predictions")
    result.update(model=str(args.model), data=str(args.data))
    if args.plot:
        from .plots import plot_confusion_matrix

        plot_confusion_matrix(np.array(result["confusion_matrix"]), args.plot)
    if args.plot_errors:
        from .plots import plot_misclassified

        plot_misclassified(x, t, predictions, args.plot_errors)
    if args.plot_filters:
        from .plots import plot_filters

        plot_filters(_first_conv(model, "--plot-filters").weight, args.plot_filters)
    if args.plot_features:
        from .plots import plot_feature_maps

        _first_conv(model, "--plot-features")
        plot_feature_maps(model, x[0], args.plot_features)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"accuracy: {result['accuracy']:.4f} ({result['correct']}/{result['total']})")
    print(f"loss: {result['loss']:.4f}")
    print("per-class accuracy: " + "  ".join(f"{i}:{a:.3f}" for i, a in enumerate(result["per_class_accuracy"])))
    matrix = result["confusion_matrix"]
    width = max(len(str(v)) for row in matrix for v in row) + 1
    print("confusion matrix (rows: true label, columns: predicted):")
    print("     " + "".join(f"{j:>{width}}" for j in range(len(matrix))))
    for i, row in enumerate(matrix):
        print(f"  {i:>2} " + "".join(f"{v:>{width}}" for v in row))
    for flag, path in (("confusion matrix", args.plot), ("misclassified digits", args.plot_errors),
                       ("filters", args.plot_filters), ("feature maps", args.plot_features)):
        if path:
            print(f"{flag} plot: {path}")
    return 0


def _first_conv(model: Any, flag: str) -> Any:
    """The model's first Conv2d layer, or a ZerogradError saying that `flag` needs a CNN."""
    from .nn import Conv2d

    for layer in model.modules():
        if isinstance(layer, Conv2d):
            return layer
    raise ZerogradError(f"{flag} draws convolution filters: the model has no Conv2d layer (use a CNN, "
                        "e.g. pretrained:simple-cnn or a model trained with --model simple-cnn)")


def cmd_convert(args: argparse.Namespace) -> int:
    from .models import load_model, save_model

    model, _ = load_model(args.pickle, args.arch)
    out = Path(args.out)
    if out.is_dir():
        raise ZerogradError(f"--out {out} is a folder: give the model file's name, e.g. {out / 'model.safetensors'}")
    save_model(model, out, {"converted_from": Path(args.pickle).name, "arch": args.arch})
    print(f"model written to {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from . import functional as F
    from .images import load_digit_image
    from .models import check_input, load_model
    from .tensor import Tensor, no_grad

    model, _ = load_model(args.model, args.arch)
    check_input(model, np.zeros((1, 1, 28, 28), dtype=np.float32), "predict's 28x28 digits")
    images = np.stack([load_digit_image(path).reshape(1, 28, 28) for path in args.images])
    with no_grad():
        probs = F.softmax(model(Tensor(images))).data
    results = [
        {"file": str(path), "label": int(p.argmax()), "probability": float(p.max()),
         "probabilities": [round(float(v), 6) for v in p]}
        for path, p in zip(args.images, probs)
    ]
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['file']}: {r['label']} ({r['probability']:.3f})")
    return 0


def _optimizer(name: str, params: Any, lr: float | None, weight_decay: float) -> Any:
    from . import optim

    defaults = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 1e-3,
                "adam": 1e-3, "adamw": 1e-3}
    lr = defaults[name] if lr is None else lr
    if name == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=name == "nesterov", weight_decay=weight_decay)
    if name == "adagrad":
        return optim.AdaGrad(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ZerogradError(f"--hidden takes positive layer sizes separated by commas, e.g. 256,128; got {text!r}")
    return sizes


def _parse_init(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


_SETTINGS = ("model", "hidden", "activation", "init", "optimizer", "lr", "weight_decay", "schedule", "dropout",
             "batchnorm", "augment", "batch_size", "epochs", "iterations", "early_stopping", "seed", "data", "out")


def _check_train_flags(args: argparse.Namespace) -> None:
    """Refuses flag values a fresh run cannot use; fills in the defaults that depend on --model."""
    mlp = args.model == "mlp"
    if not mlp:
        given = [flag for flag, value, default in (("--hidden", args.hidden, None), ("--activation", args.activation,
                 "relu"), ("--init", args.init, "auto")) if value != default]
        if args.model == "simple-cnn" and args.dropout is not None:
            given.append("--dropout")
        if given:
            raise ZerogradError(f"{', '.join(given)} set(s) the mlp's layers; --model {args.model} has the book's "
                                "fixed layers: drop the flag or use --model mlp")
    if args.hidden is None and mlp:
        args.hidden = "256,128"
    if args.dropout is None:
        args.dropout = 0.5 if args.model == "deep-cnn" else 0.0
    if args.batch_size is None:
        args.batch_size = 128 if mlp else 100
    if args.augment is None:  # deep-cnn reaches 0.9925 in 10 epochs without, 0.993+ with (README)
        args.augment = args.model == "deep-cnn"
    if args.epochs is None and args.iterations is None:
        args.epochs = 10
    if (args.epochs is not None and args.epochs < 1) or (args.iterations is not None and args.iterations < 1):
        raise ZerogradError("--epochs and --iterations must be at least 1")
    if args.batch_size < 1:
        raise ZerogradError("--batch-size must be at least 1")
    if not 0 <= args.dropout < 1:
        raise ZerogradError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.early_stopping is not None and args.early_stopping < 1:
        raise ZerogradError(f"--early-stopping takes a patience of at least 1 epoch, got {args.early_stopping}")
    if args.seed < 0:
        raise ZerogradError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.lr is not None and not (args.lr > 0 and np.isfinite(args.lr)):
        raise ZerogradError(f"--lr must be a positive number, got {args.lr}")
    if mlp:
        _parse_hidden(args.hidden)


def _new_model(args: argparse.Namespace, image_shape: tuple[int, ...], num_classes: int) -> Any:
    """The network of a fresh run, sized for the data: images (C, H, W) in, num_classes out."""
    from .models import MLP, DeepConvNet, SimpleConvNet

    if args.model == "simple-cnn":
        return SimpleConvNet(image_shape, num_classes, batchnorm=args.batchnorm, seed=args.seed)
    if args.model == "deep-cnn":
        return DeepConvNet(image_shape, num_classes, dropout=args.dropout, batchnorm=args.batchnorm, seed=args.seed)
    return MLP(int(np.prod(image_shape)), _parse_hidden(args.hidden), num_classes, activation=args.activation,
               dropout=args.dropout, batchnorm=args.batchnorm, init=_parse_init(args.init), seed=args.seed)


def _resumed_run(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The model of an interrupted run, its settings copied back onto args: it continues as it started."""
    from .models import build_model
    from .training import load_checkpoint

    defaults = vars(_parser().parse_args(["train"]))
    given = [f"--{k.replace('_', '-')}" for k in _SETTINGS if getattr(args, k) != defaults[k]]
    if given:
        raise ZerogradError(
            f"--resume continues a run with the settings it was started with; drop {', '.join(given)} "
            "(or start a new run without --resume)"
        )
    _, meta = load_checkpoint(args.resume)
    settings = meta["settings"]
    if not isinstance(settings, dict):
        raise ZerogradError(f"{args.resume} is a damaged training checkpoint (its settings are not a dict); "
                            "start the run again without --resume")
    for key in _SETTINGS:  # only the run's settings: a checkpoint from elsewhere must not set --debug and such
        if key in settings:
            setattr(args, key, settings[key])
    _check_resumed_settings(args)
    return build_model(meta["config"]), settings


def _check_resumed_settings(args: argparse.Namespace) -> None:
    """Refuses settings from a checkpoint that no command line could have given (a damaged file)."""
    def bad(key: str) -> ZerogradError:
        return ZerogradError(f"{args.resume} is a damaged training checkpoint (its setting {key} = "
                             f"{getattr(args, key)!r} is not one a run can have); start the run again without --resume")

    for key, choices in TRAIN_CHOICES.items():
        if not isinstance(getattr(args, key), str) or getattr(args, key) not in choices:
            raise bad(key)

    def whole(value: Any, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))

    checks = {
        "batch_size": whole(args.batch_size, 1), "seed": whole(args.seed, 0),
        "epochs": args.epochs is None or whole(args.epochs, 1),
        "iterations": (args.iterations is None or whole(args.iterations, 1))
        and (args.epochs is None) != (args.iterations is None),
        "early_stopping": args.early_stopping is None or whole(args.early_stopping, 1),
        "lr": args.lr is None or (number(args.lr) and args.lr > 0),
        "weight_decay": number(args.weight_decay), "dropout": number(args.dropout) and 0 <= args.dropout < 1,
        "batchnorm": isinstance(args.batchnorm, bool), "augment": isinstance(args.augment, bool),
        "hidden": args.hidden is None or isinstance(args.hidden, str), "init": isinstance(args.init, str),
        "data": isinstance(args.data, str), "out": isinstance(args.out, str),
    }
    for key, ok in checks.items():
        if not ok:
            raise bad(key)


def _scheduler(name: str, optimizer: Any, epochs: int) -> Any:
    from . import optim

    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(epochs // 3, 1), gamma=0.1)
    return None


def cmd_train(args: argparse.Namespace) -> int:
    if args.distributed:
        from .cli_distributed import train_distributed

        return train_distributed(args, _train)
    return _train(args)


def _train(args: argparse.Namespace, job: Any = None) -> int:
    """The train command; `job` (cli_distributed.Job) when this process is one of an MPI job."""
    from .datasets.augment import RandomAffine
    from .io import require_safetensors
    from .models import save_model
    from .training import default_reporter, fit, train_seconds

    require_safetensors("writing the model file")  # fail before training, not after it
    if args.resume:
        model, settings = _resumed_run(args)
    else:
        _check_train_flags(args)
    if args.out is None:
        args.out = str(Path("runs") / f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}" / "model.safetensors")
    out = Path(args.out)
    if out.is_dir():
        raise ZerogradError(f"--out {out} is a folder: give the model file's name, e.g. {out / 'model.safetensors'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("") if out.suffix == ".safetensors" else out
    checkpoint = Path(f"{stem}.checkpoint.safetensors")

    speaks = job is None or job.is_main  # in an MPI job only rank 0 prints and writes files
    (x_train, t_train), (x_test, t_test) = _load_data(args.data, quiet=args.quiet or not speaks)
    if args.resume:
        _check_input_size(model, x_train, args.data)
    else:
        model = _new_model(args, x_train.shape[1:], int(max(t_train.max(), t_test.max())) + 1)
        settings = {k: getattr(args, k) for k in _SETTINGS}
    if args.plot_filters:  # the filters before training: a fresh model of the run's seed has them
        initial = _new_model(args, x_train.shape[1:], model.config["num_classes"]) if args.resume else model
        filters_before = _first_conv(initial, "--plot-filters").weight.data.copy()
    optimizer = _optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    batches = -(-len(x_train) // args.batch_size)
    epochs = args.epochs if args.epochs is not None else -(-args.iterations // batches)
    scheduler = _scheduler(args.schedule, optimizer, epochs)
    transform = RandomAffine(max_shift=2, max_degrees=10, seed=args.seed + 1) if args.augment else None
    train_data, parallel = (x_train, t_train), None
    if job is not None:  # every process is set up: each trains on its share of every batch
        train_data, parallel = job.start_training(model, x_train, t_train, args.batch_size, args.seed, transform)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends in one TrainingDiverged line
        history = fit(
            model, optimizer, train_data, (x_test, t_test),
            epochs=args.epochs, iterations=args.iterations, batch_size=args.batch_size, seed=args.seed,
            scheduler=scheduler, transform=transform, early_stopping=args.early_stopping,
            checkpoint=checkpoint if speaks else None, resume=args.resume,
            reporter=default_reporter(args.quiet or not speaks), settings=settings, parallel=parallel,
        )
    if not speaks:
        return 0
    if not history.records:  # only a damaged checkpoint resumes into a run with nothing done and nothing to do
        raise ZerogradError(f"{args.resume} is a damaged training checkpoint (it records no finished epoch and "
                            "leaves none to train); start the run again without --resume")
    final = history.records[-1]
    results = {"test_accuracy": final.test_accuracy, "test_loss": final.test_loss, "train_loss": final.loss,
               "epochs": len(history), "iterations": final.iterations,
               "train_seconds": round(train_seconds(history), 3)}
    save_model(model, out, {"settings": settings, "results": results})
    history.save_json(f"{stem}.history.json")
    history.save_csv(f"{stem}.history.csv")
    if args.plot:
        from .plots import plot_history

        plot_history(history, args.plot)
    if args.plot_filters:
        from .plots import plot_filters

        plot_filters(_first_conv(model, "--plot-filters").weight, args.plot_filters, before=filters_before)
    if args.json:
        print(json.dumps({**results, "model_path": str(out), "checkpoint_path": str(checkpoint),
                          "history_path": f"{stem}.history.json", "stopped_early": history.stopped_early}))
        return 0
    if not args.quiet:
        print(f"test accuracy {final.test_accuracy:.4f} after {len(history)} epochs "
              f"({results['train_seconds']:.1f}s of training)", file=sys.stderr)
    print(f"model written to {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .onnx import export_model_file

    info = export_model_file(args.model, args.out, opset=args.opset, arch=args.arch)
    print(f"ONNX model written to {info['path']} (opset {info['opset']}, {info['nodes']} nodes, "
          f"input {tuple(info['input_shape'])})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.command import cmd_serve as serve

    return serve(args)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "convert": cmd_convert,
            "serve": cmd_serve, "export": cmd_export}


# What `zerograd train/evaluate` ask of glibc's malloc, as the environment variables that would do the same
KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 1 << 30}
_MALLOPT = {"MALLOC_MMAP_THRESHOLD_": -3, "MALLOC_TRIM_THRESHOLD_": -1}  # their mallopt numbers (malloc.h)


def _keep_freed_memory() -> bool:
    """Asks glibc's malloc to keep freed memory for reuse, as MALLOC_MMAP_THRESHOLD_=32 MiB and
    MALLOC_TRIM_THRESHOLD_=1 GiB would; returns whether it did.

    A training step frees tens of MB that the next step allocates again. With glibc's default, dynamic
    thresholds that memory goes back to the system (large blocks unmapped, the heap trimmed) and is
    page-faulted in again on every step: 15-25% of a CNN's step on the benchmark machine. This is the
    command's own process; the library never does it (see README, Speed). A MALLOC_* setting in the
    environment wins, and other C libraries (macOS, Windows, musl) are left alone.
    """
    if not sys.platform.startswith("linux") or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    # a list, not a generator: both settings are made even if the first is refused
    return all([bool(mallopt(_MALLOPT[name], value)) for name, value in KEEP_FREED_MEMORY.items()])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `zerograd` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in ("train", "evaluate"):  # the commands that run many batches
        _keep_freed_memory()
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        # whoever read our output stopped early (`zerograd evaluate ... | head -1`): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"zerograd {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line for the user, the traceback only on request
        if args.debug:
            raise
        if isinstance(err, (ZerogradError, OSError, ValueError)):
            print(f"zerograd {args.command}: error: {err}", file=sys.stderr)
            return 1
        print(f"zerograd {args.command}: internal error: {type(err).__name__}: {err} "
              "(run again with --debug for the traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
