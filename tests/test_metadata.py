"""The project's license and citation files agree with pyproject.toml."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_covers_code_and_book():
    text = (ROOT / "LICENSE").read_text()
    license_text = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert license_text == {"text": "MIT"}
    assert "MIT License" in text and "Permission is hereby granted" in text
    assert "CC BY-SA 4.0" in text and "creativecommons.org/licenses/by-sa/4.0" in text


def test_citation_matches_the_package_version():
    cff = (ROOT / "CITATION.cff").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf"^version: {re.escape(project['version'])}$", cff, re.M)
    assert re.search(r"^title: .+", cff, re.M) and "- MIT" in cff and "- CC-BY-SA-4.0" in cff
