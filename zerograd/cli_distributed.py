"""Kept so that `from zerograd.cli_distributed import ...` still works: the code is zerograd.cli.distributed."""

from .cli.distributed import ABORT_GRACE_SECONDS, Job, PeerFailed, train_distributed

__all__ = ["ABORT_GRACE_SECONDS", "Job", "PeerFailed", "train_distributed"]
