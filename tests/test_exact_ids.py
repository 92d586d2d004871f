"""Ids compared exactly: integers above 2**53 against floats, nulls and empty cells.

float64 has 53 bits of mantissa: through it, 2**53 + 1 and 2**53 are one number, so an
int64 id could match a float id it is not equal to, and two distinct int64 ids could
look like one id given twice. These tests write such ids with pyarrow and pandas and
check the pairing against a plain-Python dict join (whose ``==`` and ``hash`` are exact
across int and float).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli import compute_files
from cosloss_cli.errors import DataError

from .conftest import property_settings, run_cli, run_executable
from .oracle import reference_losses

BIG = 2**53


def run(args: list[str], executable: bool = False) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``cosloss ARGS``: the real executable, or in-process (faster)."""
    if executable:
        done = run_executable(args)
        return done.returncode, done.stdout, done.stderr
    result = run_cli(args)
    return result.exit_code, result.stdout, result.stderr


def write_ids(path: Path, ids: list[Any], id_type: pa.DataType, vectors: np.ndarray) -> Path:
    """A Parquet file of an id column of ``id_type`` (None as null) and two feature columns."""
    table = pa.table({"id": pa.array(ids, id_type), "a": vectors[:, 0], "b": vectors[:, 1]})
    pq.write_table(table, path)
    return path


def unit_rows(count: int) -> np.ndarray:
    """Rows no two of which have loss 0 against each other unless they are the same row."""
    angles = np.linspace(0.1, 1.4, count)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


@pytest.mark.parametrize("join", [["--join-on", "id"], []], ids=["join-on", "detected"])
def test_int64_ids_beyond_2_53_do_not_match_their_float_neighbours(tmp_path: Path, join: list[str]) -> None:
    """2**53 + 1 and 2**53 + 3 are no float64's value: nothing pairs (it did through float64)."""
    labels = write_ids(tmp_path / "labels.parquet", [BIG + 1, BIG + 3], pa.int64(), unit_rows(2))
    predictions = write_ids(tmp_path / "predictions.parquet", [float(BIG), float(BIG + 4)], pa.float64(), unit_rows(2))
    code, stdout, stderr = run(["compute", str(labels), str(predictions), "--json", *join], executable=bool(join))
    assert code == 1, stdout
    assert stderr.startswith("Error: ") and "no label id matches a prediction id" in stderr


def test_int64_and_float_ids_that_are_equal_still_match(tmp_path: Path) -> None:
    """2**53 as int64 and as float64 are the same number, and 2**53 + 1 has no partner."""
    vectors = unit_rows(3)
    labels = write_ids(tmp_path / "labels.parquet", [BIG + 1, BIG, 7], pa.int64(), vectors)
    predictions = write_ids(tmp_path / "predictions.parquet", [7.0, float(BIG)], pa.float64(), vectors[[2, 1]])
    code, stdout, stderr = run(["compute", str(labels), str(predictions), "--join-on", "id", "--json"])
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["count"] == 2 and document["mean"] == pytest.approx(0.0, abs=1e-15)
    assert document["unmatched"]["labels"] == 1 and document["unmatched"]["label_ids"] == [BIG + 1]


def test_distinct_int64_ids_beyond_2_53_are_not_a_duplicate(tmp_path: Path) -> None:
    """2**53 and 2**53 + 1 in one file, joined against float ids: two ids, not one given twice."""
    vectors = unit_rows(2)
    labels = write_ids(tmp_path / "labels.parquet", [1.0, float(BIG)], pa.float64(), vectors)
    predictions = write_ids(tmp_path / "predictions.parquet", [BIG + 1, BIG], pa.int64(), vectors[[0, 1]])
    result = run_executable(["compute", str(labels), str(predictions), "--join-on", "id", "--json"])
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["count"] == 1 and document["unmatched"] == {
        "labels": 1,
        "predictions": 1,
        "label_ids": [1.0],
        "prediction_ids": [BIG + 1],
    }


def test_int64_ids_against_uint64_ids_beyond_2_53(tmp_path: Path) -> None:
    """int64 and uint64 ids of a narrow range beyond 2**53: the table's and the search's keys are exact."""
    vectors = unit_rows(4)
    labels = write_ids(tmp_path / "labels.parquet", [BIG + 1, BIG + 3, BIG, BIG + 2], pa.int64(), vectors)
    prediction_ids = [BIG + 2, BIG + 1, 2**63 + 5]
    predictions = write_ids(tmp_path / "predictions.parquet", prediction_ids, pa.uint64(), vectors[[3, 0, 1]])
    result = compute_files(str(labels), str(predictions), join_on="id")
    assert result.label_rows is not None and result.label_rows.tolist() == [0, 3]
    np.testing.assert_allclose(result.losses, 0.0, atol=1e-15)
    assert result.unmatched is not None and result.unmatched.predictions == 1


@pytest.mark.parametrize("strict", [False, True], ids=["counted", "strict"])
def test_empty_csv_id_cells_match_nothing(tmp_path: Path, strict: bool) -> None:
    """Two empty id cells are two rows without an id, not one id: left out and counted, or (strict) refused."""
    (tmp_path / "labels.csv").write_text("id,a,b\n,1,0\n2,0,1\n")
    (tmp_path / "predictions.csv").write_text('id,a,b\n"",0,1\n2,0,1\n')
    args = ["compute", str(tmp_path / "labels.csv"), str(tmp_path / "predictions.csv"), "--join-on", "id", "--json"]
    code, stdout, stderr = run(args + (["--strict"] if strict else []), executable=strict)
    if strict:
        assert code == 1 and stdout == ""
        assert stderr.startswith("Error: ") and "line 2 has no id" in stderr
        return
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["count"] == 1 and document["mean"] == 0.0
    assert document["unmatched"]["labels"] == 1 and document["unmatched"]["predictions"] == 1


def test_a_parquet_null_id_is_refused_under_strict_naming_its_row(tmp_path: Path) -> None:
    vectors = unit_rows(3)
    labels = write_ids(tmp_path / "labels.parquet", [1, 2, 3], pa.int64(), vectors)
    predictions = write_ids(tmp_path / "predictions.parquet", [1, 2, None], pa.int64(), vectors)
    code, _, stderr = run(["compute", str(labels), str(predictions), "--join-on", "id", "--strict"])
    assert code == 1 and "row 2 has no id" in stderr


def test_parquet_int64_components_beyond_2_53_are_read_as_npy_ones(tmp_path: Path) -> None:
    """pyarrow's checked cast refused them; the float64 they round to is what NPY's reader uses."""
    values = np.array([[BIG + 1, 3], [1, BIG], [5, BIG + 3]], dtype=np.int64)
    other = np.array([[2, 3], [BIG + 7, 1], [BIG - 1, 1]], dtype=np.int64)
    for name, array in (("labels", values), ("predictions", other)):
        np.save(tmp_path / f"{name}.npy", array)
        pq.write_table(pa.table({"a": array[:, 0], "b": array[:, 1]}), tmp_path / f"{name}.parquet")
    parquet, npy = (
        run(["compute", str(tmp_path / f"labels.{ext}"), str(tmp_path / f"predictions.{ext}"), "--json"], real)
        for ext, real in (("parquet", True), ("npy", False))
    )
    assert parquet[0] == 0 and npy[0] == 0, parquet[2]
    losses = json.loads(parquet[1])["losses"]
    assert losses == json.loads(npy[1])["losses"]
    np.testing.assert_allclose(losses, reference_losses(values, other, axis=1), rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ the property

#: Ids near the edges of float64's and int64's exact ranges, and ordinary ones.
_POOL = [0, 1, 2, 7, -3, BIG - 1, BIG, BIG + 1, BIG + 2, BIG + 3, BIG + 4, 2**62, 2**63 - 1, 2**63, 2**63 + 1]
_TYPES = {"int64": pa.int64(), "uint64": pa.uint64(), "float64": pa.float64()}


def _stored(value: int | float, kind: str) -> int | float | None:
    """``value`` as a column of ``kind`` holds it (None when it cannot hold it)."""
    if kind == "float64":
        return float(value) if not isinstance(value, float) else value
    if isinstance(value, float) or not (
        (0 if kind == "uint64" else -(2**63)) <= value < (2**64 if kind == "uint64" else 2**63)
    ):
        return None
    return value


def _side(data: st.DataObject, kind: str, nulls: bool) -> list[Any]:
    """Unique stored ids of one file (unique as exact values), a few nulls among them if asked."""
    values = data.draw(st.lists(st.sampled_from([*_POOL, 0.5, 2.0**53, 2.0**63]), min_size=1, max_size=10))
    seen: dict[Any, None] = {}
    for value in values:
        stored = _stored(value, kind)
        if stored is not None:
            seen.setdefault(stored, None)
    ids: list[Any] = list(seen)
    if nulls and ids:
        at = data.draw(st.integers(0, len(ids)))
        ids.insert(at, None)
    return ids


@given(
    data=st.data(),
    label_kind=st.sampled_from(sorted(_TYPES)),
    prediction_kind=st.sampled_from(sorted(_TYPES)),
    nulls=st.booleans(),
)
@property_settings(40)
def test_the_join_pairs_the_rows_a_dict_of_exact_ids_pairs(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, label_kind: str, prediction_kind: str, nulls: bool
) -> None:
    """Mixed int64 / uint64 / float64 ids, huge ones and nulls: the rows a Python dict join pairs, no others."""
    label_ids = _side(data, label_kind, nulls)
    prediction_ids = _side(data, prediction_kind, nulls and data.draw(st.booleans()))
    if not label_ids or not prediction_ids:
        return
    folder = tmp_path_factory.mktemp("ids")
    label_vectors = unit_rows(len(label_ids))
    prediction_vectors = unit_rows(len(prediction_ids))[::-1].copy()
    labels = write_ids(folder / "labels.parquet", label_ids, _TYPES[label_kind], label_vectors)
    predictions = write_ids(folder / "predictions.parquet", prediction_ids, _TYPES[prediction_kind], prediction_vectors)
    where = {value: row for row, value in enumerate(prediction_ids) if value is not None}
    pairs = [(row, where[value]) for row, value in enumerate(label_ids) if value is not None and value in where]
    if not pairs:
        with pytest.raises(DataError, match="no label id matches"):
            compute_files(str(labels), str(predictions), join_on="id")
        return
    result = compute_files(str(labels), str(predictions), join_on="id")
    assert result.label_rows is not None
    assert result.label_rows.tolist() == [label for label, _ in pairs]
    expected = reference_losses(label_vectors[[p[0] for p in pairs]], prediction_vectors[[p[1] for p in pairs]], axis=1)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12, atol=1e-15)
    assert result.unmatched is not None
    assert result.unmatched.labels == len(label_ids) - len(pairs)
    assert result.unmatched.predictions == len(prediction_ids) - len(pairs)
