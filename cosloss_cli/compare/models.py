"""Compare models: the losses of several predictions files against the same labels, row by row.

The first predictions file is the baseline; every later one is a candidate compared with
it on the same rows (paired statistics from :mod:`cosloss_cli.stats.intervals`). Each file is read
and its losses computed exactly as ``compute`` does (:func:`pipeline.compute.compute_pair`), so
formats, ids, axes and NaN policies mean the same here. This module is the library layer
of ``cosloss compare``: no click, no printing.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..base.aside import BACKGROUND_SIZE, aside
from ..base.shown import shown_path, url_location
from ..base.values import json_value, number, python_scalar
from ..core.cosine import Summary, summarize
from ..errors import CoslossError, DataError, InputUsageError, ShapeMismatchError
from ..io import ReadOptions, detect_format, strip_format_extension
from ..io.group_columns import excluding_both, key_columns_for
from ..pipeline.compute import ProgressCallback, compute_pair, labels_read_once, reporting_to
from ..pipeline.result import ComputeOptions, LossResult
from ..render.result import SCHEMA_VERSION, summary_fields
from ..stats.figures import FigureOptions
from ..stats.groups import MAX_GROUPS_WITH_CI, Groups, group_rows
from ..stats.intervals import (
    BETTER,
    MIN_RESAMPLES,
    NO_CLEAR_DIFFERENCE,
    Comparison,
    finite_or_none,
    holm,
    mean_ci,
    paired_comparison,
)
from ..stats.tail import DEFAULT_WORSE_BY, TAIL_NOTE_SHARE, TailRisk, tail_risk
from .baseline import align, read_saved_losses

if TYPE_CHECKING:
    import pandas as pd

    from ..core.cosine import Float64Array
    from ..pairing.join import Unmatched

#: Column names of the per-row outputs besides the models' (``index[,id],a,b``).
RESERVED_NAMES = ("index", "id")


class ModelSummary(NamedTuple):
    """One model's losses on the compared rows, with a bootstrap interval of their mean."""

    name: str
    predictions: str
    summary: Summary
    ci_low: float | None
    ci_high: float | None
    #: Rows matched by id (``join_on``): this model's rows left out for want of a partner.
    unmatched: Unmatched | None = None


class Gate(NamedTuple):
    """One release gate applied to one candidate: the rule, its bound, the figure it read, the outcome.

    Rules (``value`` is the figure compared with ``bound``):

    - ``fail_if_worse``: fails when the candidate is *shown* worse than the baseline by
      more than ``bound``: the lower end of the interval of mean(candidate - baseline)
      is above it. A candidate statistically the same as the baseline passes.
    - ``require_non_inferior``: fails unless the candidate is shown no worse than
      ``bound``: the upper end of that interval must be at most ``bound``
      (non-inferiority; a model no different from the baseline can fail it on noise).
    - ``max_worse_share``: fails when more than ``bound`` of the rows are worse by
      more than ``--worse-by``.

    A figure that is not defined (too few rows, NaN losses) is None, and then the gate
    fails: a gate never passes on a number it could not compute.
    """

    rule: str
    bound: float
    value: float | None
    passed: bool

    def to_json_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "bound": self.bound, "value": self.value, "passed": self.passed}


class GateOptions(NamedTuple):
    """The gates asked for (None: not applied); see :class:`Gate`."""

    fail_if_worse: float | None = None
    require_non_inferior: float | None = None
    max_worse_share: float | None = None

    def any(self) -> bool:
        return any(bound is not None for bound in self)


class TailOptions(NamedTuple):
    """What of the differences' spread to report: ``--worse-by``, ``--top`` rows, ``--bins``."""

    worse_by: float = DEFAULT_WORSE_BY
    top: int = 0
    bins: int = 0


class CompareRequest(NamedTuple):
    """How ``compare`` reads and compares, as its options say: keywords of :func:`compare_files`.

    One record for a comparison and for each run of ``compare --runs`` (it travels to
    their worker processes), so the two cannot be asked differently.
    """

    read_options: ReadOptions
    prediction_read_options: ReadOptions | None
    options: ComputeOptions
    confidence: float = 0.95
    resamples: int | None = None
    seed: int = 0
    tail: TailOptions = TailOptions()
    gates: GateOptions = GateOptions()


class ModelComparison(NamedTuple):
    """A candidate against the baseline.

    ``p_value_holm`` is the paired t-test's p-value Holm-adjusted over all candidates
    (the t-test is the test of the mean difference, which the verdict is about); None
    with a single candidate. ``tail`` is the spread of the differences and ``gates``
    the gates applied to this candidate.
    """

    baseline: str
    candidate: str
    statistics: Comparison
    p_value_holm: float | None = None
    tail: TailRisk | None = None
    gates: tuple[Gate, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether every gate applied to this candidate passed (True without gates)."""
        return all(gate.passed for gate in self.gates)


def apply_gates(statistics: Comparison, tail: TailRisk | None, options: GateOptions) -> tuple[Gate, ...]:
    """The gates of ``options`` on one candidate's figures (see :class:`Gate`).

    >>> from cosloss_cli.stats.intervals import Comparison
    >>> same = Comparison(30, -0.0005, -0.002, 0.001, None, None, 10, 10, 10, 0.5, 0.5, 0.0, "no clear difference")
    >>> [gate.passed for gate in apply_gates(same, None, GateOptions(fail_if_worse=0.0, require_non_inferior=0.0))]
    [True, False]
    """
    gates = []
    if options.fail_if_worse is not None:
        low = statistics.ci_low
        gates.append(
            Gate("fail_if_worse", options.fail_if_worse, low, low is not None and low <= options.fail_if_worse)
        )
    if options.require_non_inferior is not None:
        high = statistics.ci_high
        bound = options.require_non_inferior
        gates.append(Gate("require_non_inferior", bound, high, high is not None and high <= bound))
    if options.max_worse_share is not None:
        share = None if tail is None else tail.worse_share
        bound = options.max_worse_share
        gates.append(Gate("max_worse_share", bound, share, share is not None and share <= bound))
    return tuple(gates)


class CompareSettings(NamedTuple):
    """How the intervals were formed: computed (``resamples`` None) or drawn with ``seed``."""

    confidence: float
    resamples: int | None
    seed: int
    nan_policy: str

    def draw(self) -> dict[str, Any]:
        """The keyword arguments of :func:`stats.mean_ci` and :func:`stats.paired_comparison`."""
        return {"confidence": self.confidence, "resamples": self.resamples, "seed": self.seed}


class CompareResult(NamedTuple):
    """Models compared on the same rows of one labels file.

    ``losses`` maps each model's name to its losses on the compared rows, all aligned:
    ``positions`` holds those rows' flat positions in the losses of ``compute`` (rows left
    out under ``nan_policy="omit"`` are missing) and ``ids`` their ids (or None). With rows
    matched by id (``join_on``) the positions are the rows of the labels file, and a row
    is compared only when every model matched it.
    """

    labels: str
    axis: int
    shape: tuple[int, ...]
    models: tuple[ModelSummary, ...]
    comparisons: tuple[ModelComparison, ...]
    losses: dict[str, Float64Array]
    positions: np.ndarray
    ids: np.ndarray | None
    settings: CompareSettings
    #: The name of the column the ids came from, if any (the index name of :meth:`to_frame`).
    id_column: str | None = None
    #: What the readers decided on the user's behalf (id columns, headers, rows matched by
    #: id), as ``compute`` prints them: one line each, each said once.
    source_notes: tuple[str, ...] = ()
    #: ``worse_by``, ``top`` and ``bins`` the tail figures were computed with.
    tail_options: TailOptions = TailOptions()
    #: Whether gates were applied (``gates_passed`` is None in JSON without them).
    gated: bool = False
    #: ``group_by``: the comparison of each group of rows (see :mod:`cosloss_cli.compare.models`).
    groups: tuple[dict[str, Any], ...] | None = None

    @property
    def baseline(self) -> str:
        return self.models[0].name

    @property
    def passed(self) -> bool:
        """Whether every gate of every candidate passed, overall and in each group (True without gates)."""
        return all(item.passed for item in self.comparisons) and group_passed(self.groups)

    @property
    def rows(self) -> int:
        """The number of compared rows (losses) per model."""
        return int(self.positions.size)

    def notes(self) -> list[str]:
        """Why figures are missing, and where they tell different stories: one line each (for warnings).

        Besides the statistics' own notes: a candidate whose mean improves while more than
        :data:`~cosloss_cli.stats.tail.TAIL_NOTE_SHARE` of its rows are worse by more than
        ``worse_by``, and a bootstrap verdict that the t-test contradicts.
        """
        lines = []
        for item in self.comparisons:
            lines += [f"{item.candidate} vs {item.baseline}: {note}" for note in item.statistics.notes]
            lines += [f"{item.candidate} vs {item.baseline}: {note}" for note in _disagreement(item, self.settings)]
        return lines

    def to_frame(self, long: bool = False) -> pd.DataFrame:
        """The aligned losses as a pandas DataFrame, indexed as :meth:`LossResult.to_frame` is.

        Indexed by the row ids when there are ids (named after their column, else ``id``),
        else by the rows' positions (``index``); a column per model. ``long=True`` gives
        the tidy form for plotting and joins: a row per (row, model) with columns
        ``id`` (or ``index``), ``model`` and ``loss``, models in the order given.
        """
        import pandas as pd

        if self.ids is not None:
            index = pd.Index(self.ids, name=self.id_column or "id")
        else:
            index = pd.Index(self.positions, name="index")
        wide = pd.DataFrame(dict(self.losses), index=index)
        if not long:
            return wide
        key = str(index.name)
        names = list(self.losses)
        return pd.DataFrame(
            {
                key: np.tile(np.asarray(index), len(names)),
                "model": np.repeat(np.array(names, dtype=object), self.rows),
                "loss": np.concatenate([self.losses[name] for name in names]) if names else np.empty(0),
            }
        )

    def to_json_dict(self, *, include_losses: bool = True) -> dict[str, Any]:
        """The JSON document of ``compare`` (schema_version 1); NaN and infinities are None."""
        document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "labels": shown_path(self.labels),
            "axis": self.axis,
            "shape": list(self.shape),
            "count": self.rows,
            "confidence": self.settings.confidence,
            "resamples": self.settings.resamples,
            "seed": self.settings.seed,
            "baseline": self.baseline,
            "models": [
                {
                    "name": model.name,
                    "predictions": shown_path(model.predictions),
                    **summary_fields(model.summary),
                    "ci_low": model.ci_low,
                    "ci_high": model.ci_high,
                    **({} if model.unmatched is None else {"unmatched": model.unmatched.to_json_dict()}),
                }
                for model in self.models
            ],
            "comparisons": [_comparison_fields(item, len(self.models) > 2, self) for item in self.comparisons],
            "gates_passed": self.passed if self.gated else None,
        }
        if self.groups is not None:
            document["groups"] = list(self.groups)
        if include_losses:
            document["losses"] = {name: [number(x) for x in values.tolist()] for name, values in self.losses.items()}
            document["ids"] = None if self.ids is None else [json_value(x) for x in self.ids]
        return document


def _disagreement(item: ModelComparison, settings: CompareSettings) -> list[str]:
    """Notes where the figures of one comparison point different ways."""
    s, tail, notes = item.statistics, item.tail, []
    if tail is not None and tail.worse_share is not None and s.mean_difference is not None:
        if s.mean_difference < 0 and tail.worse_share > TAIL_NOTE_SHARE:
            notes.append(
                f"the mean improves, but {tail.worse_count} row(s) ({tail.worse_share:.1%}) are worse by more "
                f"than {tail.worse_by:g} (see the tail risk; gate it with --max-worse-share)"
            )
    t_low, t_high = s.t_ci_low, s.t_ci_high
    if t_low is not None and t_high is not None:
        t_verdict = BETTER if t_high < 0 else "worse" if t_low > 0 else NO_CLEAR_DIFFERENCE
        if t_verdict != s.verdict:
            level = f"{settings.confidence * 100:g}%"
            notes.append(
                f"the {level} bootstrap interval says {s.verdict!r} but the t-test's interval "
                f"[{t_low:.4g}, {t_high:.4g}] says {t_verdict!r} on {s.rows} rows: with few rows or heavy "
                "tails the two can disagree; more rows settle it"
            )
    return notes


def _tail_fields(tail: TailRisk, result: CompareResult, item: ModelComparison) -> dict[str, Any]:
    fields: dict[str, Any] = {
        **{key: finite_or_none(value) if value is not None else None for key, value in tail.percentiles.items()},
        "worse_by": tail.worse_by,
        "worse_count": tail.worse_count,
        "worse_share": tail.worse_share,
    }
    if result.tail_options.top:
        candidate, baseline = result.losses[item.candidate], result.losses[item.baseline]
        fields["worst"] = [
            {
                "index": int(result.positions[row]),
                **({} if result.ids is None else {"id": json_value(result.ids[row])}),
                "difference": float(candidate[row] - baseline[row]),
                "baseline": float(baseline[row]),
                "candidate": float(candidate[row]),
            }
            for row in tail.worst
        ]
    if tail.counts:
        fields["histogram"] = {"edges": list(tail.edges), "counts": list(tail.counts)}
    return fields


def _comparison_fields(item: ModelComparison, with_holm: bool, result: CompareResult) -> dict[str, Any]:
    s = item.statistics
    fields: dict[str, Any] = {
        "baseline": item.baseline,
        "candidate": item.candidate,
        "mean_difference": s.mean_difference,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "t_ci_low": s.t_ci_low,
        "t_ci_high": s.t_ci_high,
        "better": s.better,
        "worse": s.worse,
        "ties": s.ties,
        "p_value_t": s.p_value_t,
        "p_value_wilcoxon": s.p_value_wilcoxon,
        "effect_size": s.effect_size,
        "verdict": s.verdict,
    }
    if with_holm:
        fields["p_value_holm"] = item.p_value_holm
    if item.tail is not None:
        fields["tail"] = _tail_fields(item.tail, result, item)
    fields["gates"] = [gate.to_json_dict() for gate in item.gates]
    return fields


def compare_files(
    labels: str,
    predictions: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    confidence: float = 0.95,
    resamples: int | None = None,
    seed: int = 0,
    read_options: ReadOptions | None = None,
    options: ComputeOptions | None = None,
    prediction_read_options: ReadOptions | None = None,
    progress: ProgressCallback | None = None,
    join_on: str | None = None,
    strict: bool | None = None,
    tail: TailOptions | None = None,
    gates: GateOptions | None = None,
    baseline_losses: str | None = None,
    baseline_column: str | None = None,
    group_by: Sequence[str] = (),
) -> CompareResult:
    """Compare the losses of each predictions file against the same labels, the first as baseline.

    ``labels`` or one of ``predictions`` may be ``-`` (stdin; labels from stdin are
    spooled to a temporary file, as they are read once per model). With
    ``join_on`` (or ``options.join_on``) each model's rows are matched by the id in that
    column, and a label row that one model could not match is left out for all
    (``strict``: any unmatched row is an error). With
    ``nan_policy="omit"`` a row is left out for every model when any model's loss
    there is NaN or infinite, so the comparison stays paired; with ``"propagate"``
    such losses make the figures that depend on them None.

    Raises :class:`InputUsageError` for fewer than 2 predictions files, ``names`` of the
    wrong length, ``confidence`` outside (0, 1) or fewer than :data:`MIN_RESAMPLES`
    resamples (None, the default: the intervals' bootstrap distributions are computed,
    not drawn; see :func:`cosloss_cli.stats.intervals.mean_ci`), and the errors of ``compute`` (a
    :class:`DataError` naming the files when their shapes or row counts differ).

    ``tail`` says how to report the spread of each candidate's differences
    (:class:`TailOptions`: ``worse_by``, ``top`` rows, histogram ``bins``; its percentiles
    and worse share are always computed) and ``gates`` which gates to apply to each
    candidate (:class:`GateOptions`, see :class:`Gate`); the result says whether they
    passed, it raises nothing for a failed gate.

    ``baseline_losses``: the baseline is the per-row losses saved in that file by an
    earlier ``compute -o`` or ``compare -o`` (``baseline_column`` names the model's
    column of a ``compare`` file), matched to the rows by id or position (see
    :mod:`cosloss_cli.compare.baseline`); every file of ``predictions`` is then a candidate.

    ``group_by``: column names (of the labels, else of the predictions; hive keys too)
    whose values split the rows into groups, each compared as the whole is
    (:mod:`cosloss_cli.compare.models`); those columns are never vector components.
    """
    saved = None
    if baseline_losses is not None:
        saved = read_saved_losses(baseline_losses, baseline_column, read_options)
    _check_settings(labels, predictions, confidence, resamples, saved is not None)
    model_names = unique_names([baseline_losses, *predictions] if baseline_losses else predictions, names)
    options = options or ComputeOptions()
    if join_on is not None:
        options = options._replace(join_on=join_on)
    if strict is not None:
        options = options._replace(strict=strict)
    read_options = read_options or ReadOptions()
    with _labels_path(labels, read_options) as labels_path:
        key_columns = None
        if group_by:
            key_columns, _ = key_columns_for(
                group_by, labels_path, predictions, read_options, prediction_read_options, joined=bool(options.join_on)
            )
            read_options, prediction_read_options = excluding_both(read_options, prediction_read_options, group_by)
        with labels_read_once():
            results = [
                _compute(labels, labels_path, path, read_options, options, prediction_read_options, progress)
                for path in predictions
            ]
    results = _on_common_label_rows(results, predictions)
    _check_aligned(results, predictions)
    if saved is not None:
        results = [_saved_baseline(saved, results[0]), *results]
    settings = CompareSettings(confidence, resamples, seed, options.nan_policy)
    gates = gates or GateOptions()
    result = _compared(labels, model_names, results, settings, tail or TailOptions(), gates)
    if key_columns is None:
        return result
    return _with_groups(result, key_columns, bool(options.join_on), gates)


def _with_groups(
    result: CompareResult, columns: dict[str, np.ndarray], joined: bool, gates: GateOptions
) -> CompareResult:
    """``result`` with the comparison of each group of its rows, and the groups' notes among its notes."""
    found, notes = group_comparisons(result, compared_groups(result, columns, joined), gates)
    return result._replace(groups=tuple(found), source_notes=(*result.source_notes, *notes))


def _saved_baseline(saved: Any, candidate: LossResult) -> LossResult:
    """The saved losses as the baseline's result on the candidate's rows; rows without one are omitted."""
    flat_positions = (
        candidate.label_rows
        if candidate.label_rows is not None and candidate.losses.ndim == 1
        else np.arange(candidate.losses.size)
    )
    ids = None if candidate.ids is None else np.asarray(candidate.ids).ravel()
    losses, missing = align(saved, ids, np.asarray(flat_positions))
    missing = missing | np.isnan(losses)
    kept = losses[~missing]
    note = () if not missing.any() else (f"{int(missing.sum())} row(s) have no saved loss in {saved.path}",)
    return candidate._replace(
        predictions=saved.path,
        losses=losses.reshape(candidate.losses.shape),
        omitted=missing.reshape(candidate.losses.shape),
        summary=summarize(kept, zero_vectors=0, omitted=int(missing.sum())),
        unmatched=None,
        notes=note,
    )


def _check_settings(
    labels: str, predictions: Sequence[str], confidence: float, resamples: int | None, saved: bool = False
) -> None:
    if isinstance(predictions, str) or len(predictions) < (1 if saved else 2):
        raise InputUsageError(
            "compare needs at least 2 predictions files (a baseline and a candidate)"
            if not saved
            else "compare needs at least 1 candidate predictions file besides the saved baseline losses",
            hint="for one file use 'cosloss compute'",
        )
    if [labels, *predictions].count("-") > 1:
        raise InputUsageError("only one of the inputs can be stdin ('-')")
    if not 0 < confidence < 1:
        raise InputUsageError(f"the confidence level must be between 0 and 1 (exclusive), not {confidence!r}")
    if resamples is not None and resamples < MIN_RESAMPLES:
        raise InputUsageError(f"at least {MIN_RESAMPLES} bootstrap resamples are needed, not {resamples!r}")


def unique_names(predictions: Sequence[str], names: Sequence[str] | None = None) -> list[str]:
    """Model names: ``names`` checked, or each file's name without its data extension, made unique.

    >>> unique_names(["run1/a.csv", "run2/a.npy", "a-2.parquet", "-"])
    ['a', 'a-3', 'a-2', 'stdin']
    """
    if names is not None:
        return _checked_names(list(names), len(predictions))
    bases = [_default_name(path) for path in predictions]
    chosen: list[str] = []
    for base in bases:
        name, suffix = base, 2
        while name in chosen or name in RESERVED_NAMES or (name != base and name in bases):
            name, suffix = f"{base}-{suffix}", suffix + 1
        chosen.append(name)
    return chosen


def _default_name(path: str) -> str:
    if path == "-":
        return "stdin"
    location = url_location(path)  # a URL's query (a token) is not part of the name
    return posixpath.basename(strip_format_extension(location.replace(os.sep, "/"))) or "model"


def _checked_names(names: list[str], expected: int) -> list[str]:
    if len(names) != expected:
        raise InputUsageError(f"{len(names)} model names given for {expected} predictions files")
    for name in names:
        if not name.strip():
            raise InputUsageError("model names must not be empty")
        if name in RESERVED_NAMES:
            raise InputUsageError(f"{name!r} cannot be a model name: it is a column of the per-row output")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputUsageError(f"model names must be unique; repeated: {', '.join(repeated)}")
    return names


@contextmanager
def _labels_path(labels: str, read_options: ReadOptions) -> Iterator[str]:
    """``labels``, or for stdin a temporary copy of it: every model reads the labels again."""
    if labels != "-":
        yield labels
        return
    detect_format("-", read_options.input_format)  # the error compute gives without a format
    with tempfile.TemporaryDirectory(prefix="cosloss-") as folder:
        path = os.path.join(folder, "stdin")
        with open(path, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        yield path


def _compute(
    labels: str,
    labels_path: str,
    predictions: str,
    read_options: ReadOptions,
    options: ComputeOptions,
    prediction_read_options: ReadOptions | None,
    progress: ProgressCallback | None,
) -> LossResult:
    """One model's losses, by the route of ``compute``; errors name ``-`` rather than the spooled copy of stdin."""
    try:
        # No interval per model here: the comparison draws its own (confidence=0 skips the bootstrap).
        result = compute_pair(
            labels_path,
            predictions,
            read_options,
            options,
            FigureOptions(confidence=0),
            prediction_read_options,
            progress=reporting_to(progress),
        )
    except CoslossError as exc:
        if labels_path != labels:
            exc.message = exc.message.replace(labels_path, labels)
            exc.path = labels if exc.path == labels_path else exc.path
        raise
    return result._replace(labels=labels)


def _check_aligned(results: list[LossResult], predictions: Sequence[str]) -> None:
    """Every model's losses must be for the same rows: same shape, and same ids if any."""
    first = results[0]
    for path, result in zip(predictions[1:], results[1:], strict=True):
        if result.losses.shape != first.losses.shape:
            raise ShapeMismatchError(
                f"the losses of {predictions[0]} have shape {first.losses.shape}, those of {path} "
                f"{result.losses.shape}",
                hint="every predictions file must hold the same number of vectors as the labels",
            )
        if first.ids is not None and result.ids is not None:
            differ = np.nonzero(first.ids != result.ids)[0]
            if differ.size:
                row = int(differ[0])
                raise DataError(
                    f"row ids differ at row {row}: {python_scalar(first.ids[row])!r} in {predictions[0]}, "
                    f"{python_scalar(result.ids[row])!r} in {path}",
                    hint="sort every file by id",
                )


def _on_common_label_rows(results: list[LossResult], predictions: Sequence[str]) -> list[LossResult]:
    """With rows matched by id: every model's losses on the label rows that all models matched.

    A label row left out of one model's join (no partner id there) is left out for all,
    as a NaN row is under ``nan_policy="omit"``, so the comparison stays paired. Each
    result keeps its own ``unmatched`` counts.
    """
    rows = [result.label_rows for result in results if result.label_rows is not None]
    if len(rows) != len(results):
        return results
    common: np.ndarray = rows[0]
    for other in rows[1:]:
        common = np.intersect1d(common, other, assume_unique=True)
    paired = []
    for path, result in zip(predictions, results, strict=True):
        assert result.label_rows is not None
        if result.losses.ndim != 1 or len(result.losses) != len(result.label_rows):  # a loss per column
            if len(result.label_rows) != len(common):
                raise DataError(
                    f"{path} matches other label rows than the other predictions files, and with a loss per "
                    "column (axis 0) the losses cannot be restricted to the rows they all match",
                    hint="make every predictions file hold the same ids",
                )
            paired.append(result)
            continue
        keep = np.isin(result.label_rows, common, assume_unique=True)
        paired.append(
            result._replace(
                losses=result.losses[keep],
                omitted=result.omitted[keep],
                ids=None if result.ids is None else result.ids[keep],
                label_rows=result.label_rows[keep],
                shape=(int(keep.sum()), *result.shape[1:]),
            )
        )
    return paired


def paired_tests(losses: dict[str, Float64Array], names: list[str], draw: dict[str, Any]) -> list[Comparison]:
    """Each later model against the first: :func:`~cosloss_cli.stats.intervals.paired_comparison`."""
    return [paired_comparison(losses[name], losses[names[0]], **draw) for name in names[1:]]


def _model_summary(
    name: str, result: LossResult, losses: Float64Array, omitted: int, settings: CompareSettings
) -> ModelSummary:
    low, high = mean_ci(losses, **settings.draw())
    summary = summarize(losses, zero_vectors=result.summary.zero_vectors, omitted=omitted)
    return ModelSummary(
        name, result.predictions, summary, finite_or_none(low), finite_or_none(high), unmatched=result.unmatched
    )


def _compared(
    labels: str,
    names: list[str],
    results: list[LossResult],
    settings: CompareSettings,
    tail: TailOptions,
    gates: GateOptions,
) -> CompareResult:
    """The models summarized and each candidate against the baseline: paired tests, Holm, tail risk, gates."""
    omitted = np.zeros(results[0].losses.size, dtype=bool)
    for result in results:
        omitted |= result.omitted.ravel()
    index = np.nonzero(~omitted)[0]
    losses = {name: result.losses.ravel()[index] for name, result in zip(names, results, strict=True)}
    # The paired tests on a thread while the models are summarized here: Wilcoxon's ranking
    # (a sort of every difference, 0.17 s for a million rows) runs without the GIL.
    paired = aside(
        lambda: paired_tests(losses, names, settings.draw()),
        background=index.size >= BACKGROUND_SIZE,
        name="cosloss-paired-tests",
    )
    models = tuple(
        _model_summary(name, result, losses[name], int(omitted.sum()), settings)
        for name, result in zip(names, results, strict=True)
    )
    statistics = paired()
    baseline = names[0]
    adjusted = holm([s.p_value_t for s in statistics]) if len(statistics) > 1 else [None] * len(statistics)
    comparisons = []
    for name, s, p in zip(names[1:], statistics, adjusted, strict=True):
        risk = tail_risk(losses[name], losses[baseline], worse_by=tail.worse_by, top=tail.top, bins=tail.bins)
        comparisons.append(ModelComparison(baseline, name, s, p, risk, apply_gates(s, risk, gates)))
    ids = results[0].ids
    id_column = results[0].id_column
    for result in results[1:]:
        if ids is None:
            ids, id_column = result.ids, result.id_column
    return CompareResult(
        labels=labels,
        axis=results[0].axis,
        shape=results[0].shape,
        models=models,
        comparisons=tuple(comparisons),
        losses=losses,
        positions=index if results[0].label_rows is None or results[0].axis != 1 else results[0].label_rows[index],
        ids=None if ids is None else ids.ravel()[index],
        settings=settings,
        id_column=id_column,
        source_notes=tuple(dict.fromkeys(note for result in results for note in result.notes)),
        tail_options=tail,
        gated=gates.any(),
    )


# ``compare --group-by``: the paired comparison of each group of rows (slices).


def compared_groups(result: CompareResult, columns: dict[str, np.ndarray], joined: bool) -> Groups:
    """Each compared row's group: the key columns (file row order) on the rows ``result`` compares.

    ``result.positions`` are the compared rows' rows in the labels (with ``joined``, rows
    matched by id) or in the files read side by side.
    """
    if result.axis != 1 or len(result.shape) != 2:
        raise InputUsageError("--group-by needs a loss per row (2-D inputs, --axis 1)")
    size = next(iter(columns.values())).shape[0]
    expected = None if joined else result.shape[0]
    rows = np.asarray(result.positions, dtype=np.int64)
    for name, values in columns.items():
        if (expected is not None and values.shape[0] != expected) or (rows.size and int(rows.max()) >= size):
            raise DataError(
                f"the --group-by column {name!r} has {values.shape[0]} rows, the vectors {result.shape[0]}",
                hint="group by a column of the file whose rows the losses are",
            )
    return group_rows({name: values[rows] for name, values in columns.items()})


def group_comparisons(
    result: CompareResult, groups: Groups, gates: GateOptions
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The per-group figures of ``result`` (JSON-ready dicts, groups in key order), and notes.

    Raises :class:`InputUsageError` when an interval gate is asked for more groups than
    get an interval: a gate never passes on a figure it could not compute, and failing
    every group for that would say nothing.
    """
    count = len(groups.keys)
    with_tests = count <= MAX_GROUPS_WITH_CI
    if not with_tests and (gates.fail_if_worse is not None or gates.require_non_inferior is not None):
        raise InputUsageError(
            f"--group-by makes {count:,} groups: --fail-if-worse and --require-non-inferior read each group's "
            f"interval, computed for up to {MAX_GROUPS_WITH_CI} groups",
            hint="group by fewer values, or gate with --max-worse-share",
        )
    names = list(result.losses)
    baseline = result.losses[names[0]]
    codes = groups.codes
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=count)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    worse_by = result.tail_options.worse_by
    with np.errstate(all="ignore"):
        means = {
            name: np.bincount(codes, weights=values, minlength=count) / sizes for name, values in result.losses.items()
        }
    entries: list[dict[str, Any]] = []
    statistics: list[list[Comparison | None]] = []
    risks: list[list[TailRisk]] = []
    per_candidate = []
    for name in names[1:]:
        with np.errstate(all="ignore"):
            d = result.losses[name] - baseline
        worse = np.bincount(codes, weights=d > worse_by, minlength=count).astype(np.int64)
        broken = np.bincount(codes, weights=~np.isfinite(d), minlength=count) > 0
        mean_d = np.bincount(codes, weights=d, minlength=count) / np.maximum(sizes, 1)
        per_candidate.append((name, worse, broken, mean_d))
    for group in range(count):
        rows = order[bounds[group] : bounds[group + 1]]
        n = int(sizes[group])
        entries.append(
            {
                "key": groups.key_dict(group),
                "count": n,
                "models": [
                    {"name": name, "mean": finite_or_none(float(means[name][group])) if n else None} for name in names
                ],
            }
        )
        found: list[Comparison | None] = []
        group_risks = []
        for name, worse, broken, _ in per_candidate:
            if with_tests:
                found.append(paired_comparison(result.losses[name][rows], baseline[rows], **result.settings.draw()))
            else:
                found.append(None)
            share = None if n == 0 or broken[group] else int(worse[group]) / n
            group_risks.append(TailRisk({}, float(worse_by), int(worse[group]), share))
        statistics.append(found)
        risks.append(group_risks)
    flat = [s.p_value_t if s is not None else None for found in statistics for s in found]
    adjusted = iter(holm(flat))
    for group, entry in enumerate(entries):
        comparisons = []
        for (name, _, _, mean_d), s, risk in zip(per_candidate, statistics[group], risks[group], strict=True):
            p_holm = next(adjusted)
            n = entry["count"]
            if s is None:
                mean = finite_or_none(float(mean_d[group])) if n else None
                s = Comparison(n, mean, None, None, None, None, 0, 0, 0, None, None, None, "")
            applied = apply_gates(s, risk, gates)
            comparisons.append(
                {
                    "candidate": name,
                    "mean_difference": s.mean_difference,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "p_value_t": s.p_value_t,
                    "p_value_wilcoxon": s.p_value_wilcoxon,
                    "p_value_holm": p_holm,
                    "verdict": s.verdict or None,
                    "worse_count": risk.worse_count,
                    "worse_share": risk.worse_share,
                    "gates": [gate.to_json_dict() for gate in applied],
                }
            )
        entry["comparisons"] = comparisons
    notes: tuple[str, ...] = ()
    if not with_tests:
        notes = (
            f"{count:,} groups: each group's interval, t-test and Wilcoxon p-values and verdict are computed "
            f"for up to {MAX_GROUPS_WITH_CI} groups (null here)",
        )
    return entries, notes


def group_passed(groups: list[dict[str, Any]] | tuple[dict[str, Any], ...] | None) -> bool:
    """Whether every gate of every group and candidate passed (True without groups or gates)."""
    return all(gate["passed"] for group in groups or () for item in group["comparisons"] for gate in item["gates"])
