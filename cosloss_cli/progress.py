"""Progress bars on stderr, only on a terminal; a no-op everywhere else."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .pipeline import ProgressCallback

#: Inputs smaller than this (bytes) finish before a bar would be worth drawing.
MIN_BYTES_FOR_PROGRESS = 64 * 1024 * 1024


def _rate_column() -> Any:
    """A rich column showing rows per second (rich's own speed column counts bytes)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RowRateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("? rows/s", style="progress.data.speed")
            return Text(f"{speed:,.0f} rows/s", style="progress.data.speed")

    return RowRateColumn()


@contextmanager
def row_progress(
    enabled: bool, total_rows: int | None, description: str, stream: Any = None
) -> Iterator[ProgressCallback | None]:
    """A callback that advances a rich progress bar by rows, or None when disabled.

    The bar shows rows done (of the total when it is known: not for CSV), the rate,
    the elapsed time and the time left. It is transient: gone once the work ends.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows")]
    columns += [_rate_column(), TimeElapsedColumn(), TimeRemainingColumn()]
    # Only ever enabled when stderr is a terminal, so drawing as on a terminal is right.
    console = Console(file=stream or sys.stderr, force_terminal=True)
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total_rows)

        def advance(rows: int) -> None:
            bar.advance(task, rows)

        yield advance
