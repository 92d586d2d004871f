"""Regenerate the README's command reference from the click commands (``make docs``).

``--check`` exits 1 when the README is out of date instead of rewriting it; the test
suite runs the same comparison, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cosloss_cli.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"


def help_text(command: click.Command, name: str, parent: click.Context | None = None) -> str:
    """The ``--help`` output of a command, at a fixed width so it does not depend on the terminal."""
    context = click.Context(command, info_name=name, parent=parent, terminal_width=100, max_content_width=100)
    return command.get_help(context)


def reference() -> str:
    """Markdown for ``cosloss --help`` and each subcommand's ``--help``."""
    root = click.Context(cli, info_name="cosloss", terminal_width=100, max_content_width=100)
    parts = [f"### `cosloss --help`\n\n```text\n{help_text(cli, 'cosloss')}\n```\n"]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        assert command is not None
        text = help_text(command, name, root)
        parts.append(f"### `cosloss {name} --help`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def updated(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{reference()}{END}{tail}"


def main() -> int:
    current = README.read_text(encoding="utf-8")
    new = updated(current)
    if "--check" in sys.argv[1:]:
        if new != current:
            print("README.md command reference is out of date: run 'make docs'", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
