"""What several commands share: help texts, the --debug flag."""

from __future__ import annotations

import argparse

ARCH_HELP = "network of a book pickle: book-ch3, simple-cnn (chapter 7) or deep-cnn (chapter 8)"
DATA_HELP = ("mnist (bundled), fashion-mnist, kmnist, cifar10 (downloaded once), or a folder: train/ and test/ "
             "(or val/) of class folders, class folders of images, CIFAR-10's binary files, or MNIST-format IDX files")
MODEL_HELP = "model file (.safetensors), pretrained:NAME, or a book pickle with --arch"


def add_debug(parser: argparse.ArgumentParser) -> None:
    """Every command's --debug: the traceback instead of one line."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
