"""Batch grading: one row and one result folder per submission FILE under a stable, safe and
unique student id; symbolic links never followed; grades.csv safe to open in a spreadsheet."""

import csv
import json
import os
import re
import shutil
import threading

import nbformat
import pytest

from d2lcnn.grading import grade
from d2lcnn.grading.grade import expand, grade_batch, read_submission, submission_name

ASSIGNMENT = "hw1-convolution"
SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}")
ACTIVE = ("=", "+", "-", "@", "\t", "\r")


def _solution(hw1):
    return (hw1["bundle"] / "solution.ipynb").read_text()


def _untouched(hw1):
    return (hw1["student"] / f"{ASSIGNMENT}.ipynb").read_text()


def _raising(hw1, message):
    """The solution plus a top-level cell raising ValueError(<message, an expression>): still
    36 points."""
    nb = nbformat.reads(_solution(hw1), as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if c.id == "setup")
    cell = nbformat.v4.new_code_cell(f"raise ValueError({message})")
    cell.id = "student-extra"
    nb.cells.insert(i + 1, cell)
    return nbformat.writes(nb)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _raw_rows(out):
    with open(out / "grades.csv", newline="") as f:
        return list(csv.reader(f))


def _rows(out):
    """file path -> row (keyed by file: that is what must never be mixed up)."""
    with open(out / "grades.csv", newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(hw1, tmp_path_factory):
    """A folder of submissions whose old ids collided, plus links, a FIFO and a raiser."""
    root = tmp_path_factory.mktemp("names")
    subs, out, outside = root / "subs", root / "out", root / "outside"
    f = {
        "alice": _write(subs / "alice.ipynb", _solution(hw1)),
        "alice.v2": _write(subs / "alice.v2.ipynb", _untouched(hw1)),
        "bob": _write(subs / "bob" / f"{ASSIGNMENT}.ipynb", _solution(hw1)),
        "carol": _write(subs / "carol.ipynb", _solution(hw1)),
        "carol-dir": _write(subs / "carol" / f"{ASSIGNMENT}.submission.ipynb",
                            _untouched(hw1)),
        # The message starts with "=", and ends with a lone surrogate and a carriage return.
        "eve": _write(subs / "eve.ipynb", _raising(
            hw1, """'=HYPERLINK("http://x.example")' + chr(0xDCFF) + '\\r=2+2'""")),
    }
    # Links to a full-marks notebook: never followed, whatever they point to.
    f["link"] = subs / "mallory.ipynb"
    f["link"].symlink_to(hw1["bundle"] / "solution.ipynb")
    _write(outside / "dave.ipynb", _solution(hw1))
    _write(outside / "dave" / f"{ASSIGNMENT}.ipynb", _solution(hw1))
    f["linkdir"] = subs / "trudy"
    f["linkdir"].symlink_to(outside, target_is_directory=True)
    f["loop"] = subs / "loop.ipynb"
    f["loop"].symlink_to("loop.ipynb")
    f["fifo"] = subs / "fifo.ipynb"
    os.mkfifo(f["fifo"])
    res = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False)
    return {"subs": subs, "out": out, "files": f, "result": res, "rows": _rows(out)}


def _row(batch, key):
    return batch["rows"][str(batch["files"][key])]


def test_files_whose_old_ids_collided_get_their_own_rows_folders_and_scores(batch):
    alice, v2, bob = _row(batch, "alice"), _row(batch, "alice.v2"), _row(batch, "bob")
    assert (alice["student"], v2["student"], bob["student"]) == ("alice", "alice.v2", "bob")
    assert float(alice["total"]) == 36 and float(v2["total"]) == 0
    assert float(bob["total"]) == 36
    assert "q1: not attempted" in v2["notes"] and "not attempted" not in alice["notes"]
    out = batch["out"]
    for row, score in [(alice, 36), (v2, 0), (bob, 36)]:
        result = json.loads((out / row["student"] / "results.json").read_text())
        assert result["score"] == score
        assert result["extra_data"]["submission"] == row["file"]
    assert len(batch["rows"]) == len(batch["result"]["rows"])


def test_ids_that_still_coincide_are_an_error_for_both_never_a_shared_result(batch):
    carol, carol_dir = _row(batch, "carol"), _row(batch, "carol-dir")
    assert carol["student"] == carol_dir["student"] == "carol"
    assert float(carol["total"]) == 0 and float(carol_dir["total"]) == 0  # one is a solution
    assert f"id collision with {batch['files']['carol-dir']}" in carol["notes"]
    assert f"id collision with {batch['files']['carol']}" in carol_dir["notes"]
    assert not (batch["out"] / "carol").exists()


def test_symlinks_are_never_followed(batch):
    link = _row(batch, "link")
    assert float(link["total"]) == 0 and "symbolic link" in link["notes"]
    assert json.loads((batch["out"] / link["student"] / "results.json").read_text())[
        "score"] == 0
    loop = _row(batch, "loop")
    assert float(loop["total"]) == 0 and "symbolic link" in loop["notes"]
    # The linked folder is not descended: its full-marks notebooks have no row.
    assert not [f for f in batch["rows"] if "dave" in f]
    trudy = _row(batch, "linkdir")
    assert float(trudy["total"]) == 0 and "symbolic link" in trudy["notes"]
    fifo = _row(batch, "fifo")
    assert float(fifo["total"]) == 0 and "not a regular file (a FIFO)" in fifo["notes"]
    assert max(float(r["total"]) for f, r in batch["rows"].items()
               if "alice" not in f and "bob" not in f and "eve" not in f) == 0


def test_ids_are_stable_when_files_come_and_go(batch, hw1, tmp_path):
    subs, out = batch["subs"], batch["out"]
    before = {f: r["student"] for f, r in batch["rows"].items()}
    extra = [_write(subs / name, "{") for name in
             ("alice.v1.ipynb", "Alice.ipynb", "aaa.ipynb", "alice.v2.ipynb.ipynb")]
    extra.append(_write(subs / "alice" / f"{ASSIGNMENT}.ipynb", "{"))  # collides with alice
    try:
        again = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False)
        rows = _rows(out)
    finally:
        shutil.rmtree(subs / "alice")
        for p in extra[:-1]:
            p.unlink()
    assert {f: rows[f]["student"] for f in before} == before
    assert float(rows[str(batch["files"]["alice.v2"])]["total"]) == 0
    assert float(rows[str(batch["files"]["bob"])]["total"]) == 36
    # alice.ipynb now collides with alice/hw1-convolution.ipynb: its id is the same, but
    # neither file is graded; the results of the first run are not overwritten.
    assert "id collision with" in rows[str(batch["files"]["alice"])]["notes"]
    assert json.loads((out / "alice" / "results.json").read_text())["score"] == 36
    ids = [r["student"] for r in rows.values()]
    assert len(ids) == len(before) + len(extra)
    assert len({i.lower() for i in ids}) == len(ids) - 2  # only the two alice files share
    assert rows[str(subs / "Alice.ipynb")]["student"].startswith("Alice-")
    assert again["graded"] == len(extra) - 1 + 4  # new non-colliding files + 4 refusals


def test_the_gradebook_is_escaped_against_formula_injection(batch, hw1, tmp_path,
                                                             monkeypatch):
    eve = _row(batch, "eve")
    assert float(eve["total"]) == 36 and "ValueError" in eve["notes"]
    if "HYPERLINK" in eve["notes"]:  # if messages are shown: whole, in one cell, encodable
        assert '=HYPERLINK("http://x.example")\\udcff\r=2+2' in eve["notes"]
    assert (batch["out"] / "eve" / "feedback.md").is_file()
    for row in _raw_rows(batch["out"]):
        assert not any(cell.startswith(ACTIVE) for cell in row), row
    # Files named on the command line by a relative path: the file column is the raw name.
    monkeypatch.chdir(tmp_path)
    names = ["=cmd|' -C calc'!A0.ipynb", "+1+2.ipynb", "-2+3.ipynb", "@SUM(A1).ipynb",
             "\tx.ipynb", "\rx.ipynb"]
    for n in names:
        (tmp_path / n).write_text("{")  # not a notebook: a row without grading
    # A note that starts with student text (e.g. an exception message) is escaped too.
    real = grade.grade_file

    def noisy(bundle, path, **kw):
        result = real(bundle, path, **kw)
        result["extra_data"]["notes"].insert(0, "=1+1 says the student")
        return result

    monkeypatch.setattr(grade, "grade_file", noisy)
    grade_batch(hw1["bundle"], names, tmp_path / "out", progress=False)
    raw = _raw_rows(tmp_path / "out")
    assert raw[0][:2] == ["student", "file"]
    by_file = {r[1]: r for r in raw[1:]}
    assert set(by_file) == {"'" + n for n in names}
    for row in raw[1:]:
        assert not any(cell.startswith(ACTIVE) for cell in row), row
        assert row[-1].startswith("'=1+1 says the student; not a Jupyter notebook")
        assert SAFE_ID.fullmatch(row[0]) and float(row[-2]) == 36 and float(row[-3]) == 0


WEIRD = ["alice.ipynb", "Alice.ipynb", "ALICE.ipynb", "alice smith.ipynb", "alice_smith.ipynb",
         "José.ipynb", "José.ipynb".replace("é", "e\u0301"), "李明.ipynb", "王.ipynb",
         "a..b.ipynb", "..ipynb", "x.ipynb.ipynb", "x" * 240 + ".ipynb", "x" * 241 + ".ipynb",
         "y" * 64 + ".ipynb", "y" * 65 + ".ipynb", "tab\there.ipynb", "new\nline.ipynb",
         "nul\x01.ipynb", "-rf.ipynb", "grades.csv.ipynb", "grades.csv", "con.ipynb",
         "alice-0123456789.ipynb", "notes.txt", "hw1-convolution.ipynb",
         os.fsdecode(b"bad\xffutf8.ipynb"), "=cmd|' -C calc'!A0.ipynb", ".ipynb"]
WEIRD_REL = ["../x.ipynb", "a/../b.ipynb", "../../etc/passwd", "sec1/alice/hw1-convolution.ipynb",
             "sec1_alice/hw1-convolution.ipynb", "a/b/c.ipynb", "a_b_c.ipynb", "..", "."]


def test_weird_names_give_safe_unique_and_stable_ids():
    ids = {p: submission_name(p, ASSIGNMENT) for p in WEIRD + WEIRD_REL}
    for p, i in ids.items():
        assert SAFE_ID.fullmatch(i) and i not in (".", "..") and not i.endswith("."), (p, i)
        assert i == submission_name(p, ASSIGNMENT)  # a function of the path only
    assert len({i.lower() for i in ids.values()}) == len(ids)  # unique, even ignoring case
    assert ids["alice.ipynb"] == "alice" and ids["hw1-convolution.ipynb"] == "hw1-convolution"
    assert ids["sec1/alice/hw1-convolution.ipynb"] != ids["sec1_alice/hw1-convolution.ipynb"]
    assert ids["Alice.ipynb"].startswith("Alice-") and ids["José.ipynb"].startswith("Jose-")
    assert submission_name(f"alice/{ASSIGNMENT}.ipynb", ASSIGNMENT) == "alice"
    assert submission_name(f"alice/{ASSIGNMENT}.submission.ipynb", ASSIGNMENT) == "alice"
    assert submission_name("alice/notes.ipynb", ASSIGNMENT) != "alice"


def test_weird_file_names_get_result_folders_inside_out(hw1, tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for n in WEIRD:
        if not n.startswith("."):
            (subs / n).write_text("{")
    res = grade_batch(hw1["bundle"], [subs], out, jobs=2, progress=False)
    rows = _rows(out)
    assert len(rows) == len(res["rows"]) == len([n for n in WEIRD if not n.startswith(".")])
    assert len({r["student"] for r in rows.values()}) == len(rows)
    folders = {p.name for p in out.iterdir() if p.is_dir()}
    assert folders == {r["student"] for r in rows.values()}
    assert (out / "grades.csv").is_file()  # "grades.csv.ipynb" did not take its place
    for r in rows.values():
        assert "not a Jupyter notebook" in r["notes"], r


def test_reading_refuses_links_and_special_files_without_blocking(tmp_path):
    root = tmp_path / "subs"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.ipynb").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "a.ipynb").write_text("secret")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    os.mkfifo(root / "pipe.ipynb")
    assert read_submission(root / "real" / "a.ipynb", root) == b"{}"
    with pytest.raises(OSError, match="folder 'linked' on its path is a symbolic link"):
        read_submission(root / "linked" / "a.ipynb", root)
    with pytest.raises(OSError, match="not a regular file"):
        read_submission(root / "real", root)
    box = {}

    def read_fifo():  # would block forever without O_NONBLOCK (no writer)
        try:
            read_submission(root / "pipe.ipynb", root)
        except OSError as e:
            box["error"] = str(e)

    t = threading.Thread(target=read_fifo, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive() and "not a regular file (a FIFO)" in box["error"]
    big = root / "big.ipynb"
    with open(big, "wb") as f:
        f.truncate(grade.MAX_SUBMISSION_BYTES + 10)
    assert len(read_submission(big, root)) == grade.MAX_SUBMISSION_BYTES + 1


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(hw1, tmp_path, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    victim = _write(subs / "zed.ipynb", "{")
    listed = expand([subs])
    assert [s.rel.as_posix() for s in listed] == ["zed.ipynb"]
    victim.unlink()
    victim.symlink_to(hw1["bundle"] / "solution.ipynb")  # between listing and reading
    monkeypatch.setattr(grade, "expand", lambda paths: listed)
    grade_batch(hw1["bundle"], [subs], out, progress=False)
    row = _rows(out)[str(victim)]
    assert float(row["total"]) == 0 and "symbolic link" in row["notes"]


def test_an_output_folder_inside_the_submissions_folder_is_not_graded(hw1, tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.ipynb").write_bytes((hw1["bundle"] / "solution.ipynb").read_bytes())
    grade_batch(hw1["bundle"], [subs], subs / "graded", progress=False)
    again = grade_batch(hw1["bundle"], [subs], subs / "graded", progress=False)
    assert again["skipped"] == 1 and again["graded"] == 0  # results.json are not submissions
    with open(subs / "graded" / "grades.csv", newline="") as f:
        assert [r["student"] for r in csv.DictReader(f)] == ["alice"]
