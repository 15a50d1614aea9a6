"""Written (manually graded) questions: authoring, the grading pages (escaped: students are
hostile), scores.csv, the merge of the instructor's points, "pending" until entered."""

import base64
import csv
import html.parser
import json
import shutil
import zlib
from pathlib import Path

import nbformat
import pytest

from d2lcnn.grading.__main__ import main
from d2lcnn.grading.authoring import AssignError, assign, parse
from d2lcnn.grading.grade import ManualScoresError, grade_batch
from d2lcnn.grading.payload import unpack
from d2lcnn.grading.platform_run import gradescope_results, prairielearn_results
from d2lcnn.grading.student import Checker
from d2lcnn.grading.written import MAX_TEXT

SOURCE = '''\
# %% [markdown]
# # Homework 9: written answers

# %%
import numpy as np

# %% tags=["setup"]
from d2lcnn.grading import Checker

grader = Checker("hw9-written", globals())
check, submit = grader.check, grader.submit

# %% [markdown]
# ## Question 1 (2 points, guided): double it

# %% tags=["answer", "q1"]
def double(x):
    """Twice ``x``."""
    ### BEGIN SOLUTION
    return 2 * np.asarray(x)
    ### END SOLUTION


# %% tags=["check", "q1"]
check("q1")

# %% [markdown]
# ## Question 2 (3 points, standard): why does the loss go up?
# Explain in two sentences.

# %% [markdown] tags=["written", "q2"]
# _Write your answer here._
# ### BEGIN SOLUTION
# The learning rate overshoots the minimum of the quadratic bowl.
# ### END SOLUTION

# %% [markdown] tags=["rubric", "q2"]
# points: 3
# - 1 point: names the learning rate as the culprit.
# - 2 points: explains the overshoot past the minimum.

# %% tags=["check", "q2"]
check("q2")

# %% [markdown]
# ## Question 3 (2 points, challenge): plot the curve

# %% tags=["written", "q3"]
def plot_curve():
    """Plot the training curve."""
    ### BEGIN SOLUTION
    print("the curve drawn by the reference solution")
    ### END SOLUTION


plot_curve()

# %% [markdown] tags=["rubric", "q3"]
# points: 2
# - 2 points: axes labelled, a log scale on the loss axis.

# %% tags=["tests", "public"]
@case("q1", "doubles a vector", points=2)
def _(ns, rng):
    return ns.double(rng.standard_normal(3))
'''
MODEL = "The learning rate overshoots the minimum of the quadratic bowl."
RUBRIC = "- 2 points: explains the overshoot past the minimum."
FAST = {"case_timeout": 5, "cell_timeout": 5}


def _png() -> bytes:
    """A valid 1x1 PNG, made here."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PNG = base64.b64encode(_png()).decode()
XSS = {
    "script": "<script>alert('x')</script>",
    "img": '<img src=x onerror="alert(1)">',
    "link": "[click](javascript:alert(1)) <a href=\"javascript:alert(2)\">me</a>",
    "svg": '<svg onload="alert(3)"><script>alert(4)</script></svg>',
    "close": "</pre></section><script>alert(5)</script>",
}


@pytest.fixture(scope="module")
def hw9(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw9")
    source = root / "hw9-written.py"
    source.write_text(SOURCE)
    summary = assign(source, root / "build", overrides=FAST, secret="tests")
    return {"source": source, "out": root / "build", "summary": summary,
            "bundle": root / "build" / "autograder"}


def _student(hw9):
    return nbformat.read(hw9["out"] / "student" / "hw9-written.ipynb", as_version=4)


def _cell(nb, tag):
    return next(c for c in nb.cells if tag in c.metadata.get("tags", []))


def _answered(hw9, *, text, outputs=(), code=None, q1=True):
    nb = _student(hw9)
    if q1:
        answer = _cell(nb, "q1")
        answer.source = answer.source.replace(
            'raise NotImplementedError("q1: write your code here")', "return 2 * np.asarray(x)")
    _cell(nb, "q2").source = text if "written" in _cell(nb, "q2").metadata["tags"] else ""
    q3 = next(c for c in nb.cells if {"written", "q3"} <= set(c.metadata.get("tags", [])))
    if code is not None:
        q3.source = code
    q3.outputs = [nbformat.from_dict(o) for o in outputs]
    return nb


def _write(folder: Path, notebooks: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]


# --- authoring -------------------------------------------------------------------------


def test_assign_keeps_model_answer_and_rubric_out_of_the_student_files(hw9):
    s = hw9["summary"]
    assert (s["points"], s["written"], s["written_points"], s["solution_score"]) == (7, 2, 5, 2)
    student = hw9["out"] / "student"
    blob = "\n".join(p.read_text(errors="replace") for p in student.iterdir()
                     if p.suffix != ".npz")
    public = unpack((student / "hw9-written.public.npz").read_bytes())
    blob += json.dumps(public, default=str)
    for secret in (MODEL, RUBRIC, "names the learning rate", "the curve drawn by the reference",
                   "BEGIN SOLUTION", "points: 3"):
        assert secret not in blob
    nb = _student(hw9)
    assert _cell(nb, "q2").source == "_Write your answer here._"
    assert not [c for c in nb.cells if "rubric" in c.metadata.get("tags", [])]
    assert 'raise NotImplementedError("q3' in _cell(nb, "q3").source
    assert public["written"] == {"q2": 3, "q3": 2}
    meta = json.loads((hw9["bundle"] / "bundle.json").read_text())
    q2 = meta["written"]["q2"]
    assert q2["answer"] == MODEL and RUBRIC in q2["rubric"] and q2["points"] == 3
    assert q2["prompt"].startswith("## Question 2 (3 points") and q2["cell_id"] == "q2-written"
    assert meta["written"]["q3"]["cell_type"] == "code"
    assert list(meta["questions"]) == ["q1"]  # the sandbox runs automatic questions only


@pytest.mark.parametrize("change, message", [
    (("# points: 3\n# - 1 point", "# - 1 point"), "cell 9, line 1: a rubric cell starts with"),
    (("# points: 3", "# points: 0"), "positive integer; got 'points: 0'"),
    (("# points: 3", "# points: two"), "positive integer"),
    (('# %% [markdown] tags=["rubric", "q2"]', '# %% [markdown] tags=["rubric", "q7"]'),
     "a rubric cell for q7 but no cell tagged ['written', 'q7']"),
    (('# %% [markdown] tags=["rubric", "q3"]', '# %% [markdown]'),
     "written question q3 has no rubric cell"),
    (('# %% [markdown] tags=["rubric", "q3"]', '# %% tags=["rubric", "q3"]'),
     "a 'rubric' cell must be a markdown cell"),
    (("(3 points, standard)", "(4 points, standard)"), "the prompt of q2 says 4 points"),
    (("# ### END SOLUTION\n\n# %% [markdown] tags=[\"rubric\", \"q2\"]",
      "# ### END SOLUTON\n\n# %% [markdown] tags=[\"rubric\", \"q2\"]"),
     "cell 8, line 4: malformed marker"),
    (('tags=["written", "q2"]', 'tags=["written"]'), "needs exactly one question tag"),
    (('@case("q1"', '@case("q2"'), "q2 is a written question and also has"),
])
def test_malformed_written_questions_fail_naming_cell_and_line(tmp_path, change, message):
    old, new = change
    assert old in SOURCE
    source = tmp_path / "hw9-written.py"
    source.write_text(SOURCE.replace(old, new, 1))
    with pytest.raises(AssignError, match=None) as err:
        parse(source)
    assert message in str(err.value), str(err.value)


def test_two_written_cells_for_one_question_fail(tmp_path):
    extra = ('# %% [markdown] tags=["written", "q2"]\n# again\n# ### BEGIN SOLUTION\n'
             '# more\n# ### END SOLUTION\n\n')
    source = tmp_path / "hw9-written.py"
    source.write_text(SOURCE.replace('# %% [markdown] tags=["rubric", "q2"]',
                                     extra + '# %% [markdown] tags=["rubric", "q2"]'))
    with pytest.raises(AssignError, match="cell 9: a second written cell for q2"):
        parse(source)


def test_check_says_a_written_question_is_graded_by_hand(hw9, capsys):
    Checker("hw9-written", {}, directory=hw9["out"] / "student").check("q2")
    out = capsys.readouterr().out
    assert "q2: a written answer, graded by hand (3 points)" in out


# --- grading ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(hw9, tmp_path_factory):
    """One batch: an untouched notebook, a hostile one, one with a figure, one with its
    written cell deleted, one with a 50 MB answer."""
    root = tmp_path_factory.mktemp("hw9-graded")
    hostile = "\n".join(XSS.values())
    big = "A" * 50_000_000
    deleted = _answered(hw9, text="gone")
    deleted.cells = [c for c in deleted.cells if "q2" not in c.metadata.get("tags", [])
                     or "check" in c.metadata.get("tags", [])]
    outputs = [
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG}},
        {"output_type": "display_data", "metadata": {},
         "data": {"image/png": base64.b64encode(b"<svg onload=alert(6)>").decode()}},
        {"output_type": "display_data", "metadata": {},
         "data": {"image/svg+xml": XSS["svg"], "text/html": XSS["script"]}},
        {"output_type": "stream", "name": "stdout", "text": XSS["img"]},
    ]
    figure = _answered(hw9, text="Because the step is too large. ![pasted](attachment:a.png)",
                       code="def plot_curve():\n    print('mine')\n\n\nplot_curve()",
                       outputs=outputs)
    _cell(figure, "q2").attachments = {"a.png": {"image/png": PNG},
                                       "b.svg": {"image/svg+xml": XSS["svg"]}}
    subs = _write(root / "subs", {
        "untouched": _student(hw9), "hostile": _answered(hw9, text=hostile),
        "figure": figure, "deleted": deleted, "big": _answered(hw9, text=big)})
    out = root / "grades"
    grade_batch(hw9["bundle"], [subs], out, jobs=2, progress=False)
    return {"subs": subs, "out": out, "root": root}


def test_grades_show_written_questions_pending_and_the_total_provisional(graded):
    rows = {r["student"]: r for r in _csv(graded["out"] / "grades.csv")}
    assert list(rows["hostile"])[:6] == ["student", "file", "q1", "q2", "q3", "total"]
    assert rows["hostile"]["q2"] == "pending" and rows["hostile"]["q3"] == "0"
    assert rows["hostile"]["status"] == "provisional: q2 pending"
    assert (float(rows["hostile"]["total"]), float(rows["hostile"]["max"])) == (2, 7)
    assert rows["figure"]["q3"] == "pending"
    assert rows["figure"]["status"] == "provisional: q2, q3 pending"
    untouched = rows["untouched"]
    assert (untouched["q1"], untouched["q2"], untouched["q3"]) == ("0", "0", "0")
    assert untouched["status"] == "final" and float(untouched["total"]) == 0
    for q in ("q1: not attempted", "q2: no answer", "q3: no answer"):
        assert q in untouched["notes"]
    assert rows["deleted"]["q2"] == "0" and "q2: its written cell is missing" in \
        rows["deleted"]["notes"]
    feedback = (graded["out"] / "figure" / "feedback.md").read_text()
    assert "| q2 (written) | pending / 3 |" in feedback
    assert "provisional: q2, q3 still to be graded by hand" in feedback
    result = json.loads((graded["out"] / "figure" / "results.json").read_text())
    assert result["extra_data"]["written"]["q2"]["status"] == "pending"
    assert result["extra_data"]["written"]["q2"]["points"] is None


def test_grading_page_collects_every_answer_with_prompt_rubric_and_model(graded):
    page = (graded["out"] / "manual" / "hw9-written-q2.html").read_text()
    assert page.index("Prompt") < page.index("Rubric") < page.index("Model answer")
    assert MODEL in page and "explains the overshoot past the minimum." in page
    assert page.count("<section") == 5
    for name in ("untouched", "hostile", "figure", "deleted", "big"):
        assert f"<h2>{name}</h2>" in page
    assert "Because the step is too large." in page
    assert f"data:image/png;base64,{PNG}" in page  # the image pasted into the markdown cell
    assert "not shown: an attachment that is not a PNG image" in page
    assert len(page) < 3 * MAX_TEXT  # the 50 MB answer is cut
    assert "not shown: the remaining 49,900,000 characters of this answer" in page
    figure = (graded["out"] / "manual" / "hw9-written-q3.html").read_text()
    assert f"data:image/png;base64,{PNG}" in figure
    assert "print(&#x27;mine&#x27;)" in figure
    assert "not shown: an image that is not a valid PNG" in figure
    assert "not shown: an output of type &#x27;image/svg+xml&#x27;" in figure


def test_grading_pages_escape_hostile_answers(graded):
    for q in ("q2", "q3"):
        page = (graded["out"] / "manual" / f"hw9-written-{q}.html").read_text()
        parser = _Tags()
        parser.feed(page)
        assert parser.tags <= {"html", "head", "meta", "title", "style", "body", "header",
                               "h1", "h2", "p", "pre", "section", "small", "img"}, parser.tags
        for tag, key, value in parser.attrs:
            assert not key.startswith("on") and key != "href", (tag, key)
            if tag == "img":
                assert key == "alt" or value.startswith("data:image/png;base64,"), value
        assert "Content-Security-Policy" in page and "default-src 'none'" in page
        for payload in XSS.values():
            assert payload not in page
    page = (graded["out"] / "manual" / "hw9-written-q2.html").read_text()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_scores_csv_has_a_row_per_student_and_question_with_points_empty(graded):
    rows = _csv(graded["out"] / "manual" / "scores.csv")
    assert list(rows[0]) == ["student", "question", "max_points", "points", "comment"]
    assert {(r["student"], r["question"]) for r in rows} == {
        (s, q) for s in ("untouched", "hostile", "figure", "deleted", "big")
        for q in ("q2", "q3")}
    assert all(r["points"] == "" for r in rows)
    assert {r["max_points"] for r in rows if r["question"] == "q2"} == {"3"}


def _fill(path: Path, points: dict, comments=None, extra=()):
    rows = _csv(path)
    for r in rows:
        key = (r["student"], r["question"])
        if key in points:
            r["points"] = points[key]
            r["comment"] = (comments or {}).get(key, "")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["student", "question", "max_points", "points", "comment"])
        w.writeheader()
        w.writerows(rows)
        w.writerows(extra)


def test_merge_puts_points_in_gradebook_results_and_feedback(hw9, graded, tmp_path):
    out = tmp_path / "grades"
    shutil.copytree(graded["out"], out)
    scores = out / "manual" / "scores.csv"
    _fill(scores, {("hostile", "q2"): "2.5", ("figure", "q2"): "3", ("figure", "q3"): "1"},
          {("figure", "q3"): "no log scale"})
    res = grade_batch(hw9["bundle"], [graded["subs"]], out, progress=False,
                      merge_manual=scores)
    assert res["graded"] == 0 and res["skipped"] == 5  # resumable: nothing regraded
    rows = {r["student"]: r for r in _csv(out / "grades.csv")}
    assert (rows["figure"]["q2"], rows["figure"]["q3"], rows["figure"]["status"]) == (
        "3", "1", "final")
    assert float(rows["figure"]["total"]) == 6
    assert rows["hostile"]["q2"] == "2.5" and float(rows["hostile"]["total"]) == 4.5
    assert rows["hostile"]["status"] == "final"  # q3 unanswered: 0, not pending
    assert rows["big"]["q2"] == "pending"
    result = json.loads((out / "figure" / "results.json").read_text())
    assert result["score"] == 6 and result["extra_data"]["written"]["q3"] == {
        **result["extra_data"]["written"]["q3"], "points": 1.0, "comment": "no log scale",
        "status": "graded"}
    feedback = (out / "figure" / "feedback.md").read_text()
    assert "| q3 (written) | 1 / 2; no log scale |" in feedback
    assert "provisional" not in feedback
    # idempotent: the same merge again changes nothing
    before = {p: p.read_bytes() for p in out.rglob("*.json")} | {
        out / "grades.csv": (out / "grades.csv").read_bytes()}
    grade_batch(hw9["bundle"], [graded["subs"]], out, progress=False, merge_manual=scores)
    assert before == {p: p.read_bytes() for p in before}
    # a re-run of grade keeps the points entered in scores.csv
    grade_batch(hw9["bundle"], [graded["subs"]], out, progress=False)
    kept = {(r["student"], r["question"]): (r["points"], r["comment"])
            for r in _csv(scores)}
    assert kept[("figure", "q3")] == ("1", "no log scale") and kept[("hostile", "q2")][0] == "2.5"
    assert kept[("big", "q2")] == ("", "")


@pytest.mark.parametrize("points, extra, message", [
    ({("hostile", "q2"): "abc"}, (), "line 5: points 'abc' is not a number"),
    ({("hostile", "q2"): "4"}, (), "line 5: points '4' outside [0, 3]"),
    ({("hostile", "q2"): "-1"}, (), "line 5: points '-1' outside [0, 3]"),
    ({("hostile", "q2"): "nan"}, (), "line 5: points 'nan' is not a number"),
    ({}, ({"student": "mallory", "question": "q2", "max_points": "3", "points": "3",
           "comment": ""},), "line 12: unknown student 'mallory'"),
    ({}, ({"student": "figure", "question": "q1", "max_points": "2", "points": "2",
           "comment": ""},), "line 12: unknown question 'q1'"),
    ({}, ({"student": "figure", "question": "q2", "max_points": "3", "points": "1",
           "comment": ""},), "line 12: figure q2 is given twice (also on line"),
])
def test_merge_errors_name_the_row_and_merge_nothing(hw9, graded, tmp_path, points, extra,
                                                     message):
    out = tmp_path / "grades"
    shutil.copytree(graded["out"], out)
    scores = out / "manual" / "scores.csv"
    _fill(scores, {("figure", "q2"): "3", **points}, extra=extra)
    lines = scores.read_text().splitlines()
    assert lines[4].startswith("hostile,q2") or not points  # the row the messages name
    before = (out / "grades.csv").read_bytes()
    with pytest.raises(ManualScoresError) as err:
        grade_batch(hw9["bundle"], [graded["subs"]], out, progress=False,
                    merge_manual=scores)
    assert message in str(err.value)
    assert (out / "grades.csv").read_bytes() == before  # nothing merged
    assert main(["grade", str(hw9["bundle"]), str(graded["subs"]), "--out", str(out),
                 "--no-progress", "--merge-manual", str(scores)]) == 1


def test_platform_results_leave_written_questions_to_the_platform(graded):
    result = json.loads((graded["out"] / "figure" / "results.json").read_text())
    gs = gradescope_results(result, hidden_visibility="after_published", seconds=1)
    assert gs["score"] == 2 and gs["extra_data"]["max_score"] == 2
    assert "Written question(s) q2, q3 (5 points) are graded by hand" in gs["output"]
    assert sum(t["max_score"] for t in gs["tests"]) == 2
    pl = prairielearn_results(result, hidden_visibility="after_published", seconds=1)
    assert pl["score"] == 1.0 and "graded by hand" in pl["message"]


def test_untouched_notebook_is_not_attempted_and_written_questions_have_no_answer(graded):
    result = json.loads((graded["out"] / "untouched" / "results.json").read_text())
    assert result["score"] == 0 and result["max_score"] == 7
    assert {q: e["status"] for q, e in result["extra_data"]["written"].items()} == {
        "q2": "no answer", "q3": "no answer"}
    page = (graded["out"] / "manual" / "hw9-written-q2.html").read_text()
    section = page[page.index("<h2>untouched</h2>"):]
    section = section[:section.index("</section>")]
    assert "no answer" in section and "Write your answer here" not in section


def test_an_unreadable_scores_file_is_never_overwritten(hw9, graded, tmp_path):
    out = tmp_path / "grades"
    shutil.copytree(graded["out"], out)
    scores = out / "manual" / "scores.csv"
    scores.write_text("name;points\nfigure;3\n")
    with pytest.raises(ManualScoresError, match="line 1 must name the columns"):
        grade_batch(hw9["bundle"], [graded["subs"]], out, progress=False)
    assert scores.read_text() == "name;points\nfigure;3\n"


def test_model_answer_of_a_code_cell_is_shown_dedented(hw9):
    meta = json.loads((hw9["bundle"] / "bundle.json").read_text())
    assert meta["written"]["q3"]["answer"] == 'print("the curve drawn by the reference solution")'


def test_png_validation_rejects_what_is_not_a_small_png():
    from d2lcnn.grading.written import MAX_IMAGE_BYTES, valid_png

    assert valid_png(PNG) == _png() and valid_png([PNG[:10], PNG[10:]]) == _png()
    assert valid_png(base64.b64encode(b"<svg onload=alert(1)>").decode()) is None
    assert valid_png("iVBORw0KGgo=\"><script>") is None  # not base64
    assert valid_png(base64.b64encode(_png() + b"\0" * MAX_IMAGE_BYTES).decode()) is None
    assert valid_png(None) is None and valid_png(12) is None


def test_colliding_ids_get_one_row_in_scores_csv(tmp_path):
    from d2lcnn.grading.manual import write_manual
    from d2lcnn.grading.written import entries

    meta = {"assignment": "hw9-written",
            "written": {"q2": {"points": 3, "prompt": "p", "rubric": "r", "answer": "a"}}}
    result = {"extra_data": {"written": entries(meta["written"], None)}}
    write_manual(tmp_path, meta, [("alice", result), ("alice", result), ("bob", result)])
    rows = _csv(tmp_path / "manual" / "scores.csv")
    assert [(r["student"], r["question"]) for r in rows] == [("alice", "q2"), ("bob", "q2")]
    write_manual(tmp_path, meta, [("alice", result), ("alice", result)])  # re-run: no error
    assert len(_csv(tmp_path / "manual" / "scores.csv")) == 1
