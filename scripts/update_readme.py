"""Regenerate the README's command reference from the click commands (``make docs``).

``--check`` exits 1 when the README is out of date instead of rewriting it; the test
suite runs the same comparison, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from cosloss_cli.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"


#: The terminal width the reference is generated at, so it does not depend on the terminal.
WIDTH = 100


def help_text(args: list[str]) -> str:
    """What ``cosloss ARGS --help`` prints, the real command run with its own context settings.

    The help is formatted ``WIDTH`` columns wide whatever the terminal (click's test
    runner would otherwise force 80).
    """
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="cosloss", terminal_width=WIDTH)
    if result.exit_code != 0:
        raise SystemExit(f"cosloss {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip("\n")


def reference() -> str:
    """Markdown for ``cosloss --help`` and each subcommand's ``--help``."""
    parts = [f"### `cosloss --help`\n\n```text\n{help_text([])}\n```\n"]
    for name in cli.list_commands(click.Context(cli, info_name="cosloss")):
        parts.append(f"### `cosloss {name} --help`\n\n```text\n{help_text([name])}\n```\n")
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
