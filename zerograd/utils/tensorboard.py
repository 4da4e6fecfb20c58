"""`zerograd.utils.tensorboard`, as torch.utils.tensorboard: SummaryWriter writes event files TensorBoard shows.

Built as PyTorch builds its writer, on the `tensorboard` package (the extra `zerograd[tensorboard]`): its
EventFileWriter writes the records and its protocol buffers (tensorboard.compat.proto) hold scalars,
histograms and PNG images. Values may be zerograd Tensors, NumPy arrays or Python numbers. `import
zerograd.utils` never imports tensorboard; this module imports it when a SummaryWriter is made.

    from zerograd.utils.tensorboard import SummaryWriter
    with SummaryWriter("runs/exp1") as writer:
        writer.add_scalar("loss/train", 0.25, global_step=1)
    # then: tensorboard --logdir runs
"""

from __future__ import annotations

import functools
import io
import os
import socket
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import ShapeError, ZerogradError
from .data import _array

__all__ = ["SummaryWriter", "require_tensorboard"]


def require_tensorboard() -> Any:
    """The tensorboard package's writer and protocol buffers (a namespace), or the one line saying how to install it."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as err:
        raise ZerogradError('TensorBoard logging needs the tensorboard package: pip install "zerograd[tensorboard]"') \
            from err
    return SimpleNamespace(EventFileWriter=EventFileWriter, Event=event_pb2.Event, SessionLog=event_pb2.SessionLog,
                           Summary=summary_pb2.Summary, HistogramProto=summary_pb2.HistogramProto)


@functools.lru_cache(maxsize=1)
def _tensorflow_bins() -> np.ndarray:
    """TensorFlow's default histogram buckets, as PyTorch's writer makes them: +-1e-12 growing by 10% up to 1e20."""
    v, positive = 1e-12, []
    while v < 1e20:
        positive.append(v)
        v *= 1.1
    return np.array([-b for b in reversed(positive)] + [0.0] + positive)


class SummaryWriter:
    """Writes scalars, histograms and images to an event file in `log_dir` for TensorBoard, as PyTorch's SummaryWriter.

    log_dir defaults to runs/<month><day>_<hour>-<minute>-<second>_<host><comment>. `purge_step`: a run restarted
    at that step hides the events a crashed run wrote at it and after. Events are queued (at most `max_queue`)
    and written by a background thread at least every `flush_secs`; flush() and close() write them at once.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, comment: str = "", purge_step: int | None = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "") -> None:
        self._tb = require_tensorboard()
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step, self.max_queue, self.flush_secs = purge_step, max_queue, flush_secs
        self.filename_suffix = filename_suffix
        self._writers: dict[str, Any] | None = None  # folder -> EventFileWriter: log_dir's, and add_scalars' own
        self._file_writer()

    def get_logdir(self) -> str:
        """The folder the event files are written to."""
        return self.log_dir

    def _file_writer(self, folder: str | None = None) -> Any:
        """The EventFileWriter of `folder` (default log_dir), made on first use (again after close(), as PyTorch)."""
        folder = self.log_dir if folder is None else folder
        if self._writers is None:
            self._writers = {}
        if folder not in self._writers:
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise ZerogradError(f"cannot write TensorBoard events to {folder}: it is a file; give a folder")
            try:
                writer = self._tb.EventFileWriter(folder, self.max_queue, self.flush_secs, self.filename_suffix)
            except OSError as err:
                raise ZerogradError(f"cannot write TensorBoard events to {folder}: {err.strerror or err}; "
                                    "give a folder you can write to") from err
            self._writers[folder] = writer
            if folder == self.log_dir and self.purge_step is not None:  # TensorBoard drops steps >= purge_step
                step, self.purge_step = self.purge_step, None
                self._add(writer, self._tb.Event(file_version="brain.Event:2"), step, None)
                self._add(writer, self._tb.Event(session_log=self._tb.SessionLog(status=self._tb.SessionLog.START)),
                          step, None)
        return self._writers[folder]

    def _add(self, writer: Any, event: Any, global_step: int | None, walltime: float | None) -> None:
        event.wall_time = time.time() if walltime is None else float(walltime)
        if global_step is not None:
            event.step = int(global_step)
        writer.add_event(event)

    def _summary(self, tag: str, global_step: int | None, walltime: float | None, folder: str | None = None,
                 **value: Any) -> None:
        summary = self._tb.Summary(value=[self._tb.Summary.Value(tag=tag, **value)])
        self._add(self._file_writer(folder), self._tb.Event(summary=summary), global_step, walltime)

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None) -> None:
        """One value (a number, or a Tensor or array of one element) under `tag` at `global_step`.

        TensorBoard stores it as a float32 (the event's simple_value), as PyTorch's writer does.
        """
        self._summary(tag, global_step, walltime, simple_value=_scalar(tag, scalar_value))

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, Any], global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """Several values drawn in one chart `main_tag`: each goes to its own run, log_dir/<main_tag>_<tag>."""
        walltime = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            folder = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            self._summary(main_tag, global_step, walltime, folder, simple_value=_scalar(main_tag, value))

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None, bins: Any = "tensorflow",
                      walltime: float | None = None, max_bins: int | None = None) -> None:
        """The histogram of `values` (any shape). bins: "tensorflow" (TensorFlow's default exponential buckets),
        or anything numpy.histogram takes ("auto", "fd", a count, the edges); `max_bins` merges neighbouring
        buckets down to at most that many."""
        bins = _tensorflow_bins() if isinstance(bins, str) and bins == "tensorflow" else bins
        self._summary(tag, global_step, walltime, histo=self._histogram(tag, values, bins, max_bins))

    def _histogram(self, tag: str, values: Any, bins: Any, max_bins: int | None) -> Any:
        """A HistogramProto of `values`, with the buckets TensorBoard reads (PyTorch's make_histogram)."""
        values = np.asarray(_array(values), dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ShapeError(f"add_histogram({tag!r}): the values are empty; give at least one value")
        if not np.isfinite(values).all():
            raise ZerogradError(f"add_histogram({tag!r}): the values hold NaN or infinity; log finite values only")
        counts, limits = np.histogram(values, bins=bins)
        if max_bins is not None and len(counts) > max_bins:  # merge every `step` neighbouring buckets
            step = len(counts) // max_bins
            counts = np.pad(counts, (0, -len(counts) % step)).reshape(-1, step).sum(axis=1)
            limits = np.append(limits[:-1:step], limits[-1])
        # TensorBoard reads the right limits of the buckets only: keep the buckets from the first to the last
        # non-empty one, with an empty bucket before them whose right limit is their left one.
        filled = np.flatnonzero(counts)
        start, end = (int(filled[0]), int(filled[-1]) + 1) if len(filled) else (0, len(counts))
        counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
        return self._tb.HistogramProto(min=values.min(), max=values.max(), num=len(values), sum=values.sum(),
                                       sum_squares=values.dot(values), bucket_limit=limits[start:end + 1].tolist(),
                                       bucket=counts.tolist())

    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None, walltime: float | None = None,
                  dataformats: str = "CHW") -> None:
        """One image, PNG-encoded: a Tensor or array laid out as `dataformats` (CHW, HWC, HW), with 1 (grey),
        3 (RGB) or 4 (RGBA) channels; floats in [0, 1] (clipped) or uint8 in [0, 255]."""
        pixels = _hwc_uint8(tag, _array(img_tensor), dataformats)
        try:
            from PIL import Image
        except ImportError as err:
            raise ZerogradError('add_image needs Pillow: pip install "zerograd[tensorboard]"') from err
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, format="PNG")
        height, width, channels = pixels.shape
        image = self._tb.Summary.Image(height=height, width=width, colorspace=channels,
                                       encoded_image_string=png.getvalue())
        self._summary(tag, global_step, walltime, image=image)

    def flush(self) -> None:
        """Writes every queued event to disk now."""
        for writer in (self._writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Writes the queued events and closes the files (a later add_* starts a new event file, as PyTorch)."""
        for writer in (self._writers or {}).values():
            writer.flush()
            writer.close()
        self._writers = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _scalar(tag: str, value: Any) -> float:
    array = np.asarray(_array(value))
    if array.size != 1:
        raise ShapeError(f"add_scalar({tag!r}) takes one value, got an array of shape {array.shape}; "
                         "log its mean or each element under its own tag")
    return float(array.reshape(()))


def _hwc_uint8(tag: str, image: np.ndarray, dataformats: str) -> np.ndarray:
    """An image as (H, W, 3 or 4) uint8, as PyTorch's writer makes it: grey repeated to RGB, floats * 255 clipped."""
    image = np.asarray(image)
    fmt = dataformats.upper()
    if sorted(fmt) not in (sorted("CHW"), sorted("HW")) or image.ndim != len(fmt):
        raise ShapeError(f"add_image({tag!r}): an image of shape {image.shape} does not fit dataformats "
                         f"{dataformats!r}; give CHW, HWC or HW matching the image's dimensions")
    if fmt in ("HW", "WH"):
        image, fmt = image[..., None], fmt + "C"
    image = image.transpose([fmt.index(axis) for axis in "HWC"])
    if image.shape[2] not in (1, 3, 4):
        raise ShapeError(f"add_image({tag!r}): {image.shape[2]} channels; an image has 1 (grey), 3 (RGB) or 4 (RGBA)")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return (image.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
