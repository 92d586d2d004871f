"""Rows and columns matched as the files' own names and ids say: no silent wrong answers.

Every file here is written the way users write it (pandas, pyarrow, polars), and every
mean is checked against an independent float64 reference; a refusal is checked by its
exit status and message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli import compute_files, cosine_loss
from cosloss_cli.pipeline.result import LossResult
from cosloss_cli.status import ExitStatus

from .conftest import run_cli, without_paths
from .oracle import reference_losses

COLUMNS = [f"f{i}" for i in range(8)]


@pytest.fixture
def vectors() -> tuple[np.ndarray, np.ndarray, float]:
    """100 x 8 float32 labels, predictions = labels + small noise, and the true mean loss."""
    rng = np.random.default_rng(15)
    labels = rng.normal(size=(100, 8)).astype(np.float32)
    predictions = (labels + 0.1 * rng.normal(size=labels.shape)).astype(np.float32)
    return labels, predictions, float(reference_losses(labels, predictions).mean())


def frames(vectors: tuple[np.ndarray, np.ndarray, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels, predictions, _ = vectors
    return pd.DataFrame(labels, columns=COLUMNS), pd.DataFrame(predictions, columns=COLUMNS)


def compute_json(*args: str) -> tuple[dict[str, Any], str]:
    result = run_cli(["compute", *args, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    return json.loads(result.stdout), result.stderr


def assert_mean(args: list[str], expected: float, shape: list[int] | None = None) -> tuple[dict[str, Any], str]:
    doc, stderr = compute_json(*args)
    assert doc["mean"] == pytest.approx(expected, rel=1e-6)
    if shape is not None:
        assert doc["shape"] == shape
    return doc, stderr


def refused(args: list[str], status: ExitStatus, *fragments: str) -> str:
    result = run_cli(args)
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    return result.stderr


# ------------------------------------------------------------ the table, one test per row


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_same_names_in_another_order_are_paired_by_name(tmp_path: Path, vectors, ext: str) -> None:
    left, right = frames(vectors)
    lpath, ppath = tmp_path / f"l.{ext}", tmp_path / f"p.{ext}"
    shuffled = right[COLUMNS[::-1]]
    if ext == "csv":
        left.to_csv(lpath, index=False)
        shuffled.to_csv(ppath, index=False)
    else:
        left.to_parquet(lpath)
        shuffled.to_parquet(ppath)
    _, stderr = assert_mean([str(lpath), str(ppath)], vectors[2], [100, 8])
    assert "columns paired with the labels' by name" in stderr


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_integer_id_column_is_not_a_component(tmp_path: Path, vectors, ext: str) -> None:
    left, right = frames(vectors)
    lpath, ppath = tmp_path / f"l.{ext}", tmp_path / f"p.{ext}"
    for frame, path in ((left, lpath), (right, ppath)):
        framed = frame.assign(id=np.arange(100))
        framed.to_csv(path, index=False) if ext == "csv" else framed.to_parquet(path)
    doc, stderr = assert_mean([str(lpath), str(ppath)], vectors[2], [100, 8])
    assert doc["ids"][:3] == (["0", "1", "2"] if ext == "csv" else [0, 1, 2])
    assert without_paths(stderr, tmp_path).count("using column 'id' as row ids") == 2


def test_unnamed_frame_header_0_to_k_is_a_header(tmp_path: Path, vectors) -> None:
    labels, predictions, mean = vectors
    pd.DataFrame(labels).to_csv(tmp_path / "l.csv", index=False)
    pd.DataFrame(predictions).to_csv(tmp_path / "p.csv", index=False)
    _, stderr = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], mean, [100, 8])
    assert "line 1 (0,1,2,3,4,5,6,7) read as column names" in stderr and "--no-header" in stderr
    # --no-header overrides: the header is then a data row (the 101st vector).
    doc, _ = compute_json(str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--no-header")
    assert doc["shape"] == [101, 8]


def test_pandas_default_to_csv_reads_the_index_as_ids(tmp_path: Path, vectors) -> None:
    labels, predictions, mean = vectors
    pd.DataFrame(labels).to_csv(tmp_path / "l.csv")
    pd.DataFrame(predictions).to_csv(tmp_path / "p.csv")
    doc, stderr = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], mean, [100, 8])
    assert "the first column (no name: a pandas index) as row ids" in stderr
    assert doc["ids"][:2] == ["0", "1"]
    # As pandas reads it back:
    back = pd.read_csv(tmp_path / "l.csv", index_col=0).to_numpy()
    np.testing.assert_allclose(back, labels, rtol=1e-6)


def test_list_column_with_shuffled_ids_is_matched_by_id(tmp_path: Path, vectors) -> None:
    labels, predictions, mean = vectors
    order = np.random.default_rng(3).permutation(100)
    pd.DataFrame({"id": np.arange(100), "v": list(labels)}).to_parquet(tmp_path / "l.parquet")
    pd.DataFrame({"id": order, "v": list(predictions[order])}).to_parquet(tmp_path / "p.parquet")
    doc, stderr = assert_mean([str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")], mean, [100, 8])
    assert doc["ids"] == list(range(100))
    assert "Note: rows matched by id (column 'id'): the two files list them in different orders" in stderr


def test_shuffled_ids_from_stdin_are_refused(tmp_path: Path, vectors) -> None:
    """stdin cannot be read a second time: rows whose ids disagree are refused, with the way out."""
    labels, predictions, _ = vectors
    order = np.random.default_rng(3).permutation(100)
    pd.DataFrame({"id": np.arange(100), "v": list(labels)}).to_parquet(tmp_path / "l.parquet")
    pd.DataFrame({"id": order, "v": list(predictions[order])}).to_parquet(tmp_path / "p.parquet")
    result = run_cli(
        ["compute", "-", str(tmp_path / "p.parquet"), "--labels-format", "parquet"],
        input=(tmp_path / "l.parquet").read_bytes(),
    )
    assert result.exit_code == ExitStatus.DATA_ERROR and result.stdout == ""
    assert "rows are matched by position, and their ids differ: row 0 of labels has id 0" in result.stderr
    assert f"has {int(order[0])}" in result.stderr and "--join-on id" in result.stderr


def test_text_id_column_needs_no_option(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    docs = [f"doc-{i}" for i in range(100)]
    left.assign(id=docs).to_csv(tmp_path / "l.csv", index=False)
    right.assign(id=docs).to_csv(tmp_path / "p.csv", index=False)
    doc, _ = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], vectors[2])
    assert doc["ids"][:2] == ["doc-0", "doc-1"]


# ------------------------------------------------------------ rule 1: columns by name


def test_disjoint_names_are_paired_by_position(tmp_path: Path, vectors) -> None:
    labels, predictions, mean = vectors
    pd.DataFrame(labels, columns=[f"label_{i}" for i in range(8)]).to_csv(tmp_path / "l.csv", index=False)
    pd.DataFrame(predictions, columns=[f"pred_{i}" for i in range(8)]).to_parquet(tmp_path / "p.parquet")
    _, stderr = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.parquet")], mean)
    assert not any(line.startswith("Note:") for line in stderr.splitlines())


def test_names_overlapping_in_part_are_refused(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.to_csv(tmp_path / "l.csv", index=False)
    right.rename(columns={"f7": "g7", "f6": "g6"}).to_csv(tmp_path / "p.csv", index=False)
    refused(
        ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv")],
        ExitStatus.DATA_ERROR,
        "the column names overlap only in part: labels alone have 'f6', 'f7'; predictions alone have 'g6', 'g7'",
        "--columns",
    )


def test_explicit_columns_win(tmp_path: Path, vectors) -> None:
    labels, predictions, _ = vectors
    left, right = frames(vectors)
    left.to_csv(tmp_path / "l.csv", index=False)
    right[COLUMNS[::-1]].to_csv(tmp_path / "p.csv", index=False)
    expected = reference_losses(labels[:, :3], predictions[:, :3]).mean()
    assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--columns", "f0,f1,f2"], expected, [100, 3])


# ------------------------------------------------------------ rule 2: id columns


@pytest.mark.parametrize("name", ["id", "ids", "key", "index", "uuid", "uid", "doc_id", "ID", "Unnamed: 0"])
def test_id_names_are_row_ids_with_a_note(tmp_path: Path, vectors, name: str) -> None:
    left, right = frames(vectors)
    for frame, path in ((left, tmp_path / "l.parquet"), (right, tmp_path / "p.parquet")):
        pq.write_table(pa.Table.from_pandas(frame.assign(**{name: np.arange(100) * 7}), preserve_index=False), path)
    args = [str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")]
    doc, stderr = assert_mean(args, vectors[2], [100, 8])
    assert f"using column {name!r} as row ids" in stderr and "--no-detect-ids" in stderr
    assert doc["ids"][:2] == [0, 7]
    assert run_cli(["compute", *args, "-q", "--json"]).stderr == ""
    # Read as data, the integer ids beside float columns are refused, not taken as component 9.
    refused(["compute", *args, "--no-detect-ids"], ExitStatus.DATA_ERROR, repr(name), "--exclude-columns")
    doc, _ = compute_json(*args, "--no-detect-ids", "--columns", ",".join([*COLUMNS, name]))
    assert doc["shape"] == [100, 9] and "ids" not in doc


def test_columns_naming_an_id_column_use_it_as_data(tmp_path: Path) -> None:
    pd.DataFrame({"id": [1.0, 0.0], "x": [0.0, 1.0]}).to_csv(tmp_path / "l.csv", index=False)
    pd.DataFrame({"id": [1.0, 1.0], "x": [0.0, 1.0]}).to_csv(tmp_path / "p.csv", index=False)
    expected = reference_losses(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])).mean()
    assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--columns", "id,x"], expected, [2, 2])


def test_ids_are_carried_into_csv_output(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.assign(sample_id=[f"s{i}" for i in range(100)]).to_parquet(tmp_path / "l.parquet")
    right.to_parquet(tmp_path / "p.parquet")  # ids on one side only: paired by position, ids carried
    result = run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--format", "csv"])
    assert result.exit_code == ExitStatus.OK
    lines = result.stdout.splitlines()
    assert lines[0] == "id,loss" and lines[1].startswith("s0,")


# ------------------------------------------------------------ rule 3: ids that disagree


def test_csv_ids_in_another_order_pair_the_rows_by_id(tmp_path: Path, vectors) -> None:
    """The ids say rows 4 and 5 of the predictions are swapped: the ids win over the positions."""
    labels, predictions, _ = vectors
    left, right = frames(vectors)
    ids = [f"doc-{i}" for i in range(100)]
    left.assign(id=ids).to_csv(tmp_path / "l.csv", index=False)
    swapped = ids[:]
    swapped[4], swapped[5] = swapped[5], swapped[4]
    right.assign(id=swapped).to_csv(tmp_path / "p.csv", index=False)
    by_id = predictions[[*range(4), 5, 4, *range(6, 100)]]
    _, stderr = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], reference_losses(labels, by_id).mean())
    assert "rows matched by id (column 'id')" in stderr


def test_csv_ids_that_disagree_and_lack_partners_name_the_line(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    ids = [f"doc-{i}" for i in range(100)]
    left.assign(id=ids).to_csv(tmp_path / "l.csv", index=False)
    other = ids[:]
    other[4] = "doc-x"
    right.assign(id=other).to_csv(tmp_path / "p.csv", index=False)
    refused(
        ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv")],
        ExitStatus.DATA_ERROR,
        "line 6 of labels has id 'doc-4'",
        "has 'doc-x'",
        "matching them by 'id' leaves rows without a partner",
        "pass --join-on id to leave such rows out",
    )


# ------------------------------------------------------------ rule 4: pandas and polars exports


def test_pandas_parquet_with_default_index(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.to_parquet(tmp_path / "l.parquet")
    right.to_parquet(tmp_path / "p.parquet")
    assert "__index_level_0__" not in pq.read_schema(tmp_path / "l.parquet").names  # metadata only
    _, stderr = assert_mean([str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")], vectors[2], [100, 8])
    assert stderr == ""


@pytest.mark.parametrize("index_name", [None, "sample"])
def test_pandas_parquet_with_a_non_range_index(tmp_path: Path, vectors, index_name: str | None) -> None:
    left, right = frames(vectors)
    index = pd.Index(np.arange(100) * 3 + 1, name=index_name)
    left.set_axis(index).to_parquet(tmp_path / "l.parquet")
    right.set_axis(index).to_parquet(tmp_path / "p.parquet")
    stored = "__index_level_0__" if index_name is None else index_name
    assert stored in pq.read_schema(tmp_path / "l.parquet").names
    doc, stderr = assert_mean([str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")], vectors[2], [100, 8])
    assert f"using column {stored!r} as row ids" in stderr
    assert doc["ids"][:2] == [1, 4]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_polars_exports(tmp_path: Path, vectors, ext: str) -> None:
    pl = pytest.importorskip("polars")
    labels, predictions, mean = vectors
    lpath, ppath = tmp_path / f"l.{ext}", tmp_path / f"p.{ext}"
    left = pl.DataFrame(labels, schema=COLUMNS).with_row_index("id")
    right = pl.DataFrame(predictions, schema=COLUMNS).with_row_index("id").select(["id", *COLUMNS[::-1]])
    for frame, path in ((left, lpath), (right, ppath)):
        frame.write_csv(path) if ext == "csv" else frame.write_parquet(path)
    assert_mean([str(lpath), str(ppath)], mean, [100, 8])
    # polars' own default names (column_0, ...) of a frame made from an array
    pl.DataFrame(labels).write_csv(lpath) if ext == "csv" else pl.DataFrame(labels).write_parquet(lpath)
    pl.DataFrame(predictions).write_csv(ppath) if ext == "csv" else pl.DataFrame(predictions).write_parquet(ppath)
    assert_mean([str(lpath), str(ppath)], mean, [100, 8])


# ------------------------------------------------------------ rule 5: batch


def test_batch_applies_the_same_rules_per_pair(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    (tmp_path / "labels").mkdir()
    (tmp_path / "predictions").mkdir()
    left.to_csv(tmp_path / "labels" / "a.csv", index=False)
    right[COLUMNS[::-1]].to_csv(tmp_path / "predictions" / "a.csv", index=False)
    left.assign(id=range(100)).to_parquet(tmp_path / "labels" / "b.parquet")
    right.assign(id=range(100)).to_parquet(tmp_path / "predictions" / "b.parquet")
    pd.DataFrame(vectors[0]).to_csv(tmp_path / "labels" / "c.csv")
    pd.DataFrame(vectors[1]).to_csv(tmp_path / "predictions" / "c.csv")
    left.assign(id=range(100)).to_parquet(tmp_path / "labels" / "d.parquet")
    right.assign(id=range(100)[::-1]).to_parquet(tmp_path / "predictions" / "d.parquet")
    left.assign(id=range(100)).to_parquet(tmp_path / "labels" / "e.parquet")
    right.assign(id=[*range(99), 1000]).to_parquet(tmp_path / "predictions" / "e.parquet")
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--json", "-q"])
    assert result.exit_code == ExitStatus.DATA_ERROR  # the pair e failed
    pairs = {pair["name"]: pair for pair in json.loads(result.stdout)["pairs"]}
    for name in "abc":
        assert pairs[name]["status"] == "ok" and pairs[name]["mean"] == pytest.approx(vectors[2], rel=1e-6)
    reversed_mean = reference_losses(vectors[0], vectors[1][::-1]).mean()  # d's ids say its rows are reversed
    assert pairs["d"]["status"] == "ok" and pairs["d"]["mean"] == pytest.approx(reversed_mean, rel=1e-6)
    assert pairs["e"]["status"] == "error" and "their ids differ" in pairs["e"]["error"]


# ------------------------------------------------------------ papercuts


@pytest.mark.parametrize("name", ["folder", "folder.csv"])
def test_a_directory_is_a_usage_error_whatever_its_name(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    refused(["compute", str(tmp_path / name), str(tmp_path / name)], ExitStatus.USAGE_ERROR, "is a directory", "batch")


def test_semicolon_and_decimal_comma_csv_is_detected(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.to_csv(tmp_path / "l.csv", sep=";", decimal=",", index=False)
    right.to_csv(tmp_path / "p.csv", sep=";", decimal=",", index=False)
    _, stderr = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], vectors[2], [100, 8])
    assert "read as ';'-separated with decimal commas" in stderr


def test_delimiter_and_decimal_options(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.to_csv(tmp_path / "l.csv", sep="|", decimal=",", index=False)
    right.to_csv(tmp_path / "p.csv", sep="|", decimal=",", index=False)
    args = [str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--delimiter", "|", "--decimal", ","]
    assert_mean(args, vectors[2], [100, 8])
    refused(["compute", *args[:2], "--delimiter", "||"], ExitStatus.USAGE_ERROR, "one character")


def test_field_count_error_names_the_separator(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b\n1;2\n")
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    refused(
        ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv")],
        ExitStatus.DATA_ERROR,
        "line 2 has 1 fields, expected 2 (separator ','; the line holds ';': try --delimiter ';')",
    )


def test_nan_errors_name_the_file_line_past_empty_lines(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b\n1,2\n\n3,4\n5,\n")
    (tmp_path / "p.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    refused(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv")], ExitStatus.DATA_ERROR, "line 5, column 'b'")


# ------------------------------------------------------------ the library


def test_compute_files_takes_keyword_options(tmp_path: Path, vectors) -> None:
    labels, predictions, _ = vectors
    left, right = frames(vectors)
    left.assign(name=[f"r{i}" for i in range(100)]).to_csv(tmp_path / "l.csv", index=False)
    right.assign(name=[f"r{i}" for i in range(100)]).to_csv(tmp_path / "p.csv", index=False)
    result = compute_files(str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), id_column="name", columns="f0,f1")
    np.testing.assert_allclose(result.losses, reference_losses(labels[:, :2], predictions[:, :2]), atol=1e-8)
    assert list(result.ids[:2]) == ["r0", "r1"] and result.id_column == "name"
    with pytest.raises(TypeError, match="unexpected keyword argument 'idcolumn'"):
        compute_files(str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), idcolumn="name")


def test_loss_result_to_frame_and_no_shadowed_tuple_methods(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.assign(id=range(100)).to_parquet(tmp_path / "l.parquet")
    right.assign(id=range(100)).to_parquet(tmp_path / "p.parquet")
    result = compute_files(str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"))
    frame = result.to_frame()
    assert list(frame.columns) == ["loss"] and frame.index.name == "id" and list(frame.index[:2]) == [0, 1]
    assert frame["loss"].mean() == pytest.approx(vectors[2], rel=1e-6)
    assert not {"index", "count"} & set(LossResult._fields)
    assert result.notes == (
        f"{tmp_path / 'l.parquet'}: using column 'id' as row ids, not data (--no-detect-ids reads it as data)",
        result.notes[1],
    )


def test_cosine_loss_pairs_dataframe_columns_by_name_and_keeps_the_index(vectors) -> None:
    labels, predictions, mean = vectors
    index = pd.Index([f"doc-{i}" for i in range(100)], name="doc")
    left = pd.DataFrame(labels, columns=COLUMNS, index=index)
    right = pd.DataFrame(predictions, columns=COLUMNS, index=index)[COLUMNS[::-1]]
    losses = cosine_loss(left, right)
    assert isinstance(losses, pd.Series) and losses.index.equals(index)
    np.testing.assert_allclose(losses.to_numpy(), reference_losses(labels, predictions), rtol=1e-6)
    assert losses.to_frame().index.name == "doc"
    assert cosine_loss(left, right, reduction="mean") == pytest.approx(mean, rel=1e-6)
    # rows listed in another order are matched by the index, as the CLI matches them by id
    pd.testing.assert_series_equal(cosine_loss(left, right.iloc[::-1]), losses)
    with pytest.raises(Exception, match="index values differ at position 0"):  # every row needs its partner
        cosine_loss(left, right.iloc[::-1].rename(index={"doc-99": "doc-100"}))


def test_cosine_loss_id_columns_and_series_of_vectors(vectors) -> None:
    labels, predictions, mean = vectors
    left = pd.DataFrame(labels, columns=COLUMNS).assign(id=np.arange(100) + 10)
    right = pd.DataFrame(predictions, columns=COLUMNS).assign(id=np.arange(100) + 10)
    losses = cosine_loss(left, right)
    assert list(losses.index[:2]) == [10, 11] and losses.mean() == pytest.approx(mean, rel=1e-6)
    series = cosine_loss(pd.Series(list(labels)), pd.Series([list(map(float, p)) for p in predictions]))
    assert series.mean() == pytest.approx(mean, rel=1e-6)
    with pytest.raises(Exception, match="id column values differ"):
        cosine_loss(left, right.assign(id=np.arange(100)))


def test_other_id_like_columns_stay_out_beside_an_explicit_id_column(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    for frame, path in ((left, tmp_path / "l.parquet"), (right, tmp_path / "p.parquet")):
        frame.assign(name=[f"n{i}" for i in range(100)], user_id=np.arange(100)).to_parquet(path, index=False)
    args = [str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--id-column", "name"]
    doc, stderr = assert_mean(args, vectors[2], [100, 8])
    assert doc["ids"][:1] == ["n0"] and "column 'user_id' looks like ids: not used as data" in stderr


def test_ids_from_csv_text_and_parquet_numbers_compare_as_text(tmp_path: Path, vectors) -> None:
    left, right = frames(vectors)
    left.assign(id=np.arange(100)).to_csv(tmp_path / "l.csv", index=False)  # CSV ids are read as text
    right.assign(id=np.arange(100)).to_parquet(tmp_path / "p.parquet", index=False)
    assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.parquet")], vectors[2], [100, 8])
    right.assign(id=np.arange(100)[::-1]).to_parquet(tmp_path / "p.parquet", index=False)
    reversed_mean = reference_losses(vectors[0], vectors[1][::-1]).mean()
    _, stderr = assert_mean([str(tmp_path / "l.csv"), str(tmp_path / "p.parquet")], reversed_mean, [100, 8])
    assert "rows matched by id (column 'id')" in stderr


def test_a_decimal_mark_that_is_the_separator_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("a,b\n1,2\n")
    refused(
        ["compute", str(tmp_path / "l.csv"), str(tmp_path / "l.csv"), "--decimal", ","],
        ExitStatus.USAGE_ERROR,
        "the decimal mark ',' is also the field separator",
    )
