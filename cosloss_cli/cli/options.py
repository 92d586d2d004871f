"""Option groups shared by ``compute`` and ``batch``: defined once, stacked on each.

Each factory returns a decorator that adds a group of click options, the way
sqlite-utils' ``output_options`` does, so the two commands cannot drift apart. Each
group hands the command one typed record instead of its loose values: :class:`Inputs`
(a :class:`~cosloss_cli.io.ReadOptions` per side), :class:`ComputeOptions`,
:class:`OutputChoice` and :class:`Verbosity`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

import click

from ..core.params import NAN_POLICIES, WEIGHTED_REDUCTIONS
from ..errors import CoslossError
from ..io.base import DEFAULT_MAX_LINE_BYTES, ReadOptions
from ..io.formats import FORMATS
from ..io.storage import parse_storage_options
from ..render.output import FILE_EXTENSIONS

if TYPE_CHECKING:  # the pipeline imports numpy; a record is built only when a command runs
    from ..pipeline.result import ComputeOptions

F = TypeVar("F", bound=Callable[..., Any])


class Inputs(NamedTuple):
    """How each of the two inputs is read (``--labels-format`` and ``--predictions-format`` differ)."""

    labels: ReadOptions
    predictions: ReadOptions


class OutputChoice(NamedTuple):
    """What goes to stdout: the format, and whether JSON carries the per-vector losses."""

    format: str
    losses: bool


class Weighting(NamedTuple):
    """TF's weights and reduction: ``--weights FILE`` (compute only), ``--weight-column``, ``--reduction``."""

    weights: str | None
    weight_column: str | None
    reduction: str


class Distribution(NamedTuple):
    """How much of the distribution to show: the worst and best rows, and the histogram's bins."""

    top: int
    best: int
    bins: int | None


class Bootstrap(NamedTuple):
    """The bootstrap interval of a mean: ``--confidence`` (0: none), ``--resamples``, ``--seed``."""

    confidence: float
    #: None: the intervals' bootstrap distributions are computed (no resamples drawn).
    resamples: int | None
    seed: int


class Verbosity(NamedTuple):
    """``--quiet`` (no progress bar, no warnings) and ``--debug`` (tracebacks)."""

    quiet: bool
    debug: bool


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


def _grouped(record: str, build: Callable[[dict[str, Any]], Any], options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Add ``options``; the command gets one keyword ``record`` built from their values by ``build``.

    The group's parameters are found from what the options add, so an option added to a
    group reaches its record without another edit here.
    """

    def decorate(function: F) -> F:
        before = len(getattr(function, "__click_params__", []))
        _stack(options)(function)
        names = [param.name for param in getattr(function, "__click_params__", [])[before:]]

        @functools.wraps(function)
        def with_record(*args: Any, **kwargs: Any) -> Any:
            kwargs[record] = build({name: kwargs.pop(name) for name in names})
            return function(*args, **kwargs)

        return with_record  # type: ignore[return-value]

    return decorate


def _inputs(values: dict[str, Any]) -> Inputs:
    """Per-side ReadOptions: every value named like a ReadOptions field, the side's format first.

    An input option without a field of that name would be dropped silently: refused.
    """
    sided = {"labels_format", "predictions_format", "labels_key", "predictions_key"}
    unknown = sorted(set(values) - set(ReadOptions._fields) - sided - {"input_format"})
    if unknown:
        raise TypeError(f"input options without a ReadOptions field: {', '.join(unknown)}")
    shared = {name: value for name, value in values.items() if name in ReadOptions._fields}

    def side(name: str) -> ReadOptions:
        fmt = values.get(f"{name}_format") or values.get("input_format")
        key = values.get(f"{name}_key") or values.get("key")
        return ReadOptions(**{**shared, "input_format": fmt, "key": key})

    return Inputs(labels=side("labels"), predictions=side("predictions"))


def _storage_options(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, Any] | None:
    """``--storage-option KEY=VALUE`` items as fsspec options (fsspec itself loads only when a URL is opened)."""
    if not value:
        return None
    try:
        return parse_storage_options(value)
    except CoslossError as exc:
        raise click.BadParameter(str(exc), param=param) from None


#: fsspec options for every URL of a command, inputs and outputs alike (the ``storage_options``
#: field of both sides' ReadOptions; outputs take them from there).
storage_option = click.option(
    "--storage-option",
    "storage_options",
    metavar="KEY=VALUE",
    multiple=True,
    callback=_storage_options,
    help="fsspec option for s3:// gs:// az:// https:// inputs and outputs (repeatable), e.g. anon=true.",
)


def input_options(function: F) -> F:
    """How the input files are read: formats, npz keys, headers, columns, ids."""
    format_choice = click.Choice(FORMATS, case_sensitive=False)
    return _grouped(
        "inputs",
        _inputs,
        [
            click.option(
                "--input-format",
                type=format_choice,
                help="Read both inputs as this format instead of guessing from the extension (needed for '-').",
            ),
            click.option("--labels-format", type=format_choice, help="Format of the labels input only."),
            click.option("--predictions-format", type=format_choice, help="Format of the predictions input only."),
            storage_option,
            click.option(
                "--key",
                metavar="NAME",
                help="Array to use from NPZ, HDF5 or safetensors files holding several; "
                "in a Parquet, JSON Lines or Arrow table, the list column of that name.",
            ),
            click.option("--labels-key", metavar="NAME", help="Array of the labels file only (overrides --key)."),
            click.option(
                "--predictions-key", metavar="NAME", help="Array of the predictions file(s) only (overrides --key)."
            ),
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
            click.option(
                "--exclude-columns",
                metavar="A,B",
                callback=_column_list,
                help="Columns that are not vector components (CSV/TSV/Parquet), e.g. an integer class label.",
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
            click.option(
                "--max-line-bytes",
                type=click.IntRange(min=1),
                default=DEFAULT_MAX_LINE_BYTES,
                show_default=True,
                metavar="N",
                help="Refuse CSV/TSV lines longer than N bytes (memory grows with the longest line).",
            ),
        ],
    )(function)


def _compute_options(values: dict[str, Any]) -> ComputeOptions:
    from ..pipeline.result import ComputeOptions

    return ComputeOptions(**values)


def compute_options(function: F) -> F:
    """The math: axis, epsilon, normalization and what to do with NaN/Inf."""
    return _grouped(
        "computation",
        _compute_options,
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
                "--join-on",
                metavar="NAME",
                help="Match rows by the id in column NAME, in any order (CSV/TSV/Parquet); rows without a "
                "partner id are left out and counted.",
            ),
        ],
    )(function)


def weight_options(*, files: bool = True) -> Callable[[F], F]:
    """``--weights FILE`` (when ``files``), ``--weight-column NAME`` and ``--reduction``: TF's weighted loss."""
    options = [
        click.option(
            "--weights",
            metavar="FILE",
            help="One weight per row (any input format: a one-column CSV, a 1-D NPY...), as TF's weights; "
            "for N-D losses also one per loss or any shape TF broadcasts (NPY/NPZ).",
        ),
        click.option(
            "--weight-column",
            metavar="NAME",
            help="Column of the labels file holding one weight per row (CSV/TSV/Parquet); not a vector component.",
        ),
        click.option(
            "--reduction",
            type=click.Choice(WEIGHTED_REDUCTIONS),
            default="sum_by_nonzero_weights",
            show_default=True,
            help="TF's reduction of the weighted losses into 'loss' (none: the weighted losses are listed).",
        ),
    ]
    if not files:
        options = options[1:]
    return _grouped("weighting", lambda values: Weighting(**{"weights": None, **values}), options)


def distribution_options(*, best: bool = True, bins: bool = True) -> Callable[[F], F]:
    """``--top K``, ``--best K`` and ``--bins N``: the worst and best rows, and the histogram."""
    options = [
        click.option(
            "--top", type=click.IntRange(min=0), default=0, metavar="K", help="List the K rows with the largest loss."
        )
    ]
    if best:
        options.append(
            click.option(
                "--best",
                type=click.IntRange(min=0),
                default=0,
                metavar="K",
                help="List the K rows with the smallest loss.",
            )
        )
    if bins:
        options.append(
            click.option(
                "--bins",
                type=click.IntRange(min=1),
                metavar="N",
                help="Histogram of the losses in N bins (JSON 'histogram'); the table draws one [default: 20].",
            )
        )
    return _grouped("distribution", lambda values: Distribution(**{"best": 0, "bins": None, **values}), options)


def _confidence(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (value == 0 or 0 < value < 1):
        raise click.BadParameter("must be between 0 and 1 (0 turns the interval off)")
    return value


def _confidence_level(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0 < value < 1:
        raise click.BadParameter("must be between 0 and 1 (exclusive)")
    return value


@overload
def bootstrap_options(function: F, *, can_be_off: bool = True, interval: str = "the mean loss") -> F: ...


@overload
def bootstrap_options(
    function: None = None, *, can_be_off: bool = True, interval: str = "the mean loss"
) -> Callable[[F], F]: ...


def bootstrap_options(function: F | None = None, *, can_be_off: bool = True, interval: str = "the mean loss") -> Any:
    """``--confidence``, ``--resamples``, ``--seed``: the bootstrap interval of a mean (compute, compare).

    ``@bootstrap_options`` lets ``--confidence 0`` turn the interval off (compute);
    ``@bootstrap_options(can_be_off=False)`` is for a command whose results are the
    intervals (compare): there 0 is refused like any level outside (0, 1). Both draw no
    resamples unless ``--resamples`` is given: the bootstrap distribution of a mean is
    computed (see ``saddlepoint.py``). ``interval``: what the interval is of, for the help.
    """
    if function is None:
        return functools.partial(bootstrap_options, can_be_off=can_be_off, interval=interval)
    if can_be_off:
        confidence = click.option(
            "--confidence",
            type=float,
            default=0.95,
            show_default=True,
            metavar="LEVEL",
            callback=_confidence,
            help=f"Level of the bootstrap (BCa) interval of {interval}; 0 turns it off.",
        )
    else:
        confidence = click.option(
            "--confidence",
            type=float,
            default=0.95,
            show_default=True,
            metavar="LEVEL",
            callback=_confidence_level,
            help="Level of the bootstrap (BCa) intervals, between 0 and 1.",
        )
    return _grouped(
        "bootstrap",
        lambda values: Bootstrap(**values),
        [
            confidence,
            click.option(
                "--resamples",
                type=click.IntRange(min=100),
                default=None,
                metavar="N",
                help=(
                    "Draw N bootstrap resamples (as scipy.stats.bootstrap does) instead of computing the "
                    "bootstrap distribution; values of fewer than 100 distinct levels get 10000 unless told."
                ),
            ),
            click.option(
                "--seed",
                type=int,
                default=0,
                show_default=True,
                help="Random seed of the resamples, when they are drawn (same seed, same interval).",
            ),
        ],
    )(function)


#: ``--strict``: anything without a partner is an error (here: rows under ``--join-on``).
strict_option = click.option(
    "--strict", is_flag=True, help="With --join-on: a row without a partner id is an error (exit 1)."
)


def min_matched_option(default: float, why: str) -> Callable[[F], F]:
    """``--min-matched FRACTION``: under ``--join-on``, fewer matched rows than this share is exit 1."""
    return click.option(
        "--min-matched",
        type=click.FloatRange(0, 1),
        default=default,
        show_default=True,
        metavar="FRACTION",
        help="With --join-on: exit 1 when the matched rows are fewer than FRACTION of the rows of either file "
        f"(matched N of M rows){why}.",
    )


def _html_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.lower().endswith((".html", ".htm")):
        raise click.BadParameter("name the report FILE.html")
    return value


def _group_names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in (value or "").split(",") if part.strip()))
    if value is not None and not names:
        raise click.BadParameter("give one or more column names separated by commas")
    return names


#: ``--group-by NAME[,NAME]``: the figures of each group of rows (slices).
group_by_option = click.option(
    "--group-by",
    "group_by",
    metavar="NAME[,NAME]",
    callback=_group_names,
    help="Figures per group of rows: NAME is a column of the labels (or predictions), or a hive key of "
    "a dataset; text, numbers and booleans are keys, nulls a group of their own. Never a vector component.",
)

#: ``--report FILE.html``: a self-contained page of the result to share (needs matplotlib).
report_option = click.option(
    "--report",
    "report_file",
    metavar="FILE.html",
    callback=_html_name,
    help="Also write a self-contained HTML report (summary, histograms, worst rows, gates, groups; "
    "with --runs each candidate's trend) to FILE.html; needs the 'report' extra (matplotlib).",
)

#: ``--fail-above``: the CI gate, checked after the results are printed (not part of the math).
threshold_option = click.option(
    "--fail-above",
    type=float,
    metavar="X",
    help="Exit with status 3 if the mean loss is above X (results are still printed).",
)


def jobs_option(what: str) -> Callable[[F], F]:
    """``--jobs``/``-j N``: worker processes (``what`` they do), one per CPU unless told."""
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        metavar="N",
        help=f"{what} [default: the number of CPUs].",
    )


def output_file_option(what: str) -> Callable[[F], F]:
    """``--output``/``-o FILE``: ``what`` also written to FILE, in the format its extension names."""
    return click.option(
        "--output",
        "-o",
        "output_file",
        metavar="FILE",
        help=f"Also write {what} to FILE ({' '.join(FILE_EXTENSIONS)}).",
    )


def reading_options(function: F) -> F:
    """The groups every command starts with: how the inputs are read, then the math (``inputs``, ``computation``)."""
    return input_options(compute_options(function))


def final_options(*, report: bool = True) -> Callable[[F], F]:
    """The options every command ends with: ``--group-by``, ``--report`` (when ``report``), ``--quiet``, ``--debug``."""
    return _stack([group_by_option, *([report_option] if report else []), common_options])


def _output_choice(values: dict[str, Any]) -> OutputChoice:
    """``--json`` is ``--format json``; with another ``--format`` given it is a usage error."""
    fmt = values["output_format"]
    if values["as_json"]:
        given = click.get_current_context().get_parameter_source("output_format")
        if fmt != "json" and given not in (None, click.core.ParameterSource.DEFAULT):
            raise click.UsageError(f"--json and --format {fmt} ask for two output formats: give one")
        fmt = "json"
    return OutputChoice(format=fmt, losses=values["losses"])


def output_options(
    formats: Collection[str], ndjson_meaning: str, *, losses: bool, losses_help: str
) -> Callable[[F], F]:
    """``--format`` (choices: the keys of a writer registry), its ``--json`` alias, ``--losses/--no-losses``.

    ``ndjson_meaning`` says what one NDJSON line is; ``losses`` is the default of
    ``--losses/--no-losses``.
    """
    return _grouped(
        "output",
        _output_choice,
        [
            click.option(
                "--format",
                "-f",
                "output_format",
                type=click.Choice(tuple(formats)),
                default="table",
                show_default=True,
                help=f"table for people; json, ndjson ({ndjson_meaning}) or csv for programs.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Same as --format json."),
            click.option("--losses/--no-losses", default=losses, show_default=True, help=losses_help),
        ],
    )


def common_options(function: F) -> F:
    """Verbosity and debugging, for every command."""
    return _grouped(
        "verbosity",
        lambda values: Verbosity(**values),
        [
            click.option("--quiet", "-q", is_flag=True, help="No progress bar and no warnings on stderr."),
            click.option("--debug", is_flag=True, help="Show the full traceback of errors."),
        ],
    )(function)
