"""The ``--report FILE.html`` page of ``batch``, beside :mod:`.render` (its terminal and JSON).

The overall figures of every ok pair, the histogram of all their losses (pooled here in
two passes over the losses, never held at once), a row per pair, the worst rows
(``--top``) and the pooled ``--group-by`` groups. The page frame, tables and charts are
:mod:`cosloss_cli.render.report`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..render.report import (
    REPORT_BINS,
    REPORT_GROUPS,
    histogram_svg,
    html_page,
    loss_groups_section,
    page_heading,
    pairs_table,
    rows_table,
    svg_figure,
)
from ..stats.distribution import histogram_range


def batch_report(
    document: dict[str, Any], histogram: tuple[list[float], list[int]] | None, confidence: float | None = None
) -> str:
    """The page of ``batch``: ``document`` is its ``--json`` document without losses.

    The overall figures (every loss of every ok pair), the histogram of those losses
    (``histogram``: from :func:`pooled_histogram`), a row per pair with its figures or its
    error, the worst rows with their pair (``--top``) and the pooled groups (``--group-by``).
    """
    overall, pairs = document["overall"], document["pairs"]
    title = f"cosloss batch: {overall['ok']} of {overall['pairs']} pairs ok"
    title += f", {overall['failed']} failed" if overall["failed"] else ""
    parts = [page_heading(title), "<h2>Overall: every loss of every ok pair</h2>"]
    keys = ["pairs", "ok", "failed", "skipped", "count", "mean", "mean_of_means", "loss"]
    keys += [key for key in ("p05", "p25", "p75", "p95", "p99", "matched_rows", "join_rows") if key in overall]
    parts.append(pairs_table([(key, overall.get(key)) for key in keys]))
    if histogram is not None:
        edges, counts = histogram
        parts.append("<h2>Distribution of the pooled losses</h2>")
        caption = f"{sum(counts)} losses of {overall['ok']} pairs in {len(counts)} bins"
        parts.append(svg_figure(histogram_svg(edges, counts, "loss"), caption))
    parts.append("<h2>Pairs</h2>")
    scalar = (str, int, float, bool, type(None))
    columns = [key for pair in pairs for key, value in pair.items() if isinstance(value, scalar)]
    columns = [key for key in dict.fromkeys(columns) if key not in ("labels", "predictions", "error")]
    columns += ["error"] if any(pair.get("error") for pair in pairs) else []
    parts.append(rows_table(columns, pairs))
    if overall.get("worst"):
        parts.append("<h2>Worst rows of every pair</h2>")
        worst = overall["worst"]
        ids = ["id"] if any("id" in row for row in worst) else []
        parts.append(rows_table(["name", "index", *ids, "loss"], worst))
    if overall.get("groups") is not None:
        parts.extend(loss_groups_section(overall["groups"], confidence, REPORT_GROUPS))
    return html_page(title, parts)


def pooled_histogram(chunks: Callable[[], Iterable[np.ndarray]]) -> tuple[list[float], list[int]] | None:
    """(edges, counts) of every finite loss of a batch, as :func:`~cosloss_cli.stats.distribution.histogram`
    bins them all together: two passes over ``chunks()`` (the range, then the counts). None without losses."""
    low, high = math.inf, -math.inf
    for chunk in chunks():
        finite = chunk[np.isfinite(chunk)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if low > high:
        return None
    span = histogram_range(np.array([low, high]))
    counts = np.zeros(REPORT_BINS, dtype=np.int64)
    for chunk in chunks():
        counts += np.histogram(chunk[np.isfinite(chunk)], bins=REPORT_BINS, range=span)[0]
    edges = np.histogram_bin_edges(np.empty(0), bins=REPORT_BINS, range=span)
    return edges.tolist(), counts.tolist()
