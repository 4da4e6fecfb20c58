"""`zerograd train --distributed`: the command's side of a run shared by the processes of `mpiexec -n K`.

Rank 0 speaks and writes files. Set-up (flags, data, model) is checked collectively: if any process
fails before training, every process learns it in the same collective call, rank 0 prints the message
once and all exit cleanly. Once training has started, a process that fails (or is interrupted) prints
its message and calls MPI_Abort, which ends every process of the job: no process is left waiting in
a collective operation. Other ranks wait a moment before speaking, so that when every process fails
alike (a diverging run), rank 0's message is the only one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from typing import Any, Callable

from .. import distributed
from ..datasets import TensorDataset
from ..distributed import DistributedDataParallel, DistributedLoader
from ..errors import ZerogradError
from .failure import describe

ABORT_GRACE_SECONDS = 3.0  # how long a rank other than 0 leaves rank 0 to report a shared failure first
_LAUNCHER_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")


class PeerFailed(ZerogradError):
    """Another process of the job failed during set-up; `lines` are the messages of those that failed."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0])
        self.lines = lines


class Job:
    """This process's place in the MPI job: its rank, whether it speaks, and the collective start of training."""

    def __init__(self) -> None:
        self.comm = distributed.init()
        self.rank = int(self.comm.Get_rank())
        self.size = int(self.comm.Get_size())
        self.is_main = self.rank == 0
        self.training = False  # from the start of training on, a failure ends the job with MPI_Abort

    def agree(self, error: str | None = None) -> list[str]:
        """Collective: every process reports its set-up error (or None); raises PeerFailed if another failed."""
        failed = [m for m in self.comm.allgather(error) if m]
        if error is None and failed:
            raise PeerFailed(failed)
        return failed

    def start_training(self, model: Any, x: Any, t: Any, batch_size: int, seed: int,
                       transform: Any) -> tuple[Any, Any]:
        """Collective: set-up went well everywhere; returns (this process's loader of shards, the
        DistributedDataParallel hooks for fit). From now on an error aborts the whole job."""
        if batch_size < self.size:
            raise ZerogradError(
                f"--batch-size {batch_size} is smaller than the {self.size} processes: it is the global batch, "
                f"shared among them; use at least {self.size}"
            )
        self.agree()
        self.training = True
        # as fit's own loader: augmentation prepared in a background thread, behind the compute
        loader = DistributedLoader(TensorDataset(x, t), batch_size, shuffle=True, seed=seed, transform=transform,
                                   rank=self.rank, world_size=self.size, num_workers=1 if transform else 0)
        return loader, DistributedDataParallel(model, comm=self.comm)


def _launcher_rank() -> int | None:
    """The rank mpiexec gave this process, read from the environment (for errors before MPI is usable)."""
    for name in _LAUNCHER_RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def train_distributed(args: argparse.Namespace, train: Callable[[argparse.Namespace, Any], int]) -> int:
    """Runs `train(args, job)` as one process of the MPI job; returns the exit code or ends the whole job."""
    # Ctrl-C reaches mpiexec, which terminates the processes (SIGTERM): treat that as an interruption.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        job = Job()
    except ZerogradError:
        if _launcher_rank() not in (None, 0):
            return 1  # MPI is missing on every process alike: rank 0 says so
        raise
    try:
        return train(args, job)
    except BaseException as err:  # noqa: B036 - Ctrl-C and SystemExit must end the other processes too
        line, code = describe("train", err)
        if not job.training:
            lines = err.lines if isinstance(err, PeerFailed) else job.agree(line)
            if args.debug and not isinstance(err, PeerFailed):
                traceback.print_exc()
            elif job.is_main:
                for text in dict.fromkeys(lines):
                    print(text, file=sys.stderr, flush=True)
            return code
        if not job.is_main:
            time.sleep(ABORT_GRACE_SECONDS)
        if args.debug:
            traceback.print_exc()
        elif job.is_main or not isinstance(err, KeyboardInterrupt):  # every process is interrupted alike
            print(line, file=sys.stderr, flush=True)
        job.comm.Abort(code)
        return code  # not reached: Abort ends the process
