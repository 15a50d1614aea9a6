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

``python -m d2lcnn.book set-repository URL`` records the book's public git address, the one
setting Colab and Binder need: in ``notebooks/_config.yml`` (``repository.url``, which also turns
on the HTML book's Binder and Colab launch buttons for a GitHub address) and in the install
cell every chapter starts with (:func:`install_cell_source`), which installs ``d2lcnn`` from
that address when it is missing (Colab) and does nothing where it is installed. Until it is
set, the address is empty and nothing links to an invented place.

Chapters fix their own random seeds; this module cannot make an unseeded notebook
deterministic. Each chapter's time is printed with the budget it should stay within
(``BUDGET_SECONDS``, also stated in the book's introduction); a slower chapter gets a warning,
not a failure, since machines differ. The kernel talks to this process over CurveZMQ-encrypted
sockets where pyzmq supports it (ipykernel warns about plain TCP otherwise). Needs the ``dev``
extra (nbclient, nbformat, ipykernel).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

__all__ = ["execute_notebook", "install_cell_source", "main", "repository_url", "set_repository"]

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


#: First line of every chapter's install cell: how set_repository finds the cell.
INSTALL_MARKER = "# Colab, Binder or a fresh Python: install the book's package if it is missing."
#: The cell's tags: the HTML book, which runs nothing, does not show it.
INSTALL_TAGS = ["remove-cell"]
_URL_LINE = re.compile(r'^(  url: )"[^"\n]*"(.*)$', re.MULTILINE)
_LAUNCH_LINE = re.compile(r'^(  (binderhub_url|colab_url): )"[^"\n]*"(.*)$', re.MULTILINE)
_LAUNCH_SITES = {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"}


def install_cell_source(url: str) -> str:
    """The source of the install cell that opens every chapter, for repository ``url``.

    Where ``d2lcnn`` is importable (``make book``, ``make lab``, Binder) the cell does
    nothing and prints nothing, so nbval and the stored outputs are unaffected. On Colab it
    installs the package and its pinned dependencies from ``url`` with pip.
    """
    return f"""{INSTALL_MARKER}
# Where d2lcnn is installed (make book, make lab, Binder) this cell does nothing.
import importlib.util
import subprocess
import sys

# The book's address, the same in every chapter (python -m d2lcnn.book set-repository URL).
REPOSITORY = "{url}"
if importlib.util.find_spec("d2lcnn") is None:
    if not REPOSITORY:
        raise ModuleNotFoundError(
            "d2lcnn is not installed, and this copy of the book does not know its repository: "
            "install it from a checkout with `pip install -e .` (see the README)"
        )
    print(f"Installing d2lcnn from {{REPOSITORY}} (a few minutes the first time)...")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                           f"d2lcnn @ git+{{REPOSITORY}}"])"""


def repository_url(config: str | os.PathLike) -> str:
    """The ``repository.url`` of a jupyter-book ``_config.yml`` ("" when unset)."""
    match = _URL_LINE.search(Path(config).read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{config}: no `  url: \"...\"` line under `repository:`")
    return match.group(0).split('"')[1]


def _check_url(url: str) -> None:
    if url == "":  # unset: the install cells explain, and no launch buttons are shown
        return
    if not re.fullmatch(r"https://[^\s\"'{}\\]+", url) or url.endswith((".git", "/")):
        raise ValueError(
            f"set_repository: url must be the repository's https address without a trailing "
            f"'/' or '.git' (e.g. https://github.com/<owner>/d2lcnn), got {url!r}"
        )


def _set_install_cell(cells: list, source: str, make_cell) -> None:
    """Replace the install cell (the first code cell when it starts with the marker), or
    insert one before the first code cell."""
    first = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    text = cells[first]["source"]
    text = "".join(text) if isinstance(text, list) else text
    if text.startswith(INSTALL_MARKER):
        cells[first]["source"] = source
    else:
        cells.insert(first, make_cell(source))


def set_repository(url: str, book: str | os.PathLike = "notebooks") -> list[Path]:
    """Record ``url`` as the book's repository everywhere it is needed ("" unsets it);
    return the files changed. ``book`` is the folder with ``_config.yml`` and the chapters
    (``NN-*.py`` and ``.ipynb``). The install cell is replaced, or inserted before a chapter's
    first code cell.
    """
    import jupytext
    import nbformat

    _check_url(url)
    book = Path(book)
    config = book / "_config.yml"
    text = config.read_text(encoding="utf-8")
    repository_url(config)  # fails clearly if the line is missing
    new = _URL_LINE.sub(lambda m: f'{m.group(1)}"{url}"{m.group(2)}', text, count=1)
    # Binder and Colab launch buttons need a GitHub address (sphinx-book-theme's rule).
    github = url.startswith("https://github.com/")
    new = _LAUNCH_LINE.sub(
        lambda m: f'{m.group(1)}"{_LAUNCH_SITES[m.group(2)] if github else ""}"{m.group(3)}', new
    )
    changed = []
    if new != text:
        config.write_text(new, encoding="utf-8")
        changed.append(config)
    source = install_cell_source(url)
    for py in sorted(book.glob("[0-9][0-9]-*.py")):
        before = py.read_text(encoding="utf-8")
        nb = jupytext.reads(before, fmt="py:percent")
        _set_install_cell(nb.cells, source, lambda s: nbformat.v4.new_code_cell(
            s, metadata={"tags": list(INSTALL_TAGS)}))
        after = jupytext.writes(nb, fmt="py:percent")
        if after != before:
            py.write_text(after, encoding="utf-8")
            changed.append(py)
        ipynb = py.with_suffix(".ipynb")
        if ipynb.exists():  # edited as JSON: the stored outputs stay as they are
            before = ipynb.read_text(encoding="utf-8")
            data = json.loads(before)
            _set_install_cell(data["cells"], source, lambda s: {
                "cell_type": "code", "execution_count": None, "id": "install-d2lcnn",
                "metadata": {"tags": list(INSTALL_TAGS)}, "outputs": [], "source": s})
            after = nbformat.writes(nbformat.reads(json.dumps(data), as_version=4)) + "\n"
            if after != before:
                ipynb.write_text(after, encoding="utf-8")
                changed.append(ipynb)
    return changed


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
    repo = sub.add_parser(
        "set-repository",
        help="record the book's public git address (Colab install cells, launch buttons)",
        description="Write URL into notebooks/_config.yml (repository.url; Binder and Colab "
        "launch buttons for a GitHub address) and into the install cell of every chapter "
        "(.py and .ipynb, outputs kept). Run `make book` afterwards to renumber the cells.",
    )
    repo.add_argument("url", help='e.g. https://github.com/<owner>/d2lcnn ("" to unset)')
    repo.add_argument("--book", type=Path, default=Path("notebooks"),
                      help="the book's folder (default: notebooks)")
    args = parser.parse_args(argv)
    if args.command == "set-repository":
        try:
            changed = set_repository(args.url, args.book)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for path in changed:
            print(f"updated   {path}")
        print(f"{len(changed)} file(s) changed; the repository is {args.url or 'unset'}")
        return 0
    return _execute_all(args)


def _execute_all(args: argparse.Namespace) -> int:
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
