"""Named exit statuses: the contract between cosloss and the shell scripts that call it."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes, documented in docs/outputs.md, "Errors and exit codes"."""

    OK = 0
    #: The data could not be used: unreadable, unparsable, shapes differ, NaN under ``raise``.
    DATA_ERROR = 1
    #: The command line was wrong: unknown option, bad value, missing file, axis out of range.
    USAGE_ERROR = 2
    #: ``--fail-above`` was given and the mean loss is above it (results were still printed).
    THRESHOLD_EXCEEDED = 3
    #: Interrupted by Ctrl-C (128 + SIGINT).
    INTERRUPTED = 130
    #: Terminated by SIGTERM (128 + SIGTERM).
    TERMINATED = 143
