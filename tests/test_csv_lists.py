"""CSV cells that hold whole vectors, as pandas' ``to_csv`` writes a column of lists or arrays.

Values are multiples of 1/1000 so that numpy's ``str`` of an array (8 significant digits)
writes them exactly: the reference is then the file's own numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.status import ExitStatus
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses

ROWS, WIDTH = 300, 24


def vectors(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.round(rng.normal(size=(ROWS, WIDTH)), 3)
    predictions = np.round(labels + rng.normal(scale=0.5, size=(ROWS, WIDTH)), 3)
    return np.arange(ROWS) + 100, labels, predictions


def mean_of(args: list[str]) -> float:
    result = run_cli(["compute", *args, "--format", "json", "--no-losses"])
    assert result.exit_code == 0, result.stderr
    return float(json.loads(result.stdout)["mean"])


def refused(args: list[str], status: ExitStatus, *fragments: str) -> str:
    result = run_cli(["compute", *args])
    assert result.exit_code == status, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 400, result.stderr  # never the whole cell
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    "cells",
    [
        lambda rows: list(rows),  # numpy's str: "[ 0.123 -1.5 ...]" over several lines
        lambda rows: [[float(v) for v in row] for row in rows],  # "[0.123, -1.5, ...]"
        lambda rows: [list(row) for row in rows],  # numpy 2: "[np.float64(0.123), ...]"
    ],
    ids=["numpy-array", "python-list", "list-of-numpy-scalars"],
)
def test_list_cells_written_by_pandas_are_vectors(tmp_path: Path, cells) -> None:
    ids, labels, predictions = vectors(0)
    pd.DataFrame({"id": ids, "embedding": cells(labels)}).to_csv(tmp_path / "l.csv", index=False)
    pd.DataFrame({"id": ids, "embedding": cells(predictions)}).to_csv(tmp_path / "p.csv", index=False)
    mean = mean_of([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")])
    assert mean == pytest.approx(float(reference_losses(labels, predictions).mean()), rel=0, abs=1e-12)


def test_executable_matches_shuffled_list_cells_to_parquet_lists_by_id(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(1)
    order = np.random.default_rng(2).permutation(ROWS)
    pd.DataFrame({"doc_id": ids, "text": ["a, b"] * ROWS, "emb": list(labels)}).to_csv(tmp_path / "l.csv")
    pq.write_table(pa.table({"doc_id": ids[order], "emb": list(predictions[order])}), tmp_path / "p.parquet")
    done = run_executable(
        ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.parquet"), "--join-on", "doc_id"]
        + ["--columns", "emb", "--format", "json", "--no-losses"]
    )
    assert done.returncode == 0, done.stderr
    expected = float(reference_losses(labels, predictions).mean())
    assert json.loads(done.stdout)["mean"] == pytest.approx(expected, rel=0, abs=1e-12)


def test_a_dataset_of_csv_shards_with_list_cells(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(3)
    (tmp_path / "l").mkdir()
    for k, start in enumerate(range(0, ROWS, 100)):
        part = slice(start, start + 100)
        pd.DataFrame({"id": ids[part], "v": list(labels[part])}).to_csv(tmp_path / "l" / f"{k}.csv", index=False)
    order = np.random.default_rng(4).permutation(ROWS)
    pd.DataFrame({"id": ids[order], "v": list(predictions[order])}).to_csv(tmp_path / "p.csv", index=False)
    mean = mean_of([str(tmp_path / "l"), str(tmp_path / "p.csv")])
    assert mean == pytest.approx(float(reference_losses(labels, predictions).mean()), rel=0, abs=1e-12)


def test_an_empty_cell_is_a_missing_vector(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text('id,v\n1,"[1, 2, 3]"\n2,\n3,"[0, 1, 0]"\n')
    (tmp_path / "p.csv").write_text('id,v\n1,"[1, 2, 4]"\n2,"[1, 1, 1]"\n3,"[0, 2, 0]"\n')
    refused([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], ExitStatus.DATA_ERROR, "line 3", "NaN")
    mean = mean_of([str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--nan-policy", "omit"])
    expected = reference_losses([[1, 2, 3], [0, 1, 0]], [[1, 2, 4], [0, 2, 0]]).mean()
    assert mean == pytest.approx(float(expected), rel=0, abs=1e-12)


# ------------------------------------------------------------ refusals, in one short line


def test_numpy_summary_of_a_long_array_is_refused(tmp_path: Path) -> None:
    """numpy writes ``[0. 0. ... 0.]`` for more than 1,000 values: the values are not in the file."""
    pd.DataFrame({"v": list(np.ones((3, 2000)))}).to_csv(tmp_path / "l.csv", index=False)
    refused([str(tmp_path / "l.csv"), str(tmp_path / "l.csv")], ExitStatus.DATA_ERROR, "line 2", "summary")


def test_a_bad_value_names_its_physical_line(tmp_path: Path) -> None:
    _, labels, _ = vectors(5)
    cells = [str(row) for row in labels[:4]]  # numpy's str: several lines per cell
    cells[2] = cells[2].replace("[", "[oops ", 1)
    pd.DataFrame({"v": cells}).to_csv(tmp_path / "l.csv", index=False)
    text = (tmp_path / "l.csv").read_text()
    line = text[: text.index("oops")].count("\n") + 1
    assert line > 4  # the cells before it spanned several lines
    refused([str(tmp_path / "l.csv"), str(tmp_path / "l.csv")], ExitStatus.DATA_ERROR, f"line {line}", "'oops'")


def test_vectors_of_another_length_are_refused_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text('v\n"[1, 2, 3]"\n"[1, 2]"\n')
    refused(
        [str(tmp_path / "l.csv"), str(tmp_path / "l.csv")],
        ExitStatus.DATA_ERROR,
        "line 3, column 'v' holds 2 values, expected 3",
    )


def test_two_list_columns_need_columns(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text('a,b\n"[1, 2]","[3, 4]"\n"[5, 6]","[7, 9]"\n')
    refused([str(tmp_path / "l.csv"), str(tmp_path / "l.csv")], ExitStatus.USAGE_ERROR, "2 columns of lists")
    assert mean_of([str(tmp_path / "l.csv"), str(tmp_path / "l.csv"), "--columns", "b"]) == pytest.approx(0.0)


def test_a_long_bad_cell_is_not_quoted_whole(tmp_path: Path) -> None:
    garbage = "x" * 16000
    (tmp_path / "l.csv").write_text(f"a,b\n1,2\n3,{garbage}\n")
    refused([str(tmp_path / "l.csv"), str(tmp_path / "l.csv")], ExitStatus.DATA_ERROR, "line 3", "16000 characters")
