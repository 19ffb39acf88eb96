import argparse
import warnings

import pytest

from cnnzoo import __version__
from cnnzoo.cli import COMMANDS, _one_line_warnings, _parser, main


def test_warnings_print_as_one_line_naming_the_command():
    with _one_line_warnings("train"):
        line = warnings.formatwarning("could not cache", UserWarning, "/x/images.py", 12, "src")
    assert line == "cnnzoo train: warning: could not cache\n"
    assert "images.py:12" in warnings.formatwarning("x", UserWarning, "/x/images.py", 12)


def test_every_command_and_option_has_help_text():
    """Each subcommand lives in cnnzoo.commands with its own arguments; none lacks help."""
    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name, command in sub.choices.items():
        assert command.description, name
        for action in command._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"cnnzoo {name} {action.option_strings or action.dest}"


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"cnnzoo {__version__}"
