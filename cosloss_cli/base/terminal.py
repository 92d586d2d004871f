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


#: Narrowest table width: below it the figures of a table are cut.
MIN_WIDTH = 60


def terminal_width(default: int = 100) -> int:
    """The width tables are drawn at on a terminal: ``COLUMNS`` if set, else the terminal's.

    A terminal that reports no width (0 columns: CI runners, ``script``) gets ``default``
    rather than the narrowest width, which would cut numbers.
    """
    columns = columns_from_environment()
    if columns is not None:
        return columns
    try:
        reported = os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return default
    return max(MIN_WIDTH, reported) if reported > 0 else default


def columns_from_environment() -> int | None:
    """``COLUMNS`` as a table width (at least :data:`MIN_WIDTH`), or None when unset or not a number.

    >>> os.environ["COLUMNS"] = "132"; columns_from_environment()
    132
    >>> os.environ["COLUMNS"] = "wide"; columns_from_environment() is None
    True
    >>> del os.environ["COLUMNS"]
    """
    value = os.environ.get("COLUMNS", "").strip()
    if not value.isdigit() or int(value) <= 0:
        return None
    return max(MIN_WIDTH, int(value))
