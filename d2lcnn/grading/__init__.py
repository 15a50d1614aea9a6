'''Autograded homework: authoring, the student's self-check, and a sandboxed grader.

Workflow::

    python -m d2lcnn.grading assign notebooks/homework/hw1-convolution.py --out build/hw1
    #  -> build/hw1/student/hw1-convolution.ipynb  +  hw1-convolution.public.npz   (hand out)
    #  -> build/hw1/autograder/{bundle.json, expected.npz, solution.ipynb}       (keep private)
    python -m d2lcnn.grading grade build/hw1/autograder submissions/ --out grades/hw1 --jobs 4
    #  -> grades/hw1/grades.csv, grades/hw1/<student>/{results.json, feedback.md}

Authoring format (stable; hw2-hw4 use it too)
----------------------------------------------
A source is a jupytext ``py:percent`` notebook WITH solutions, ``notebooks/homework/hwN-name.py``;
the assignment id is the file stem. Cells are classified by their tags (one role tag each):

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

        @case("q2", "stride 2, pad 1", points=2, hint="H_out = (H + 2P - K) // S + 1")
        def _(ns, rng):                       # ns: the student's globals, as attributes
            x = rng.standard_normal((2, 3, 7, 7))       # rng: np.random.Generator, seeded per
            w = rng.standard_normal((4, 3, 3, 3))       # case (stable across machines)
            out, _ = ns.conv_forward_naive(x, w, np.zeros(4), stride=2, pad=1)
            return out                                  # plain data only

    A tests cell sees ``case``, ``np`` and ``checks`` and must import anything else it uses
    (``import torch``); all tests cells share one namespace, public cells first, so hidden
    cells may use public helpers. In the sandbox they run after the student's cells, under
    the same audit hook. Options: ``points`` (default 1), ``hint``, ``timeout`` (seconds,
    default the assignment's ``case_timeout``), ``checker``. The probe runs INSIDE the
    sandbox and returns plain data (numbers, strings, None, lists/tuples, str-keyed dicts,
    numeric/bool/str NumPy arrays); to test that an answer refuses bad input, return
    ``checks.raised(lambda: ns.f(bad))`` (the exception's name, or ``"no error"``).
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
    never enter the sandbox) and the settings::

        settings(forbid=["torch", "d2lcnn.numpy"], case_timeout=10, cell_timeout=60,
                 memory_mb=2048, output_kb=1024, cpu_seconds=None, preload=[])

    ``forbid``: module prefixes whose import is refused. ``cpu_seconds``: RLIMIT_CPU per
    process (default: startup + cell and case timeouts). ``preload``: modules imported in the
    sandbox before the audit hook (and before forking, see below), for speed; a forbidden
    module is still dropped from ``sys.modules``, but names a preloaded PARENT package
    re-exports from it (``from d2lcnn.numpy import SGD``) stay reachable, so never preload a
    package whose re-exports include the answer.

``demo``
    Code the student runs to try their answers (a gradient check, training on a validation
    split): copied to the student notebook, never run by the grader, so an expensive or
    broken experiment costs nothing at grading time. Students may tag their own cells so.

Every other cell (markdown, untagged code) is copied to the student notebook unchanged.
``assign`` FAILS on: malformed/misplaced/unbalanced markers, an answer cell without cases or
cases without an answer cell, duplicate answer cells, a check cell without ``check("qN")``,
tests that fail to load, any solution line or hidden-test/autograder line found in the files
it WROTE to ``student/`` (read back from disk), a solution that fails a case in the sandbox,
or a solution that does not get full marks when graded like a submission.

Student side
------------
The student notebook runs top to bottom as handed out (``check`` prints "not attempted").
``check("q1")`` runs the public cases in the kernel and prints pass/fail per case with
expected vs got (shape, first differing value) and the hint. ``submit()`` reads the SAVED
notebook and writes ``<id>.submission.ipynb`` with metadata (assignment id, source hash,
timestamp). Any ``.ipynb`` can be graded; missing metadata is only a note.

Grading and the sandbox
-----------------------
Per submission and per QUESTION, a fresh sandbox process in a fresh temporary directory
runs every code cell except setup/check cells, in order, each in
``try/except BaseException`` (an error is recorded and the rest go on; IPython magics are
dropped), then that question's probes, each result streamed to the parent as one frame of
JSON+npz bytes (never pickle) over a pipe. The parent enforces a wall-clock timeout per
cell and per case (killing the process group), restarts the child without the cell that
hung/crashed (skipped for the rest of the submission) or the case that did (scored 0), and
computes every score itself. Child limits: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE (the
captured output and any written file), RLIMIT_NPROC=0, no core files; one BLAS thread.

The process comes from a fork server (:class:`~d2lcnn.grading.sandbox.ZygoteLauncher`, one
per grading thread): a ``python -I`` interpreter that has imported NumPy, the runner and the
assignment's ``preload`` modules and nothing else, and forks a child per question; the child
starts a new session, moves to its directory, reads and deletes its job file, then sets its
limits and audit hook before any student code runs. Measured on 2 CPUs (hw1, 5 questions):
about 0.4 s of overhead per submission, against about 2 s for a fresh interpreter per
question (``D2LCNN_GRADING_SANDBOX=spawn`` selects that, e.g. to rule the fork server out).

The child installs ``sys.addaudithook`` (cannot be removed) that refuses: importing the
assignment's ``forbid`` modules (loaded ones are dropped from ``sys.modules`` first) and
``_posixsubprocess``/``multiprocessing``; process creation (``os.fork``, ``os.system``,
``os.exec*``, ``os.posix_spawn``, ``subprocess.Popen``; ``_posixsubprocess.fork_exec``,
which has no audit event, is replaced before the hook), ``os.kill``, sockets, ``ctypes``
calls and raw memory access (numpy has already imported ctypes; loading an INSTALLED shared
library is allowed because torch does it on import, loading one from the working directory
is not), heap walking (``gc.get_objects`` etc.), writing, deleting or renaming outside the
temporary directory, and opening the bundle, the output folder, the other submissions,
``/proc/<grader pid>`` and the FILES of forbidden modules (``importlib.import_module`` skips
the import audit event, but loading a module opens its source or bytecode; this also stops
copying the reference source at run time). ``grade`` also notes forbidden imports found by a
static AST scan.

Threat model (honest)
~~~~~~~~~~~~~~~~~~~~~
Defended: patching numpy/builtins/the grader module inside the child (the comparison runs in
the parent on data, with the parent's numpy); printing a fake score (output is never parsed);
``sys.exit``/``os._exit``/segfaults/``SIGXCPU`` (cost the cell or case running, nothing
more); infinite loops and slow code (timeouts); memory bombs (MemoryError or a kill); huge
output (write fails beyond ``output_kb``); forking, shelling out, killing the grader; writing
the results or bundle; importing the reference implementation or torch; one question's
crash affecting another (separate processes); one student affecting another (separate
processes, per-process temporary directories, results written only by the parent).

NOT defended: student code and probes share the child process, so a determined student can
inspect a probe while it runs and learn a hidden case's INPUTS (never its expected output,
which never enters the child) or make a probe return values of their choosing; to score they
still have to produce the right outputs. Copying the reference implementation's source text
(pasted into the notebook; the static scan does not look for that), resource use below the
limits, and anything needing a kernel exploit are out of scope. The audit hook is Python-level:
native code could bypass it, so the submission may not load a library it wrote, call through
ctypes, or start a compiler (no processes). A preloaded package that itself depends on a
forbidden one (scikit-learn on scipy) breaks once that one is removed: forbid narrowly
(``scipy.signal``), and remember that other ALLOWED modules keep names they imported from a
forbidden one. Memory-unsafe NumPy (``as_strided`` with forged strides) can corrupt the
child's own memory, hook included; after that, the child runs as the grader's user. Scores
still come from the parent, but such a child could reach files that user can write.
RLIMIT_NPROC does not bind root; the audit hook is what blocks forking there. So for
hostile classes, run the grader in a container or VM as an unprivileged user without
network, with the bundle read-only: this module is the second line, not the only one.

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
'''

from d2lcnn.grading.student import Checker

__all__ = ["Checker"]
