"""What every chapter must have (../CHAPTERS in the README, "Reading the book"): learning
goals and prerequisites at the top, the Colab install cell, links between chapters, a figure,
and a references list that holds every paper the prose cites, each with a link."""

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from d2lcnn import book

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))
# "He", "LeCun", "Van Essen", "Krähenbühl": 1-2 words, an upper-case letter, then letters
SURNAME = r"[^\W\d_a-z](?:[^\W\d_]|['\-])+(?: [^\W\d_a-z](?:[^\W\d_]|['\-])+)?"
#: "He et al. (2016)", "Glorot and Bengio (2010)", "(He et al., 2016)", "(Glorot & Bengio, 2010)"
CITATION = re.compile(
    rf"\b(?P<name>{SURNAME})(?: et al\.| (?:and|&) {SURNAME})"
    r"(?: \((?P<year>\d{4})[a-z]?\)|, (?P<year2>\d{4})[a-z]?[);])"
)
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def _markdown(source):
    return [c.source for c in jupytext.read(source).cells if c.cell_type == "markdown"]


def _references(source):
    """The bullets of the chapter's last markdown cell, which must be its references."""
    last = _markdown(source)[-1]
    assert last.startswith("## References"), (
        f"{source.name}: the last markdown cell must be `## References`, found {last[:40]!r}")
    entries = []
    for line in last.splitlines():
        if line.startswith("- "):
            entries.append(line[2:])
        elif line.startswith("  ") and entries:  # a bullet's continuation line
            entries[-1] += " " + line.strip()
    return entries


def citations(text):
    """(first author's surname, year) of every author-year citation in ``text``."""
    return {(m["name"].split()[-1], m["year"] or m["year2"]) for m in CITATION.finditer(text)}


def test_citation_pattern_finds_the_forms_the_book_uses():
    text = ("As He et al. (2016) showed, and Glorot and Bengio (2010) before them "
            "(Ioffe & Szegedy, 2015; see also Krizhevsky et al., 2012), ... ImageNet (2009) "
            "and LeNet-5 (1998) are not citations; nor is chapter 5 (2020 words).")
    assert citations(text) == {("He", "2016"), ("Glorot", "2010"), ("Ioffe", "2015"),
                               ("Krizhevsky", "2012")}


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_learning_goals_and_linked_prerequisites(source):
    first = _markdown(source)[0]
    goals = re.search(r"\*\*Learning goals\.\*\*[^\n]*\n\n((?:- .+\n(?:  .+\n)*)+)", first + "\n")
    assert goals, f"{source.name}: the first cell needs **Learning goals.** and a bullet list"
    assert 2 <= len(re.findall(r"^- ", goals.group(1), re.M)) <= 4, goals.group(1)
    prereq = re.search(r"\*\*Prerequisites:\*\*(.+(?:\n.+)*)", first)
    assert prereq, f"{source.name}: the first cell needs a **Prerequisites:** line"
    number = int(source.name[:2])
    for target in LINK.findall(prereq.group(1)):
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", target), target
        assert (NOTEBOOKS / target).exists() and int(target[:2]) < number, target
    if number > 1:
        assert LINK.search(prereq.group(1)), f"{source.name}: link the earlier chapters"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_references_have_links_and_hold_every_citation(source):
    entries = _references(source)
    assert entries, f"{source.name}: the references list is empty"
    listed = set()
    for entry in entries:
        match = re.match(rf"(?P<name>{SURNAME}), .*?\((?P<year>\d{{4}})[a-z]?\)", entry)
        assert match, f"{source.name}: reference must read 'Surname, I., ... (Year). ...': {entry}"
        assert re.search(r"\]\(https://[^)\s]+\)", entry), f"{source.name}: no link in {entry}"
        listed.add((match["name"].split()[-1], match["year"]))
    prose = "\n".join(_markdown(source)[:-1])
    missing = citations(prose) - listed
    assert not missing, f"{source.name}: cited but not in its references: {sorted(missing)}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_other_chapters_are_named_by_a_link(source):
    """'chapter 5' in prose is a link to 05-*.ipynb or follows one, as in
    `[BatchNorm](05-normalization.ipynb) (chapter 5)`."""
    number = int(source.name[:2])
    for text in _markdown(source):
        for m in re.finditer(r"\b[Cc]hapters? (\d+)", text):
            n = int(m.group(1))
            if n == number:
                continue
            window = text[max(0, m.start() - 200):m.end() + 60]
            assert re.search(rf"\]\({n:02d}-[a-z0-9-]+\.ipynb\)", window), (
                f"{source.name}: '{m.group(0)}' is not a link: write "
                f"[chapter {n}]({n:02d}-....ipynb) (...{text[max(0, m.start() - 60):m.end()]!r})")
    for text in _markdown(source):
        for target in LINK.findall(text):
            if re.fullmatch(r"\d\d-[^/]+\.ipynb(#.*)?", target):
                assert (NOTEBOOKS / target.split("#")[0]).exists(), f"broken link {target}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_a_figure(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{source.name} shows no figure"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_the_install_cell_for_the_configured_repository(source):
    url = book.repository_url(NOTEBOOKS / "_config.yml")
    for nb in (jupytext.read(source), nbformat.read(source.with_suffix(".ipynb"), as_version=4)):
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == book.install_cell_source(url), (
            f"{source.name}: its first code cell must be the install cell for {url!r}: run "
            "`python -m d2lcnn.book set-repository URL` (URL as in notebooks/_config.yml)")
        assert first.metadata.get("tags") == book.INSTALL_TAGS
        if hasattr(first, "outputs"):
            assert first.outputs == [], "the install cell must print nothing where installed"
