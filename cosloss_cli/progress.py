"""Progress bars on stderr, only on a terminal; a no-op everywhere else."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .pipeline import ProgressCallback

#: Inputs smaller than this (bytes) finish before a bar would be worth drawing.
MIN_BYTES_FOR_PROGRESS = 64 * 1024 * 1024


@contextmanager
def row_progress(enabled: bool, total_rows: int | None, description: str) -> Iterator[ProgressCallback | None]:
    """A callback that advances a rich progress bar by rows, or None when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Rows per second, once rich has a few updates to estimate it from."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn("rows"), RateColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(description, total=total_rows)

        def advance(rows: int) -> None:
            bar.advance(task, rows)

        yield advance
