"""Stopping a cluster batch: a task asks the client's event before it writes its file."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import OutputError


def stop_check(name: str) -> Callable[[], None]:
    """In a task on a worker: a function raising :class:`BatchStopped` once the client has set
    the event ``name`` (it stopped: Ctrl-C, SIGTERM, --fail-fast), so no file is written after.

    Dask cannot stop a task's thread that is already running: without this, a task
    cancelled by a client that has exited went on to write its output file, a minute later.
    """

    def check() -> None:
        from distributed import Event

        try:
            stopped = Event(name).is_set()  # type: ignore[no-untyped-call]
        except Exception:  # no scheduler to ask: the run is gone, and so is the reason to write
            stopped = True
        if stopped:
            raise BatchStopped("the batch was stopped before this pair's file was written")

    return check


class BatchStopped(OutputError):
    """The client stopped the batch while this pair ran: its output file is not written."""
