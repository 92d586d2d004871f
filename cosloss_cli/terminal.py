"""What the process is attached to: terminals, colour wishes. Tests can fake it."""

from __future__ import annotations

import os
import sys
from typing import NamedTuple


class Environment(NamedTuple):
    """Whether stdin/stdout/stderr are terminals and whether colour is wanted."""

    stdin_isatty: bool
    stdout_isatty: bool
    stderr_isatty: bool
    no_color: bool

    @classmethod
    def detect(cls) -> Environment:
        return cls(
            stdin_isatty=_isatty(sys.stdin),
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            no_color="NO_COLOR" in os.environ and os.environ["NO_COLOR"] != "",
        )

    @property
    def stdout_color(self) -> bool:
        return self.stdout_isatty and not self.no_color

    @property
    def stderr_color(self) -> bool:
        return self.stderr_isatty and not self.no_color


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def terminal_width(default: int = 100) -> int:
    """The terminal's width, or a generous fixed width off a terminal (no 80-col wrap)."""
    try:
        return max(60, os.get_terminal_size(sys.stdout.fileno()).columns)
    except (OSError, ValueError, AttributeError):
        return default
