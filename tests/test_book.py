"""Executing notebooks in place: deterministic, one thread, quiet, timed against a budget, and
failures are reported, not swallowed; the rendered book hides cell tags and wraps outputs."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import zmq
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from d2lcnn import book


def _write(path, *sources):
    nb = new_notebook(cells=[new_markdown_cell("# Title")] + [new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    nbformat.write(nb, path)


def test_execute_is_deterministic_and_strips_timing(tmp_path):
    path = tmp_path / "nb.ipynb"
    _write(path, "import numpy as np\nprint(np.random.default_rng(0).integers(10, size=3))",
           "{'a', 'b', 'c'}")
    assert book.execute_notebook(path) is True
    first = path.read_bytes()
    assert book.execute_notebook(path) is False
    assert path.read_bytes() == first
    nb = nbformat.read(path, as_version=4)
    assert [c.execution_count for c in nb.cells[1:]] == [1, 2]
    assert all("execution" not in c.metadata for c in nb.cells)
    assert "version" not in nb.metadata.language_info
    assert nb.cells[1].outputs[0].text.strip() == "[8 6 5]"


def test_stream_output_is_merged_whatever_the_flush_timing(tmp_path):
    path = tmp_path / "nb.ipynb"
    _write(path, "import sys, time\nprint('a', flush=True)\ntime.sleep(0.3)\nprint('b')")
    book.execute_notebook(path)
    outputs = nbformat.read(path, as_version=4).cells[1].outputs
    assert [(o.output_type, o.text) for o in outputs] == [("stream", "a\nb\n")]


def test_failing_notebook_is_left_untouched_and_cli_reports_all(tmp_path, capsys):
    bad, good = tmp_path / "bad.ipynb", tmp_path / "good.ipynb"
    _write(bad, "raise RuntimeError('boom')")
    _write(good, "print(1 + 1)")
    before = bad.read_bytes()
    with pytest.raises(Exception, match="boom"):
        book.execute_notebook(bad)
    assert bad.read_bytes() == before
    assert book.main(["execute", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "bad.ipynb" in err
    assert nbformat.read(good, as_version=4).cells[1].outputs[0].text == "2\n"
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        book.execute_notebook(tmp_path / "missing.ipynb")


def test_kernel_uses_one_thread_and_does_not_warn_about_tcp(tmp_path, capfd):
    path = tmp_path / "nb.ipynb"
    _write(path, "import os, torch\nprint(*(os.environ[v] for v in "
                 "('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS')), "
                 "torch.get_num_threads())")
    book.execute_notebook(path)
    assert nbformat.read(path, as_version=4).cells[1].outputs[0].text == "1 1 1 1\n"
    if zmq.has("curve"):  # the kernel's own stderr is this process's: the warning would be here
        assert "without encryption" not in capfd.readouterr().err


def test_cli_prints_each_time_with_its_budget_and_warns_over_budget(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    _write(path, "print(1)")
    assert book.main(["execute", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"budget {book.BUDGET_SECONDS} s)" in out and "WARNING" not in err
    assert book.main(["execute", str(path), "--budget", "0"]) == 0  # a warning, not a failure
    out, err = capsys.readouterr()
    assert "unchanged" in out and "budget 0 s)" in out
    assert "WARNING" in err and "over its 0 s budget" in err and "nb.ipynb" in err


def test_rendered_book_hides_cell_tags_and_wraps_long_output_lines(tmp_path):
    """A one-page book with the real _config.yml and _static: the nbval tag is only a CSS
    class, and the style sheet that wraps outputs is linked from the page."""
    notebooks = Path(book.__file__).resolve().parents[1] / "notebooks"
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(notebooks / "_config.yml", src)
    shutil.copytree(notebooks / "_static", src / "_static")
    (src / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: ch\n")
    (src / "intro.md").write_text("# Intro\n")
    cell = new_code_cell("print('x' * 300)", metadata={"tags": ["nbval-ignore-output"]},
                         execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text="x" * 300 + "\n")]
    nb = new_notebook(cells=[new_markdown_cell("# Chapter"), cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, src / "ch.ipynb")
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "jupyter-book", "config", "sphinx", src], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                    "-d", tmp_path / "doctrees", src, tmp_path / "html"], check=True)
    page = (tmp_path / "html" / "ch.html").read_text()
    assert "tag_nbval-ignore-output" in page  # the tag reached the page, as a class only
    text = re.sub(r"<[^>]*>", "", page)
    assert "nbval-ignore-output" not in text and "NBVAL" not in text
    assert 'href="_static/d2lcnn.css' in page
    assert "pre-wrap" in (tmp_path / "html" / "_static" / "d2lcnn.css").read_text()


def _mini_book(tmp_path):
    """A copy of the real _config.yml and two small chapters (as .py and executed .ipynb)."""
    import jupytext

    shutil.copy(Path(book.__file__).parents[1] / "notebooks" / "_config.yml", tmp_path)
    for name, code in [("01-a", "x = 1\nprint(x)"), ("02-b", "print('b')")]:
        nb = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell(code)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        jupytext.write(nb, tmp_path / f"{name}.py", fmt="py:percent")
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        book.execute_notebook(tmp_path / f"{name}.ipynb")
    return tmp_path


def test_set_repository_writes_one_address_everywhere_and_keeps_outputs(tmp_path):
    import jupytext

    root = _mini_book(tmp_path)
    url = "https://github.com/someone/d2lcnn"
    changed = book.set_repository(url, root)
    assert len(changed) == 5  # the config and both files of both chapters
    assert book.repository_url(root / "_config.yml") == url
    config = (root / "_config.yml").read_text()
    assert 'binderhub_url: "https://mybinder.org"' in config
    assert 'colab_url: "https://colab.research.google.com"' in config
    for name in ["01-a", "02-b"]:
        for nb in [jupytext.read(root / f"{name}.py"), nbformat.read(root / f"{name}.ipynb", 4)]:
            code = [c for c in nb.cells if c.cell_type == "code"]
            assert len(code) == 2 and code[0].source == book.install_cell_source(url)
            assert code[0].metadata["tags"] == ["remove-cell"]
        stored = nbformat.read(root / f"{name}.ipynb", 4).cells[2].outputs
        assert stored and stored[0]["text"] in ("1\n", "b\n")  # outputs kept
    assert book.set_repository(url, root) == []  # idempotent: the cell is replaced, not added
    # Another address replaces it; a non-GitHub one turns the launch buttons off.
    other = "https://gitlab.com/someone/d2lcnn"
    book.set_repository(other, root)
    assert jupytext.read(root / "01-a.py").cells[1].source == book.install_cell_source(other)
    assert 'binderhub_url: ""' in (root / "_config.yml").read_text()
    # The book still executes with the cell in it (d2lcnn is installed: the cell is silent).
    assert book.execute_notebook(root / "01-a.ipynb") is True  # renumbered
    cells = nbformat.read(root / "01-a.ipynb", 4).cells
    assert cells[1].outputs == [] and cells[2].execution_count == 2


@pytest.mark.parametrize("url", ["http://github.com/a/b", "https://github.com/a/b.git",
                                 "https://github.com/a/b/", "https://x/a b", "github.com/a/b"])
def test_set_repository_rejects_what_pip_or_the_buttons_cannot_use(tmp_path, url):
    root = _mini_book(tmp_path)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    with pytest.raises(ValueError, match="set_repository: url must be"):
        book.set_repository(url, root)
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
    assert book.main(["set-repository", url, "--book", str(root)]) == 2


def test_install_cell_installs_only_when_the_package_is_missing(monkeypatch, capsys):
    import importlib.util

    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda args: calls.append(args))
    exec(book.install_cell_source("https://github.com/someone/d2lcnn"), {})
    assert calls == [] and capsys.readouterr().out == ""  # installed: silent, nothing run

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    exec(book.install_cell_source("https://github.com/someone/d2lcnn"), {})
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet",
                      "d2lcnn @ git+https://github.com/someone/d2lcnn"]]
    assert "Installing d2lcnn from https://github.com/someone/d2lcnn" in capsys.readouterr().out
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e \."):
        exec(book.install_cell_source(""), {})
