"""``compare --group-by``: the paired comparison of each group of rows (slices).

A candidate can be better overall and worse on one language or source: the overall
verdict hides it. Each group of the compared rows gets what the overall comparison has:
each model's count and mean, and per candidate the paired mean difference with its BCa
interval, the paired t-test and Wilcoxon p-values (all from
:func:`~cosloss_cli.stats.paired_comparison`, the overall one's code), a verdict, the
rows worse by more than ``worse_by``, and the gates. The t-test p-values are
Holm-adjusted over every group and candidate together: with many slices one of them is
"significant" by chance otherwise.

The intervals and tests cost about a millisecond per group and candidate: they are
computed for up to :data:`~cosloss_cli.groups.MAX_GROUPS_WITH_CI` groups, else null
(with a note); counts, means and worse shares are computed for every group in one pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError, InputUsageError
from .groups import MAX_GROUPS_WITH_CI, Groups, group_rows
from .stats import Comparison, finite_or_none, holm, paired_comparison
from .tail import TailRisk

if TYPE_CHECKING:
    from .compare import CompareResult, GateOptions


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
    from .compare import apply_gates

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
