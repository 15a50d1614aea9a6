"""The project's own promises: one dependency list, paired and executed notebooks, a book
table of contents that matches the chapters, and no dependence on files outside the repo."""

import re
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from d2lcnn import book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_pyproject_and_nothing_else():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    # The same install as the Makefile's, in the editable mode that cannot be shadowed by a
    # checkout folder named d2lcnn in the working directory (README, "Two commands").
    make_mode = re.search(r"^EDITABLE_MODE := (\w+)$", (ROOT / "Makefile").read_text(), re.M)
    expected = f"-e .[dev] --config-settings editable_mode={make_mode.group(1)}"
    assert pip_sections == [[expected]], f"environment.yml must install exactly `{expected}`"
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda_deps) == ["pip", "python"]
    (python,) = [d for d in conda_deps if d.startswith("python")]
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[-1].split("."))) >= tuple(map(int, minimum.split(".")))
    assert set(PYPROJECT["project"]["optional-dependencies"]) == {"dev"}


def test_every_dependency_is_bounded_and_torch_is_pinned():
    project = PYPROJECT["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    for dep in deps:
        assert "==" in dep or "<" in dep, f"{dep!r} has no upper bound: installs would rot"
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN-title.py chapters found"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_pair_is_in_sync_and_executed(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `make book`"
    text_nb = jupytext.read(source)
    nb = nbformat.read(ipynb, as_version=4)
    text_cells = [(c.cell_type, c.source) for c in text_nb.cells]
    nb_cells = [(c.cell_type, c.source) for c in nb.cells]
    assert text_cells == nb_cells, f"{source.name} and {ipynb.name} differ: run `make book`"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{ipynb.name} is not freshly executed top to bottom: run `make book`"
    )
    for cell in code:
        assert "execution" not in cell.metadata, "execution timestamps make outputs differ"
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        assert "NBVAL_SKIP" not in cell.source, "skipped cells are not validated"
    assert "version" not in nb.metadata.get("language_info", {})
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_chapter_starts_with_its_title():
    for source in CHAPTERS:
        first = jupytext.read(source).cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# "), source.name


def test_table_of_contents_lists_every_chapter_in_order():
    toc = yaml.safe_load((NOTEBOOKS / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files == [p.stem for p in CHAPTERS]
    assert (NOTEBOOKS / f"{toc['root']}.md").exists()


def test_project_does_not_read_outside_files():
    pattern = re.compile(r"\.\./shared|shared/data|/work/")
    for path in [*ROOT.glob("d2lcnn/**/*.py"), *ROOT.glob("notebooks/*.py"),
                 *ROOT.glob("benchmarks/*.py"), ROOT / "Makefile", ROOT / ".ci" / "run"]:
        assert not pattern.search(path.read_text()), f"{path} refers to a path outside the repo"


def test_readme_and_ci_show_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


#: How every chapter pins its threads, in its first code cell. `make book`'s executor also sets
#: OMP_NUM_THREADS=1 and friends for the kernel; this line makes nbval and JupyterLab agree.
THREAD_PIN = "torch.set_num_threads(1)"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_pins_torch_to_one_thread_in_its_first_code_cell(source):
    """The first code cell after the install cell (tests/test_chapter_form.py), i.e. the
    imports cell."""
    code = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    code = code[1:] if code[0].startswith(book.INSTALL_MARKER) else code
    statements = [line.split("#")[0].strip() for line in code[0].splitlines()]
    assert THREAD_PIN in statements, (
        f"{source.name}: its first code cell must call `{THREAD_PIN}` as the other chapters "
        "do (under CPU contention an unpinned chapter ran 15x slower)"
    )
    elsewhere = [s for s in code[1:] if re.search(r"set_num_threads|_NUM_THREADS", s)]
    assert not elsewhere, f"{source.name} changes its threads again later: {elsewhere}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_uses_cell_tags_not_nbval_comments(source):
    """nbval markers are cell tags (`nbval-ignore-output`), which the HTML does not show;
    `# NBVAL_IGNORE_OUTPUT` comments would be read by every reader."""
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*#\s*NBVAL_", cell.source, re.MULTILINE), cell.source
