"""`zerograd train`: flags -> TrainConfig -> zerograd.training.train -> the printed result."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..errors import ZerogradError
from ..threads import get_num_threads, set_num_threads
from ..training import TrainConfig, TrainResult, default_reporter, train
from ..training.config import CHOICES
from .common import DATA_HELP, add_debug

__all__ = ["add_parser", "config_from_args", "run"]

_DEFAULT = TrainConfig()


def add_parser(sub: Any) -> None:
    """Registers `train` and its flags (their defaults are TrainConfig's)."""
    t = sub.add_parser("train", help="train a network on MNIST, CIFAR-10 or your own images and save it",
                       description="Train a network and write a model file (safetensors).")
    t.add_argument("--model", default=_DEFAULT.model, choices=CHOICES["model"],
                   help="architecture: mlp, the book's simple-cnn (chapter 7) / deep-cnn (chapter 8), or resnet "
                        "(ResNet-20, He et al. 2016); default: mlp")
    t.add_argument("--hidden", default=_DEFAULT.hidden,
                   help="mlp hidden layer sizes, comma-separated (default: 256,128)")
    t.add_argument("--activation", default=_DEFAULT.activation, choices=CHOICES["activation"],
                   help="mlp hidden activation (the CNNs use ReLU)")
    t.add_argument("--init", default=_DEFAULT.init,
                   help="mlp weight init: auto, he, xavier, normal, or a std such as 0.01")
    t.add_argument("--optimizer", default=_DEFAULT.optimizer, choices=CHOICES["optimizer"])
    t.add_argument("--lr", type=float, default=_DEFAULT.lr, help="learning rate (default depends on the optimizer)")
    t.add_argument("--weight-decay", type=float, default=_DEFAULT.weight_decay)
    t.add_argument("--schedule", default=_DEFAULT.schedule, choices=CHOICES["schedule"],
                   help="learning-rate schedule over the epochs (default: cosine)")
    t.add_argument("--dropout", type=float, default=_DEFAULT.dropout,
                   help="dropout probability after each hidden layer (default: none; deep-cnn: 0.5, as the book)")
    t.add_argument("--batchnorm", action="store_true",
                   help="batch normalisation after each hidden Linear (mlp) or each convolution (CNNs)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=_DEFAULT.augment,
                   help="random shifts (2 px) and rotations (10 degrees) of grey training images; random crops of "
                        "the 4-px zero-padded image and mirroring of colour ones (default: on for deep-cnn only)")
    t.add_argument("--batch-size", type=int, default=_DEFAULT.batch_size,
                   help="default: 128 (mlp, resnet), 100 (the book's CNNs, as the book)")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=_DEFAULT.epochs,
                        help="passes over the training set (default: 10)")
    length.add_argument("--iterations", type=int, default=_DEFAULT.iterations,
                        help="train for this many mini-batches instead")
    t.add_argument("--early-stopping", type=int, default=_DEFAULT.early_stopping, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without a better test accuracy")
    t.add_argument("--seed", type=int, default=_DEFAULT.seed)
    t.add_argument("--data", default=_DEFAULT.data, help=DATA_HELP)
    t.add_argument("--image-size", type=int, default=_DEFAULT.image_size, metavar="N",
                   help="a folder whose images differ in size: resize them to N x N (shorter side, centre crop); "
                        "default: 32")
    t.add_argument("--val-split", type=float, default=_DEFAULT.val_split, metavar="FRACTION",
                   help="a folder of class folders: hold out this share of each class for evaluation (default: 0.2)")
    t.add_argument("--skip-bad-images", action="store_true",
                   help="skip unreadable images of a folder (and count them) instead of refusing the folder")
    t.add_argument("--out", default=_DEFAULT.out,
                   help="model file to write (default: runs/<model>-<time>/model.safetensors)")
    t.add_argument("--plot", default=_DEFAULT.plot, metavar="PATH",
                   help="save learning curves as PNG (needs matplotlib)")
    t.add_argument("--plot-filters", default=_DEFAULT.plot_filters, metavar="PATH",
                   help="save the first convolution's filters before and after training as PNG (CNNs)")
    t.add_argument("--resume", default=_DEFAULT.resume, metavar="CHECKPOINT",
                   help="continue an interrupted run from its checkpoint, with the settings it was started with")
    t.add_argument("--tensorboard", default=_DEFAULT.tensorboard, metavar="DIR",
                   help="write every epoch's loss, accuracies and learning rate as TensorBoard events to DIR "
                        "(needs zerograd[tensorboard]; with --resume the same DIR goes on)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    t.add_argument("--distributed", action="store_true",
                   help="share the run among the processes of `mpiexec -n K` (needs zerograd[mpi]); "
                        "--batch-size stays the global batch")
    t.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for zerograd's compute and its BLAS (default: the CPUs this process may use; "
                        "also ZEROGRAD_NUM_THREADS)")
    add_debug(t)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the flags describe (--quiet, --json, --distributed, --threads, --debug are the command's own)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})


def run(args: argparse.Namespace) -> int:
    """Trains as the flags say; with --distributed as one process of an MPI job."""
    _use_threads(args.threads)
    if args.distributed:
        from .distributed import train_distributed

        return train_distributed(args, run_job)
    return run_job(args)


def _use_threads(threads: int | None) -> None:
    """--threads: how fast this run goes, not what it trains, so neither a TrainConfig setting nor checkpointed."""
    if threads is None:
        get_num_threads()  # reads ZEROGRAD_NUM_THREADS now: a bad value fails before any data is loaded
        return
    if threads < 1:
        raise ZerogradError(f"--threads must be at least 1, not {threads}; leave it out to use every CPU available")
    set_num_threads(threads)


def run_job(args: argparse.Namespace, job: Any = None) -> int:
    """The train command; `job` (cli.distributed.Job) when this process is one of an MPI job, where rank 0 speaks."""
    speaks = job is None or job.is_main
    result = train(config_from_args(args), reporter=default_reporter(args.quiet or not speaks),
                   progress=not args.quiet, job=job)
    if speaks:
        _report(result, args)
    return 0


def _report(result: TrainResult, args: argparse.Namespace) -> None:
    results = result.results
    if args.json:
        print(json.dumps({**results, "model_path": str(result.model_path),
                          "checkpoint_path": str(result.checkpoint_path), "history_path": str(result.history_path),
                          "stopped_early": result.stopped_early}))
        return
    if results.get("skipped_images"):
        print(f"skipped {results['skipped_images']} unreadable images (--skip-bad-images)", file=sys.stderr)
    if not args.quiet:
        print(f"test accuracy {results['test_accuracy']:.4f} after {results['epochs']} epochs "
              f"({results['train_seconds']:.1f}s of training)", file=sys.stderr)
    print(f"model written to {result.model_path}")
