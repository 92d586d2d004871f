"""Every ``console`` example in the README prints what the README shows.

A README example is a fenced ``console`` block: lines starting with ``$ `` are commands,
the lines after each are its expected stdout (stderr is not part of it unless the command
redirects it). Each command runs through ``bash`` in the project folder with the installed
``cosloss`` first on PATH, piped (no terminal, so no colour and the documented width), so an
example that drifts from the program fails here. A block that only shows text (no ``$``
line) is not run, nor are the samples between ``<!-- NAME-sample:start -->`` and
``<!-- NAME-sample:end -->`` markers, which need a setup and have tests of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = str(Path(sys.executable).parent)


def console_examples() -> list[tuple[str, str]]:
    """(command, expected stdout) for every ``$`` line of every console block."""
    examples = []
    # Samples between <!-- NAME-sample:start/end --> markers have tests of their own (they need setup).
    text = re.sub(r"<!-- ([\w-]+)-sample:start -->.*?<!-- \1-sample:end -->", "", README, flags=re.S)
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        command: str | None = None
        output: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append((command, "\n".join(output)))
                command, output = line[2:], []
            elif command is not None:
                output.append(line)
        if command is not None:
            examples.append((command, "\n".join(output)))
    return examples


EXAMPLES = console_examples()


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example(command: str, expected: str) -> None:
    if "jq" in command and shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    env.pop("COLUMNS", None)
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert_same_text(proc.stdout.rstrip("\n"), expected.rstrip("\n"), proc.stderr)


#: A number in an example: compared within 1e-9 relative, because the C kernel and the
#: numpy path (an install without a compiler) may differ in the last bits.
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def assert_same_text(actual: str, expected: str, stderr: str) -> None:
    """Equal text, numbers with a decimal point within 1e-9 relative."""
    assert NUMBER.split(actual) == NUMBER.split(expected), stderr
    for got, want in zip(NUMBER.findall(actual), NUMBER.findall(expected), strict=True):
        assert float(got) == pytest.approx(float(want), rel=1e-9, abs=1e-15), (got, want)
