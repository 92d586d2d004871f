"""Shared fixtures: golden cases, an in-process CLI runner with a fake terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cosloss_cli.cli import cli
from cosloss_cli.terminal import Environment

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent

#: The installed console script, beside this interpreter.
EXECUTABLE = str(Path(sys.executable).with_name("cosloss"))

PIPED = Environment(stdin_isatty=False, stdout_isatty=False, stderr_isatty=False, no_color=False)
TERMINAL = Environment(stdin_isatty=True, stdout_isatty=True, stderr_isatty=True, no_color=False)


@dataclass
class GoldenCase:
    name: str
    folder: Path
    expected: dict[str, Any]

    @property
    def labels(self) -> Path:
        return self.folder / self.expected["labels"]

    @property
    def predictions(self) -> Path:
        return self.folder / self.expected["predictions"]

    @property
    def axis(self) -> int:
        return int(self.expected["axis"])


def golden_cases() -> list[GoldenCase]:
    return [
        GoldenCase(folder.name, folder, json.loads((folder / "expected.json").read_text()))
        for folder in sorted(GOLDEN.iterdir())
        if (folder / "expected.json").exists()
    ]


def run_cli(args: list[str], *, env: Environment = PIPED, input: bytes | str | None = None) -> Result:
    """Invoke ``cosloss`` in-process; stdout and stderr are kept apart."""
    runner = CliRunner()
    return runner.invoke(cli, args, obj={"environment": env}, input=input, catch_exceptions=False)


def run_executable(args: list[str], *, prefix: Sequence[str] = (), **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cosloss`` console script in a subprocess (after ``prefix``, e.g. setpriv)."""
    return subprocess.run([*prefix, EXECUTABLE, *args], capture_output=True, text=True, timeout=120, **kwargs)


def run_executable_without_root_powers(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the real executable; as root, without the capabilities that bypass file permissions."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return run_executable(args, prefix=prefix)


@pytest.fixture
def cli_run():
    return run_cli
