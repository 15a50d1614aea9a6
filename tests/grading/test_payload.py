"""The payload format and frame channel against hostile bytes: everything malformed or over a
limit is a PayloadError, found before anything of declared size is allocated, and a reader's
peak memory stays within the bound the module documents."""

import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from d2lcnn.grading.payload import (
    LIMITS,
    MAX_FRAME,
    MAX_TOTAL,
    FrameReader,
    PayloadError,
    pack,
    unpack,
    write_frame,
)

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
# The module docstring's bound on a reader's peak at the defaults: one frame, the arrays
# decoded from it, and 32 MiB for the decoded JSON and the transient copies of its text.
READER_BOUND = MAX_FRAME + LIMITS.max_array_bytes + 32 * MiB
BOMB_SIZE = 200 * MiB  # what the deflated member inflates to


# --- building payloads by hand ------------------------------------------------------------

def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def _npy_header(descr, shape) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def _json(text) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return _npy(np.frombuffer(raw, np.uint8))


def _zip(members, compression=zipfile.ZIP_STORED) -> bytes:
    """An archive of ``(name, bytes)`` members; duplicates are written as given."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(buf, "w", compression) as z:
            for name, data in members:
                z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                           compress_type=compression)
    return buf.getvalue()


def _payload(text, **arrays) -> bytes:
    """``text`` as the JSON part, ``arrays`` (name: npy bytes) as the other members."""
    return _zip([("__json__.npy", _json(text)),
                 *((f"{k}.npy", v) for k, v in arrays.items())])


def _limits(**changes):
    return dataclasses.replace(LIMITS, **changes)


def _rejects(data, match, limits=LIMITS):
    """Assert ``unpack`` refuses ``data`` with a PayloadError matching ``match``, quickly."""
    t0 = time.perf_counter()
    with pytest.raises(PayloadError, match=match):
        unpack(data, limits=limits)
    assert time.perf_counter() - t0 < 1.0


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A valid-looking payload whose array member is deflated: 200 MiB of zeros in about
    200 KB, built in 1 MiB pieces so this test never holds the inflated bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("__json__.npy", _json('{"__ndarray__": "a0"}'))
        info = zipfile.ZipInfo("a0.npy", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w") as f:
            f.write(_npy_header("|u1", (BOMB_SIZE,)))
            zeros = bytes(MiB)
            for _ in range(BOMB_SIZE // MiB):
                f.write(zeros)
    data = buf.getvalue()
    assert len(data) < MiB
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("a0.npy").file_size > BOMB_SIZE
    return data


# --- (a) round trips ----------------------------------------------------------------------

def test_every_kind_of_plain_data_round_trips():
    value = {
        "none": None, "bools": [True, False], "int": -7, "big": 2**70, "float": 2.5,
        "special": [float("inf"), float("-inf")], "str": 'ünïcode "quoted" \\ [{',
        "tuple": (1, (2, [3])), "nested": {"a": {"b": {"c": []}}}, "empty": {},
        "np_int": np.int16(-3), "np_uint": np.uint64(2**63), "np_float": np.float32(0.5),
        "np_bool": np.bool_(True), "np_str": np.str_("s"), "np_complex": np.complex64(1 - 2j),
        "f64": np.arange(6.0).reshape(2, 3), "i8": np.arange(-3, 3, dtype=np.int8),
        "u16": np.arange(5, dtype=np.uint16), "bool_arr": np.array([True, False]),
        "c128": np.array([1j, 2]), "unicode": np.array(["ab", "ü", ""]),
        "big_endian": np.arange(4, dtype=">i4"), "fortran": np.asfortranarray(np.eye(3)),
        "zero_d": np.array(4.5), "empty_arr": np.zeros((0, 3)), "f16": np.ones(3, np.float16),
    }
    back = unpack(pack(value))
    assert back["none"] is None and back["bools"] == [True, False] and back["int"] == -7
    assert back["big"] == float(2**70) and back["float"] == 2.5
    assert back["special"] == [float("inf"), float("-inf")] and back["str"] == value["str"]
    assert back["tuple"] == [1, [2, [3]]] and back["nested"] == {"a": {"b": {"c": []}}}
    assert back["empty"] == {}
    assert back["np_int"] == -3 and type(back["np_int"]) is int
    assert back["np_uint"] == 2**63 and back["np_float"] == 0.5 and back["np_bool"] is True
    assert back["np_str"] == "s"
    assert back["np_complex"].shape == () and back["np_complex"] == np.complex64(1 - 2j)
    for key in ["f64", "i8", "u16", "bool_arr", "c128", "unicode", "big_endian", "fortran",
                "zero_d", "empty_arr", "f16"]:
        got = back[key]
        assert got.dtype == value[key].dtype and got.shape == value[key].shape, key
        assert np.array_equal(got, value[key]), key
        assert got.flags.writeable and got.flags.owndata, key
    assert np.isnan(unpack(pack([float("nan")]))[0])
    assert unpack(pack(None)) is None and unpack(pack("x")) == "x"


def test_pack_is_deterministic_and_unpack_reads_np_savez():
    value = {"x": np.arange(3), "y": [1, "a"]}
    assert pack(value) == pack(value)
    buf = io.BytesIO()
    np.savez(buf, __json__=np.frombuffer(b'[{"__ndarray__": "a0"}, 1]', np.uint8),
             a0=np.arange(3.0))
    got = unpack(buf.getvalue())
    assert np.array_equal(got[0], [0.0, 1.0, 2.0]) and got[1] == 1


def test_what_pack_accepts_at_the_limits_unpack_accepts():
    deep = []
    for _ in range(LIMITS.max_depth - 1):
        deep = [deep]
    assert unpack(pack(deep)) == deep
    widest = list(range(LIMITS.max_nodes - 1))  # the list itself is the last node
    assert unpack(pack(widest)) == widest
    many = [np.zeros(1)] * (LIMITS.max_members - 1)
    assert len(unpack(pack(many))) == LIMITS.max_members - 1


# --- (b) rejections -----------------------------------------------------------------------

def test_a_deflate_bomb_is_refused_without_inflating(bomb):
    _rejects(bomb, "compressed")


def test_any_compressed_member_is_refused():
    good = pack({"x": np.zeros(100)})
    z = zipfile.ZipFile(io.BytesIO(good))
    members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    _rejects(_zip(members, zipfile.ZIP_DEFLATED), "compressed")


def test_encrypted_flag_and_crc_errors_are_refused():
    good = bytearray(pack([1]))
    flagged = bytearray(good)
    cd = flagged.index(b"PK\x01\x02")
    flagged[cd + 8] |= 1  # central directory: encrypted
    _rejects(bytes(flagged), "flags")
    corrupt = bytearray(good)
    corrupt[good.index(b"[1]")] = ord("{")
    _rejects(bytes(corrupt), "CRC is")


def test_headers_must_match_the_member_size():
    _rejects(_payload('{"__ndarray__": "a0"}', a0=_npy_header("<f8", (10**6,)) + bytes(8)),
             "declares")
    _rejects(_payload('{"__ndarray__": "a0"}', a0=_npy_header("<f8", (2**40, 2**40))),
             "declares")
    _rejects(_payload('{"__ndarray__": "a0"}', a0=_npy_header("<f8", (2,)) + bytes(24)),
             "declares")  # trailing bytes too
    _rejects(_payload('{"__ndarray__": "a0"}', a0=_npy_header("<f8", (-1,))),
             "non-negative")
    _rejects(_payload('{"__ndarray__": "a0"}', a0=_npy_header("<f8", (1,) * 33) + bytes(8)),
             "dimensions")
    future = bytearray(_npy(np.zeros(1)))
    future[6] = 9  # .npy format version 9.0
    _rejects(_payload('{"__ndarray__": "a0"}', a0=bytes(future)), "format version")
    _rejects(_payload('{"__ndarray__": "a0"}', a0=b"\x93NUMPY"), "bad .npy header")


def test_the_declared_array_total_is_capped():
    data = pack([np.zeros(100), np.zeros(100)])
    assert len(unpack(data, limits=_limits(max_array_bytes=1600))) == 2
    _rejects(data, "arrays declare 1600 bytes", limits=_limits(max_array_bytes=1599))
    with pytest.raises(PayloadError, match="arrays hold"):
        pack([np.zeros(100), np.zeros(100)], limits=_limits(max_array_bytes=1599))


@pytest.mark.parametrize("descr", ["|O", "<M8[s]", [("a", "<f8")], ("<f8", (3,)), "|V8"])
def test_object_structured_and_other_dtypes_are_refused(descr):
    if descr == "|O":  # what np.save writes for an object array: a pickle
        member = _npy(np.array([{"evil": 1}], dtype=object))
    else:
        member = _npy_header(descr, (1,)) + bytes(np.dtype(np.lib.format.descr_to_dtype(
            descr)).itemsize)
    _rejects(_payload('{"__ndarray__": "a0"}', a0=member), "dtype")


def test_the_json_member_must_be_1d_uint8():
    _rejects(_zip([("__json__.npy", _npy(np.frombuffer(b"[1, 2]", np.int8)))]), "1-D uint8")
    _rejects(_zip([("__json__.npy", _npy(np.frombuffer(b"[1, 2]", np.uint8).reshape(2, 3)))]),
             "1-D uint8")
    _rejects(_zip([("a0.npy", _npy(np.zeros(1)))]), "no '__json__.npy'")


@pytest.mark.parametrize("name", ["evil.npy", "../a0.npy", "a0.npy.npy", "a-1.npy", "a0",
                                  "__json__.npz", "A0.npy"])
def test_unknown_member_names_are_refused(name):
    _rejects(_zip([("__json__.npy", _json("1")), (name, _npy(np.zeros(1)))]),
             "unexpected member")


def test_duplicate_members_are_refused():
    _rejects(_zip([("__json__.npy", _json('{"__ndarray__": "a0"}')),
                   ("a0.npy", _npy(np.zeros(1))), ("a0.npy", _npy(np.zeros(10**4)))]),
             "twice")
    _rejects(_zip([("__json__.npy", _json("1")), ("__json__.npy", _json("2"))]), "twice")


def test_too_many_members_are_refused():
    members = [("__json__.npy", _json("[]")),
               *((f"a{i}.npy", _npy(np.zeros(1))) for i in range(8))]
    _rejects(_zip(members), "9 members; the limit is 8", limits=_limits(max_members=8))
    with pytest.raises(PayloadError, match="8 arrays; the limit is 7"):
        pack([np.zeros(1)] * 8, limits=_limits(max_members=8))


def test_array_references_must_match_the_members_one_to_one():
    a0 = _npy(np.zeros(2))
    assert np.array_equal(unpack(_payload('{"__ndarray__": "a0"}', a0=a0)), [0, 0])
    _rejects(_payload('{"__ndarray__": "a1"}', a0=a0), "missing array")
    _rejects(_payload('[{"__ndarray__": "a0"}, {"__ndarray__": "a0"}]', a0=a0), "twice")
    _rejects(_payload("[]", a0=a0), "never referenced")
    _rejects(_payload('{"__ndarray__": "a0", "x": 1}', a0=a0), "nothing else")
    _rejects(_payload('{"__ndarray__": 0}', a0=a0), "nothing else")
    _rejects(_payload('{"__ndarray__": "__json__"}'), "missing array")


def test_deep_json_is_refused_fast_without_recursion():
    _rejects(_payload("[" * 100_000 + "]" * 100_000), "nests 100000 levels")
    _rejects(_payload('{"a":' * 40_000 + "1" + "}" * 40_000), "nests 40000 levels")
    # An escaped backslash ends the string, so the brackets after it are real nesting.
    _rejects(_payload('["\\\\", ' + "[" * 90_000 + "]" * 90_001), "nests 90001 levels")
    # Unclosed: json.loads would recurse before finding out.
    _rejects(_payload("[" * 100_000), "nests 100000 levels")
    _rejects(_payload("]" * 11 + "[" * 10), "more closing")


def test_brackets_inside_strings_are_not_nesting():
    text = '["\\"' + "[" * 100_000 + '\\\\", "{{{", "]]]\\\\\\""]'
    assert unpack(_payload(text)) == ['"' + "[" * 100_000 + "\\", "{{{", ']]]\\"']


def test_json_with_too_many_nodes_is_refused_fast():
    millions = "[" + "0," * 3_000_000 + "0]"
    _rejects(_payload(millions), "bytes; the limit is")  # 6 MB of JSON text
    roomy = _limits(max_json_bytes=8 * MiB)
    _rejects(_payload(millions), "3000002 nodes", limits=roomy)
    _rejects(_payload('{"' + '": 1, "'.join(map(str, range(60_000))) + '": 1}'),
             "120001 nodes")
    _rejects(_payload("[" + "[]," * 100_000 + "[]]"), "100002 nodes")


def test_malformed_json_is_a_payload_error():
    for text in [b"[1, 2", b"\xff\xfe", b"", b"1" * 5000, b"nope", b'"\\']:
        _rejects(_payload(text), "JSON")


def test_truncated_or_corrupted_payloads_only_raise_payload_error():
    data = pack({"x": np.arange(3.0), "s": ["a", {"b": None}], "u": np.array(["z"])})
    for cut in range(len(data)):
        with pytest.raises(PayloadError):
            unpack(data[:cut])
    outcomes = set()
    for pos in range(len(data)):
        for byte in (0x00, 0xFF, data[pos] ^ 0x01):
            flipped = bytearray(data)
            flipped[pos] = byte
            try:
                unpack(bytes(flipped))
                outcomes.add("ok")
            except PayloadError:
                outcomes.add("PayloadError")
    assert "PayloadError" in outcomes


def test_pack_refuses_what_unpack_would_refuse():
    deep = []
    for _ in range(LIMITS.max_depth):
        deep = [deep]
    with pytest.raises(PayloadError, match="nested deeper than 64"):
        pack(deep)
    loop = []
    loop.append(loop)
    with pytest.raises(PayloadError, match="nested deeper"):
        pack(loop)
    with pytest.raises(PayloadError, match="100001 nodes"):
        pack(list(range(LIMITS.max_nodes)))
    with pytest.raises(PayloadError, match="bytes; the limit is"):
        pack("x" * LIMITS.max_json_bytes)
    with pytest.raises(PayloadError, match="arrays hold"):
        pack(np.zeros(LIMITS.max_array_bytes // 8 + 1))
    with pytest.raises(PayloadError, match="packed result has"):
        pack(np.zeros(MiB, np.uint8), limits=_limits(max_bytes=MiB))
    with pytest.raises(PayloadError, match="dimensions"):
        pack(np.zeros((1,) * 33))
    for bad in [object(), np.array([object()]), {1: 2}, {"__ndarray__": "a0"}, lambda: 0,
                np.zeros(2, "M8[s]"), np.zeros(1, [("a", "f8")])]:
        with pytest.raises(PayloadError):
            pack(bad)


# --- frames -------------------------------------------------------------------------------

@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_frames_round_trip_and_keep_deadline_semantics(pipe):
    r, w = pipe
    reader = FrameReader(r)
    assert reader.read(time.monotonic() + 0.05) is None and not reader.eof  # timeout
    write_frame(w, {"type": "a", "x": np.arange(3)})
    frame = struct.pack(">I", len(pack([1, 2]))) + pack([1, 2])
    os.write(w, frame[:10])  # half a frame: kept across the timeout
    got = reader.read(time.monotonic() + 5)
    assert got["type"] == "a" and np.array_equal(got["x"], [0, 1, 2])
    assert reader.read(time.monotonic() + 0.05) is None and not reader.eof
    os.write(w, frame[10:])
    assert reader.read(time.monotonic() + 5) == [1, 2]
    assert reader.total == 4 + len(pack({"type": "a", "x": np.arange(3)})) + len(frame)
    os.close(w)
    assert reader.read(time.monotonic() + 5) is None and reader.eof


def test_an_oversized_length_prefix_is_refused_before_the_body(pipe):
    r, w = pipe
    os.write(w, struct.pack(">I", 2**31) + b"body")
    reader = FrameReader(r)
    for _ in range(2):  # and it stays refused
        with pytest.raises(PayloadError, match="2147483648 bytes was announced"):
            reader.read(time.monotonic() + 5)
    assert reader.total == 4 and os.read(r, 100) == b"body"


def test_the_lifetime_budget_stops_the_reader(pipe):
    r, w = pipe
    frame = pack(np.zeros(1000, np.uint8))
    n = 4 + len(frame)
    reader = FrameReader(r, max_frame=2000, max_total=3 * n + 10)
    for _ in range(4):
        write_frame(w, np.zeros(1000, np.uint8))
    for _ in range(3):
        assert reader.read(time.monotonic() + 5).shape == (1000,)
    with pytest.raises(PayloadError, match="budget"):
        reader.read(time.monotonic() + 5)
    assert reader.total == 3 * n + 4 and len(os.read(r, 2 * n)) == n - 4


def test_a_bad_frame_body_is_a_payload_error_and_the_next_frame_reads(pipe):
    r, w = pipe
    reader = FrameReader(r)
    junk = b"not a zip at all"
    os.write(w, struct.pack(">I", len(junk)) + junk)
    write_frame(w, "next")
    with pytest.raises(PayloadError, match="end-of-central-directory"):
        reader.read(time.monotonic() + 5)
    assert reader.read(time.monotonic() + 5) == "next"


def test_write_frame_sends_an_error_frame_for_a_value_over_the_limits(pipe):
    r, w = pipe
    write_frame(w, list(range(LIMITS.max_nodes)))
    got = FrameReader(r).read(time.monotonic() + 5)
    assert got["type"] == "error" and "100001 nodes" in got["error"]


# --- (c) a reader's peak memory, measured in a fresh process ------------------------------

_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
from d2lcnn.grading.payload import FrameReader, PayloadError, pack, unpack

unpack(pack({"warm": np.zeros(3), "up": [1.5, "s", {}]}))  # first-use allocations
# ru_maxrss starts at the forking parent's size (pytest's, here); a child forked now starts
# from this small interpreter's current size, so its growth is the reader's own.
pid = os.fork()
if pid:
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reader = FrameReader(0)
frames, outcome = 0, None
try:
    while reader.read(time.monotonic() + 20) is not None:  # the value is dropped at once
        frames += 1
except PayloadError:
    outcome = "PayloadError"
except BaseException as e:
    outcome = f"{type(e).__name__}: {e}"
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB on Linux
print(json.dumps({"outcome": outcome, "frames": frames, "grew": grew * 1024,
                  "eof": reader.eof, "before": before * 1024}), flush=True)
os._exit(0)
"""


def _feed(chunks) -> dict:
    """Run a FrameReader on stdin in a fresh interpreter, writing ``chunks`` to it."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            bufsize=0)
    try:
        for chunk in chunks:
            proc.stdin.write(chunk)
    except BrokenPipeError:  # the reader gave up, as it should
        pass
    proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()  # both small: no deadlock
    assert proc.wait(timeout=60) == 0, err.decode()
    return json.loads(out)


def _frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _full_frame(json_nodes: int = 0) -> bytes:
    """A frame of exactly the default limits: an array filling it, and a JSON dict of
    ``json_nodes`` nodes with distinct keys (the costliest JSON per node)."""
    entries = max(json_nodes - 7, 0) // 2  # outer dict, 2 keys, inner dict, array reference
    value = {"keys": {f"k{i:06d}": {} for i in range(entries)}}
    room = MAX_FRAME - len(pack(value)) - 4096
    value["x"] = np.zeros(room, np.uint8)
    data = pack(value)
    assert MAX_FRAME - 4096 < len(data) <= MAX_FRAME
    return data


@pytest.mark.parametrize("scenario", ["deflate bomb", "oversized prefix", "over budget",
                                      "full frame"])
def test_reader_peak_memory_stays_within_the_documented_bound(scenario, bomb):
    if scenario == "deflate bomb":
        got = _feed([_frame(bomb)])
        assert got["outcome"] == "PayloadError" and got["frames"] == 0
        assert got["grew"] < 4 * MiB  # the frame itself is 200 KB; inflated, 200 MiB
    elif scenario == "oversized prefix":
        got = _feed([struct.pack(">I", 2**31), bytes(MiB)])
        assert got["outcome"] == "PayloadError" and got["frames"] == 0
        assert got["grew"] < 4 * MiB
    elif scenario == "over budget":
        data = _full_frame()
        fits = MAX_TOTAL // (4 + len(data))
        got = _feed([_frame(data)] * (fits + 2))
        assert got["outcome"] == "PayloadError" and got["frames"] == fits
        assert got["grew"] < MAX_FRAME + LIMITS.max_array_bytes + 8 * MiB  # tiny JSON
    else:  # the worst a frame may hold: JSON at its node cap and arrays filling the rest
        got = _feed([_frame(_full_frame(LIMITS.max_nodes))])
        assert got["outcome"] is None and got["frames"] == 1 and got["eof"]
    assert got["grew"] < READER_BOUND
    print(f"{scenario}: ru_maxrss grew {got['grew'] / MiB:.1f} MiB "
          f"(from {got['before'] / MiB:.1f} MiB)")
