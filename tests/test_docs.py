"""The README is the user's manual: its samples and reference must match the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cosloss_cli.cli import cli

from .conftest import ROOT, assert_same_json, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_command_reference_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args", [[], ["compute"], ["batch"]], ids=["cosloss", "compute", "batch"])
def test_reference_is_what_the_real_command_prints(args: list[str]) -> None:
    """Not the generator against itself: ``cosloss ... -h`` as a user types it (``-h``, not ``--help``)."""
    result = CliRunner().invoke(cli, [*args, "-h"], prog_name="cosloss", terminal_width=100)
    assert result.exit_code == 0
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
        assert run_cli([name, "--help"]).exit_code == 0


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
