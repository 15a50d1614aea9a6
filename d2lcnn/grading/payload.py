"""Plain data across process boundaries: JSON plus arrays in one ``.npz``, never pickle.

A *payload* is what a probe may return: ``None``, bools, ints, floats, strings, lists and
tuples (both come back as lists), dicts with string keys, NumPy scalars (come back as Python
scalars) and NumPy arrays of a numeric, bool or string dtype. ``pack`` writes it as an
``.npz`` whose ``__json__`` entry holds the JSON tree (arrays replaced by references to the
other entries); ``unpack`` reads it back with ``np.load(allow_pickle=False)``, so a hostile
file can at worst fail to load.

Frames (``write_frame`` / ``FrameReader``) carry one packed payload each over a pipe,
prefixed by a 4-byte big-endian length.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time
import zipfile

import numpy as np

__all__ = ["PayloadError", "pack", "unpack", "write_frame", "FrameReader", "MAX_FRAME"]

MAX_FRAME = 64 * 2**20  # a probe result larger than 64 MiB is refused
_MAX_DEPTH = 32
_REF = "__ndarray__"


class PayloadError(ValueError):
    """A value that is not plain data, or bytes that are not a valid payload."""


def _encode(value, arrays: dict, depth: int):
    if depth > _MAX_DEPTH:
        raise PayloadError(f"nested deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        if value.dtype.kind in "biuf":
            return _encode(value.item(), arrays, depth)
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcU":
            raise PayloadError(f"arrays of dtype {value.dtype} are not plain data")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(value)
        return {_REF: key}
    if isinstance(value, list | tuple):
        return [_encode(v, arrays, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k == _REF:
                raise PayloadError(f"dict keys must be strings (not {_REF!r}), got {k!r}")
            out[k] = _encode(v, arrays, depth + 1)
        return out
    raise PayloadError(f"a value of type {type(value).__name__} is not plain data")


def pack(value) -> bytes:
    """Serialise plain data (see the module docstring) to ``.npz`` bytes."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(value, arrays, 0)
    text = json.dumps(tree, allow_nan=True).encode()
    buf = io.BytesIO()
    # np.savez's layout, with a fixed timestamp: the same value always gives the same bytes.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for key, arr in [("__json__", np.frombuffer(text, dtype=np.uint8)), *arrays.items()]:
            with z.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                        force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return buf.getvalue()


def _decode(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {_REF}:
            return arrays[tree[_REF]]
        return {k: _decode(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_decode(v, arrays) for v in tree]
    return tree


def unpack(data: bytes):
    """Inverse of :func:`pack`. Raises :class:`PayloadError` on anything malformed."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        tree = json.loads(arrays.pop("__json__").tobytes().decode())
        return _decode(tree, arrays)
    except Exception as e:  # noqa: BLE001 - any failure means a malformed payload
        raise PayloadError(f"malformed payload: {type(e).__name__}: {e}") from None


def write_frame(fd: int, value) -> None:
    """Pack ``value`` and write it to the file descriptor ``fd`` as one frame."""
    data = pack(value)
    if len(data) > MAX_FRAME:
        data = pack({"type": "error", "error": f"result too large ({len(data)} bytes)"})
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Reads frames from a pipe with deadlines (the parent's side of the channel)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on timeout or end of file."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            return False
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read(self, deadline: float):
        """Next frame's payload; ``None`` on timeout/EOF. Raises PayloadError if malformed."""
        while len(self.buf) < 4:
            if not self._fill(deadline):
                return None
        (size,) = struct.unpack(">I", bytes(self.buf[:4]))
        if size > MAX_FRAME:
            raise PayloadError(f"frame of {size} bytes exceeds the limit")
        while len(self.buf) < 4 + size:
            if not self._fill(deadline):
                return None
        data = bytes(self.buf[4:4 + size])
        del self.buf[:4 + size]
        return unpack(data)
