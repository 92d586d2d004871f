"""The README is the user's manual: its samples and reference must match the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cosloss_cli.cli import cli
from cosloss_cli.status import ExitStatus

from .conftest import PIPED, ROOT, assert_same_json, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Piped, with ``NO_COLOR`` set: the plain text a user or a script sees off a terminal.
NO_COLOR = PIPED._replace(no_color=True)


def test_command_reference_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == ExitStatus.OK, proc.stderr


@pytest.mark.parametrize("args", [[], ["compute"], ["batch"]], ids=["cosloss", "compute", "batch"])
def test_reference_is_what_the_real_command_prints(args: list[str]) -> None:
    """Not the generator against itself: ``cosloss ... -h`` as a user types it (``-h``, not ``--help``)."""
    result = CliRunner().invoke(cli, [*args, "-h"], prog_name="cosloss", terminal_width=100)
    assert result.exit_code == ExitStatus.OK
    title = f"### `cosloss {' '.join([*args, '--help']) if args else '--help'}`"
    section = README.split(title, 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    assert section == result.output.rstrip("\n")
    assert "  -h, --help" in section


def test_every_command_has_help_and_a_readme_section() -> None:
    context = click.Context(cli, info_name="cosloss")
    assert cli.list_commands(context) == ["batch", "compute"]
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        assert command is not None
        assert command.help, f"{name} has no help text"
        assert f"cosloss {name}" in README
        assert run_cli([name, "--help"]).exit_code == ExitStatus.OK


def test_json_sample_in_readme_is_what_the_tool_prints(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    block = README.split("<!-- json-sample:start -->", 1)[1].split("<!-- json-sample:end -->", 1)[0]
    sample = json.loads(re.search(r"```json\n(.*?)```", block, re.S).group(1))
    result = run_cli(["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--axis", "1", "--json"])
    assert_same_json(json.loads(result.stdout), sample)


def test_quick_start_is_exactly_two_make_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```sh\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert [line.split("#")[0].strip() for line in commands] == ["make demo", "make test"]


def test_the_manual_names_no_tracker_items() -> None:
    assert re.findall(r"\bissue \d+", README, re.I) == []


#: The README's table samples: a ``$ cosloss ...`` line and the exact stdout after it.
TABLE_SAMPLES = [
    (command, output)
    for command, output in re.findall(r"```console\n\$ (cosloss (?:compute|batch) [^|\n]*)\n(.*?)```", README, re.S)
    if "--format" not in command and "--json" not in command
]


def test_the_readme_has_both_table_samples() -> None:
    commands = [command.split()[1] for command, _ in TABLE_SAMPLES]
    assert commands[0] == "compute" and "batch" in commands


@pytest.mark.parametrize(("command", "expected"), TABLE_SAMPLES, ids=[c.split()[1] for c, _ in TABLE_SAMPLES])
def test_table_sample_in_readme_is_exactly_what_the_tool_prints(command: str, expected: str, monkeypatch) -> None:
    """A golden test of the table's text: every character, no colour, the fixed width off a terminal."""
    monkeypatch.chdir(ROOT)
    result = run_cli(command.split()[1:], env=NO_COLOR)
    assert result.stdout == expected
    status = ExitStatus.DATA_ERROR if "batch" in command else ExitStatus.OK  # the batch sample has a broken pair
    assert result.exit_code == status


def _readme_block(marker: str) -> str:
    return README.split(f"<!-- {marker}:start -->", 1)[1].split(f"<!-- {marker}:end -->", 1)[0]


def _run_pycon(block: str, folder: Any) -> None:
    """Run the ``pycon`` examples of a README block as doctests, in ``folder``."""
    import doctest

    for source in re.findall(r"```pycon\n(.*?)```", block, re.S):
        test = doctest.DocTestParser().get_doctest(source, {}, "README", "README.md", 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0, f"a README example printed something else:\n{source}"


def test_matching_sample_in_readme_is_what_the_tool_prints(tmp_path: Any, monkeypatch: Any) -> None:
    import shlex

    monkeypatch.chdir(tmp_path)
    block = _readme_block("matching-sample")
    _run_pycon(block, tmp_path)
    session = re.search(r"```console\n(.*?)```", block, re.S).group(1).splitlines()
    command, expected = shlex.split(session[0].removeprefix("$ ")), session[1:]
    assert command[0] == "cosloss"
    result = run_cli(command[1:])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert (result.stderr + result.stdout).splitlines() == expected


def test_library_sample_in_readme_runs(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    _run_pycon(_readme_block("library-sample"), tmp_path)
