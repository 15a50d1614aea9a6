"""Submission files: finding them, reading them safely, and naming their students.

:func:`expand` lists the files named on the command line and everything under named
folders (links listed, never followed); :func:`read_submission` reads one without
following a link or blocking on a FIFO, up to :data:`MAX_SUBMISSION_BYTES` + 1 bytes; and
:func:`submission_name` turns a file's path into a stable, safe student id (the name of its
result folder and its gradebook row), :func:`id_collisions` refusing ids that coincide.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path, PurePosixPath
from typing import NamedTuple

__all__ = ["Submission", "expand", "read_submission", "Refused", "submission_name",
           "id_collisions", "real_path", "MAX_SUBMISSION_BYTES", "ID_MAX"]

MAX_SUBMISSION_BYTES = 50 * 2**20


class Submission(NamedTuple):
    """A submission file found by :func:`expand`."""

    path: Path  # root / rel, or the file as named on the command line
    rel: PurePosixPath  # its path relative to root (just its name if root is None)
    root: Path | None  # the folder named on the command line that it was found in


def expand(paths) -> list[Submission]:
    """Files named on the command line, and every non-hidden entry under named folders.

    Symbolic links under a folder are listed (each gets a row saying it was not graded) but
    never followed: a symlinked folder is not descended. A folder named on the command line
    is the instructor's and is followed if it is itself a link; a FILE named there is read
    like any other, so a symlink is refused (pass the folder, not a shell glob of its
    entries). Other special files (a FIFO) are listed and refused when read."""
    out: dict[Path, Submission] = {}
    for p in map(Path, paths):
        if p.is_dir():
            for rel in _walk(p, ()):
                out.setdefault(p.joinpath(*rel), Submission(p.joinpath(*rel),
                                                            PurePosixPath(*rel), p))
        else:
            out.setdefault(p, Submission(p, PurePosixPath(p.name), None))
    return list(out.values())


def _walk(root: Path, rel: tuple[str, ...]):
    """Non-hidden entries below ``root / rel`` (sorted), descending only into real folders."""
    try:
        with os.scandir(root.joinpath(*rel)) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        if rel:  # an unreadable folder gets a row (refused when read), not silence
            yield rel
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir(follow_symlinks=False):
            yield from _walk(root, (*rel, e.name))
        else:  # a regular file, a symbolic link (to anything), or a special file
            yield (*rel, e.name)


class Refused(OSError):
    """A submission that is not read (symbolic link, not a regular file); str() is the note."""


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def read_submission(path, root=None) -> bytes:
    """The first ``MAX_SUBMISSION_BYTES + 1`` bytes of a submission, following no symlink.

    Every component below ``root`` (or just the file, if ``root`` is None) is opened with
    ``O_NOFOLLOW | O_NONBLOCK`` relative to its parent's descriptor and checked with
    ``fstat`` on that descriptor, so an entry swapped for a symbolic link, a FIFO or a
    device after listing is refused (:class:`Refused`), never followed or blocked on."""
    path = Path(path)
    parts = path.relative_to(root).parts if root is not None else (str(path),)
    fds: list[int] = []
    try:
        dir_fd = None
        if root is not None:
            dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            fds.append(dir_fd)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                fd = os.open(part, _OPEN_FLAGS, dir_fd=dir_fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: FreeBSD's O_NOFOLLOW
                    what = "the file" if last else f"the folder {part!r} on its path"
                    raise Refused(f"{what} is a symbolic link and was not graded (links "
                                   "are never followed)") from None
                raise
            fds.append(fd)
            mode = os.fstat(fd).st_mode
            if not last and not stat.S_ISDIR(mode):
                raise Refused(f"{part!r} on its path is not a folder; not graded")
            if last and not stat.S_ISREG(mode):
                kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                        else "a socket" if stat.S_ISSOCK(mode) else "a device")
                raise Refused(f"not a regular file ({kind}); not graded")
            dir_fd = fd
        chunks, size = [], 0
        while size <= MAX_SUBMISSION_BYTES:
            chunk = os.read(fds[-1], min(2**20, MAX_SUBMISSION_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        for fd in fds:
            os.close(fd)


ID_MAX = 64  # characters of a student id
_ID_HASH = 10  # hex digits of the hash that makes a sanitised id unique
_FRIENDLY = re.compile(r"[a-z0-9_][a-z0-9_.@+-]*")
_LOOKS_HASHED = re.compile(rf".*-[0-9a-f]{{{_ID_HASH}}}")
_RESERVED = {"grades.csv", "con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}  # our gradebook file; Windows device names


def submission_name(path, assignment: str) -> str:
    """The student id of a submission: the name of its result folder and its CSV row.

    ``path`` is the file's path RELATIVE to the folder named on the command line (just the
    file name for a file named there), and the id depends on nothing else, so it never
    changes when other files come or go. The friendly name is that path without its
    ``.ipynb`` suffix (``alice.ipynb`` -> ``alice``, ``alice.v2.ipynb`` -> ``alice.v2``), or,
    for a file named ``<assignment>.ipynb`` or ``<assignment>.submission.ipynb`` in a
    subfolder, the subfolder's path (``alice/hw1-convolution.ipynb`` -> ``alice``). It is used
    as is if it consists of ``a-z 0-9 _ . @ + -`` only, starts with a letter, digit or ``_``,
    has at most 64 characters, does not end in ``-`` plus 10 hex digits and is not reserved
    (``grades.csv``, Windows device names). Otherwise (uppercase, spaces, unicode, ``/`` of
    deeper folders, other suffixes, too long) it is sanitised (accents dropped, every run of
    other characters -> ``_``, no leading ``.``/``-``, cut to 48 characters) and gets ``-``
    plus the first 10 hex digits of the SHA-256 of the raw relative path:
    ``Alice Smith.ipynb`` -> ``Alice_Smith-<hash>``. So names that differ only by case or
    sanitise alike get different ids, and a friendly id never looks like a hashed one. Ids
    can still coincide (``alice.ipynb`` and ``alice/hw1-convolution.ipynb``): the batch grades
    neither file and notes the collision in both rows (compared ignoring case).
    """
    rel = PurePosixPath(path)
    parts = rel.parts
    last = parts[-1] if parts else ""
    if len(parts) > 1 and last in (f"{assignment}.ipynb", f"{assignment}.submission.ipynb"):
        friendly, plain = "/".join(parts[:-1]), True
    elif last.endswith(".ipynb") and len(parts) == 1:
        friendly, plain = last[: -len(".ipynb")], True
    else:
        friendly, plain = str(rel), False
    if (plain and len(friendly) <= ID_MAX and _FRIENDLY.fullmatch(friendly)
            and not _LOOKS_HASHED.fullmatch(friendly)
            and friendly.split(".")[0] not in _RESERVED and friendly not in _RESERVED):
        return friendly
    digest = hashlib.sha256(os.fsencode(str(rel))).hexdigest()[:_ID_HASH]
    return f"{_sanitise(friendly)}-{digest}"


def _sanitise(name: str) -> str:
    """ASCII letters, digits and ``_.@+-`` only; starts with a letter, digit or ``_``."""
    name = "".join(c for c in unicodedata.normalize("NFKD", name)
                   if not unicodedata.combining(c))
    name = re.sub(r"[^A-Za-z0-9_.@+-]+", "_", name)
    name = re.sub(r"^[^A-Za-z0-9_]+", "", name)[:ID_MAX - _ID_HASH - 6].rstrip(".")
    return name if re.search(r"[A-Za-z0-9]", name) else "submission"


def id_collisions(subs: list[Submission], names: list[str]) -> dict[int, str]:
    """index -> note, for every submission whose id another one also has (ignoring case)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.lower(), []).append(i)
    return {i: "id collision with " + ", ".join(str(subs[j].path) for j in g if j != i)
            + f" (same id {names[i]!r}); not graded, rename one of the files"
            for g in groups.values() if len(g) > 1 for i in g}


def real_path(f: Path) -> Path:
    """``f`` with its folder resolved but not its last component (a symlink loop there must
    not stop the batch; a link is never read anyway)."""
    try:
        return f.parent.resolve() / f.name
    except (OSError, RuntimeError):
        return f.absolute()

