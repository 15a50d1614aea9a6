"""Reading an assignment source and writing the student notebook and the autograder bundle.

See the package docstring for the format. :func:`parse` validates the source and splits it;
:func:`assign` writes ``OUT/student`` and ``OUT/autograder``, then re-reads the written
student files to prove no secret line survived and grades the solution through the real
sandbox (it must score full marks).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from d2lcnn.grading.api import case_seed
from d2lcnn.grading.bundle import Bundle
from d2lcnn.grading.bundle_format import (
    BUNDLE_FORMAT,
    DEFAULT_SETTINGS,
    SOLUTION,
    STUBS,
    AssignError,
    bundle_hash,
    load_cases,
    write_atomic,
    write_bundle,
)
from d2lcnn.grading.cells import QUESTION_TAG, ROLE_TAGS, cell_role, cell_tags, template
from d2lcnn.grading.isolation import bwrap_status
from d2lcnn.grading.payload import pack, unpack
from d2lcnn.grading.scoring import grade_notebook

# AssignError, BUNDLE_FORMAT, DEFAULT_SETTINGS, load_cases and write_atomic are shared with
# the grader (d2lcnn.grading.bundle_format) and re-exported here.
__all__ = ["AssignError", "Assignment", "parse", "assign", "build_notebook", "load_cases",
           "write_atomic", "bundle_hash", "BUNDLE_FORMAT", "DEFAULT_SETTINGS", "STUBS"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = "_Write your answer here._"  # a written cell with nothing outside its block


@dataclass
class Assignment:
    """A parsed source: the cells of both notebooks, the tests, settings and cases."""

    name: str
    source_sha256: str
    cells: list = field(default_factory=list)  # nbformat cells, tests/autograder removed
    tests: list = field(default_factory=list)  # {"source", "hidden"}
    autograder: list = field(default_factory=list)  # sources, grader process only
    settings: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)  # key -> Case
    secret_lines: set = field(default_factory=set)
    # written (manually graded) question -> {"points", "rubric", "answer" (the model answer),
    # "prompt", "cell_type", "cell_id"}; see d2lcnn.grading.written
    written: dict = field(default_factory=dict)


def _role(tags, where) -> tuple[str | None, str | None]:
    """The cell's ``(role, question)`` (:func:`d2lcnn.grading.cells.cell_role`), checked:
    at most one role tag, one question tag on answer/check cells, public xor hidden tests."""
    roles = [t for t in tags if t in ROLE_TAGS]
    qs = [t for t in tags if QUESTION_TAG.match(t)]
    if len(roles) > 1:
        raise AssignError(f"{where}: more than one role tag {roles}")
    role = roles[0] if roles else None
    if role in ("answer", "check", "written", "rubric") and len(qs) != 1:
        raise AssignError(f"{where}: an {role!r} cell needs exactly one question tag like "
                          f"'q1', got {qs}")
    if role == "tests" and ("public" in tags) == ("hidden" in tags):
        raise AssignError(f"{where}: a 'tests' cell needs exactly one of 'public'/'hidden'")
    return role, (qs[0] if qs else None)


def _solution_blocks(source: str, where: str, *, allowed: bool, code: bool = True):
    """Yield ``(begin, end, indent)`` line ranges; raise on any malformed marker. In a
    markdown cell (``code=False``) a block need not be indented."""
    begin = None
    for i, line in enumerate(source.split("\n")):
        s = line.strip()
        if not re.search(r"\b(BEGIN|END)[\s_]*SOL", s, re.IGNORECASE):
            continue
        if not allowed:
            raise AssignError(f"{where}, line {i + 1}: solution marker {s!r} outside an "
                              "answer cell")
        if s not in (BEGIN, END):
            raise AssignError(f"{where}, line {i + 1}: malformed marker {s!r} "
                              f"(write exactly {BEGIN!r} / {END!r})")
        indent = line[: len(line) - len(line.lstrip())]
        if s == BEGIN:
            if begin is not None:
                raise AssignError(f"{where}, line {i + 1}: nested {BEGIN!r} "
                                  f"(the block at line {begin[0] + 1} is still open)")
            if not indent and code:
                raise AssignError(f"{where}, line {i + 1}: a solution block must be inside a "
                                  "function body, so the student notebook runs top to bottom")
            begin = (i, indent)
        else:
            if begin is None:
                raise AssignError(f"{where}, line {i + 1}: {END!r} without {BEGIN!r}")
            if indent != begin[1]:
                raise AssignError(f"{where}, line {i + 1}: {END!r} is indented differently "
                                  f"from its {BEGIN!r} at line {begin[0] + 1}")
            yield begin[0], i, begin[1]
            begin = None
    if begin is not None:
        raise AssignError(f"{where}, line {begin[0] + 1}: {BEGIN!r} is never closed")


def _strip_solutions(source: str, where: str, question: str | None, *, keep: bool,
                     code: bool = True):
    """(student or solution source, solution lines). In a markdown cell (``code=False``,
    a written answer) the block is removed for the student, not replaced by a stub."""
    lines = source.split("\n")
    blocks = list(_solution_blocks(source, where, allowed=question is not None, code=code))
    out, secret, pos = [], [], 0
    for b, e, indent in blocks:
        out += lines[pos:b]
        secret += lines[b + 1:e]
        if keep:
            out += lines[b + 1:e]
        elif not code:
            pass
        else:
            out += [f"{indent}# YOUR CODE HERE",
                    f'{indent}raise NotImplementedError("{question}: write your code here")']
        pos = e + 1
    out += lines[pos:]
    if question is not None and not blocks:
        what = "answer" if code else "written"
        raise AssignError(f"{where}: {what} cell for {question} has no {BEGIN!r} block")
    return "\n".join(out), secret


def _trivial(line: str) -> bool:
    s = line.strip()
    return len(s) < 4 or s.startswith("#") and len(s) < 12 or s in {
        "else:", "pass", "return", "try:", "break", "continue", "return out", "finally:"}


def parse(source: Path) -> Assignment:
    """Read and validate an assignment source (jupytext py:percent or .ipynb)."""
    import jupytext  # here: ~1 s; only parse needs it, and the grade CLI imports this module

    source = Path(source)
    text = source.read_text()
    nb = jupytext.reads(text, fmt=source.suffix.lstrip(".") or "py:percent")
    a = Assignment(name=source.stem.removesuffix(".solution"),
                   source_sha256=hashlib.sha256(text.encode()).hexdigest())
    public_lines: set[str] = set()
    secret: set[str] = set()
    answers, checks_, setup = {}, {}, 0
    for i, cell in enumerate(nb.cells):
        where = f"{source.name}: cell {i + 1}"
        role, q = _role(cell_tags(cell), where)
        if role == "rubric":
            _rubric(a, cell, q, where, secret)
            continue
        if cell.cell_type != "code" and role not in (None, "written"):
            raise AssignError(f"{where}: only code cells can be tagged {role!r}")
        if role == "tests":
            list(_solution_blocks(cell.source, where, allowed=False))
            a.tests.append({"source": cell.source, "hidden": "hidden" in cell_tags(cell)})
            if "hidden" in cell_tags(cell):
                secret.update(cell.source.split("\n"))
            else:
                public_lines.update(s.strip() for s in cell.source.split("\n"))
            continue
        if role == "autograder":
            list(_solution_blocks(cell.source, where, allowed=False))
            a.autograder.append(cell.source)
            secret.update(cell.source.split("\n"))
            continue
        student, sol = _strip_solutions(cell.source, where,
                                        q if role in ("answer", "written") else None,
                                        keep=False, code=cell.cell_type == "code")
        secret.update(sol)
        if role == "written":
            _written(a, nb.cells, i, q, where, sol)
        public_lines.update(s.strip() for s in student.split("\n"))
        if role == "answer":
            if q in answers:
                raise AssignError(f"{where}: a second answer cell for {q} "
                                  f"(the first is cell {answers[q] + 1})")
            answers[q] = i
        elif role == "check":
            if f'check("{q}")' not in cell.source:
                raise AssignError(f'{where}: a check cell for {q} must call check("{q}")')
            checks_[q] = i
        elif role == "setup":
            setup += 1
        a.cells.append(cell)
    if setup != 1:
        raise AssignError(f"{source.name}: need exactly one cell tagged 'setup' (creates "
                          f"check/submit), found {setup}")
    try:
        a.cases, a.settings, _ = load_cases(a.tests, a.autograder)
    except AssignError:
        raise
    except Exception as e:
        raise AssignError(f"{source.name}: the tests failed to load: "
                          f"{type(e).__name__}: {e}") from e
    _check_written(a, source.name, answers)
    asked = {c.question for c in a.cases.values()}
    for q in answers:
        if q not in asked:
            raise AssignError(f"{source.name}: question {q} has an answer cell but no cases")
    for q in asked:
        if q not in answers:
            raise AssignError(f"{source.name}: cases for {q} but no answer cell tagged "
                              f"['answer', '{q}']")
    a.secret_lines = {s.strip() for s in secret if not _trivial(s)} - public_lines
    return a


_POINTS = re.compile(r"^points:\s*(\S+)\s*$")
_HEADING_POINTS = re.compile(r"^#+\s.*\((\d+)\s+points?\b", re.MULTILINE)


def _rubric(a: Assignment, cell, q: str, where: str, secret: set) -> None:
    """A ``rubric`` cell: ``points: N`` on its first line, then the rubric (markdown)."""
    if cell.cell_type != "markdown":
        raise AssignError(f"{where}: a 'rubric' cell must be a markdown cell")
    list(_solution_blocks(cell.source, where, allowed=False, code=False))
    lines = cell.source.strip("\n").split("\n")
    m = _POINTS.match(lines[0].strip())
    if not m or not re.fullmatch(r"[1-9]\d*", m.group(1)):
        raise AssignError(f"{where}, line 1: a rubric cell starts with 'points: N', N a "
                          f"positive integer; got {lines[0].strip()[:60]!r}")
    entry = a.written.setdefault(q, {})
    if "points" in entry:
        raise AssignError(f"{where}: a second rubric cell for {q}")
    entry.update(points=int(m.group(1)), rubric="\n".join(lines[1:]).strip("\n"),
                 rubric_where=where)
    secret.update(lines[1:])


def _written(a: Assignment, cells, i: int, q: str, where: str, solution: list[str]) -> None:
    """A ``written`` cell: its model answer and the prompt (the untagged markdown cells
    just above it) go to the bundle."""
    entry = a.written.setdefault(q, {})
    if "cell_id" in entry:
        raise AssignError(f"{where}: a second written cell for {q}")
    prompt, j = [], i - 1
    while j >= 0 and cells[j].cell_type == "markdown" and not cell_tags(cells[j]):
        prompt.insert(0, cells[j].source)
        j -= 1
    entry.update(answer=textwrap.dedent("\n".join(solution)).strip("\n"),
                 prompt="\n\n".join(prompt),
                 cell_type=cells[i].cell_type, cell_id=_cell_id("written", q, i),
                 where=where)


def _check_written(a: Assignment, name: str, answers: dict) -> None:
    """Every written question has one written cell and one rubric cell, no answer cell or
    cases, and a prompt heading that states the rubric's points (if it states points)."""
    asked = {c.question for c in a.cases.values()}
    for q, entry in a.written.items():
        if "cell_id" not in entry:
            raise AssignError(f"{entry['rubric_where']}: a rubric cell for {q} but no cell "
                              f"tagged ['written', '{q}']")
    for q, entry in a.written.items():
        where = entry.pop("where")
        entry.pop("rubric_where", None)
        if "points" not in entry:
            raise AssignError(f"{where}: written question {q} has no rubric cell (a markdown "
                              f"cell tagged ['rubric', '{q}'] starting with 'points: N')")
        if q in answers or q in asked:
            raise AssignError(f"{where}: {q} is a written question and also has an answer "
                              "cell or test cases; a question is one or the other")
        stated = _HEADING_POINTS.findall(entry["prompt"])
        if stated and int(stated[-1]) != entry["points"]:
            raise AssignError(f"{where}: the prompt of {q} says {stated[-1]} points, its "
                              f"rubric {entry['points']}")


def _cell_id(role, q, i):
    return f"{q}-{role}" if role in ("answer", "check", "written") else (
        "setup" if role == "setup" else f"cell-{i}")


def build_notebook(a: Assignment, *, solution: bool):
    """The student (or, with ``solution=True``, the solution) notebook as nbformat v4."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "d2lcnn_grading": {"assignment": a.name, "source_sha256": a.source_sha256},
    }
    for i, cell in enumerate(a.cells):
        role, q = cell_role(cell_tags(cell))
        src = cell.source
        if cell.cell_type == "code":
            src, _ = _strip_solutions(src, "", q if role in ("answer", "written") else None,
                                      keep=solution)
            new = nbformat.v4.new_code_cell(src)
        elif cell.cell_type == "markdown":
            if role == "written":
                src, _ = _strip_solutions(src, "", q, keep=solution, code=False)
                src = src.strip("\n") or PLACEHOLDER
            new = nbformat.v4.new_markdown_cell(src)
        else:
            new = nbformat.v4.new_raw_cell(src)
        new.id = _cell_id(role, q, i)
        if cell_tags(cell):
            new.metadata["tags"] = cell_tags(cell)
        nb.cells.append(new)
    return nb


def _leaks(a: Assignment, student_dir: Path) -> list[str]:
    """Secret lines found in the files actually written to ``student_dir``."""
    texts = []
    for path in sorted(student_dir.rglob("*")):
        if path.suffix == ".npz":
            texts.append(json.dumps(unpack(path.read_bytes()), default=str))
            texts.append(path.read_bytes().decode("latin-1"))
        elif path.is_file():
            texts.append(path.read_text(errors="replace"))
    student_lines = set()
    for t in texts:
        student_lines.update(s.strip() for s in t.split("\n"))
        # JSON-escaped notebook sources: one line per "...\n" string
        student_lines.update(s.strip() for s in t.replace("\\n", "\n").split("\n"))
    blob = "\n".join(texts)
    found = []
    for line in sorted(a.secret_lines):
        escaped = json.dumps(line)[1:-1]
        if line in student_lines or (len(line) >= 20 and (line in blob or escaped in blob)):
            found.append(line)
    return found


def assign(source: Path, out: Path, *, overrides: dict | None = None,
           verify: bool = True, secret: str | None = None) -> dict:
    """Write ``out/student`` and ``out/autograder``; return a summary.

    ``overrides`` replace settings (tests use it to shorten timeouts). ``secret`` (the
    course secret, ``--secret-file`` on the command line) seeds every HIDDEN case: the
    generator its probe gets and the grader-made inputs (``inputs=``), so a student who
    reads the hidden tests' code (in a public repository, say) still cannot know their
    inputs. By default a fresh random secret, so two builds differ in the bundle; pass the
    same secret to rebuild it byte for byte. Public cases are seeded from the assignment and
    case names only, so the student files never depend on the secret. Raises
    :class:`AssignError` on a malformed source, a leak, or a solution without full marks.
    """
    a = parse(Path(source))
    a.settings.update(overrides or {})
    secret = secret if secret is not None else secrets.token_hex(16)
    out = Path(out)
    student_dir, bundle_dir = out / "student", out / "autograder"
    student_nb = build_notebook(a, solution=False)
    solution_nb = build_notebook(a, solution=True)
    order = [c.key for c in a.cases.values()]  # declaration order within a question
    cases = sorted(a.cases.values(), key=lambda c: (*_question_order(c.question),
                                                     order.index(c.key)))
    meta = {
        "format": BUNDLE_FORMAT, "assignment": a.name, "source_sha256": a.source_sha256,
        "settings": a.settings,
        "questions": {q: sum(c.points for c in cases if c.question == q)
                      for q in dict.fromkeys(c.question for c in cases)},
        "cases": [{"key": c.key, "question": c.question, "name": c.name, "points": c.points,
                   "hidden": c.hidden, "hint": c.hint, "seed": _probe_seed(a.name, c, secret),
                   "timeout": float(c.timeout or a.settings["case_timeout"]),
                   "checker": c.checker if isinstance(c.checker, str) else None,
                   "inputs": c.inputs}
                  for c in cases],
        # Manually graded questions: prompt, rubric and model answer, for the grading pages.
        "written": {q: a.written[q] for q in sorted(a.written, key=_question_order)},
        "tests": a.tests, "autograder": a.autograder, "template": template(student_nb),
        "stubs": STUBS,
        # Seeds the grader-made inputs of hidden cases (inputs=): never leaves the bundle.
        "secret": secret,
    }
    # 1. Expected results: the solution notebook's probe outputs, through the real sandbox.
    write_bundle(bundle_dir, meta, {})
    write_atomic(bundle_dir / SOLUTION, nbformat.writes(solution_nb))
    with Bundle.load(bundle_dir, isolation=_solution_isolation()) as bundle:
        try:
            runs = bundle.run_probes(solution_nb)
        except ValueError as e:
            raise AssignError(f"{a.name}: {e}") from e
    failed = {k: r.error or r.status for k, r in runs.items() if r.status != "ok"}
    if failed:
        raise AssignError(f"{a.name}: the solution fails these cases in the sandbox: "
                          + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    expected = {k: r.value for k, r in runs.items()}
    write_bundle(bundle_dir, meta, expected)
    # 2. The student side: notebook + public support file, then check what was WRITTEN.
    public = {"assignment": a.name, "source_sha256": a.source_sha256,
              "cases": [{k: m[k] for k in ("key", "question", "name", "points", "hint",
                                            "seed")} for m in meta["cases"] if not m["hidden"]],
              "tests": [t["source"] for t in a.tests if not t["hidden"]],
              "expected": {m["key"]: expected[m["key"]] for m in meta["cases"]
                           if not m["hidden"]},
              "written": {q: w["points"] for q, w in meta["written"].items()}}
    handed_out = [student_dir / f"{a.name}.ipynb", student_dir / f"{a.name}.public.npz"]
    write_atomic(handed_out[0], nbformat.writes(student_nb))
    write_atomic(handed_out[1], pack(public))
    try:
        _verify(a, student_dir, bundle_dir, solution_nb, verify)
    except BaseException:
        for path in handed_out:  # never leave a student version that failed its checks
            path.unlink(missing_ok=True)
        raise
    auto = sum(c.points for c in cases)
    manual = sum(w["points"] for w in a.written.values())
    summary = {"assignment": a.name, "cases": len(cases),
               "hidden": sum(c.hidden for c in cases), "points": auto + manual,
               "written": len(a.written), "written_points": manual,
               "student": str(student_dir), "autograder": str(bundle_dir)}
    if verify:  # the automatic part; written questions are graded by hand
        summary["solution_score"] = auto
    return summary


def _question_order(q: str) -> tuple[int, str]:
    """Sort key of a question tag: ``q2`` < ``q2b`` < ``q10``."""
    return int(re.sub(r"\D", "", q)), q


def _probe_seed(assignment: str, case, secret: str) -> int:
    """The seed of a case's probe generator: from the names only for public cases (the
    student's ``check`` uses it too), from the secret as well for hidden ones. Not the seed
    of the case's ``inputs=`` function (the secret alone), whose kept data (labels) a probe
    could otherwise regenerate."""
    return case_seed(assignment, case.key, f"probe:{secret}" if case.hidden else "")


def _solution_isolation() -> str:
    """The solution is the instructor's own code: graded in bwrap where it works (so a
    solution that needs a module the sandbox lacks fails here, not at grading time), else
    as a plain process."""
    return "bwrap" if bwrap_status()[0] else "process"


def _verify(a: Assignment, student_dir: Path, bundle_dir: Path, solution_nb, verify: bool):
    """No secret line in the written student files; the solution gets full marks."""
    leaks = _leaks(a, student_dir)
    if leaks:
        raise AssignError(f"{a.name}: secret lines survived into {student_dir}: "
                          + "; ".join(repr(s) for s in leaks[:10]))
    # 3. The solution must score full marks when graded like any submission.
    if verify:
        with Bundle.load(bundle_dir, isolation=_solution_isolation()) as bundle:
            result = grade_notebook(bundle, solution_nb, name="solution")
        auto = sum(m for _, m in result["extra_data"]["questions"].values())
        if result["score"] != auto:  # written questions are graded by hand: not here
            bad = [t["name"] + ": " + t["output"] for t in result["tests"]
                   if t["score"] < t["max_score"]]
            raise AssignError(f"{a.name}: the solution scores {result['score']}/"
                              f"{auto} when graded: " + "; ".join(bad))
