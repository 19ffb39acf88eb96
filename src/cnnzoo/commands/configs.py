"""``cnnzoo configs [PATTERN]``: the shipped experiment configs, each with its first comment."""

from __future__ import annotations

import argparse

HELP = "list the shipped configs (names to pass to `cnnzoo train`)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="shell-style pattern on the name, e.g. 'resnet*' or 'speedrun/*'",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnzoo.config import configs_dir, list_configs
    from cnnzoo.errors import ConfigError

    root = configs_dir()
    names = [c for c in list_configs() if _matches(str(Path(c).with_suffix("")), args.pattern)]
    if not names:
        raise ConfigError(f"no shipped config matches {args.pattern!r}; try `cnnzoo configs`")
    rows = [(str(Path(c).with_suffix("")), _about(root / c)) for c in names]
    width = max(len(name) for name, _ in rows)
    for name, about in rows:
        print(f"{name:<{width}}  {about}".rstrip())
    print(f"{len(rows)} config(s) in {root}; train one with `cnnzoo train NAME`")
    return 0


def _matches(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name.rsplit("/", 1)[-1], pattern)


def _about(path, width: int = 90) -> str:
    """The opening comment of a config file (read as text, never executed), cut to
    ``width`` characters."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    comment = []
    for line in lines:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    text = " ".join(comment)
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."
