"""The documentation the tests check: README.md and every page of docs/, and their examples.

An example is a fenced ``console`` block: lines starting with ``$ `` are commands, the
lines after each are its expected stdout (stderr is not part of it unless the command
redirects it). A block that only shows text (no ``$`` line) is not run, nor are the samples
between ``<!-- NAME-sample:start -->`` and ``<!-- NAME-sample:end -->`` markers, which need a
setup and have tests of their own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Each documentation file, relative to the checkout, and its text.
PAGES = {
    path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
}


class Example(NamedTuple):
    """One ``$ command`` of a console block, where it is, and what it prints."""

    page: str
    command: str
    expected: str

    @property
    def id(self) -> str:
        return f"{self.page}: {self.command}"


def marked_block(marker: str) -> str:
    """The text between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->``, on whichever page it is."""
    start = f"<!-- {marker}:start -->"
    found = [text for text in PAGES.values() if start in text]
    assert len(found) == 1, f"{marker} should be on exactly one page, found on {len(found)}"
    return found[0].split(start, 1)[1].split(f"<!-- {marker}:end -->", 1)[0]


def console_examples() -> list[Example]:
    """Every ``$`` line of every console block of every page, with its expected stdout."""
    examples = []
    for page, text in PAGES.items():
        text = re.sub(r"<!-- ([\w-]+)-sample:start -->.*?<!-- \1-sample:end -->", "", text, flags=re.S)
        for block in re.findall(r"```console\n(.*?)```", text, re.S):
            command: str | None = None
            output: list[str] = []
            for line in block.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        examples.append(Example(page, command, "\n".join(output)))
                    command, output = line[2:], []
                elif command is not None:
                    output.append(line)
            if command is not None:
                examples.append(Example(page, command, "\n".join(output)))
    return examples
