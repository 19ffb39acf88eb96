import argparse
import subprocess
import sys
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
    listing = _parser([])  # no command named: each is listed with its help, none imported
    (sub,) = [a for a in listing._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted(COMMANDS)
    assert all(choice.help for choice in sub._choices_actions)
    for name in COMMANDS:
        (sub,) = [a for a in _parser([name])._actions if isinstance(a, argparse._SubParsersAction)]
        command = sub.choices[name]
        assert command.description, name
        for action in command._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"cnnzoo {name} {action.option_strings or action.dest}"


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"cnnzoo {__version__}"


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_answer_without_importing_torch(flag):
    """A fresh interpreter: the answer comes at once (importing torch takes seconds)."""
    code = (
        "import sys\nfrom cnnzoo.cli import main\n"
        f"try:\n    main([{flag!r}])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert ("cnnzoo 0.1.0" if flag == "--version" else "export a trained model") in done.stdout
