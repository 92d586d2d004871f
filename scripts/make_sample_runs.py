"""Write sample_data/runs/: three daily runs of two models, for the docs' ``--runs`` and ``--group-by`` reports.

Each run folder holds ``labels.parquet`` (``id``, ``lang``, ``embedding``: 16 float32) and
the predictions of ``base`` and ``tuned`` (``id``, ``embedding``). ``tuned`` gets better
day by day, except on ``fr``, where it gets worse: a mean that hides a group. Deterministic
(a fixed seed), so the documented numbers do not change.

    python scripts/make_sample_runs.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RUNS = Path(__file__).resolve().parent.parent / "sample_data" / "runs"

#: The run folders, oldest first, and the rows and width of each.
DAYS, ROWS, WIDTH = ("2026-12-01", "2026-12-02", "2026-12-03"), 120, 16


def table(ids: list[str], vectors: np.ndarray, lang: np.ndarray | None = None) -> pa.Table:
    """``id``, ``lang`` (labels only) and the vectors as a fixed-size list column."""
    flat = pa.array(vectors.astype(np.float32).ravel())
    columns = {"id": pa.array(ids), **({} if lang is None else {"lang": pa.array(lang)})}
    return pa.table({**columns, "embedding": pa.FixedSizeListArray.from_arrays(flat, WIDTH)})


def main() -> None:
    rng = np.random.default_rng(2026)
    ids = [f"doc-{i:04d}" for i in range(ROWS)]
    lang = np.array(["en", "de", "fr"])[np.arange(ROWS) % 3]
    for day, name in enumerate(DAYS):
        folder = RUNS / name
        folder.mkdir(parents=True, exist_ok=True)
        labels = rng.standard_normal((ROWS, WIDTH))
        pq.write_table(table(ids, labels, lang), folder / "labels.parquet")
        base = labels + 0.6 * rng.standard_normal(labels.shape)
        noise = np.where((lang == "fr")[:, None], 0.6 + 0.15 * day, 0.55 - 0.1 * day)
        tuned = labels + noise * rng.standard_normal(labels.shape)
        pq.write_table(table(ids, base), folder / "base.parquet")
        pq.write_table(table(ids, tuned), folder / "tuned.parquet")


if __name__ == "__main__":
    main()
