"""Executing notebooks in place: deterministic, and failures are reported, not swallowed."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

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
