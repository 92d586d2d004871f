"""Generate the command reference of the docs from the click commands (``make docs``).

One page per command in ``docs/reference/``: what ``cosloss --help`` and each
``cosloss COMMAND --help`` print, at a fixed width. ``--check`` exits 1 when a page is
out of date instead of rewriting it; the test suite runs the same comparison, so the
reference cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from cosloss_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"

#: The terminal width the reference is generated at, so it does not depend on the terminal.
WIDTH = 100

NOTICE = "<!-- Generated from the click commands by `make docs` (scripts/gen_reference.py): do not edit. -->"


def help_text(args: list[str]) -> str:
    """What ``cosloss ARGS --help`` prints, the real command run with its own context settings.

    The help is formatted ``WIDTH`` columns wide whatever the terminal (click's test
    runner would otherwise force 80).
    """
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="cosloss", terminal_width=WIDTH)
    if result.exit_code != 0:
        raise SystemExit(f"cosloss {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip("\n")


def command_names() -> list[str]:
    """The subcommands, in the order ``cosloss --help`` lists them."""
    return list(cli.list_commands(click.Context(cli, info_name="cosloss")))


def pages() -> dict[str, str]:
    """File name in ``docs/reference/`` -> its Markdown: ``cosloss.md`` and one per command."""
    names = command_names()
    links = "\n".join(f"- [`cosloss {name}`]({name}.md)" for name in names)
    result = {
        "cosloss.md": (
            f"# Command reference\n\n{NOTICE}\n\n"
            "What `cosloss --help` prints; each command has a page of its own:\n\n"
            f"{links}\n\n```text\n{help_text([])}\n```\n"
        )
    }
    for name in names:
        result[f"{name}.md"] = f"# `cosloss {name}`\n\n{NOTICE}\n\n```text\n{help_text([name])}\n```\n"
    return result


def stale(expected: dict[str, str]) -> list[str]:
    """The reference pages that differ from ``expected`` or are missing, and stray ones."""
    present = {path.name for path in REFERENCE.glob("*.md")}
    wrong = [
        name
        for name, text in expected.items()
        if not (REFERENCE / name).exists() or (REFERENCE / name).read_text(encoding="utf-8") != text
    ]
    return sorted({*wrong, *(present - set(expected))})


def main() -> int:
    expected = pages()
    if "--check" in sys.argv[1:]:
        out_of_date = stale(expected)
        if out_of_date:
            print(f"docs/reference is out of date ({', '.join(out_of_date)}): run 'make docs'", file=sys.stderr)
            return 1
        return 0
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for path in REFERENCE.glob("*.md"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (REFERENCE / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
