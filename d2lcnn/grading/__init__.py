'''Autograded homework: authoring, the student's self-check, and a sandboxed grader.

Workflow::

    python -m d2lcnn.grading assign instructor/homework/hw1-convolution.py --out build/hw1
    #  -> build/hw1/student/hw1-convolution.ipynb  +  hw1-convolution.public.npz   (hand out)
    #  -> build/hw1/autograder/{bundle.json, expected.npz, solution.ipynb}       (keep private)
    python -m d2lcnn.grading grade build/hw1/autograder submissions/ --out grades/hw1 --jobs 4
    #  -> grades/hw1/grades.csv, grades/hw1/<student>/{results.json, feedback.md}
    python -m d2lcnn.grading assign ... --out build/hw1 --gradescope --prairielearn
    #  -> build/hw1/gradescope/autograder.zip, build/hw1/prairielearn/   (see platforms)

Authoring format (stable; hw2-hw4 use it too)
----------------------------------------------
A source is a jupytext ``py:percent`` notebook WITH solutions,
``instructor/homework/hwN-name.py`` (outside ``notebooks/``, which students browse); the
assignment id is the file stem. Cells are classified by their tags (one role tag each):

``setup`` (exactly one, near the top)
    Creates the student helpers and nothing else (put imports in a cell of their own): the
    sandbox never runs it and defines ``check``, ``submit`` and ``grader`` as no-ops instead::

        # %% tags=["setup"]
        from d2lcnn.grading import Checker
        grader = Checker("hw1-convolution", globals())
        check, submit = grader.check, grader.submit

``answer`` + a question tag (``q1``, ``q2``, ``q3b``: ``q<digits>[letter]``), one per question
    Lines strictly between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (each alone on its
    line, same indentation) are replaced in the student version by ``# YOUR CODE HERE`` and
    ``raise NotImplementedError("q1: ...")`` at that indentation. Blocks must be inside a
    function body (so the untouched notebook runs top to bottom), may not nest, and every
    answer cell has at least one. A marker anywhere else (another cell, a markdown cell) or a
    near-miss spelling is an error naming the cell and line.

``check`` + a question tag
    Student-visible; must contain ``check("q1")``. Never run by the grader.

``tests`` + ``public`` or ``hidden``
    Test cases, removed from the student notebook. Public cells are also shipped (inside
    ``<id>.public.npz``) so ``check`` can run them; hidden cells go only to the bundle. A case
    is a *probe* registered with the ``case`` decorator (available in these cells, with ``np``
    and ``checks``)::

        @case("q2", "stride 2, padding 1", points=2, hint="H_out = (H + 2P - K) // S + 1")
        def _(ns, rng):                       # ns: the student's globals, as attributes
            x = rng.standard_normal((2, 3, 7, 7))       # rng: np.random.Generator, seeded per
            w = rng.standard_normal((4, 3, 3, 3))       # case (stable across machines)
            out, _ = ns.conv2d_forward_naive(x, w, np.zeros(4), stride=2, padding=1)
            return out                                  # plain data only

    A tests cell sees ``case``, ``np`` and ``checks`` and must import anything else it uses
    (``import torch``); all tests cells share one namespace, public cells first, so hidden
    cells may use public helpers. In the sandbox they run after the student's cells, under
    the same audit hook. Options: ``points`` (default 1), ``hint``, ``timeout`` (seconds,
    default the assignment's ``case_timeout``), ``checker``. The probe runs INSIDE the
    sandbox and returns plain data (numbers, strings, None, lists/tuples, str-keyed dicts,
    numeric/bool/str NumPy arrays); to test that an answer refuses bad input, return
    ``checks.raised(lambda: ns.f(bad))`` (the exception's name, or ``"no error"``) TOGETHER
    with a correct output in the same case, so that an answer that always raises earns
    nothing. Return outputs, never a comparison made inside the sandbox (a submission can
    fake a ``True``), and never the inputs a checker would take its truth from: use
    ``inputs=`` for data the checker needs.
    Its output is compared OUTSIDE the sandbox with the EXPECTED output, which is the same
    probe run on the solution at ``assign`` time. The default checker is
    ``checks.close(rtol=1e-6, atol=1e-9)`` (structure, shapes, dtype kind, values); pass
    ``checker=checks.rel_error_below(1e-7)``, any ``f(got, expected) -> (ok_or_fraction,
    message)``, or, for a hidden case, the NAME (a string) of a function defined in an
    ``autograder`` cell. A probe that raises ``NotImplementedError`` means "not attempted".
    Case names are unique per question and are shown to students (even hidden ones, in
    feedback); never put inputs in a name.

``autograder``
    Code that runs only in the grader process, never in the sandbox or the student
    version: named checkers (e.g. accuracy of returned predictions against labels that
    never enter the sandbox), functions making hidden inputs (``inputs=``) and the
    settings::

        settings(forbid=["torch", "d2lcnn.numpy"], case_timeout=10, cell_timeout=60,
                 memory_mb=2048, output_kb=1024, cpu_seconds=None, preload=[],
                 question_timeout=None, submission_timeout=None, scratch_mb=64,
                 scratch_files=1024)

    ``forbid``: module prefixes that are absent from the sandbox (their files are replaced
    by stubs raising ImportError) and whose import is refused. ``cpu_seconds``: RLIMIT_CPU
    per process (default: startup + cell and case timeouts). ``preload``: modules imported
    by the fork server before any question, for speed. A preloaded package must import
    without its forbidden parts (``d2lcnn.numpy`` loads its optimizers lazily, so hw3 can
    allow the layers and forbid ``d2lcnn.numpy.optim``); a package that needs a forbidden
    one fails to load (``d2lcnn.numpy`` needs ``scipy``). ``question_timeout``,
    ``submission_timeout``: time budgets in seconds (see below). ``scratch_mb``,
    ``scratch_files``: the private scratch space of a question (its cwd and ``/tmp``).

``demo``
    Code the student runs to try their answers (a gradient check, training on a validation
    split): copied to the student notebook, never run by the grader, so an expensive or
    broken experiment costs nothing at grading time. Students may tag their own cells so.

``written`` + a question tag (a written, manually graded question: one such cell each)
    A markdown cell holding a placeholder for the student and the model answer between
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (need not be indented); the student
    notebook keeps only the placeholder. Or a CODE cell that makes a figure, with solution
    blocks as in an answer cell: the grader runs it like an answer cell (later cells may
    depend on it) and the grading page shows the outputs the submitted notebook stored
    (PNG images and text only). A written question has no answer cell and no cases::

        # %% [markdown]
        # ## Question 6 (3 points, standard): why does the loss go up?

        # %% [markdown] tags=["written", "q6"]
        # _Write your answer here._
        # ### BEGIN SOLUTION
        # The model answer: in the bundle and on the grading pages, never for students.
        # ### END SOLUTION

``rubric`` + the written question's tag (exactly one per written question)
    A markdown cell: ``points: N`` (N a positive integer) on its first line, then the
    rubric as markdown. Removed from the student notebook; goes to the bundle with the
    prompt (the untagged markdown cells just above the written cell; if their heading
    states ``(N points``, N must be the rubric's), the model answer and the cell's id. A
    written question counts toward the assignment's maximum and is graded by hand (see
    Outputs).

Every other cell (markdown, untagged code) is copied to the student notebook unchanged.
``assign`` FAILS on: malformed/misplaced/unbalanced markers, an answer cell without cases or
cases without an answer cell, duplicate answer cells, a check cell without ``check("qN")``,
a written question without exactly one written and one rubric cell, or with cases,
tests that fail to load, any solution line or hidden-test/autograder line found in the files
it WROTE to ``student/`` (read back from disk; model answers and rubrics included), a
solution that fails a case in the sandbox, or a solution that does not get full marks (of
the automatic questions) when graded like a submission.

Student side
------------
The student notebook runs top to bottom as handed out (``check`` prints "not attempted").
``check("q1")`` runs the public cases in the kernel and prints pass/fail per case with
expected vs got (shape, first differing value) and the hint. ``submit()`` (its cell ends
every assignment; a no-op in the sandbox) reads the SAVED notebook the kernel runs (VS
Code's ``__vsc_ipynb_file__``, Jupyter's ``JPY_SESSION_NAME``, else the one notebook of the
assignment in the working directory; it refuses when that is ambiguous) and writes
``<id>.submission.ipynb`` next to it with metadata (assignment id, source hash, timestamp).
Any ``.ipynb`` can be graded; missing metadata is only a note.

Grading and the sandbox
-----------------------
Per submission and per QUESTION, a fresh sandbox process runs every code cell except
setup/check/demo cells, in order, each in ``try/except BaseException`` (an error is recorded
and the rest go on; IPython magics are dropped), then that question's probes, each result
streamed to the grader as one frame of JSON+npz bytes (never pickle) over a pipe. The
grader enforces a wall-clock timeout per cell and per case, a time budget per question and
per submission (``settings(question_timeout=..., submission_timeout=...)``; by default a
question gets start-up + 2 x ``cell_timeout`` + its cases' timeouts, a submission the sum of
its questions', so a batch takes at most submissions x that / ``--jobs``); it restarts the
child without the cell that hung or crashed (skipped for the rest of the submission) or the
case that did (scored 0), and computes every score itself. Child limits: RLIMIT_AS
(memory), RLIMIT_CPU, RLIMIT_FSIZE (output and written files), RLIMIT_NPROC = 0, no core
files, one BLAS thread.

``grade --isolation bwrap`` (the default; see :mod:`d2lcnn.grading.isolation`): each
SUBMISSION gets a fork server of its own inside bubblewrap: new PID, IPC, UTS, network and
mount namespaces, run as an unprivileged user of the host (``nobody`` when the grader is
root), that sees a read-only view of the Python environment and the ``d2lcnn`` package and
nothing else (not the checkout, the bundle, the output folder or other submissions), where
every module the assignment forbids is replaced by a stub raising ImportError. Each
QUESTION is a child of that server in further user, PID, mount and IPC namespaces: PID 1 of
its own PID namespace, an empty ``/proc``, a private scratch space (``/sandbox``, its cwd,
HOME and TMPDIR, also bound on ``/tmp``) capped in bytes (``scratch_mb``, default 64) and
in files (``scratch_files``, default 1024), no capabilities, ``no_new_privs``, a seccomp
filter; it is killed when the question ends, and its namespace with it. Spare
servers are started in the background (one per job) so the start-up with the preloads is
not on the critical path. ``--isolation process``: the same runner as plain processes of
the grader's user from one fork server per thread, for trusted code only (it warns).
Without bubblewrap ``grade`` refuses, saying how to install it (Debian/Ubuntu: ``apt-get
install bubblewrap``; Fedora: ``dnf install bubblewrap``).

The child also installs ``sys.addaudithook``, a second layer that gives readable messages:
it refuses importing the ``forbid`` modules and ``_posixsubprocess``/``multiprocessing``,
process creation, ``os.kill``, sockets, ``ctypes`` calls and raw memory access, heap walking
(``gc.get_objects`` etc.), writing outside the working directory, and (process mode) opening
the bundle, the output folder, other submissions and the files of forbidden modules.
``grade`` also notes forbidden imports found by a static AST scan.

Hidden cases can take inputs made in the grader (``inputs=``, see ``case``): the sandbox
gets the inputs, never what the checker keeps (e.g. held-out labels). A hidden probe's
``rng`` and an ``inputs=`` function's are seeded from the bundle's secret (``assign
--secret-file``, the course secret; by default random per build), a public probe's from the
assignment and case names only: reading the hidden tests' code tells the student what is
tested, not on which inputs.

Threat model
~~~~~~~~~~~~
Three layers, each defending what the others cannot:

* **The operating system (bwrap mode)** is the security boundary. A submission cannot
  reach, by any system call, a file that is not in its read-only view (the bundle, the
  expected outputs, the solution, hidden-test sources on disk, other submissions, the
  gradebook, the checkout); cannot see, signal or ptrace any process but itself (the
  grader, its threads, other students' sandboxes, its own fork server); cannot start a
  process or thread; has no network (not even the grader's loopback); cannot fill more than
  its capped scratch space; cannot load a forbidden module or reach one through a live
  object (it was never loaded); leaves nothing behind when its question ends. Tested with
  the audit hook switched off (``tests/grading/test_attacks.py``).
* **The protocol** trusts nothing that comes out: frames are read with a byte cap per frame
  and per question and a deadline, decoded only if they are stored ``.npy`` members of
  declared dtype and shape plus JSON within size, depth and node caps
  (:mod:`d2lcnn.grading.payload`). Whatever a submission sends, the grader holds at most
  about 100 MiB per grading job for it: the results of the question being scored (at most
  ``MAX_TOTAL`` = 64 MiB over all of its processes), one frame being read (16 MiB) and its
  decoded arrays (16 MiB); questions are scored one at a time. Checkers compare with
  expected outputs computed from the solution at ``assign`` time (or with data the grader
  kept), never with inputs returned by the probe. Text from the sandbox reaches notes and
  feedback only as grader-known words (a builtin exception's name, a line number within
  the cell, violations rebuilt from templates), so the probes' code and inputs cannot be
  smuggled out in messages.
* **The audit hook** turns the common mistakes (importing torch in a NumPy assignment,
  shelling out) into clear notes. It is not a boundary: code in the same interpreter can get
  around it, which is what the OS layer is for.

Out of scope: student code and probes share one process, so a student can read a hidden
probe's inputs while it runs and make it return anything; to score they still need the
right outputs, which never enter the sandbox. Bits can leave through scores and the public
cases' feedback (which shows values the student's code returned): a determined student
learns a few dozen bytes per submission, so cap resubmissions if hidden tests must stay
unknown. Copying the reference solution's text into a notebook (no plagiarism check here),
resource use below the limits, and kernel exploits (keep the grading machine patched) are
out of scope. ``--isolation process`` has only the protocol and the hook: use it for your
own and other trusted notebooks.

Outputs
-------
``grades.csv``: student, file, one column per question, total, max, notes (why anything
scored 0, broken/missing/edited cells, blocked actions). ``<student>/results.json``:
Gradescope's format (score, tests with name/score/max_score/output/visibility; hidden cases
``after_published`` with output "failed: wrong result" / "raised TypeError" / "timed out" /
"not attempted", never messages, values or code), ``extra_data`` with the notes, the per-question
scores and the hashes used to resume. ``<student>/feedback.md`` says the same for the student.
Files are written atomically; a submission whose ``results.json`` has the same submission
and bundle hashes is not regraded, so re-running is idempotent and an interrupted batch
resumes. Batches run ``--jobs`` submissions at once (threads; the work is in the sandbox
processes) with a progress bar.

Written questions (:mod:`d2lcnn.grading.written`, :mod:`d2lcnn.grading.manual`): ``grade``
collects each answer (matched like answer cells; a deleted cell or the untouched placeholder
is "no answer", 0 points), bounded (100,000 characters, 4 PNG images of 1 MiB each), and
writes ``manual/<assignment>-<question>.html`` (every student's answer to one question, after
the prompt, rubric and model answer; all student text escaped, images only as checked PNG
data, scripts and remote content forbidden by the page's Content-Security-Policy) and
``manual/scores.csv`` (student, question, max_points, points, comment; re-running keeps what
was entered). Until points are merged (``grade --merge-manual FILE``: every row checked
first, a bad one named with its line and nothing merged) an answered written question is
"pending" in ``grades.csv`` and ``feedback.md``, the ``status`` column and the feedback say
the total is provisional, and ``results.json`` counts the written points in ``max_score``
only. The platforms (Gradescope, PrairieLearn) get no automatic points for written
questions: their score and maximum leave them out and their output says they are graded by
hand there.

Modules
-------
Shared by ``assign`` and ``grade``: ``bundle_format`` (the bundle's files, settings, loading
the tests code, ``write_atomic``) and ``cells`` (role tags, the template of the student
notebook, which cells the sandbox runs). ``authoring``: ``parse`` and ``assign``.
``written`` and ``manual``: written questions (collected answers, pages, scores, merge).
``grade``: batches (``grade_batch``), re-exporting the rest of the grader: ``bundle``
(``Bundle``: a loaded bundle running a submission's questions in sandboxes; the isolation
mode), ``scoring`` (``grade_file``, ``grade_notebook``, ``score_case``), ``submissions``
(finding and reading files, student ids) and ``report`` (``results.json``, ``feedback.md``,
``grades.csv``). The sandbox: ``sandbox`` (the grader's side: fork servers, deadlines,
restarts), ``_runner`` (the child's side), ``isolation`` (bubblewrap, namespaces, seccomp)
and ``payload`` (the wire format). ``api`` and ``checks``: what tests cells see;
``student``: ``Checker``. Course scale: ``platforms`` (``assign --gradescope
--prairielearn``: the autograder zip, the PrairieLearn question and grading image) and
``platform_run`` (what their scripts run per submission: the same ``grade_file``, one
notebook, the platform's ``results.json``; in ``process`` isolation the grader drops to
``nobody`` before student code runs). Imports go one way, ``authoring`` -> ``scoring``
-> ``bundle`` -> ``sandbox`` -> ``_runner``/``isolation``/``payload``, with no cycle
(``tests/grading/test_layout.py`` checks it).
'''

from d2lcnn.grading.student import Checker

__all__ = ["Checker"]
