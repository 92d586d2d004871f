"""Generate the command reference from the click commands: docs pages and man pages.

``make docs`` writes one page per command in ``docs/reference/``: what ``cosloss --help``
and each ``cosloss COMMAND --help`` print, at a fixed width. ``--check`` exits 1 when a page
is out of date instead of rewriting it; the test suite runs the same comparison, so the
reference cannot drift from the code.

``make man`` (``--man DIR``) writes ``cosloss(1)`` and ``cosloss-COMMAND(1)`` into
``DIR/man1/`` from the same click commands: their help, usage and options (each option's
text is the one ``--help`` shows).
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


#: The EXIT STATUS section of every man page (docs/outputs.md has the full table).
EXIT_STATUS = (
    ("0", "Success."),
    ("1", "The data could not be used (an unreadable or corrupt file, different shapes, a NaN...)."),
    ("2", "Usage error: an unknown option or bad value, a missing file, a format that cannot be told."),
    ("3", "A threshold was exceeded: --fail-above (compute, batch) or --fail-if-worse (compare)."),
    ("130", "Interrupted (Ctrl-C)."),
    ("143", "Terminated (SIGTERM)."),
)


def roff(text: str) -> str:
    """Text safe in a man page: backslashes and hyphens escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n"))


def roff_help(text: str) -> list[str]:
    """click help text as man paragraphs; a paragraph after click's ``\\b`` marker keeps its lines."""
    lines: list[str] = []
    for paragraph in inspect_paragraphs(text):
        if paragraph.startswith("\b\n"):
            lines += [".PP", ".nf", roff(paragraph[2:]), ".fi"]
        else:
            lines += [".PP", roff(" ".join(paragraph.split()))]
    return lines


def inspect_paragraphs(text: str) -> list[str]:
    import inspect

    return [part.strip("\n") for part in inspect.cleandoc(text).split("\n\n") if part.strip()]


def man_page(args: list[str]) -> str:
    """The man page of ``cosloss ARGS`` (no ARGS: the group)."""
    from cosloss_cli import __version__

    parent = click.Context(cli, info_name="cosloss", **cli.context_settings)
    command: click.Command = cli if not args else cli.get_command(parent, args[0])  # type: ignore[assignment]
    ctx = click.Context(command, info_name=args[0], parent=parent, **command.context_settings) if args else parent
    name = "-".join(["cosloss", *args])
    lines = [
        f'.TH {name.upper()} 1 "" "cosloss {__version__}" "User Commands"',
        ".SH NAME",
        f"{roff(name)} \\- {roff(command.get_short_help_str(limit=200))}",
        ".SH SYNOPSIS",
        f".B {' '.join(['cosloss', *args])}",
        roff(" ".join(command.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
        *roff_help(command.help or ""),
        ".SH OPTIONS",
    ]
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is not None:
            lines += [".TP", f"\\fB{roff(record[0])}\\fR", roff(" ".join(record[1].split()))]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for sub in command_names():
            found = command.get_command(ctx, sub)
            assert found is not None
            lines += [".TP", f"\\fBcosloss {sub}\\fR", roff(found.get_short_help_str(limit=200))]
    lines.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        lines += [".TP", code, roff(meaning)]
    others = [f"cosloss-{sub}" for sub in command_names() if [sub] != args]
    see_also = [f".BR {other} (1)" + ("," if i < len(others) - 1 else "") for i, other in enumerate(others)]
    lines += [".SH SEE ALSO", *see_also, ".PP", "The manual: docs/ in the source, built by make docs."]
    return "\n".join(lines) + "\n"


def write_man(folder: Path) -> list[Path]:
    """``cosloss.1`` and ``cosloss-COMMAND.1`` in ``folder/man1``; the paths written."""
    section = folder / "man1"
    section.mkdir(parents=True, exist_ok=True)
    written = []
    for args in [[], *([name] for name in command_names())]:
        path = section / ("-".join(["cosloss", *args]) + ".1")
        path.write_text(man_page(args), encoding="utf-8")
        written.append(path)
    return written


def main() -> int:
    if "--man" in sys.argv[1:]:
        folder = Path(sys.argv[sys.argv.index("--man") + 1])
        for path in write_man(folder):
            print(path)
        return 0
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
