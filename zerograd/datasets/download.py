"""Resumable, checksum-verified, atomic HTTP downloads into zerograd's data cache (standard library only)."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from zerograd.errors import DataError, DownloadError
from zerograd.io.atomic import folder_lock, fsync_dir, fsync_file

PathLike = str | os.PathLike[str]
# progress: True = tqdm bar if tqdm is installed, False = silent, or a callable(bytes_done, total_or_None).
Progress = Union[bool, Callable[[int, Union[int, None]], None]]

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16
MAX_DOWNLOAD_BYTES = 1 << 31  # 2 GiB: dataset files are tens of megabytes
_USER_AGENT = "zerograd-datasets (python urllib)"


def cache_dir() -> Path:
    """Root folder for downloaded datasets: $ZEROGRAD_DATA, else $XDG_CACHE_HOME/zerograd, else ~/.cache/zerograd."""
    explicit = os.environ.get("ZEROGRAD_DATA")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "zerograd"
    return Path.home() / ".cache" / "zerograd"


def checksum_algorithm(expected: str) -> str:
    """'md5' or 'sha256' for a hex digest, told apart by its length (32 or 64 hex digits)."""
    algorithms = {32: "md5", 64: "sha256"}
    if len(expected) not in algorithms or not re.fullmatch(r"[0-9a-fA-F]+", expected):
        raise DataError(
            f"checksum {expected!r} is neither an MD5 (32 hex digits) nor a SHA-256 (64 hex digits)"
        )
    return algorithms[len(expected)]


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest (hashlib algorithm name) of the raw bytes of the file at `path`."""
    # usedforsecurity=False: MD5 here only detects damage, and FIPS builds refuse it otherwise.
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: PathLike, expected: str) -> None:
    """Raise DataError unless the raw bytes of `path` have the MD5 or SHA-256 hex digest `expected`."""
    algorithm = checksum_algorithm(expected)
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DataError(
            f"file {path} fails its checksum: its {algorithm.upper()} is {actual}, expected {expected.lower()}; "
            "it is corrupted or not the expected file: delete it and download it again"
        )


class _Reporter:
    """Forwards byte counts to a callable, a tqdm bar, or nowhere."""

    def __init__(self, progress: Progress, name: str, done: int, total: int | None) -> None:
        self._callback: Callable[[int, int | None], None] | None = None
        self._bar: Any = None
        self.done, self.total = done, total
        if callable(progress):
            self._callback = progress
        elif progress:
            try:  # tqdm is optional: without it there is simply no bar
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                                 desc=name, leave=False)
        self._emit()

    def _emit(self) -> None:
        if self._callback is not None:
            self._callback(self.done, self.total)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        self._emit()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _manual_hint(url: str, dest: Path) -> str:
    return f"without a network, download {url} on another machine and save it as {dest}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    """urlopen with a Range header when resuming; network failures become DownloadError."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch(url: str, part: Path, progress: Progress, timeout: float, manual: str) -> None:
    """Bring `part` to the full content of `url`, continuing an existing partial file when the server allows."""
    for _ in range(2):  # a second pass only after discarding a .part the server cannot continue
        offset = part.stat().st_size if part.exists() else 0
        try:
            response = _open(url, offset, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:
                # Range past the end: the .part is either already complete or longer than the file.
                match = re.fullmatch(r"bytes \*/(\d+)", e.headers.get("Content-Range", "") or "")
                if match and int(match.group(1)) == offset:
                    return
                part.unlink()
                continue
            raise DownloadError(f"could not download {url}: the server answered HTTP {e.code} {e.reason}; "
                                f"{manual}") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            raise DownloadError(f"could not download {url}: {reason}; {manual}") from e
        with response:
            mode = "wb"
            if offset and response.status == 206:
                match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    mode = "ab"
            if mode == "wb" and offset:
                if response.status == 206:
                    # A partial answer that does not start where the .part ends cannot be used.
                    part.unlink()
                    continue
                offset = 0  # the server ignored Range and sends the whole file: start over
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            too_big = (f"download of {url} is larger than {MAX_DOWNLOAD_BYTES:,} bytes, far more than any "
                       "dataset file zerograd reads: the server or the address is wrong; nothing was kept")
            if total is not None and total > MAX_DOWNLOAD_BYTES:
                raise DownloadError(too_big)
            reporter = _Reporter(progress, part.name[: -len(".part")], offset, total)
            try:
                with open(part, mode) as f:
                    while reporter.done <= MAX_DOWNLOAD_BYTES:  # a server streaming forever must not fill the disk
                        try:
                            block = response.read(_CHUNK)
                        except (OSError, http.client.HTTPException) as e:
                            raise DownloadError(
                                f"download of {url} was interrupted after {reporter.done} bytes ({e}); "
                                f"the partial file {part} is kept: run again to resume"
                            ) from e
                        if not block:
                            break
                        f.write(block)
                        reporter.update(len(block))
            finally:
                reporter.close()
            if reporter.done > MAX_DOWNLOAD_BYTES:
                part.unlink()
                raise DownloadError(too_big)
            if total is not None and reporter.done != total:
                raise DownloadError(
                    f"download of {url} stopped after {reporter.done} of {total} bytes; "
                    f"the partial file {part} is kept: run again to resume"
                )
            return
    raise DownloadError(f"could not download {url}: the server keeps rejecting the request to resume; "
                        f"delete {part} and try again")


def download_file(url: str, dest: PathLike, *, checksum: str | None = None, progress: Progress = True,
                  timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download `url` to `dest` via `dest`.part, verify `checksum` (MD5 or SHA-256 hex), then rename.

    An existing `dest`.part is resumed with HTTP Range.
    """
    return _download(url, Path(dest), checksum, progress, timeout, _manual_hint(url, Path(dest)))


def _download(url: str, dest: Path, checksum: str | None, progress: Progress, timeout: float, manual: str) -> Path:
    """download_file, with `manual` telling in error messages how to get the file by hand."""
    if checksum is not None:
        checksum_algorithm(checksum)  # reject a malformed checksum before any network traffic
    if dest.exists():
        if checksum is not None:
            verify_file(dest, checksum)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (two notebooks, two trainings) fetching the same file would append to the same
    # .part: the lock makes the second wait, then find the first one's verified file.
    with folder_lock(dest.parent):
        if dest.exists():
            if checksum is not None:
                verify_file(dest, checksum)
            return dest
        part = dest.with_name(dest.name + ".part")
        _fetch(url, part, progress, timeout, manual)
        if checksum is not None:
            algorithm = checksum_algorithm(checksum)
            actual = file_digest(part, algorithm)
            if actual != checksum.lower():
                part.unlink()
                raise DataError(
                    f"download of {url} fails its checksum: its {algorithm.upper()} is {actual}, expected "
                    f"{checksum.lower()}; the bad file was deleted. Try again later or from another mirror; {manual}"
                )
        # Only a complete, verified file ever carries the final name, and a power cut cannot undo that.
        fsync_file(part)
        os.replace(part, dest)
        fsync_dir(dest.parent)
    return dest
