"""Option groups shared by ``compute`` and ``batch``: defined once, stacked on each.

Each factory returns a decorator that adds a group of click options, the way
sqlite-utils' ``output_options`` does, so the two commands cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .readers.formats import FORMATS

F = TypeVar("F", bound=Callable[..., Any])

NAN_POLICIES = ("raise", "omit", "propagate")

#: ``--format`` choices of every command (render.py imports numpy, so not from there).
OUTPUT_FORMATS = ("table", "json", "ndjson", "csv")

#: Context settings of every command: ``-h`` as well as ``--help``, 100-column help.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _stack(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _column_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter("give one or more column names separated by commas")
    return names


def _one_character(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if value in ("\\t", "tab"):
        return "\t"
    if len(value) != 1 or value in '\r\n"':
        raise click.BadParameter("give one character (or 'tab')")
    return value


def _non_negative(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and (value < 0 or not math.isfinite(value)):
        raise click.BadParameter("must be a finite number >= 0")
    return value


def input_options(function: F) -> F:
    """How the input files are read: formats, npz keys, headers, columns, ids."""
    format_choice = click.Choice(FORMATS, case_sensitive=False)
    return _stack(
        [
            click.option(
                "--input-format",
                type=format_choice,
                help="Read both inputs as this format instead of guessing from the extension (needed for '-').",
            ),
            click.option("--labels-format", type=format_choice, help="Format of the labels input only."),
            click.option("--predictions-format", type=format_choice, help="Format of the predictions input only."),
            click.option("--key", metavar="NAME", help="Array to use from .npz archives holding several."),
            click.option(
                "--header/--no-header",
                default=None,
                help="Whether CSV/TSV files start with a header row [default: detected].",
            ),
            click.option(
                "--columns",
                metavar="A,B,C",
                callback=_column_list,
                help="Feature columns to use (CSV/TSV/Parquet), in this order.",
            ),
            click.option("--id-column", metavar="NAME", help="Column holding row ids, carried into the output."),
            click.option(
                "--detect-ids/--no-detect-ids",
                default=True,
                show_default=True,
                help="Read columns named id, key, index, *_id... and pandas' index as row ids, not data.",
            ),
            click.option(
                "--delimiter",
                metavar="CHAR",
                callback=_one_character,
                help="CSV/TSV field separator [default: ',' (';' if line 1 has no ','), tab for TSV].",
            ),
            click.option(
                "--decimal",
                metavar="CHAR",
                callback=_one_character,
                help="CSV/TSV decimal mark [default: '.', or ',' in ';'-separated files written that way].",
            ),
        ]
    )(function)


def compute_options(function: F) -> F:
    """The math: axis, epsilon, normalization and what to do with NaN/Inf."""
    return _stack(
        [
            click.option(
                "--axis",
                type=int,
                default=-1,
                show_default=True,
                help="Axis along which vectors lie; negative counts from the end. 2-D files: 1 = a loss per row.",
            ),
            click.option(
                "--eps",
                type=float,
                default=1e-12,
                show_default=True,
                callback=_non_negative,
                help="Squared norms are raised to at least EPS (tf.nn.l2_normalize's epsilon).",
            ),
            click.option(
                "--normalize/--no-normalize",
                default=True,
                show_default=True,
                help="--no-normalize gives TF's raw 1 - sum(L*P), for inputs that are unit vectors already.",
            ),
            click.option(
                "--nan-policy",
                type=click.Choice(NAN_POLICIES),
                default="raise",
                show_default=True,
                help="NaN/Inf inputs: raise an error, omit those vectors, or propagate NaN losses.",
            ),
            click.option(
                "--fail-above",
                type=float,
                metavar="X",
                help="Exit with status 3 if the mean loss is above X (results are still printed).",
            ),
        ]
    )(function)


def format_options(ndjson_meaning: str) -> Callable[[F], F]:
    """``--format`` and its ``--json`` alias; ``ndjson_meaning`` says what one line is."""
    return _stack(
        [
            click.option(
                "--format",
                "-f",
                "output_format",
                type=click.Choice(OUTPUT_FORMATS),
                default="table",
                show_default=True,
                help=f"table for people; json, ndjson ({ndjson_meaning}) or csv for programs.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Same as --format json."),
        ]
    )


def common_options(function: F) -> F:
    """Verbosity and debugging, for every command."""
    return _stack(
        [
            click.option("--quiet", "-q", is_flag=True, help="No progress bar and no warnings on stderr."),
            click.option("--debug", is_flag=True, help="Show the full traceback of errors."),
        ]
    )(function)
