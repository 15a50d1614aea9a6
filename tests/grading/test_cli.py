"""``python -m d2lcnn.grading --help``: every subcommand and every option says what it does."""

import re

import pytest

from d2lcnn.grading.__main__ import build_parser, main


def _help(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _entries(text):
    """``{entry: help}`` of the "positional arguments" and "options" sections of a --help
    text: an entry is a line indented by 2 or 4 spaces, its help the rest of that line and
    the more deeply indented lines that follow."""
    entries, current, section = {}, None, False
    for line in text.splitlines():
        if line and not line.startswith(" "):
            section, current = line in ("positional arguments:", "options:"), None
            continue
        if not section or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= 4:
            name, _, rest = line.strip().partition("  ")
            current = name
            entries[current] = rest.strip()
        elif current is not None:
            entries[current] = (entries[current] + " " + line.strip()).strip()
    return entries


@pytest.mark.parametrize("argv", [[], ["assign"], ["grade"]], ids=["main", "assign", "grade"])
def test_every_option_and_subcommand_has_a_help_text(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    entries = _entries(_help(capsys, argv))
    assert entries, "no options found in the --help text"
    for name, text in entries.items():
        assert text, f"`{' '.join(['grading', *argv])} --help`: {name!r} has no help text"
    # Every option the parser knows appears in the text (so none escaped the check above).
    parser = build_parser()
    if argv:
        parser = next(a for a in parser._actions if a.dest == "command").choices[argv[0]]
    for action in parser._actions:
        shown = action.option_strings[0] if action.option_strings else (
            action.metavar or action.dest)
        assert any(re.match(re.escape(shown) + r"(?=$|[ ,])", name) for name in entries), shown
        assert action.help, f"{shown} has no help"


def test_subcommands_are_listed_with_their_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    entries = _entries(_help(capsys, []))
    assert entries["assign"].startswith("write the student notebook")
    assert entries["grade"].startswith("grade submissions")
