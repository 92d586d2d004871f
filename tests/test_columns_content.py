"""What a column holds, not only its name, decides whether it is a vector component.

Text columns are left out with a note (an error when ``--columns`` names them); integer or
boolean columns beside float ones are refused unless ``--columns`` or ``--exclude-columns``
says what they are; a column both files have besides the vectors that differs row by row
is evidence that the rows are in different orders: the rows are matched by it when it is
unique on both sides, else refused. Checked against the float64 reference of the rows as
the files pair them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from cosloss_cli import cosine_loss
from cosloss_cli.errors import DataError
from cosloss_cli.status import ExitStatus

from .conftest import property_settings, run_cli, run_executable
from .oracle import reference_losses

WIDE = 768


def _vectors(rows: int, width: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(rows, width)).astype(np.float32)
    predictions = (labels + rng.normal(size=labels.shape)).astype(np.float32)
    return labels, predictions, float(reference_losses(labels, predictions).mean())


def _frame(values: np.ndarray, **extra: Any) -> pd.DataFrame:
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
    for position, (name, column) in enumerate(extra.items()):
        frame.insert(position, name, column)
    return frame


def _write(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path)


def _mean(result: Any) -> float:
    return float(json.loads(result.stdout)["mean"])


def _one_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


# ------------------------------------------------------------ the trial's layouts, through the executable


@pytest.mark.parametrize(
    ("column", "ext", "executable"), [("docid", "csv", True), ("docId", "parquet", False), ("text", "parquet", True)]
)
def test_shuffled_rows_are_matched_by_a_unique_text_column(
    tmp_path: Path, column: str, ext: str, executable: bool
) -> None:
    """Rows shuffled, their key in a text column not named like an id: matched by it, not by position."""
    labels, predictions, expected = _vectors(60, WIDE)
    keys = [f"doc-{i}" for i in range(60)]
    order = np.random.default_rng(1).permutation(60)
    lpath = _write(_frame(labels, **{column: keys}), tmp_path / f"l.{ext}")
    shuffled = _frame(predictions, **{column: keys}).iloc[order]
    ppath = _write(shuffled, tmp_path / f"p.{ext}")
    args = ["compute", lpath, ppath, "--json"]
    result = run_executable(args) if executable else run_cli(args)
    assert getattr(result, "returncode", getattr(result, "exit_code", None)) == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(expected, rel=1e-6)
    assert f"Note: rows matched by column {column!r}" in result.stderr


def test_shuffled_rows_are_matched_when_large_row_groups_are_read_by_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups read a slab of columns at a time carry the shared text column too."""
    from cosloss_cli.io import parquet

    monkeypatch.setattr(parquet, "_WHOLE_GROUP_BYTES", 0)  # every row group counts as large
    labels, predictions, expected = _vectors(30, 12)
    keys = [f"q{i}" for i in range(30)]
    order = np.random.default_rng(3).permutation(30)
    lpath = _write(_frame(labels, query=keys), tmp_path / "l.parquet")
    ppath = _write(_frame(predictions, query=keys).iloc[order], tmp_path / "p.parquet")
    result = run_cli(["compute", lpath, ppath, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(expected, rel=1e-6)
    assert "Note: rows matched by column 'query'" in result.stderr


def test_shuffled_rows_are_matched_in_a_csv_read_as_wide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CSV of more columns than pyarrow's reader takes is split by cosloss itself: its text key rides too."""
    from cosloss_cli.io import delimited

    monkeypatch.setattr(delimited, "WIDE_COLUMNS", 4)  # every file here counts as wide
    labels, predictions, expected = _vectors(25, 6)
    keys = [f"s{i}" for i in range(25)]
    order = np.random.default_rng(4).permutation(25)
    lpath = _write(_frame(labels, sentence=keys), tmp_path / "l.csv")
    ppath = _write(_frame(predictions, sentence=keys).iloc[order], tmp_path / "p.csv")
    result = run_cli(["compute", lpath, ppath, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(expected, rel=1e-6)
    assert "Note: rows matched by column 'sentence'" in result.stderr


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_integer_label_beside_float_columns_is_refused(tmp_path: Path, ext: str) -> None:
    """A wide float file with an integer class column: not component 769, but an error naming it."""
    labels, predictions, expected = _vectors(40, WIDE)
    label = np.random.default_rng(2).integers(0, 5, 40)
    lpath = _write(_frame(labels, label=label), tmp_path / f"l.{ext}")
    ppath = _write(_frame(predictions, label=label), tmp_path / f"p.{ext}")
    result = run_executable(["compute", lpath, ppath, "--json"])
    assert result.returncode == ExitStatus.DATA_ERROR and result.stdout == ""
    error = _one_error(result.stderr)
    assert "'label'" in error and "--exclude-columns label" in error and "--columns" in error
    result = run_cli(["compute", lpath, ppath, "--json", "--exclude-columns", "label"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(expected, rel=1e-6)
    assert json.loads(result.stdout)["shape"] == [40, WIDE]


def test_a_text_column_is_left_out_alike_in_csv_and_parquet(tmp_path: Path) -> None:
    labels, predictions, expected = _vectors(20, 6)
    text = [f"sentence {i}" for i in range(20)]
    means = []
    for ext in ("csv", "parquet"):
        lpath = _write(_frame(labels, text=text), tmp_path / f"l.{ext}")
        ppath = _write(_frame(predictions, text=text), tmp_path / f"p.{ext}")
        result = run_executable(["compute", lpath, ppath, "--json"])
        assert result.returncode == ExitStatus.OK, result.stderr
        assert "column 'text' holds text, not numbers: not a vector component" in result.stderr
        assert not any(line.startswith("Note: rows matched") for line in result.stderr.splitlines())  # unchanged
        means.append(_mean(result))
        refused = run_cli(["compute", lpath, ppath, "--columns", "text,f0"])
        assert refused.exit_code == ExitStatus.DATA_ERROR
        assert "column 'text' named in --columns holds text, not numbers" in _one_error(refused.stderr)
    assert means == pytest.approx([expected, expected], rel=1e-6)


# ------------------------------------------------------------ the rules, in process


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_a_shared_column_that_differs_and_repeats_is_refused(tmp_path: Path, ext: str) -> None:
    """Not unique: the rows cannot be matched by it; the error names it and the first row that differs."""
    labels, predictions, _ = _vectors(12, 4)
    topics = ["cats", "dogs", "fish"] * 4
    lpath = _write(_frame(labels, topic=topics), tmp_path / f"l.{ext}")
    ppath = _write(_frame(predictions, topic=topics[::-1]), tmp_path / f"p.{ext}")
    result = run_cli(["compute", lpath, ppath])
    assert result.exit_code == ExitStatus.DATA_ERROR and result.stdout == ""
    error = _one_error(result.stderr)
    where = "line 2" if ext == "csv" else "row 0"
    assert "column 'topic'" in error and where in error and "'cats'" in error and "'fish'" in error
    assert "--join-on NAME" in error and "--id-column NAME" in error and "more than once" in error
    # The way out when the column is not a row id: leave it out.
    result = run_cli(["compute", lpath, ppath, "--exclude-columns", "topic", "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(float(reference_losses(labels, predictions).mean()), rel=1e-6)


def test_a_unique_shared_column_without_partners_is_refused(tmp_path: Path) -> None:
    labels, predictions, _ = _vectors(5, 3)
    lpath = _write(_frame(labels, text=[f"a{i}" for i in range(5)]), tmp_path / "l.parquet")
    ppath = _write(_frame(predictions, text=[f"b{i}" for i in range(5)]), tmp_path / "p.parquet")
    result = run_cli(["compute", lpath, ppath])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "column 'text'" in _one_error(result.stderr) and "--exclude-columns text" in result.stderr


def test_a_different_text_column_beside_agreeing_ids_is_refused_until_excluded(tmp_path: Path) -> None:
    """Ids that agree may repeat (several rows per document): a differing text column still refuses."""
    labels, predictions, expected = _vectors(6, 3)
    ids = [0, 0, 1, 1, 2, 2]
    lpath = _write(_frame(labels, doc_id=ids, text=[f"ref {i}" for i in range(6)]), tmp_path / "l.csv")
    ppath = _write(_frame(predictions, doc_id=ids, text=[f"gen {i}" for i in range(6)]), tmp_path / "p.csv")
    result = run_cli(["compute", lpath, ppath, "--json"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "column 'text'" in _one_error(result.stderr) and "--exclude-columns text" in result.stderr
    result = run_cli(["compute", lpath, ppath, "--json", "--exclude-columns", "text"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_integer_only_vectors_are_components(tmp_path: Path, ext: str) -> None:
    """Quantized embeddings: every component an integer, nothing to refuse."""
    rng = np.random.default_rng(4)
    labels, predictions = rng.integers(-127, 128, (10, 5)), rng.integers(-127, 128, (10, 5))
    lpath = _write(_frame(labels.astype(np.int8)), tmp_path / f"l.{ext}")
    ppath = _write(_frame(predictions.astype(np.int8)), tmp_path / f"p.{ext}")
    result = run_cli(["compute", lpath, ppath, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert _mean(result) == pytest.approx(float(reference_losses(labels, predictions).mean()), rel=1e-12)


def test_boolean_column_beside_floats_is_refused_and_can_be_excluded(tmp_path: Path) -> None:
    labels, predictions, expected = _vectors(8, 3)
    flags = [True, False] * 4
    lpath = _write(_frame(labels, flag=flags), tmp_path / "l.csv")
    ppath = _write(_frame(predictions, flag=flags), tmp_path / "p.parquet")
    result = run_cli(["compute", lpath, ppath])
    assert result.exit_code == ExitStatus.DATA_ERROR and "'flag' (booleans)" in _one_error(result.stderr)
    for command in (["compute"], ["compare", lpath]):
        result = run_cli([*command, lpath, ppath, "--exclude-columns", "flag", "--json"])
        assert result.exit_code == ExitStatus.OK, result.stderr
    result = run_cli(["compute", lpath, ppath, "--exclude-columns", "flag", "--json"])
    assert _mean(result) == pytest.approx(expected, rel=1e-6)


def test_batch_takes_exclude_columns(tmp_path: Path) -> None:
    labels, predictions, expected = _vectors(8, 3)
    (tmp_path / "l").mkdir()
    (tmp_path / "p").mkdir()
    _write(_frame(labels, label=range(8)), tmp_path / "l" / "a.parquet")
    _write(_frame(predictions, label=range(8)), tmp_path / "p" / "a.parquet")
    args = ["batch", str(tmp_path / "l"), str(tmp_path / "p"), "--format", "json"]
    assert run_cli(args).exit_code != ExitStatus.OK
    result = run_cli([*args, "--exclude-columns", "label"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert json.dumps(json.loads(result.stdout)).count(str(round(expected, 6))[:7]) >= 1


def test_exclude_columns_naming_no_column_is_a_usage_error(tmp_path: Path) -> None:
    labels, predictions, _ = _vectors(4, 3)
    lpath, ppath = _write(_frame(labels), tmp_path / "l.csv"), _write(_frame(predictions), tmp_path / "p.csv")
    result = run_cli(["compute", lpath, ppath, "--exclude-columns", "nope"])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "'nope'" in _one_error(result.stderr)


def test_dataframes_follow_the_same_rules() -> None:
    labels, predictions, expected = _vectors(6, 3)
    left = _frame(labels, text=[f"t{i}" for i in range(6)])
    right = _frame(predictions, text=[f"t{i}" for i in range(6)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses = cosine_loss(left, right)
    assert float(np.mean(losses)) == pytest.approx(expected, rel=1e-6)
    assert any("'text'" in str(w.message) for w in caught)
    with pytest.raises(DataError, match="'label'"):
        cosine_loss(_frame(labels, label=range(6)), _frame(predictions, label=range(6)))


# ------------------------------------------------------------ any layout: the reference or a clean refusal

_NAMES = ["docid", "text", "label", "flag", "topic", "rank", "doc_id", "query"]


@st.composite
def _layouts(draw: st.DrawFn) -> dict[str, Any]:
    rows = draw(st.integers(3, 9))
    width = draw(st.integers(2, 4))
    shuffled = draw(st.booleans())
    extras = []
    for name in draw(st.lists(st.sampled_from(_NAMES), unique=True, max_size=3)):
        kind = draw(st.sampled_from(["unique", "repeated", "unrelated", "integer", "boolean"]))
        sides = draw(st.sampled_from(["both", "labels", "predictions"]))
        extras.append((name, kind, sides, draw(st.integers(0, width))))
    if shuffled:  # rows out of order are only detectable with evidence: a key both files carry
        extras.append(("ref", "unique", "both", draw(st.integers(0, width))))
    return {
        "rows": rows,
        "width": width,
        "order": draw(st.permutations(range(rows))) if shuffled else list(range(rows)),
        "extras": extras,
        "writers": (draw(st.sampled_from(_WRITERS)), draw(st.sampled_from(_WRITERS))),
        "seed": draw(st.integers(0, 2**16)),
    }


def _column(kind: str, rows: int, side: str) -> list[Any]:
    if kind == "unique":
        return [f"k{i}" for i in range(rows)]
    if kind == "repeated":
        return [f"r{i % 2}" for i in range(rows)]
    if kind == "unrelated":
        return [f"{side}{i}" for i in range(rows)]
    if kind == "integer":
        return [i % 3 for i in range(rows)]
    return [i % 2 == 0 for i in range(rows)]


def _pandas_csv(table: pa.Table, path: Path) -> None:
    table.to_pandas().to_csv(path, index=False)


def _polars_csv(table: pa.Table, path: Path) -> None:
    pl.from_arrow(table).write_csv(path)  # type: ignore[union-attr]


def _pyarrow_csv(table: pa.Table, path: Path) -> None:
    pacsv.write_csv(table, path)


def _pandas_parquet(table: pa.Table, path: Path) -> None:
    table.to_pandas().to_parquet(path, index=False)


def _polars_parquet(table: pa.Table, path: Path) -> None:
    pl.from_arrow(table).write_parquet(path)  # type: ignore[union-attr]


def _pyarrow_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)


_WRITERS = [_pandas_csv, _polars_csv, _pyarrow_csv, _pandas_parquet, _polars_parquet, _pyarrow_parquet]


@property_settings(30)
@given(layout=_layouts())
@example(  # ids that repeat agree in two orders: the text key must still be compared
    layout={
        "rows": 4,
        "width": 2,
        "order": [3, 1, 2, 0],
        "extras": [("doc_id", "integer", "both", 0), ("docid", "unique", "both", 0)],
        "writers": (_pyarrow_csv, _pyarrow_csv),
        "seed": 0,
    }
)
@example(  # the trial's wide file with an integer class column, in small
    layout={
        "rows": 4,
        "width": 3,
        "order": [0, 1, 2, 3],
        "extras": [("label", "integer", "both", 3)],
        "writers": (_pandas_parquet, _polars_csv),
        "seed": 0,
    }
)
@example(  # the trial's shuffled rows keyed by a text column
    layout={
        "rows": 5,
        "width": 2,
        "order": [4, 2, 0, 3, 1],
        "extras": [("docid", "unique", "both", 0), ("text", "repeated", "labels", 2)],
        "writers": (_pyarrow_csv, _pandas_parquet),
        "seed": 1,
    }
)
def test_any_layout_gives_the_reference_mean_or_a_clean_refusal(tmp_path_factory: Any, layout: dict) -> None:
    rows, width, order = layout["rows"], layout["width"], np.asarray(layout["order"])
    rng = np.random.default_rng(layout["seed"])
    labels = rng.normal(size=(rows, width))
    predictions = rng.normal(size=(rows, width))
    folder = tmp_path_factory.mktemp("layout")
    paths = []
    for side, values, rows_order in (("labels", labels, np.arange(rows)), ("predictions", predictions, order)):
        columns: dict[str, Any] = {f"f{i}": values[rows_order, i] for i in range(width)}
        names = list(columns)
        for name, kind, sides, position in layout["extras"]:
            if sides in ("both", side):
                columns[name] = [_column(kind, rows, side)[i] for i in rows_order]
                names.insert(min(position, len(names)), name)
        writer = layout["writers"][side == "predictions"]
        path = folder / f"{side}.{'csv' if writer.__name__.endswith('csv') else 'parquet'}"
        writer(pa.table({name: columns[name] for name in names}), path)
        paths.append(str(path))
    result = run_cli(["compute", *paths, "--json"])
    event(f"exit {result.exit_code}, {'shuffled' if (order != np.arange(rows)).any() else 'in order'}")
    if result.exit_code == ExitStatus.OK:
        expected = float(reference_losses(labels, predictions).mean())
        assert _mean(result) == pytest.approx(expected, rel=1e-9), (layout, result.stderr)
    else:
        assert result.exit_code in (ExitStatus.DATA_ERROR, ExitStatus.USAGE_ERROR), result.stderr
        assert result.stdout == ""
        _one_error(result.stderr)
