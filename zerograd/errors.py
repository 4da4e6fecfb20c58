"""Exceptions a user can cause. The CLI turns these into one line on stderr and a non-zero exit."""


class ZerogradError(Exception):
    """Base class of every error zerograd raises for bad input (files, shapes, flags)."""


class DataError(ZerogradError):
    """A dataset file or folder is missing, truncated, malformed or fails its checksum."""


class DownloadError(DataError):
    """A dataset could not be downloaded; the message says what to fetch and where to put it."""


class ModelFileError(ZerogradError):
    """A file is not a zerograd model file (or a book pickle holds something other than arrays)."""


class ShapeError(ZerogradError, ValueError):
    """Operands of an operation have shapes that do not fit together."""
