"""Downloads against a local HTTP server on 127.0.0.1: success, resume, corruption, no network."""

import gzip
import hashlib
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import zerograd.datasets as zd
from zerograd.datasets.download import checksum_algorithm, download_file
from zerograd.datasets.idx import idx_bytes
from zerograd.datasets.mnist import FILE_STEMS
from zerograd.errors import DataError, DownloadError


class _Handler(BaseHTTPRequestHandler):
    """Serves server.files; honours Range unless told not to; can cut a response or corrupt it."""

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        if server.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start, ranged = 0, self.headers.get("Range")
        if ranged and server.honor_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", ranged).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            # Announce the whole body, send a part, hang up: an interrupted download.
            self.wfile.write(body[: server.cut_after])
            server.cut_after = None
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    httpd.honor_range, httpd.corrupt, httpd.cut_after = True, False, None
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def dead_url():
    # A port that was just free: nothing listens there, so connecting is refused at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _synthetic_gz_files():
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
        np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8),
        rng.integers(0, 256, (2, 4, 4), dtype=np.uint8),
        np.array([2, 6], dtype=np.uint8),
    )
    files = {f"{stem}.gz": gzip.compress(idx_bytes(a), mtime=0) for stem, a in zip(FILE_STEMS, arrays)}
    return arrays, files


def _md5s(files):
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def test_download_dataset_success_then_load(server, tmp_path):
    arrays, files = _synthetic_gz_files()
    server.files = files
    folder = zd.download_dataset("fashion-mnist", tmp_path, base_url=server.url, checksums=_md5s(files),
                                 progress=False)
    assert folder == tmp_path / "fashion-mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)  # no .part left behind
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert [path for path, _ in server.requests] == [f"/{name}" for name in files]

    (x_train, t_train), (x_test, t_test) = zd.load_dataset(
        "fashion-mnist", normalize=False, root=tmp_path, base_url=server.url, checksums=_md5s(files))
    np.testing.assert_array_equal(x_train, arrays[0].reshape(6, 16))
    assert t_train.tolist() == [3, 1, 4, 1, 5, 9] and t_test.tolist() == [2, 6]
    np.testing.assert_array_equal(x_test, arrays[2].reshape(2, 16))
    assert len(server.requests) == 4  # the second call found everything in place


def test_sha256_checksums_and_progress_callback(server, tmp_path):
    payload = bytes(range(256)) * 1000
    server.files = {"blob.bin": payload}
    seen = []
    path = download_file(server.url + "blob.bin", tmp_path / "blob.bin",
                         checksum=hashlib.sha256(payload).hexdigest(),
                         progress=lambda n, total: seen.append((n, total)))
    assert path.read_bytes() == payload
    assert seen[0] == (0, len(payload)) and seen[-1] == (len(payload), len(payload))
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_zerograd_mirror_env(server, tmp_path, monkeypatch):
    _, files = _synthetic_gz_files()
    server.files = {f"kmnist/{name}": data for name, data in files.items()}
    monkeypatch.setenv("ZEROGRAD_MIRROR", server.url.rstrip("/"))
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    folder = zd.download_dataset("kmnist", checksums=_md5s(files), progress=False)
    assert folder == tmp_path / "kmnist"
    assert server.requests[0] == ("/kmnist/train-images-idx3-ubyte.gz", None)


def test_resume_partial_file_with_range(server, tmp_path):
    payload = bytes(range(256)) * 40
    server.files = {"f.gz": payload}
    dest = tmp_path / "f.gz"
    (tmp_path / "f.gz.part").write_bytes(payload[:3000])
    download_file(server.url + "f.gz", dest, checksum=hashlib.md5(payload).hexdigest(), progress=False)
    assert server.requests == [("/f.gz", "bytes=3000-")]
    assert dest.read_bytes() == payload
    assert not (tmp_path / "f.gz.part").exists()


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    payload = bytes(range(256)) * 40
    server.files = {"f.gz": payload}
    server.cut_after = 1000
    dest = tmp_path / "f.gz"
    url = server.url + "f.gz"
    with pytest.raises(DownloadError) as e:
        download_file(url, dest, checksum=hashlib.md5(payload).hexdigest(), progress=False)
    part = tmp_path / "f.gz.part"
    assert f"download of {url} stopped after 1000 of {len(payload)} bytes" in str(e.value)
    assert f"the partial file {part} is kept: run again to resume" in str(e.value)
    assert not dest.exists() and part.read_bytes() == payload[:1000]

    download_file(url, dest, checksum=hashlib.md5(payload).hexdigest(), progress=False)
    assert server.requests[-1] == ("/f.gz", "bytes=1000-")
    assert dest.read_bytes() == payload and not part.exists()


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    payload = b"IDX" * 5000
    server.files = {"f.gz": payload}
    server.honor_range = False
    (tmp_path / "f.gz.part").write_bytes(b"stale bytes from another version")
    dest = download_file(server.url + "f.gz", tmp_path / "f.gz", checksum=hashlib.md5(payload).hexdigest(),
                         progress=False)
    assert server.requests == [("/f.gz", "bytes=32-")]
    assert dest.read_bytes() == payload


def test_complete_part_file_is_finished_after_416(server, tmp_path):
    payload = b"0123456789" * 10
    server.files = {"f.gz": payload}
    (tmp_path / "f.gz.part").write_bytes(payload)
    dest = download_file(server.url + "f.gz", tmp_path / "f.gz", checksum=hashlib.md5(payload).hexdigest(),
                         progress=False)
    assert dest.read_bytes() == payload
    assert server.requests == [("/f.gz", "bytes=100-")]


def test_overlong_part_file_is_discarded_after_416(server, tmp_path):
    payload = b"0123456789" * 10
    server.files = {"f.gz": payload}
    (tmp_path / "f.gz.part").write_bytes(payload + b"junk")
    dest = download_file(server.url + "f.gz", tmp_path / "f.gz", progress=False)
    assert dest.read_bytes() == payload
    assert server.requests == [("/f.gz", "bytes=104-"), ("/f.gz", None)]


def test_corrupted_download_is_deleted_and_reported(server, tmp_path):
    _, files = _synthetic_gz_files()
    server.files = files
    server.corrupt = True
    table = _md5s(files)
    with pytest.raises(DataError) as e:
        zd.download_dataset("kmnist", tmp_path, base_url=server.url, checksums=table, progress=False)
    assert not isinstance(e.value, DownloadError)
    message = str(e.value)
    url = server.url + "train-images-idx3-ubyte.gz"
    assert f"download of {url} fails its checksum: its MD5 is " in message
    assert f"expected {table['train-images-idx3-ubyte.gz']}; the bad file was deleted" in message
    assert list((tmp_path / "kmnist").iterdir()) == []  # neither a final file nor a .part


def test_server_down_says_what_to_download_and_where(dead_url, tmp_path):
    with pytest.raises(DownloadError) as e:
        zd.download_dataset("fashion-mnist", tmp_path, base_url=dead_url, progress=False, timeout=5)
    message = str(e.value)
    folder = tmp_path / "fashion-mnist"
    assert f"could not download {dead_url}train-images-idx3-ubyte.gz" in message
    urls = [f"{dead_url}{stem}.gz" for stem in FILE_STEMS]
    assert f"download {urls[0]}, {urls[1]}, {urls[2]} and {urls[3]} into the folder {folder}" in message
    assert "\n" not in message  # the CLI shows errors as one line
    assert 'load_dataset("<that folder>")' in message
    assert list(folder.iterdir()) == []


def test_load_dataset_offline_raises_download_error(dead_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_MIRROR", dead_url)
    with pytest.raises(DownloadError, match=r"to install kmnist by hand, download"):
        zd.load_dataset("kmnist", root=tmp_path, progress=False)


def test_http_error_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match=r"could not download .*missing.gz: the server answered HTTP 404"):
        download_file(server.url + "missing.gz", tmp_path / "missing.gz", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_with_wrong_checksum_is_reported_not_replaced(server, tmp_path):
    dest = tmp_path / "f.gz"
    dest.write_bytes(b"something else")
    with pytest.raises(DataError, match=r"f.gz fails its checksum: its MD5 is .*delete it and download it again"):
        download_file(server.url + "f.gz", dest, checksum="0" * 32, progress=False)
    assert dest.read_bytes() == b"something else" and server.requests == []


def test_progress_bar_without_tqdm_prints_nothing(server, tmp_path, monkeypatch, capsys):
    server.files = {"f": b"x" * 5000}
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    download_file(server.url + "f", tmp_path / "f", progress=True)
    assert (tmp_path / "f").read_bytes() == b"x" * 5000
    assert capsys.readouterr() == ("", "")


def test_progress_bar_with_tqdm(server, tmp_path, capsys):
    pytest.importorskip("tqdm")
    server.files = {"f": b"x" * 5000}
    download_file(server.url + "f", tmp_path / "f", progress=True)
    assert capsys.readouterr().out == ""  # the bar goes to stderr, never stdout


def test_quiet_download_prints_nothing(server, tmp_path, capsys):
    server.files = {"f": b"x" * 5000}
    download_file(server.url + "f", tmp_path / "f", progress=False)
    assert capsys.readouterr() == ("", "")


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zd.cache_dir() == tmp_path / "data"
    monkeypatch.delenv("ZEROGRAD_DATA")
    assert zd.cache_dir() == tmp_path / "xdg" / "zerograd"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert zd.cache_dir() == Path(tmp_path / "home" / ".cache" / "zerograd")


def test_checksum_kind_from_length():
    assert checksum_algorithm("a" * 32) == "md5"
    assert checksum_algorithm("A" * 64) == "sha256"
    with pytest.raises(DataError, match=r"neither an MD5 \(32 hex digits\) nor a SHA-256"):
        checksum_algorithm("xyz")
