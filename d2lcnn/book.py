"""Execute the book's notebooks in place, deterministically.

``make book`` calls ``python -m d2lcnn.book execute notebooks/NN-*.ipynb``. Each notebook
runs top to bottom in a fresh kernel of the current Python environment, with its own folder
as the working directory. The result is written back only if it differs, and it is made
reproducible so re-running leaves the file byte-identical:

- no execution timestamps (``record_timing=False``, and stale ``execution`` metadata removed);
- a fixed ``PYTHONHASHSEED`` and ``SOURCE_DATE_EPOCH`` in the kernel's environment;
- one thread for torch and the BLAS libraries (``OMP_NUM_THREADS=1`` and friends): the
  chapters' models are tiny, and several threads fighting over a busy machine's cores made
  a 34 s chapter take nine minutes. Each chapter also calls ``torch.set_num_threads(1)`` in
  its first cell, so nbval and JupyterLab run it the same way;
- consecutive ``print`` output merged into one stream per cell (chunking depends on timing);
- ``execution_count`` numbered 1, 2, ... as a fresh kernel does;
- no interpreter version in the metadata (it differs between machines).

Chapters fix their own random seeds; this module cannot make an unseeded notebook
deterministic. Each chapter's time is printed with the budget it should stay within
(``BUDGET_SECONDS``, also stated in the book's introduction); a slower chapter gets a warning,
not a failure, since machines differ. The kernel talks to this process over CurveZMQ-encrypted
sockets where pyzmq supports it (ipykernel warns about plain TCP otherwise). Needs the ``dev``
extra (nbclient, nbformat, ipykernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["execute_notebook", "main"]

#: Environment given to the kernel: hash ordering and embedded dates do not vary, and torch,
#: OpenMP and the BLAS libraries (MKL, OpenBLAS, Apple's Accelerate) use one thread.
KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "SOURCE_DATE_EPOCH": "0",
    "OMP_NUM_THREADS": "1",  # also torch's default number of threads
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}

#: Seconds a chapter should take on a 2-core CPU; a slower one is reported, not failed.
BUDGET_SECONDS = 60


def execute_notebook(path: str | os.PathLike, *, timeout: int = 600) -> bool:
    """Execute the notebook at ``path`` in place. Returns True if the file changed.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        nbclient.exceptions.CellExecutionError: if a cell raises; the file is left untouched.
    """
    import nbclient
    import nbformat
    import zmq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"execute_notebook: no notebook at {path}")
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    env = {**os.environ, **KERNEL_ENV}
    env.pop("MPLBACKEND", None)  # figures must go to the inline backend, not a file backend
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
        record_timing=False,
        # How stdout is split into chunks depends on flush timing; merged, it does not.
        coalesce_streams=True,
    )
    # Both are passed through to the kernel manager's start_kernel. "auto" provisions CurveZMQ
    # keys if the kernelspec declares support (ipykernel's does), so the kernel does not warn
    # that it runs over TCP without encryption; pyzmq built without libsodium cannot do it.
    client.execute(env=env, transport_encryption="auto" if zmq.has("curve") else "disabled")
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    # The exact interpreter version would make the file differ between machines.
    nb.metadata.get("language_info", {}).pop("version", None)
    after = nbformat.writes(nb)
    after += "" if after.endswith("\n") else "\n"  # as nbformat.write does
    if after == before:
        return False
    path.write_text(after, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m d2lcnn.book", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks in place")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    run.add_argument(
        "--budget", type=float, default=BUDGET_SECONDS,
        help=f"seconds per notebook before a warning (default {BUDGET_SECONDS})",
    )
    args = parser.parse_args(argv)

    failed, over = [], []
    for nb in args.notebooks:
        start = time.perf_counter()
        try:
            changed = execute_notebook(nb, timeout=args.timeout)
        except Exception as exc:  # report every failing chapter, not just the first
            failed.append(nb)
            print(f"FAILED  {nb}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - start
        state = "updated" if changed else "unchanged"
        print(f"{state:9s} {nb}  ({seconds:.1f} s, budget {args.budget:g} s)", flush=True)
        if seconds > args.budget:
            over.append(nb)
            print(
                f"WARNING   {nb} took {seconds:.1f} s, over its {args.budget:g} s budget: "
                "is the machine busy, or has the chapter grown?",
                file=sys.stderr, flush=True,
            )
    if over:
        print(f"{len(over)} notebook(s) over budget: {', '.join(map(str, over))}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
