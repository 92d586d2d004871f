"""Every ``console`` example of the README and of docs/ prints what the page shows.

The examples are found by ``tests/docs_pages.py``. A ``cosloss ...`` command, maybe with
``2>&1`` and piped into ``jq`` or ``head`` (split as the shell splits it), runs in-process
(the program itself, piped: no terminal, so no colour and the documented width), its
output then run through the filters; any other command line runs through ``bash`` in the
project folder with the installed ``cosloss`` first on PATH. An example that drifts from the program fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cosloss_cli.base.terminal import Environment

from .conftest import run_cli
from .docs_pages import PAGES, ROOT, Example, console_examples

BIN = str(Path(sys.executable).parent)
EXAMPLES = console_examples()

#: Piped and without colour: what a user sees off a terminal with ``NO_COLOR`` set.
PLAIN = Environment(stdin_isatty=False, stdout_isatty=False, stderr_isatty=False, no_color=True)

#: The filters an in-process run may be piped into; anything else runs through bash.
FILTERS = {"jq", "head"}


def in_process_plan(command: str) -> tuple[list[str], bool, list[list[str]]] | None:
    """``cosloss ARGS [2>&1] [| jq ... | head ...]`` as (ARGS, stderr merged, filters), or None.

    The line is split as the shell would (quotes kept together, so a ``|`` inside a jq
    filter is not a pipe); one that expands variables or uses other redirections is None.
    """
    if "$" in command or "`" in command:
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|&<>;")
    lexer.whitespace_split = True
    tokens = list(lexer)
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            segments.append([])
        else:
            segments[-1].append(token)
    first, filters = segments[0], segments[1:]
    merge = first[-3:] == ["2", ">&", "1"]
    if merge:
        first = first[:-3]
    operators = [token for segment in [first, *filters] for token in segment if set(token) <= set("&<>;")]
    if operators or not first or first[0] != "cosloss" or any(not f or f[0] not in FILTERS for f in filters):
        return None
    return first[1:], merge, filters


def test_the_readme_and_the_docs_have_examples() -> None:
    assert sum(example.page == "README.md" for example in EXAMPLES) >= 5
    pages = {example.page for example in EXAMPLES}
    assert {"docs/index.md", "docs/inputs.md", "docs/commands/batch.md", "docs/commands/compare.md"} <= pages


def test_every_page_is_read() -> None:
    assert "README.md" in PAGES and "docs/index.md" in PAGES and len(PAGES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_example(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    if "jq" in example.command and shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    plan = in_process_plan(example.command)
    if plan is not None:
        args, merge, filters = plan
        monkeypatch.chdir(ROOT)
        result = run_cli(args, env=PLAIN)
        output = result.stderr + result.stdout if merge else result.stdout
        for command in filters:
            output = subprocess.run(command, input=output, capture_output=True, text=True, timeout=60).stdout
        stderr = result.stderr
    else:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
        env.pop("COLUMNS", None)
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", example.command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output, stderr = proc.stdout, proc.stderr
    assert_same_text(output.rstrip("\n"), example.expected.rstrip("\n"), stderr)


#: A number in an example: compared within 1e-9 relative, because the C kernel and the
#: numpy path (an install without a compiler) may differ in the last bits.
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def assert_same_text(actual: str, expected: str, stderr: str) -> None:
    """Equal text, numbers with a decimal point within 1e-9 relative."""
    assert NUMBER.split(actual) == NUMBER.split(expected), stderr
    for got, want in zip(NUMBER.findall(actual), NUMBER.findall(expected), strict=True):
        assert float(got) == pytest.approx(float(want), rel=1e-9, abs=1e-15), (got, want)
