"""Progress bars on stderr, only on a terminal; a no-op everywhere else.

``compute`` counts rows of one pair of files; ``batch`` counts pairs (and their rows).
Both bars share one builder, so they look and behave alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
def _bar(middle: list[Any], description: str, total: int | None, stream: Any, **fields: Any) -> Iterator[Any]:
    """A transient rich bar: description, bar, done/total, ``middle`` columns, times."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *middle]
    # Only ever enabled when stderr is a terminal, so drawing as on a terminal is right.
    console = Console(file=stream or sys.stderr, force_terminal=True)
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as bar:
        yield bar, bar.add_task(description, total=total, **fields)


@contextmanager
def row_progress(
    enabled: bool, total_rows: int | None, description: str, stream: Any = None
) -> Iterator[Callable[[int], None] | None]:
    """A callback advancing a bar by rows (total unknown for CSV), or None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import TextColumn

    with _bar([TextColumn("rows"), _rate_column()], description, total_rows, stream) as (bar, task):

        def advance(rows: int) -> None:
            bar.advance(task, rows)

        yield advance


@contextmanager
def pair_progress(enabled: bool, total_pairs: int, stream: Any = None) -> Iterator[Callable[[int], None] | None]:
    """A callback advancing a bar by one finished pair of ``rows`` rows, or None when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import TextColumn

    with _bar([TextColumn("pairs, {task.fields[rows]:,} rows")], "batch", total_pairs, stream, rows=0) as (bar, task):
        done_rows = 0

        def advance(rows: int) -> None:
            nonlocal done_rows
            done_rows += rows
            bar.update(task, advance=1, rows=done_rows)

        yield advance
