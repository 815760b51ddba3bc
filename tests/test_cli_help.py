"""``dataprep --help`` and every ``dataprep COMMAND --help``: a plain purpose first, an example last."""

from __future__ import annotations

import pytest

from pipelines import cli
from pipelines.cli_help import COMMANDS


def _help(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_starts_with_the_purpose_not_docstring_markup(capsys):
    text = _help(capsys)
    description = text.split("\n\n")[1]
    assert description.startswith("Turn web text") and "``" not in text
    assert "dataprep run text --input" in text and "preflight" in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_says_what_it_is_for_and_shows_an_example(capsys, command):
    purpose, example = COMMANDS[command]
    text = _help(capsys, command)
    assert text.split("\n\n")[1].strip() == f"{purpose[0].upper()}{purpose[1:]}."
    assert text.rstrip().endswith(example.splitlines()[-1].strip())
    assert f"dataprep {command}" in text.split("example:")[1]
