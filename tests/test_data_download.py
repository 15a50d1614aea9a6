"""Tests for d2lcnn.data.download against a local HTTP server on 127.0.0.1 (never the
internet): verified, corrupt, truncated, missing and unreachable files, and archives."""

import hashlib
import io
import re
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from d2lcnn.data import load_cifar10
from d2lcnn.data.__main__ import main
from d2lcnn.data.download import REMOTE_DATASETS, DownloadError, RemoteFile, download, fetch

GOOD = b"real data " * 1000
TRUNCATED = b"only part of the body"


def make_tarball() -> bytes:
    """A .tar.gz holding cifar-10-batches-py/test_batch, a 2-image CIFAR batch."""
    import pickle

    batch = {b"data": np.arange(2 * 3072, dtype=np.uint64).astype(np.uint8).reshape(2, 3072),
             b"labels": [3, 7]}
    payload = pickle.dumps(batch, protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


TARBALL = make_tarball()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/good.bin":
            body, length = GOOD, len(GOOD)
        elif self.path == "/archive.tar.gz":
            body, length = TARBALL, len(TARBALL)
        elif self.path == "/truncated.bin":
            body, length = TRUNCATED, len(TRUNCATED) + 5000  # promises more than it sends
        else:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_verified_and_kept(server, tmp_path):
    remote = RemoteFile("good.bin", (f"{server}/good.bin",), sha(GOOD), len(GOOD))
    path = fetch(remote, tmp_path, quiet=True)
    assert path == tmp_path / "good.bin" and path.read_bytes() == GOOD
    assert leftovers(tmp_path) == ["good.bin"]  # no temporary file left behind


def test_corrupt_file_is_deleted(server, tmp_path):
    remote = RemoteFile("good.bin", (f"{server}/good.bin",), sha(b"something else"))
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        fetch(remote, tmp_path, quiet=True)
    assert sha(GOOD) in str(info.value)
    assert leftovers(tmp_path) == []


def test_wrong_size_is_deleted(server, tmp_path):
    remote = RemoteFile("good.bin", (f"{server}/good.bin",), sha(GOOD), size=len(GOOD) + 1)
    with pytest.raises(DownloadError, match=f"gave {len(GOOD)} bytes, expected"):
        fetch(remote, tmp_path, quiet=True)
    assert leftovers(tmp_path) == []


def test_truncated_transfer_is_deleted(server, tmp_path):
    remote = RemoteFile("t.bin", (f"{server}/truncated.bin",), None)
    with pytest.raises(DownloadError, match="cut off"):
        fetch(remote, tmp_path, quiet=True)
    assert leftovers(tmp_path) == []


def test_404_is_a_clear_error(server, tmp_path):
    remote = RemoteFile("x.bin", (f"{server}/missing.bin",), None)
    with pytest.raises(DownloadError, match=r"HTTP 404 Not Found for http://127\.0\.0\.1"):
        fetch(remote, tmp_path, quiet=True)
    assert leftovers(tmp_path) == []


def test_offline_says_so(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    remote = RemoteFile("x.bin", (f"http://127.0.0.1:{port}/x.bin",), None)
    with pytest.raises(DownloadError, match="could not reach 127.0.0.1: are you offline?"):
        fetch(remote, tmp_path, quiet=True, timeout=5)
    assert leftovers(tmp_path) == []


def test_next_mirror_is_tried_and_errors_are_listed(server, tmp_path):
    remote = RemoteFile("good.bin", (f"{server}/missing.bin", f"{server}/good.bin"), sha(GOOD))
    assert fetch(remote, tmp_path, quiet=True).read_bytes() == GOOD
    both_bad = RemoteFile("g.bin", (f"{server}/a.bin", f"{server}/truncated.bin"), None)
    with pytest.raises(DownloadError) as info:
        fetch(both_bad, tmp_path, quiet=True)
    assert "HTTP 404" in str(info.value) and "cut off" in str(info.value)


def test_unverified_file_is_kept_and_reported(server, tmp_path, capsys):
    remote = RemoteFile("good.bin", (f"{server}/good.bin",), None)
    assert fetch(remote, tmp_path).read_bytes() == GOOD
    err = capsys.readouterr().err
    assert "UNVERIFIED" in err and sha(GOOD) in err


def test_failed_download_can_be_rerun(server, tmp_path):
    table = {"demo": ("demo", (RemoteFile("good.bin", (f"{server}/good.bin",), sha(b"x")),))}
    with pytest.raises(DownloadError):
        download("demo", root=tmp_path, datasets=table, quiet=True)
    assert leftovers(tmp_path / "demo") == []
    table = {"demo": ("demo", (RemoteFile("good.bin", (f"{server}/good.bin",), sha(GOOD)),))}
    folder = download("demo", root=tmp_path, datasets=table, quiet=True)
    assert leftovers(folder) == ["good.bin"]
    # A second run finds the file and downloads nothing (an unreachable URL proves it).
    table = {"demo": ("demo", (RemoteFile("good.bin", ("http://127.0.0.1:9/x",), sha(GOOD)),))}
    assert download("demo", root=tmp_path, datasets=table, quiet=True) == folder


def test_archive_is_extracted_then_readable(server, tmp_path):
    table = {"cifar10": ("cifar10", (RemoteFile("c.tar.gz", (f"{server}/archive.tar.gz",),
                                                sha(TARBALL), extract=True),))}
    folder = download("cifar10", root=tmp_path, datasets=table, quiet=True)
    assert leftovers(folder) == ["c.tar.gz.extracted", "cifar-10-batches-py"]
    x, y = load_cifar10("test", root=tmp_path, as_float=False)
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [3, 7]


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="name must be one of mnist, fashion_mnist, cifar10"):
        download("imagenet", root=tmp_path)


def test_table_is_well_formed():
    for name, (folder, files) in REMOTE_DATASETS.items():
        assert re.fullmatch(r"[a-z0-9_]+", folder), name
        for f in files:
            assert f.urls and all(u.startswith(("https://", "http://")) for u in f.urls)
            assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256), f.filename
    names = [f.filename for f in REMOTE_DATASETS["mnist"][1]]
    assert names == [f.filename for f in REMOTE_DATASETS["fashion_mnist"][1]]


def test_command_line_list(tmp_path, capsys):
    assert main(["list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in REMOTE_DATASETS:
        assert re.search(rf"^{name}\s+missing", out, re.MULTILINE)


def test_command_line_rejects_unknown_name(capsys):
    with pytest.raises(SystemExit):
        main(["download", "imagenet"])
    assert "invalid choice" in capsys.readouterr().err
