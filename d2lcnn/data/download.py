"""Opt-in downloads of the benchmark data sets, verified and written atomically.

Nothing in the book or the tests calls this: a reader runs
``python -m d2lcnn.data download NAME`` once, by hand. Only the standard library is used.

Guarantees:

- **Verified**: each file's SHA-256 (and size, where known) is checked against
  :data:`REMOTE_DATASETS` before it is kept. A file whose checksum is not recorded is kept but
  reported as *unverified*, never silently trusted.
- **Atomic**: a download goes to a temporary file in the destination folder and is moved
  into place with ``os.replace`` only after it has been checked, so a failed, truncated or
  corrupt transfer leaves nothing behind and the command can simply be re-run.
- **Mirrors**: each file lists one or more URLs, tried in order.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "REMOTE_DATASETS",
    "DataRoot",
    "DownloadError",
    "RemoteFile",
    "data_root",
    "download",
    "download_command",
    "fetch",
    "locate_data_root",
    "sha256_of",
    "user_data_dir",
]

#: Environment variable naming the folder that holds the benchmark data sets.
ENV_VAR = "D2LCNN_DATA"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set and where to get it.

    Attributes:
        filename: name of the file once downloaded.
        urls: URLs to try, in order (the canonical location first, then mirrors).
        sha256: expected SHA-256 as 64 hex digits, or ``None`` if unknown: the download is
            then kept but reported as UNVERIFIED.
        size: expected size in bytes, or ``None`` if unknown.
        extract: if True the file is a ``.tar.gz`` archive that is unpacked into the data
            set's folder (and then deleted).
    """

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    extract: bool = False


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror (torchvision)
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
)
# Zalando's bucket serves the website endpoint over HTTP only; the SHA-256 check is what
# makes the transfer trustworthy.
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: name -> (folder under the data root, files). Checksums: the SHA-256 values published
#: with the files by TensorFlow Datasets / Keras and reproduced by many independent projects.
REMOTE_DATASETS: dict[str, tuple[str, tuple[RemoteFile, ...]]] = {
    "mnist": (
        "mnist",
        tuple(
            RemoteFile(name, tuple(m + name for m in _MNIST_MIRRORS), sha, size)
            for name, sha, size in [
                ("train-images-idx3-ubyte.gz",
                 "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
                ("train-labels-idx1-ubyte.gz",
                 "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
                ("t10k-images-idx3-ubyte.gz",
                 "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
                ("t10k-labels-idx1-ubyte.gz",
                 "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
            ]
        ),
    ),
    "fashion_mnist": (
        "fashion_mnist",
        tuple(
            RemoteFile(name, (_FASHION + name,), sha, size)
            for name, sha, size in [
                ("train-images-idx3-ubyte.gz",
                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
                ("train-labels-idx1-ubyte.gz",
                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
                ("t10k-images-idx3-ubyte.gz",
                 "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
                ("t10k-labels-idx1-ubyte.gz",
                 "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
            ]
        ),
    ),
    "cifar10": (
        "cifar10",
        (
            RemoteFile(
                "cifar-10-python.tar.gz",
                ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                170498071,
                extract=True,
            ),
        ),
    ),
}


class DownloadError(RuntimeError):
    """A download failed (unreachable host, HTTP error, truncated or corrupt file)."""


class DataRoot(NamedTuple):
    """Where the benchmark data sets are read from, and why that folder."""

    path: Path  # absolute; it need not exist yet
    reason: str  # e.g. "$D2LCNN_DATA", "the data/ folder of the checkout /home/me/d2lcnn"


def user_data_dir() -> Path:
    """The per-user data folder of d2lcnn, the platform's convention (no dependency needed).

    Linux and other Unix: ``$XDG_DATA_HOME/d2lcnn`` (an absolute ``XDG_DATA_HOME`` only, as
    the XDG spec says), else ``~/.local/share/d2lcnn``; macOS:
    ``~/Library/Application Support/d2lcnn``; Windows: ``%LOCALAPPDATA%\\d2lcnn``.
    """
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Application Support")
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = xdg if os.path.isabs(xdg) else str(Path.home() / ".local" / "share")
    return Path(base) / "d2lcnn"


def _checkout_of(package_dir: Path) -> Path | None:
    """The repository folder if ``package_dir`` (the ``d2lcnn/`` folder) sits in a checkout.

    A checkout is recognised by its ``pyproject.toml`` naming this project next to a
    ``data/`` folder; an installed copy in ``site-packages`` has neither.
    """
    repo = package_dir.parent
    if not (repo / "data").is_dir():
        return None
    try:
        project = tomllib.loads((repo / "pyproject.toml").read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return repo if project.get("name") == "d2lcnn" else None


def locate_data_root(
    root: str | os.PathLike | None = None, *, package_dir: str | os.PathLike | None = None
) -> DataRoot:
    """The folder that holds the benchmark data sets, with the reason it was chosen.

    Order: the ``root`` argument if given; else the environment variable ``D2LCNN_DATA``
    if set; else the ``data/`` folder of the checkout when the package runs from one
    (``git clone``, editable install); else the per-user folder :func:`user_data_dir`
    (a ``pip install`` into ``site-packages``, where a ``data/`` folder would not belong).

    Args:
        root: an explicit folder, or ``None``.
        package_dir: the ``d2lcnn/`` package folder to judge (default: this package's).

    Returns:
        A :class:`DataRoot` ``(path, reason)``; ``path`` is absolute and need not exist.
    """
    if root is not None:
        return DataRoot(Path(root).expanduser().resolve(), "the root argument")
    env = os.environ.get(ENV_VAR)
    if env:
        return DataRoot(Path(env).expanduser().resolve(), f"${ENV_VAR}")
    if package_dir is None:
        package_dir = Path(__file__).resolve().parents[1]  # d2lcnn/data/download.py -> d2lcnn/
    repo = _checkout_of(Path(package_dir).resolve())
    if repo is not None:
        return DataRoot(repo / "data", f"the data/ folder of the checkout {repo}")
    return DataRoot(user_data_dir().resolve(),
                    f"the per-user data folder (not running from a checkout; set ${ENV_VAR} "
                    "to use another)")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the benchmark data sets (see :func:`locate_data_root`).

    Args:
        root: an explicit folder, or ``None``.

    Returns:
        The folder as an absolute ``Path`` (it need not exist).
    """
    return locate_data_root(root).path


def download_command(name: str, root: str | os.PathLike | None = None) -> str:
    """The shell command that downloads data set ``name`` (into ``root`` if given)."""
    cmd = f"python -m d2lcnn.data download {name}"
    return cmd if root is None else f"{cmd} --root {root}"


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file as 64 lowercase hex digits, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr)


def _fetch_url(url: str, tmp, *, timeout: float, quiet: bool) -> int:
    """Stream ``url`` into the open file ``tmp``; return the bytes written.

    Raises DownloadError with a readable message for every failure.
    """
    host = urllib.parse.urlsplit(url).hostname or url
    request = urllib.request.Request(url, headers={"User-Agent": "d2lcnn-download"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            expected = int(expected) if expected is not None else None
            written = 0
            while chunk := resp.read(1 << 20):
                tmp.write(chunk)
                written += len(chunk)
                if expected and not quiet:
                    print(f"\r  {written / 1e6:7.1f} / {expected / 1e6:.1f} MB", end="",
                          file=sys.stderr)
            if expected and not quiet:
                print(file=sys.stderr)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"HTTP {e.code} {e.reason} for {url}") from e
    except urllib.error.URLError as e:
        raise DownloadError(
            f"could not reach {host}: are you offline? ({e.reason}). Connect to the network "
            f"and re-run the command, or copy the files into the data folder by hand."
        ) from e
    except http.client.IncompleteRead as e:
        raise DownloadError(
            f"transfer from {url} was cut off after {len(e.partial)} more bytes "
            f"({e.expected} still expected); re-run the command"
        ) from e
    except (TimeoutError, ConnectionError) as e:
        raise DownloadError(f"transfer from {url} failed: {e}; re-run the command") from e
    if expected is not None and written != expected:
        raise DownloadError(
            f"transfer from {url} was cut off: got {written} bytes, the server announced "
            f"{expected}; re-run the command"
        )
    return written


def fetch(
    remote: RemoteFile, folder: str | os.PathLike, *, timeout: float = 60.0, quiet: bool = False
) -> Path:
    """Download one file into ``folder``, verify it, and move it into place atomically.

    The bytes go to a temporary file in ``folder`` (same file system, so the final
    ``os.replace`` is atomic); the temporary file is deleted on any failure. Each URL of
    ``remote.urls`` is tried in turn until one gives a verified file.

    Args:
        remote: what to fetch and how to check it.
        folder: destination folder (created if needed).
        timeout: socket timeout in seconds for each connection.
        quiet: if True print nothing.

    Returns:
        Path of the verified file, ``folder / remote.filename``.

    Raises:
        DownloadError: if no URL gave a file with the expected size and checksum; the
            message lists what went wrong with each URL.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / remote.filename
    errors = []
    for url in remote.urls:
        _say(f"downloading {url}", quiet)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part",
                                        dir=folder)
        try:
            with os.fdopen(fd, "wb") as tmp:
                size = _fetch_url(url, tmp, timeout=timeout, quiet=quiet)
            if remote.size is not None and size != remote.size:
                raise DownloadError(
                    f"{url} gave {size} bytes, expected {remote.size}: not the expected file"
                )
            digest = sha256_of(tmp_name)
            if remote.sha256 is None:
                _say(f"  UNVERIFIED: no SHA-256 is recorded for {remote.filename}; "
                     f"its SHA-256 is {digest}. Check it against the publisher's value.", quiet)
            elif digest != remote.sha256.lower():
                raise DownloadError(
                    f"checksum mismatch for {url}: SHA-256 {digest}, expected "
                    f"{remote.sha256}; the file is corrupt or was changed, and was deleted"
                )
            os.replace(tmp_name, dest)
            return dest
        except DownloadError as e:
            errors.append(str(e))
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
    raise DownloadError(
        f"could not download {remote.filename}:\n  " + "\n  ".join(errors)
    )


def _extract(archive: Path, folder: Path) -> None:
    """Unpack a .tar.gz into ``folder``: to a temporary folder first, then moved into place."""
    with tempfile.TemporaryDirectory(prefix=".extract.", dir=folder) as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # "data": no absolute paths, links or devices
        for item in sorted(Path(tmp).iterdir()):
            target = folder / item.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(item, target)


def download(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    force: bool = False,
    datasets: dict[str, tuple[str, tuple[RemoteFile, ...]]] | None = None,
    timeout: float = 60.0,
    quiet: bool = False,
) -> Path:
    """Download data set ``name`` into ``data_root(root) / folder``; skip files already there.

    Args:
        name: a key of ``datasets`` (default :data:`REMOTE_DATASETS`: ``mnist``, ``fashion_mnist``,
            ``cifar10``).
        root: data root (see :func:`data_root`).
        force: if True download again even if the files exist.
        datasets: the table to use instead of :data:`REMOTE_DATASETS` (tests point it at a local
            server).
        timeout: socket timeout in seconds.
        quiet: if True print nothing.

    Returns:
        The data set's folder.

    Raises:
        ValueError: for an unknown ``name``.
        DownloadError: if a file cannot be downloaded and verified.
    """
    table = REMOTE_DATASETS if datasets is None else datasets
    if name not in table:
        raise ValueError(f"download: name must be one of {', '.join(table)}; got {name!r}")
    subfolder, files = table[name]
    folder = data_root(root) / subfolder
    for remote in files:
        done = folder / (remote.filename + ".extracted" if remote.extract else remote.filename)
        if done.exists() and not force:
            _say(f"{done.name.removesuffix('.extracted')} already present in {folder}", quiet)
            continue
        path = fetch(remote, folder, timeout=timeout, quiet=quiet)
        if remote.extract:
            _extract(path, folder)
            path.unlink()  # the archive is unpacked; keep a marker instead of 170 MB
            done.write_text(f"{remote.sha256 or 'unverified'}\n")
    _say(f"{name} is in {folder}", quiet)
    return folder
