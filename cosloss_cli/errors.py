"""Domain exceptions: the only errors the library raises on purpose.

Every layer below the CLI raises one of these; only the CLI edge turns them into an
``Error: ...`` line and an exit status. Each carries the file it is about (if any) so
the message can start with the path, and a hint that says what to do next.
"""

from __future__ import annotations

import re
from typing import Any

from .base.shown import scrub, shown_path
from .status import ExitStatus


class CoslossError(Exception):
    """Base class of every error cosloss reports to a user."""

    exit_status: ExitStatus = ExitStatus.DATA_ERROR

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.hint = hint

    def __str__(self) -> str:
        """``path: message (hint)`` on one line, the path shown and the text scrubbed of secrets."""
        text = scrub(self.message)
        if self.path:
            text = f"{shown_path(self.path)}: {text}"
        if self.hint:
            text = f"{text} ({scrub(self.hint)})"
        return _one_line(text)


def _one_line(text: str) -> str:
    """Errors are one line: library messages (pyarrow's) may hold newlines or control bytes."""
    return re.sub(_CONTROL, " ", text).strip() if re.search(_CONTROL, text) else text


#: Control characters and the spaces around them. A string, not a compiled pattern: ``re``
#: compiles (and caches) it when the first error is shown, not at every start.
_CONTROL = r"\s*[\x00-\x08\x0a-\x1f\x7f]+\s*"


class DataError(CoslossError):
    """The input data cannot be used: unreadable, unparsable, wrong shape or values."""

    exit_status = ExitStatus.DATA_ERROR


class ShapeMismatchError(DataError):
    """Labels and predictions do not have the same shape."""


class RowIdsDifferError(DataError):
    """Rows are paired by position, and the two files' row ids disagree.

    ``shared_id_column`` names the id column both files have, if any: the rows can
    then be matched by it instead.
    """

    def __init__(self, message: str, *, shared_id_column: str | None = None, **kwargs: str | None):
        super().__init__(message, **kwargs)
        self.shared_id_column = shared_id_column


class RowsOutOfOrderError(RowIdsDifferError):
    """Rows are paired by position, and a column both files have besides the vectors differs.

    ``shared_id_column`` is that column (text, or another column left out of the
    vectors): when its values are unique on both sides, the rows are matched by it.
    """


class IdMatchError(DataError):
    """Rows cannot be matched by id: an id appears twice in one file, or no id matches."""


class UnmatchedRowsError(DataError):
    """Rows matched by id, and some have no partner: any (``--strict``), or too many (``--min-matched``).

    Where a join raises it, ``unmatched`` holds the counts (:class:`cosloss_cli.pairing.join.Unmatched`)
    and ``keys`` every unmatched id of each side, which ``batch`` compares across pairs.
    """

    unmatched: Any = None
    keys: Any = None


class NonFiniteError(DataError):
    """A NaN or infinity was found while ``nan_policy`` is ``raise``."""


class UsageError(CoslossError):
    """The invocation is wrong (exit status 2); the subclasses say what part of it."""

    exit_status = ExitStatus.USAGE_ERROR


class InputUsageError(UsageError):
    """The invocation is wrong for this input data: bad axis, unknown format, missing file or key."""


class ParameterError(UsageError):
    """A parameter is outside its allowed values (``eps``, ``nan_policy``, ``reduction``...)."""


class OutputUsageError(UsageError):
    """An output destination cannot be used as given (no known extension, not a folder)."""


class OutputError(CoslossError):
    """A result file could not be written (full disk, permissions, bad extension)."""

    exit_status = ExitStatus.DATA_ERROR


class LeftOutWarning(UserWarning):
    """The library left columns of a DataFrame out (text, dates...), as the CLI leaves them out."""
