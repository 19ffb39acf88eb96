import warnings

from cnnzoo.cli import _one_line_warnings


def test_warnings_print_as_one_line_naming_the_command():
    with _one_line_warnings("train"):
        line = warnings.formatwarning("could not cache", UserWarning, "/x/images.py", 12, "src")
    assert line == "cnnzoo train: warning: could not cache\n"
    assert "images.py:12" in warnings.formatwarning("x", UserWarning, "/x/images.py", 12)
