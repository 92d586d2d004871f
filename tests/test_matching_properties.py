"""Property: whatever the column order, id columns and row order, an answer is right or refused.

Files are written with pandas (CSV with and without its index, Parquet) from a known
pairing of rows and columns; ``compute`` must give the mean of that pairing (checked
against a float64 reference) or exit 1/2 with one ``Error:`` line, never a wrong mean
with exit 0.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.status import ExitStatus

from .conftest import property_settings, run_cli, without_paths

ID_NAMES = ["id", "key", "doc_id", "uuid", "index"]

try:
    import polars
except ImportError:  # polars is in the test extra; without it its writers are left out
    polars = None

WRITERS = ["csv", "csv-index", "parquet"] + (["polars-csv", "polars-parquet"] if polars is not None else [])


@st.composite
def layouts(draw: st.DrawFn) -> dict:
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "rows": draw(st.integers(1, 12)),
        "width": draw(st.integers(2, 6)),
        "names": draw(st.sampled_from(["same", "disjoint", "partial", "unnamed"])),
        "permute_columns": draw(st.booleans()),
        "label_id": draw(st.sampled_from([None, *ID_NAMES])),
        "prediction_id": draw(st.sampled_from([None, *ID_NAMES])),
        "id_position": draw(st.integers(0, 6)),
        "text_ids": draw(st.booleans()),
        "shuffle_rows": draw(st.booleans()),
        "writer": draw(st.sampled_from(WRITERS)),
    }


def _write(frame: pd.DataFrame, path: Path, writer: str) -> None:
    if writer == "csv":
        frame.to_csv(path, index=False)
    elif writer == "csv-index":
        frame.to_csv(path)  # pandas' default: the index is written, header cell empty
    elif writer == "parquet":
        frame.to_parquet(path)  # a shuffled frame's index is stored as __index_level_0__
    elif writer == "polars-csv":
        polars.from_pandas(frame).write_csv(path)
    else:
        polars.from_pandas(frame).write_parquet(path)


@given(layouts())
@property_settings(60)
def test_property_right_answer_or_clear_refusal(layout: dict) -> None:
    rng = np.random.default_rng(layout["seed"])
    rows, width = layout["rows"], layout["width"]
    labels = rng.normal(size=(rows, width))
    predictions = labels + rng.normal(scale=0.5, size=labels.shape)
    # The intended pairing: row i with row i, column j with column j.
    norms = np.linalg.norm(labels, axis=1) * np.linalg.norm(predictions, axis=1)
    expected = float(np.mean(1.0 - (labels * predictions).sum(axis=1) / norms))

    label_names = [f"f{j}" for j in range(width)]
    prediction_names = {
        "same": label_names,
        "disjoint": [f"p{j}" for j in range(width)],
        "partial": label_names[:-1] + ["other"],
        "unnamed": [str(j) for j in range(width)],
    }[layout["names"]]
    if layout["names"] == "unnamed":
        label_names = prediction_names
    left = pd.DataFrame(labels, columns=label_names)
    right = pd.DataFrame(predictions, columns=prediction_names)
    if layout["permute_columns"] and layout["names"] in ("same", "unnamed"):
        right = right[list(rng.permutation(prediction_names))]  # names say how to pair them back
    ids = [f"r{i}" for i in range(rows)] if layout["text_ids"] else list(range(100, 100 + rows))
    for frame, name in ((left, layout["label_id"]), (right, layout["prediction_id"])):
        if name is not None:
            frame.insert(min(layout["id_position"], frame.shape[1]), name, ids)
    if layout["shuffle_rows"] and layout["label_id"] and layout["prediction_id"]:
        right = right.iloc[rng.permutation(rows)]  # the ids say the rows are not in the same order

    with tempfile.TemporaryDirectory() as folder:
        ext = "parquet" if layout["writer"].endswith("parquet") else "csv"
        lpath, ppath = Path(folder) / f"l.{ext}", Path(folder) / f"p.{ext}"
        _write(left, lpath, layout["writer"])
        _write(right, ppath, layout["writer"])
        result = run_cli(["compute", str(lpath), str(ppath), "--json", "--no-losses", "-q"])
    if result.exit_code == ExitStatus.OK:
        mean = json.loads(result.stdout)["mean"]
        assert abs(mean - expected) <= 1e-9 * max(1.0, abs(expected)), (layout, mean, expected)
        return
    assert result.exit_code in (ExitStatus.DATA_ERROR, ExitStatus.USAGE_ERROR), (layout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    assert "internal error" not in without_paths(lines[0]), lines
