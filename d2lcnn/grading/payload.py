"""Plain data across process boundaries: JSON plus arrays in one ``.npz``, never pickle.

A *payload* is what a probe may return: ``None``, bools, ints, floats, strings, lists and
tuples (both come back as lists), dicts with string keys, NumPy scalars (come back as Python
scalars) and NumPy arrays of a numeric, bool or string dtype. ``pack`` writes it as an
``.npz`` whose ``__json__`` entry holds the JSON tree (arrays replaced by references to the
other entries).

Frames (``write_frame`` / ``FrameReader``) carry one packed payload each over a pipe,
prefixed by a 4-byte big-endian length. The writer is the sandbox, which runs hostile
student code, so the reading side trusts nothing but bounded plain data:

* :func:`unpack` never hands attacker bytes to ``np.load`` or ``zipfile``. It parses the zip
  itself and accepts only what :func:`pack` writes: at most ``max_members`` members, all
  stored without compression or encryption, named ``__json__.npy`` or ``a<digits>.npy``, each
  name once. It parses every ``.npy`` header (no pickle, no object or structured dtype, at
  most 32 dimensions) and requires the declared array to fill its member exactly, so
  nothing can decompress or grow; the arrays together may declare at most
  ``max_array_bytes``. Only then does it copy them out. The JSON text (at most
  ``max_json_bytes``) is scanned in one linear pass for its nesting depth and node count before
  ``json.loads`` sees it, so deep nesting or millions of tiny values fail fast with
  :class:`PayloadError`, never ``RecursionError`` or ``MemoryError``.
* :class:`FrameReader` refuses a frame longer than ``max_frame`` as soon as its length
  prefix arrives, without reading the body, and refuses any frame that would take the bytes
  read over its lifetime past ``max_total`` (the per-question byte budget).
* :func:`pack` enforces the same :class:`PayloadLimits`, so an honest but oversized result
  gets a clear error inside the sandbox rather than a refused frame in the grader.

**Peak memory per reader.** A :class:`FrameReader` buffers at most one frame: the body is
read straight into a buffer of the announced length (at most ``max_frame`` bytes), in reads
of at most 1 MiB, and there is no other buffer. Unpacking that frame adds its
decoded arrays (at most ``min(max_frame, max_array_bytes)``: they are copies of stored
bytes) and its decoded JSON (at most ``max_json_bytes`` of text and ``max_nodes`` Python
objects, with transient scan copies of the text: under 32 MiB at the defaults, about
13 MiB measured for the costliest shape). So with :data:`LIMITS` a reader peaks below
16 + 16 + 32 = 64 MiB on top of what its caller keeps, whatever the sandbox sends;
``tests/grading/test_payload.py`` measures it (about 49 MiB for a frame at every cap).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math
import os
import re
import select
import struct
import time
import zipfile
import zlib

import numpy as np

__all__ = ["PayloadError", "PayloadLimits", "LIMITS", "pack", "unpack", "write_frame",
           "FrameReader", "MAX_FRAME", "MAX_TOTAL"]


@dataclasses.dataclass(frozen=True)
class PayloadLimits:
    """Caps on one payload, enforced by :func:`pack` and by :func:`unpack` before allocating.

    Attributes:
        max_bytes: size of the whole ``.npz`` (one frame).
        max_members: number of ``.npy`` members, ``__json__`` included.
        max_json_bytes: size of the JSON text.
        max_depth: nesting of JSON lists and dicts (an array reference is one level).
        max_nodes: JSON values plus dict keys; each becomes one Python object.
        max_array_bytes: data bytes declared by all arrays together.
    """

    # 16 MiB: the largest result an assignment's probes return today is about 1.6 MB
    # (hw4, all cases together); 10x headroom, and a grader running many submissions in
    # parallel keeps each reader's peak memory in the tens of MiB (see the module docstring).
    max_bytes: int = 16 * 2**20
    # The most arrays in an assignment's expected results today: 36 (hw2, all cases).
    max_members: int = 1024
    # The largest JSON part today is about 2 KB; lists of numbers belong in arrays.
    max_json_bytes: int = 2**20
    max_depth: int = 64
    max_nodes: int = 100_000
    max_array_bytes: int = 16 * 2**20


LIMITS = PayloadLimits()
# The grader's job for a sandbox (the submission's cells, tests, grader-made inputs): it is
# trusted, and a notebook may be up to 50 MiB, so the caps are roomier than for results.
JOB_LIMITS = PayloadLimits(max_bytes=256 * 2**20, max_json_bytes=128 * 2**20,
                           max_nodes=10_000_000, max_array_bytes=128 * 2**20)
MAX_FRAME = LIMITS.max_bytes
# Per question: bytes the grader accepts from a question's processes in all (4 maximal
# frames; today's largest question sends about 1.6 MB). The reader keeps one frame at a
# time, but the grader keeps a question's results until it is scored, so this also bounds
# that memory (see the sandbox's run_question).
MAX_TOTAL = 4 * MAX_FRAME

_REF = "__ndarray__"
_MAX_NDIM = 32
_MAX_HEADER = 4096  # characters of an .npy header dict; pack's are about 120
_CHUNK = 2**20  # largest single read from the pipe
_MEMBER_NAME = re.compile(r"__json__\.npy|a[0-9]+\.npy")
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory file header
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_UTF8_NAMES = 0x800  # the only general-purpose flag bit allowed


class PayloadError(ValueError):
    """A value that is not plain data, or bytes that are not a valid payload."""


# --- JSON: one linear pass bounds depth and node count before json.loads runs -------------

_SCALAR_BYTE = np.ones(256, bool)  # bytes of numbers, true, false, null, NaN, Infinity
_SCALAR_BYTE[list(b' \t\n\r"[]{},:')] = False


def _check_json(text: bytes, limits: PayloadLimits) -> None:
    """Raise :class:`PayloadError` unless ``text`` is within the JSON caps of ``limits``.

    One vectorised pass, no recursion and no Python object per token. Nodes are strings
    (keys included), scalars and containers. For valid JSON the counts are exact; for
    invalid JSON they are at least those of the prefix ``json.loads`` parses before failing,
    so its work is bounded too (the counts only add up, nothing is subtracted).
    """
    if len(text) > limits.max_json_bytes:
        raise PayloadError(f"the JSON part has {len(text)} bytes; the limit is "
                           f"{limits.max_json_bytes}")
    # Blank escaped backslashes, then escaped quotes: every remaining quote delimits a string.
    flat = np.frombuffer(text.replace(b"\\\\", b"__").replace(b'\\"', b"__"), np.uint8)
    quote = flat == ord('"')
    outside = ~np.logical_xor.accumulate(quote) & ~quote  # outside strings, quotes excluded
    opening = outside & ((flat == ord("[")) | (flat == ord("{")))
    closing = outside & ((flat == ord("]")) | (flat == ord("}")))
    scalar = outside & _SCALAR_BYTE[flat]  # a run of these is one scalar
    scalars = np.count_nonzero(scalar[1:] & ~scalar[:-1]) + int(scalar[:1].sum())
    opened = np.count_nonzero(opening)
    nodes = opened + (np.count_nonzero(quote) + 1) // 2 + scalars
    if nodes > limits.max_nodes:
        raise PayloadError(f"the JSON part has {nodes} nodes (values and keys); the limit is "
                           f"{limits.max_nodes}")
    if np.count_nonzero(closing) > opened:
        raise PayloadError("the JSON part has more closing than opening brackets")
    steps = opening.view(np.int8) - closing.view(np.int8)
    depth = int(steps[np.flatnonzero(steps)].cumsum().max(initial=0))
    if depth > limits.max_depth:
        raise PayloadError(f"the JSON part nests {depth} levels deep; the limit is "
                           f"{limits.max_depth}")


# --- pack ---------------------------------------------------------------------------------

def _encode(value, arrays: dict, depth: int, limits: PayloadLimits):
    """The JSON tree of ``value``; ``depth`` counts the containers around it."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        if value.dtype.kind in "biuf":
            return _encode(value.item(), arrays, depth, limits)
        value = np.asarray(value)
    if depth >= limits.max_depth:  # a container or an array reference: one more level
        raise PayloadError(f"nested deeper than {limits.max_depth} levels")
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcU" or value.dtype.itemsize == 0:
            raise PayloadError(f"arrays of dtype {value.dtype} are not plain data")
        if value.ndim > _MAX_NDIM:
            raise PayloadError(f"an array has {value.ndim} dimensions; the limit is "
                               f"{_MAX_NDIM}")
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value, order="C")  # (ascontiguousarray makes 0-d 1-d)
        return {_REF: key}
    if isinstance(value, list | tuple):
        return [_encode(v, arrays, depth + 1, limits) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k == _REF:
                raise PayloadError(f"dict keys must be strings (not {_REF!r}), got {k!r}")
            out[k] = _encode(v, arrays, depth + 1, limits)
        return out
    raise PayloadError(f"a value of type {type(value).__name__} is not plain data")


def pack(value, *, limits: PayloadLimits = LIMITS) -> bytes:
    """Serialise plain data (see the module docstring) to ``.npz`` bytes.

    Raises :class:`PayloadError` if ``value`` is not plain data or exceeds ``limits``, which
    are the caps :func:`unpack` enforces: what ``pack`` returns, ``unpack`` accepts.
    """
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(value, arrays, 0, limits)
    text = json.dumps(tree, allow_nan=True).encode()
    _check_json(text, limits)
    if 1 + len(arrays) > limits.max_members:
        raise PayloadError(f"{len(arrays)} arrays; the limit is {limits.max_members - 1}")
    array_bytes = sum(a.nbytes for a in arrays.values())
    if array_bytes > limits.max_array_bytes:
        raise PayloadError(f"the arrays hold {array_bytes} bytes; the limit is "
                           f"{limits.max_array_bytes}")
    buf = io.BytesIO()
    # np.savez's layout, with a fixed timestamp: the same value always gives the same bytes.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for key, arr in [("__json__", np.frombuffer(text, dtype=np.uint8)), *arrays.items()]:
            with z.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                        force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    if buf.tell() > limits.max_bytes:
        raise PayloadError(f"the packed result has {buf.tell()} bytes; the limit is "
                           f"{limits.max_bytes}")
    return buf.getvalue()


# --- unpack -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Array:
    """A validated ``.npy`` member: where its data lies in the payload and what it declares."""

    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool


def _members(data: memoryview, limits: PayloadLimits) -> dict[str, tuple[int, int]]:
    """``{name: (offset, size)}`` of the stored data of each member of the zip ``data``."""
    end = len(data) - _EOCD.size
    if end < 0 or data[end:end + 4] != b"PK\x05\x06":
        raise PayloadError("expected a zip archive ending in an end-of-central-directory "
                           "record (and no comment)")
    _, disk, cd_disk, n_here, n, cd_size, cd_start, comment = _EOCD.unpack_from(data, end)
    if disk or cd_disk or n_here != n or comment:
        raise PayloadError("expected a single-disk zip archive without a comment")
    if n > limits.max_members:
        raise PayloadError(f"the archive has {n} members; the limit is {limits.max_members}")
    if cd_start + cd_size != end:
        raise PayloadError(f"the central directory ({cd_size} bytes at {cd_start}) does not "
                           f"end where the end record starts ({end})")
    members: dict[str, tuple[int, int]] = {}
    spans = []
    pos = cd_start
    for _ in range(n):
        if pos + _CENTRAL.size > end:
            raise PayloadError("the central directory is truncated")
        (sig, _, _, flags, method, _, _, crc, size, usize, name_len, extra_len,
         comment_len, _, _, _, local) = _CENTRAL.unpack_from(data, pos)
        raw_name = bytes(data[pos + _CENTRAL.size:pos + _CENTRAL.size + name_len])
        pos += _CENTRAL.size + name_len + extra_len + comment_len
        if sig != b"PK\x01\x02" or pos > end:
            raise PayloadError("the central directory is malformed")
        name = raw_name.decode("ascii", "replace")
        if not _MEMBER_NAME.fullmatch(name):
            raise PayloadError(f"unexpected member {name[:40]!r}; expected '__json__.npy' "
                               "or 'a<digits>.npy'")
        if name in members:
            raise PayloadError(f"member {name!r} appears twice")
        if flags & ~_UTF8_NAMES:
            raise PayloadError(f"member {name!r} has flags {flags:#06x} (encryption or a data "
                               "descriptor); expected none")
        if method != zipfile.ZIP_STORED:
            raise PayloadError(f"member {name!r} is compressed (method {method}); expected "
                               "stored members only")
        if size != usize:
            raise PayloadError(f"member {name!r} is stored with {size} bytes but declares "
                               f"{usize} uncompressed")
        if local + _LOCAL.size > cd_start:
            raise PayloadError(f"member {name!r}: local header outside the archive")
        (lsig, _, lflags, lmethod, _, _, _, _, _, lname_len,
         lextra_len) = _LOCAL.unpack_from(data, local)
        start = local + _LOCAL.size + lname_len + lextra_len
        if (lsig != b"PK\x03\x04" or lflags != flags or lmethod != method
                or bytes(data[local + _LOCAL.size:local + _LOCAL.size + lname_len]) != raw_name
                or start + size > cd_start):
            raise PayloadError(f"member {name!r}: the local header does not match the "
                               "central directory")
        if (got := zlib.crc32(data[start:start + size])) != crc:
            raise PayloadError(f"member {name!r}: the data's CRC is {got:#010x}; the directory "
                               f"says {crc:#010x}")
        members[name] = (start, size)
        spans.append((local, start + size))
    if pos != end:
        raise PayloadError("the central directory has bytes after its last entry")
    spans.sort()
    if any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
        raise PayloadError("members overlap")
    return members


def _header(data: memoryview, name: str, start: int, size: int) -> _Array:
    """Parse the ``.npy`` header of a member; its declared data must fill the member exactly."""
    head = io.BytesIO(bytes(data[start:start + min(size, 12 + _MAX_HEADER)]))
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(head)
        if version not in readers:
            raise ValueError(f"format version {version}; expected (1, 0) or (2, 0)")
        shape, fortran_order, dtype = readers[version](head, max_header_size=_MAX_HEADER)
    except Exception as e:  # noqa: BLE001 - any failure to parse a small header is malformed
        raise PayloadError(f"member {name!r}: bad .npy header: {type(e).__name__}: "
                           f"{str(e)[:200]}") from None
    if dtype.kind not in "biufcU" or dtype.hasobject or dtype.itemsize == 0:
        raise PayloadError(f"member {name!r} has dtype {dtype}; expected a bool, numeric or "
                           "string dtype")
    if len(shape) > _MAX_NDIM or any(d < 0 for d in shape):
        raise PayloadError(f"member {name!r} has shape {shape[:_MAX_NDIM + 1]}; expected at "
                           f"most {_MAX_NDIM} non-negative dimensions")
    nbytes = math.prod(shape) * dtype.itemsize
    if head.tell() + nbytes != size:
        raise PayloadError(f"member {name!r} declares {shape} {dtype} ({nbytes} bytes) but "
                           f"holds {size - head.tell()} bytes of data")
    return _Array(start + head.tell(), dtype, shape, fortran_order)


def unpack(data: bytes, *, limits: PayloadLimits = LIMITS):
    """Inverse of :func:`pack`, safe on hostile ``data`` (any bytes-like object).

    Everything is validated against ``limits`` before anything of declared size is
    allocated; the arrays returned are writable copies. Raises :class:`PayloadError` on
    anything malformed or over a limit.
    """
    data = memoryview(data).cast("B")
    if len(data) > limits.max_bytes:
        raise PayloadError(f"the payload has {len(data)} bytes; the limit is "
                           f"{limits.max_bytes}")
    members = _members(data, limits)
    if "__json__.npy" not in members:
        raise PayloadError("the payload has no '__json__.npy' member")
    headers = {name[:-4]: _header(data, name, *span) for name, span in members.items()}
    meta = headers.pop("__json__")
    if meta.dtype != np.uint8 or len(meta.shape) != 1:
        raise PayloadError(f"'__json__.npy' is {meta.shape} {meta.dtype}; expected 1-D uint8")
    array_bytes = sum(math.prod(h.shape) * h.dtype.itemsize for h in headers.values())
    if array_bytes > limits.max_array_bytes:
        raise PayloadError(f"the arrays declare {array_bytes} bytes; the limit is "
                           f"{limits.max_array_bytes}")
    text = bytes(data[meta.offset:meta.offset + meta.shape[0]])
    _check_json(text, limits)
    arrays = {key: np.frombuffer(data, h.dtype, math.prod(h.shape), h.offset)
              .reshape(h.shape, order="F" if h.fortran_order else "C").copy()
              for key, h in headers.items()}
    used: set[str] = set()

    def resolve(obj: dict):
        if _REF not in obj:
            return obj
        key = obj[_REF]
        if len(obj) != 1 or not isinstance(key, str):
            raise PayloadError(f"an array reference must be {{{_REF!r}: <member name>}} "
                               "and nothing else")
        if key not in arrays:
            raise PayloadError(f"reference to a missing array {key[:40]!r}")
        if key in used:
            raise PayloadError(f"array {key!r} is referenced twice")
        used.add(key)
        return arrays[key]

    try:
        value = json.loads(text.decode("utf-8"), object_hook=resolve)
    except PayloadError:
        raise
    except ValueError as e:  # UnicodeDecodeError, JSONDecodeError, too many int digits
        raise PayloadError(f"malformed JSON part: {type(e).__name__}: {str(e)[:200]}") from None
    if len(used) != len(arrays):
        raise PayloadError(f"arrays never referenced: {sorted(set(arrays) - used)[:5]}")
    return value


# --- frames -------------------------------------------------------------------------------

def write_frame(fd: int, value, *, limits: PayloadLimits = LIMITS) -> None:
    """Pack ``value`` and write it to the file descriptor ``fd`` as one frame.

    A value that cannot be packed within ``limits`` is replaced by an ``error`` frame naming
    the reason, so the reader always gets a frame it accepts.
    """
    try:
        data = pack(value, limits=limits)
    except PayloadError as e:
        data = pack({"type": "error", "error": f"the frame could not be sent: {e}"},
                    limits=limits)
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Reads frames from a pipe with deadlines (the parent's side of the channel).

    Args:
        fd: the read end of the pipe.
        max_frame: longest frame accepted; a longer length prefix raises
            :class:`PayloadError` before any of the body is read.
        max_total: bytes accepted over the reader's lifetime; a frame that would exceed it
            raises :class:`PayloadError` before its body is read.

    Frames are unpacked with :data:`LIMITS`, ``max_bytes`` set to ``max_frame``. After a
    :class:`PayloadError` about framing (length or budget) every later ``read`` raises it
    again; after one about a frame's content the next frame can still be read.
    """

    def __init__(self, fd: int, *, max_frame: int = MAX_FRAME, max_total: int = MAX_TOTAL):
        self.fd = fd
        self.max_frame = max_frame
        self.max_total = max_total
        self.limits = dataclasses.replace(LIMITS, max_bytes=max_frame)
        self.eof = False
        self.total = 0  # bytes read so far, length prefixes included
        self._prefix = bytearray(4)
        self._body: bytearray | None = None  # allocated once the prefix is complete
        self._got = 0  # bytes of the current prefix, then of the current body

    def _read_into(self, view: memoryview, deadline: float) -> int:
        """Read at most ``len(view)`` bytes into ``view``; 0 on timeout or end of file."""
        if self.eof:
            return 0
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 0
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            return 0
        n = os.readv(self.fd, [view])
        self.eof = n == 0
        self.total += n
        return n

    def read(self, deadline: float):
        """Next frame's payload; ``None`` on timeout/EOF. Raises PayloadError if malformed.

        A frame cut by a timeout is kept: the next call continues it.
        """
        if self._body is None:
            while self._got < 4:
                n = self._read_into(memoryview(self._prefix)[self._got:], deadline)
                if not n:
                    return None
                self._got += n
            (size,) = struct.unpack(">I", self._prefix)
            if size > self.max_frame:
                raise PayloadError(f"a frame of {size} bytes was announced; the limit is "
                                   f"{self.max_frame}")
            if self.total + size > self.max_total:
                raise PayloadError(f"a frame of {size} bytes after {self.total} bytes would "
                                   f"exceed the budget of {self.max_total} bytes")
            self._body, self._got = bytearray(size), 0
        with memoryview(self._body) as body:
            while self._got < len(body):
                n = self._read_into(body[self._got:self._got + _CHUNK], deadline)
                if not n:
                    return None
                self._got += n
        data, self._body, self._got = self._body, None, 0
        return unpack(data, limits=self.limits)
