"""Rows matched by id (``--join-on``): shuffled, sharded, missing and extra rows.

Files are written the way users write them (pandas, pyarrow, polars); every number is
checked against the float64 reference of :mod:`tests.oracle` on the rows the ids pair
up, computed here from the arrays, not from cosloss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli import compare_files, compute_files
from cosloss_cli.errors import DataError, InputUsageError
from cosloss_cli.io import ReadOptions
from cosloss_cli.pairing import join as join_module
from cosloss_cli.pairing.join import _Spill
from cosloss_cli.pipeline.result import ComputeOptions
from cosloss_cli.status import ExitStatus

from .conftest import last_json_line_of, property_settings, run_cli
from .oracle import reference_losses

COLUMNS = [f"f{i}" for i in range(8)]
ROWS = 120


class Data:
    """Labels and predictions with ids: label row i has id ``ids[i]``; predictions row j id ``pids[j]``."""

    def __init__(self, seed: int = 12, rows: int = ROWS, dtype: Any = np.float32):
        # float64 for CSV: pandas writes float64 exactly (shortest repr), float32 only to 8 digits
        rng = np.random.default_rng(seed)
        self.labels = rng.normal(size=(rows, 8)).astype(dtype)
        self.truth = (self.labels + 0.2 * rng.normal(size=self.labels.shape)).astype(dtype)
        self.ids = np.arange(1000, 1000 + rows, dtype=np.int64)
        self.rng = rng

    def predictions(self, drop: int = 0, extra: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The predictions shuffled, without ``drop`` random rows, with ``extra`` rows of unknown ids."""
        order = self.rng.permutation(len(self.ids))[drop:]
        values, ids = self.truth[order], self.ids[order]
        if extra:
            values = np.vstack([values, self.rng.normal(size=(extra, 8)).astype(values.dtype)])
            ids = np.concatenate([ids, np.arange(-extra, 0)])
            shuffle = self.rng.permutation(len(ids))
            values, ids = values[shuffle], ids[shuffle]
        return values, ids

    def expected(self, prediction_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the reference losses of the label rows whose id the predictions have, those rows)."""
        rows = np.flatnonzero(np.isin(self.ids, prediction_ids))
        return reference_losses(self.labels[rows], self.truth[rows], axis=1), rows


def frame(values: np.ndarray, ids: Any, id_name: str = "id") -> pd.DataFrame:
    df = pd.DataFrame(values, columns=COLUMNS)
    df.insert(0, id_name, ids)
    return df


def list_table(values: np.ndarray, ids: Any) -> pa.Table:
    flat = pa.array(values.ravel())
    return pa.table({"id": ids, "v": pa.FixedSizeListArray.from_arrays(flat, values.shape[1])})


def assert_joined(result: Any, data: Data, prediction_ids: np.ndarray, *, labels_as_text: bool = False) -> None:
    expected, rows = data.expected(prediction_ids)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-9, atol=1e-12)
    assert result.summary.mean == pytest.approx(float(expected.mean()), rel=1e-12)
    ids = [str(i) for i in data.ids[rows]] if labels_as_text else data.ids[rows].tolist()
    assert list(result.ids) == ids  # the labels' order, the labels' ids as read
    np.testing.assert_array_equal(result.label_rows, rows)


# ------------------------------------------------------------------ the library


@pytest.mark.parametrize("writer", ["pandas", "pyarrow", "polars"])
def test_shuffled_predictions_with_missing_and_extra_rows(tmp_path: Path, writer: str) -> None:
    data = Data()
    values, ids = data.predictions(drop=7, extra=5)
    labels, predictions = tmp_path / "labels.parquet", tmp_path / "predictions.parquet"
    if writer == "pandas":
        frame(data.labels, data.ids).to_parquet(labels, index=False)
        frame(values, ids).to_parquet(predictions, index=False)
    elif writer == "pyarrow":
        pq.write_table(list_table(data.labels, data.ids), labels, row_group_size=50)
        pq.write_table(list_table(values, ids), predictions, row_group_size=17)  # sharded in row groups
    else:
        pl = pytest.importorskip("polars")
        pl.from_pandas(frame(data.labels, data.ids)).write_parquet(labels)
        pl.from_pandas(frame(values, ids)).write_parquet(predictions, row_group_size=30)
    result = compute_files(str(labels), str(predictions), join_on="id", block_bytes=1024)
    assert_joined(result, data, ids)
    assert result.unmatched.labels == 7 and result.unmatched.predictions == 5
    missing = [int(i) for i in data.ids if i not in set(ids.tolist())]
    assert list(result.unmatched.label_ids) == missing  # in the labels' order
    extra = [int(i) for i in ids if i < 0]
    assert list(result.unmatched.prediction_ids) == extra  # in the predictions' order


def test_csv_text_ids_match_parquet_integers(tmp_path: Path) -> None:
    data = Data(dtype=np.float64)
    values, ids = data.predictions(drop=3)
    frame(data.labels, data.ids).to_csv(tmp_path / "labels.csv", index=False)
    frame(values, ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    result = compute_files(str(tmp_path / "labels.csv"), str(tmp_path / "predictions.parquet"), join_on="id")
    assert_joined(result, data, ids, labels_as_text=True)
    assert result.unmatched.labels == 3


def test_text_ids_on_both_sides_and_leading_zeros_stay_text(tmp_path: Path) -> None:
    data = Data(dtype=np.float64)
    values, ids = data.predictions(extra=2)
    frame(data.labels, [f"doc-{i:05d}" for i in data.ids]).to_csv(tmp_path / "labels.csv", index=False)
    text = [f"doc-{i:05d}" for i in ids]
    frame(values, text).to_csv(tmp_path / "predictions.csv", index=False)
    result = compute_files(str(tmp_path / "labels.csv"), str(tmp_path / "predictions.csv"), join_on="id")
    expected, _ = data.expected(ids)
    np.testing.assert_allclose(result.losses, expected, rtol=1e-9)
    assert result.ids[0] == f"doc-{data.ids[0]:05d}"
    assert result.unmatched.predictions == 2 and result.unmatched.labels == 0


def test_a_key_column_of_another_name_and_csv_blocks(tmp_path: Path) -> None:
    data = Data(rows=400, dtype=np.float64)
    values, ids = data.predictions(drop=1)
    frame(data.labels, data.ids, "sample").to_csv(tmp_path / "labels.csv", index=False)
    frame(values, ids, "sample").to_csv(tmp_path / "predictions.csv.gz", index=False)
    result = compute_files(
        str(tmp_path / "labels.csv"), str(tmp_path / "predictions.csv.gz"), join_on="sample", block_bytes=2048
    )
    assert_joined(result, data, ids, labels_as_text=True)
    assert result.id_column == "sample"


def test_null_ids_match_nothing(tmp_path: Path) -> None:
    data = Data()
    label_ids = pd.array(data.ids, dtype="Int64")
    label_ids[5] = pd.NA
    prediction_ids = pd.array(data.ids, dtype="Int64")
    prediction_ids[9] = pd.NA
    frame(data.labels, label_ids).to_parquet(tmp_path / "labels.parquet", index=False)
    frame(data.truth, prediction_ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    result = compute_files(str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), join_on="id")
    rows = np.array([i for i in range(ROWS) if i not in (5, 9)])
    np.testing.assert_allclose(result.losses, reference_losses(data.labels[rows], data.truth[rows], axis=1))
    assert result.unmatched.labels == 2 and result.unmatched.predictions == 2
    assert None in result.unmatched.label_ids and None in result.unmatched.prediction_ids


@pytest.mark.parametrize("labels_format", ["csv", "parquet"], ids=["text against int", "int against int"])
def test_the_index_begun_on_its_own_thread_matches_and_refuses_as_when_built_on_demand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labels_format: str
) -> None:
    """The predictions' index is begun on a thread once they are kept (for their own kind of id).

    Labels of that kind use it; labels of another kind (CSV text against Parquet
    integers) get one built for the common kind; a duplicated prediction id is refused
    with the same message, raised where the labels ask for the index.
    """
    monkeypatch.setattr(join_module, "BACKGROUND_SIZE", 1)
    started: list[str] = []
    real_aside = join_module.aside
    monkeypatch.setattr(join_module, "aside", lambda work, **kw: started.append(kw["name"]) or real_aside(work, **kw))
    data = Data(dtype=np.float64)
    values, ids = data.predictions(drop=3, extra=2)
    labels = tmp_path / f"labels.{labels_format}"
    writer = frame(data.labels, data.ids)
    writer.to_csv(labels, index=False) if labels_format == "csv" else writer.to_parquet(labels, index=False)
    frame(values, ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    result = compute_files(str(labels), str(tmp_path / "predictions.parquet"), join_on="id")
    assert started == ["cosloss-lookup"]
    assert_joined(result, data, ids, labels_as_text=labels_format == "csv")
    assert result.unmatched.labels == 3 and result.unmatched.predictions == 2

    twice = ids.copy()
    twice[10] = twice[4]
    frame(values, twice).to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(DataError, match=f"id '?{int(twice[4])}'? appears more than once .row 4 and row 10."):
        compute_files(str(labels), str(tmp_path / "twice.parquet"), join_on="id")


@pytest.mark.parametrize("side", ["labels", "predictions"])
def test_a_duplicated_id_is_refused_naming_the_id_and_the_file(tmp_path: Path, side: str) -> None:
    data = Data()
    label_ids, prediction_ids = data.ids.copy(), data.ids.copy()
    (label_ids if side == "labels" else prediction_ids)[40] = data.ids[7]
    frame(data.labels, label_ids).to_csv(tmp_path / "labels.csv", index=False)
    frame(data.truth, prediction_ids).to_csv(tmp_path / "predictions.csv", index=False)
    with pytest.raises(DataError) as caught:
        compute_files(str(tmp_path / "labels.csv"), str(tmp_path / "predictions.csv"), join_on="id")
    message = str(caught.value)
    assert message.startswith(str(tmp_path / f"{side}.csv"))
    assert f"id '{data.ids[7]}' appears more than once (line 9 and line 42)" in message


@pytest.mark.parametrize(
    "twice, expected",
    [
        ({40: 7}, (7, 40)),  # matched, in different blocks
        ({6: 5}, (5, 6)),  # matched, in one block (of 4 rows)
        ({40: -5, 60: -5}, (40, 60)),  # an id the predictions lack, twice
        ({40: -5, 60: -5, 90: 7}, (40, 60)),  # both kinds: the first repeated one is named
        ({40: -5, 60: -5, 50: 7}, (7, 50)),
    ],
)
def test_a_duplicated_label_id_is_refused_matched_or_not(
    tmp_path: Path, twice: dict[int, int], expected: tuple[int, int]
) -> None:
    """The cheap tests before the sort of every key (used rows, unmatched keys) miss no duplicate."""
    data = Data()
    label_ids = data.ids.copy()
    for row, source in twice.items():
        label_ids[row] = data.ids[source] if source >= 0 else source
    frame(data.labels, label_ids).to_parquet(tmp_path / "labels.parquet", index=False)
    frame(data.truth, data.ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(DataError) as caught:
        compute_files(
            str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), join_on="id", block_bytes=256
        )
    first, second = expected
    assert f"id {label_ids[second]} appears more than once (row {first} and row {second})" in str(caught.value)


def test_strict_makes_unmatched_rows_an_error(tmp_path: Path) -> None:
    data = Data()
    values, ids = data.predictions(drop=2)
    frame(data.labels, data.ids).to_parquet(tmp_path / "labels.parquet", index=False)
    frame(values, ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(DataError, match="2 of the labels") as caught:
        compute_files(
            str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), join_on="id", strict=True
        )
    missing = [int(i) for i in data.ids if i not in set(ids.tolist())]
    assert f"(ids {missing[0]}, {missing[1]})" in str(caught.value)


def test_no_common_id_is_an_error_showing_both_sides(tmp_path: Path) -> None:
    data = Data()
    frame(data.labels, data.ids).to_parquet(tmp_path / "labels.parquet", index=False)
    frame(data.truth, [f"x{i}" for i in data.ids]).to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(DataError, match="no label id matches a prediction id") as caught:
        compute_files(str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), join_on="id")
    assert "labels have ids 1000, 1001, 1002, ..., predictions 'x1000', 'x1001'" in str(caught.value)


def test_npy_and_missing_columns_are_usage_errors(tmp_path: Path) -> None:
    data = Data()
    np.save(tmp_path / "labels.npy", data.labels)
    frame(data.truth, data.ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(InputUsageError, match="NPY has no id column"):
        compute_files(str(tmp_path / "labels.npy"), str(tmp_path / "predictions.parquet"), join_on="id")
    frame(data.labels, data.ids).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(InputUsageError, match=r"no column named 'key'.*columns: id, f0, f1"):
        compute_files(str(tmp_path / "labels.csv"), str(tmp_path / "predictions.parquet"), join_on="key")
    with pytest.raises(InputUsageError, match="name different columns"):
        compute_files(str(tmp_path / "labels.csv"), str(tmp_path / "predictions.parquet"), join_on="id", id_column="x")


def test_no_temporary_file_is_left_behind_also_on_errors(tmp_path: Path) -> None:
    data = Data()
    values, ids = data.predictions()
    spill = tmp_path / "tmp"
    spill.mkdir()
    frame(data.labels, data.ids).to_csv(tmp_path / "labels.csv", index=False)
    frame(values, ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    bad = frame(data.labels, data.ids)
    bad.loc[60, "f3"] = np.nan
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code = textwrap.dedent(
        """
        import sys
        from cosloss_cli import compute_files
        from cosloss_cli.errors import NonFiniteError
        print(compute_files(sys.argv[1], sys.argv[3], join_on="id").summary.count)
        try:
            compute_files(sys.argv[2], sys.argv[3], join_on="id")
        except NonFiniteError:
            print("refused")
        """
    )
    env = {**os.environ, "TMPDIR": str(spill)}
    args = [str(tmp_path / name) for name in ("labels.csv", "bad.csv", "predictions.parquet")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == [str(ROWS), "refused"]
    assert list(spill.iterdir()) == []


@pytest.mark.parametrize("rows_hint", [None, 4, 10], ids=["file", "memory-then-file", "memory"])
def test_spill_widens_its_dtype_when_a_later_block_needs_it(rows_hint: int | None) -> None:
    """A float64 block after float32 ones, and more rows than the file said: every value kept."""
    spill = _Spill(rows_hint)
    try:
        first = np.arange(6, dtype=np.float32).reshape(3, 2)
        later = np.array([[1e-40, 1e300]], dtype=np.float64)
        spill.append(first)
        spill.append(later)
        mapped = spill.mapped()
        assert mapped.dtype == np.float64
        np.testing.assert_array_equal(mapped, np.vstack([first.astype(np.float64), later]))
    finally:
        spill.close()


def test_ids_that_differ_without_a_join_are_matched_when_every_row_has_a_partner(tmp_path: Path) -> None:
    data = Data()
    values, ids = data.predictions(drop=0)
    pq.write_table(list_table(data.labels, data.ids), tmp_path / "labels.parquet")
    pq.write_table(list_table(values, ids), tmp_path / "predictions.parquet")
    result = compute_files(str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"))
    joined = compute_files(str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), join_on="id")
    np.testing.assert_array_equal(result.losses, joined.losses)
    assert "rows matched by id (column 'id'): the two files list them in different orders" in result.notes


def test_ids_that_differ_without_a_join_suggest_join_on(tmp_path: Path) -> None:
    data = Data()
    values, ids = data.predictions(drop=3)
    pq.write_table(list_table(data.labels, data.ids), tmp_path / "labels.parquet")
    pq.write_table(list_table(values, ids), tmp_path / "predictions.parquet")
    with pytest.raises(DataError, match="shapes differ.*match the rows by id with --join-on id"):
        compute_files(str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"))


def test_compare_pairs_the_models_on_rows_every_model_matched(tmp_path: Path) -> None:
    data = Data(dtype=np.float64)
    frame(data.labels, data.ids).to_parquet(tmp_path / "labels.parquet", index=False)
    first_values, first_ids = data.predictions(drop=4)
    second_values, second_ids = data.predictions(drop=6)
    frame(first_values, first_ids).to_parquet(tmp_path / "a.parquet", index=False)
    frame(second_values * 2, second_ids).to_csv(tmp_path / "b.csv", index=False)
    result = compare_files(
        str(tmp_path / "labels.parquet"),
        [str(tmp_path / "a.parquet"), str(tmp_path / "b.csv")],
        join_on="id",
        read_options=ReadOptions(),
        resamples=200,
    )
    both = np.flatnonzero(np.isin(data.ids, first_ids) & np.isin(data.ids, second_ids))
    expected = reference_losses(data.labels[both], data.truth[both], axis=1)
    np.testing.assert_array_equal(result.positions, both)
    np.testing.assert_allclose(result.losses["a"], expected, rtol=1e-9)
    np.testing.assert_allclose(result.losses["b"], expected, rtol=1e-6)  # 2x the vectors: the same cosines
    assert list(result.ids) == data.ids[both].tolist()
    document = result.to_json_dict(include_losses=False)
    assert [model["unmatched"]["labels"] for model in document["models"]] == [4, 6]
    with pytest.raises(DataError, match="no partner id"):
        compare_files(
            str(tmp_path / "labels.parquet"),
            [str(tmp_path / "a.parquet"), str(tmp_path / "b.csv")],
            options=ComputeOptions(join_on="id", strict=True),
            resamples=200,
        )


# ------------------------------------------------------------------ the command line


def test_cli_json_unmatched_and_warning(tmp_path: Path) -> None:
    data = Data(dtype=np.float64)
    values, ids = data.predictions(drop=3, extra=1)
    frame(data.labels, data.ids).to_csv(tmp_path / "labels.csv", index=False)
    frame(values, ids).to_parquet(tmp_path / "predictions.parquet", index=False)
    args = ["compute", str(tmp_path / "labels.csv"), str(tmp_path / "predictions.parquet"), "--join-on", "id"]
    result = run_cli([*args, "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    expected, rows = data.expected(ids)
    assert document["mean"] == pytest.approx(float(expected.mean()), rel=1e-12)
    missing = [str(i) for i in data.ids if i not in set(ids.tolist())]
    assert document["unmatched"] == {"labels": 3, "predictions": 1, "label_ids": missing, "prediction_ids": [-1]}
    assert document["ids"] == [str(i) for i in data.ids[rows]]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        f"Warning: rows without a partner id left out: 3 of the labels (ids '{missing[0]}', '{missing[1]}', "
        f"'{missing[2]}'), 1 of the predictions (ids -1)"
    ]
    quiet = run_cli([*args, "--json", "-q"])
    assert quiet.stderr == ""
    strict = run_cli([*args, "--strict"])
    assert strict.exit_code == ExitStatus.DATA_ERROR
    assert "some rows have no partner id (--strict): 3 of the labels" in strict.stderr


def test_cli_usage_errors(tmp_path: Path) -> None:
    data = Data()
    np.save(tmp_path / "labels.npy", data.labels)
    frame(data.truth, data.ids).to_csv(tmp_path / "predictions.csv", index=False)
    result = run_cli(["compute", str(tmp_path / "labels.npy"), str(tmp_path / "predictions.csv"), "--join-on", "id"])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "NPY has no id column" in result.stderr
    result = run_cli(
        ["compute", str(tmp_path / "predictions.csv"), str(tmp_path / "predictions.csv"), "--join-on", "nope"]
    )
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "no column named 'nope' to match rows by (--join-on) (columns: id, f0, f1" in result.stderr


def test_cli_duplicate_is_exit_1(tmp_path: Path) -> None:
    data = Data()
    ids = data.ids.copy()
    ids[3] = ids[2]
    frame(data.labels, data.ids).to_csv(tmp_path / "labels.csv", index=False)
    frame(data.truth, ids).to_csv(tmp_path / "predictions.csv", index=False)
    result = run_cli(["compute", str(tmp_path / "labels.csv"), str(tmp_path / "predictions.csv"), "--join-on", "id"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert f"predictions.csv: id '{ids[2]}' appears more than once (line 4 and line 5)" in result.stderr


def test_batch_joins_each_pair(tmp_path: Path) -> None:
    data = Data()
    (tmp_path / "labels").mkdir()
    (tmp_path / "predictions").mkdir()
    expected = {}
    for name, drop in (("a", 0), ("b", 5)):
        values, ids = data.predictions(drop=drop)
        frame(data.labels, data.ids).to_parquet(tmp_path / "labels" / f"{name}.parquet", index=False)
        frame(values, ids).to_parquet(tmp_path / "predictions" / f"{name}.parquet", index=False)
        expected[name] = (float(data.expected(ids)[0].mean()), drop)
    args = ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--join-on", "id", "-j", "1"]
    result = run_cli([*args, "--json", "--min-matched", "0"])  # batch's default is 1: every row matched
    assert result.exit_code == ExitStatus.OK, result.stderr
    pairs = {pair["name"]: pair for pair in json.loads(result.stdout)["pairs"]}
    for name, (mean, drop) in expected.items():
        assert pairs[name]["mean"] == pytest.approx(mean, rel=1e-12)
        assert pairs[name]["unmatched"]["labels"] == drop
    assert "Warning: 1 pair(s) left out rows without a partner id (--join-on): b" in result.stderr
    strict = run_cli([*args, "--json", "--strict"])
    assert strict.exit_code == ExitStatus.DATA_ERROR
    pairs = {pair["name"]: pair for pair in json.loads(strict.stdout)["pairs"]}
    assert pairs["a"]["status"] == "ok" and pairs["b"]["status"] == "error"
    assert "no partner id (--strict)" in pairs["b"]["error"]


# ------------------------------------------------------------------ memory


_MEASURE = textwrap.dedent(
    """
    import json, sys
    from cosloss_cli.pairing import join
    from cosloss_cli.pipeline.blocks import ComputeOptions, _compute_sources, join_read_options

    join.MAPPED_BUDGET_BYTES = 1 << 20  # what a spill larger than memory gets: dropped after every block
    from cosloss_cli.io import ReadOptions, open_source

    labels, predictions = sys.argv[1], sys.argv[2]
    options = ComputeOptions(join_on="id", threads=2)
    read, _ = join_read_options(ReadOptions(block_bytes=256 * 1024), None, options)
    lsource, psource = open_source(labels, read), open_source(predictions, read)
    import numpy, pyarrow.parquet  # what the computation imports, before the baseline

    def status(field):
        with open("/proc/self/status") as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    before = status("VmRSS")
    result = _compute_sources(lsource, psource, options, read_options=read)
    print(json.dumps({"before": before, "after": status("VmHWM"), "count": result.summary.count}))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM and mmap accounting are Linux's")
def test_memory_stays_bounded_with_predictions_larger_than_the_budget(tmp_path: Path) -> None:
    """80,000 x 256 float32 a side (78 MB; 156 MB as float64), the spill's budget set below that.

    The predictions then go to the spill file and its pages are dropped after every block,
    as for predictions larger than the budget (256 MB by default).
    """
    rows, width = 80_000, 256
    rng = np.random.default_rng(3)
    ids = np.arange(rows, dtype=np.int64)
    order = rng.permutation(rows)
    for name, permutation in (("labels", np.arange(rows)), ("predictions", order)):
        writer = None
        for start in range(0, rows, 10_000):
            chunk = permutation[start : start + 10_000]
            values = np.random.default_rng(int(start)).standard_normal((len(chunk), width), dtype=np.float32)
            table = list_table(values, ids[chunk])
            writer = writer or pq.ParquetWriter(tmp_path / f"{name}.parquet", table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()
    report = last_json_line_of(_MEASURE, str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"))
    assert report["count"] == rows
    growth = report["after"] - report["before"]
    # Reading the two files takes 55-60 MB here (pyarrow's pools); holding the predictions'
    # 78 MB of vectors resident (in memory, or mapped and never dropped) made it 128 MB.
    assert growth < 100 * 1024 * 1024, f"peak RSS grew by {growth / 2**20:.0f} MB"


def test_spill_of_known_small_size_stays_in_memory_and_larger_goes_to_a_file() -> None:
    block = np.arange(8, dtype=np.float32).reshape(4, 2)
    for rows_hint, in_memory in ((8, True), (None, False)):
        spill = _Spill(rows_hint)
        try:
            spill.append(block)
            spill.append(block[::-1])
            assert (spill._chunks is not None) is in_memory
            np.testing.assert_array_equal(spill.mapped(), np.vstack([block, block[::-1]]))
            rows = np.array([7, 0, 3, 4, 4, 6])
            np.testing.assert_array_equal(spill.take(rows), np.vstack([block, block[::-1]])[rows])
        finally:
            spill.close()


def test_list_values_of_a_sliced_fixed_size_list_array() -> None:
    """The reader takes a fixed-size list's child values directly: a slice must give its own rows."""
    from cosloss_cli.io.parquet import list_values

    values = np.arange(24, dtype=np.float32)
    array = pa.FixedSizeListArray.from_arrays(pa.array(values), 4)
    np.testing.assert_array_equal(list_values(array.slice(2, 3), 4, 0, "x"), values.reshape(6, 4)[2:5])
    with_null = pa.FixedSizeListArray.from_arrays(pa.array(values), 4, mask=pa.array([False, True] * 3))
    got = list_values(with_null.slice(1, 2), 4, 0, "x")
    assert np.isnan(got[0]).all()
    np.testing.assert_array_equal(got[1], values[8:12])


@pytest.mark.parametrize("kind", ["int", "text", "int with a null", "list<double>", "list<int64>", "null vector"])
def test_predictions_row_groups_decoded_in_parallel_give_the_sequential_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The predictions' row groups decoded on two threads: the same losses to the last bit, in order."""
    from cosloss_cli.pipeline import blocks as pipeline

    data = Data(seed=5, rows=2_000)
    values, pids = data.predictions(drop=7, extra=5)
    ids: Any = pids
    label_ids: Any = data.ids
    if kind == "text":
        ids, label_ids = [f"doc-{i}" for i in pids], [f"doc-{i}" for i in data.ids]
    elif kind == "int with a null":
        ids = [None if i == 0 else int(v) for i, v in enumerate(pids)]
    if kind == "list<double>":
        column = pa.array(values.astype(np.float64).tolist(), type=pa.list_(pa.float64()))
        table = pa.table({"id": ids, "v": column})
    elif kind == "list<int64>":  # held as float64: the same values the kernel converts them to
        integers = (values * 2**40).astype(np.int64).tolist()
        table = pa.table({"id": ids, "v": pa.array(integers, type=pa.list_(pa.int64()))})
    elif kind == "null vector":  # float32 with a null vector: that row's NaN held as float32
        table = list_table(values, ids)
        mask = pa.array(np.arange(len(values)) == 1000)
        vectors = pa.FixedSizeListArray.from_arrays(
            table.column("v").combine_chunks().values, values.shape[1], mask=mask
        )
        table = table.set_column(1, "v", vectors)
    else:
        table = list_table(values, ids)
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=300)  # 7 row groups
    pq.write_table(list_table(data.labels, label_ids), tmp_path / "l.parquet", row_group_size=500)
    labels, predictions = str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")
    used: list[bool] = []
    original = pipeline._parallel_blocks

    def spy(source: Any) -> Any:
        blocks = original(source)
        used.append(blocks is not None)
        return blocks

    monkeypatch.setattr(pipeline, "_parallel_blocks", spy)
    policy = "omit" if kind == "null vector" else "raise"
    parallel = compute_files(labels, predictions, join_on="id", block_bytes=4096, nan_policy=policy)
    monkeypatch.setattr(pipeline, "_parallel_blocks", lambda source: None)
    sequential = compute_files(labels, predictions, join_on="id", block_bytes=4096, nan_policy=policy)
    assert used == [True]
    np.testing.assert_array_equal(parallel.losses, sequential.losses)
    assert parallel.summary == sequential.summary
    assert parallel.unmatched == sequential.unmatched
    if kind == "null vector":
        assert parallel.summary.omitted == 1
    assert list(parallel.ids) == list(sequential.ids)
    if kind != "int with a null":
        assert parallel.unmatched.predictions == 5 and parallel.unmatched.labels == 7
    reference_ids = np.asarray([i if i is not None else -(10**9) for i in ids]) if kind == "int with a null" else pids
    if kind not in ("text", "list<int64>", "null vector"):
        assert_joined(parallel, data, np.asarray(reference_ids))


def test_predictions_decoded_in_parallel_report_a_bad_row_as_the_sequential_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vector of the wrong length in a later row group: the same error, naming the same row."""
    from cosloss_cli.pipeline import blocks as pipeline

    data = Data(seed=9, rows=900)
    values, pids = data.predictions()
    vectors = values.astype(np.float64).tolist()
    vectors[700] = vectors[700][:-1]
    table = pa.table({"id": pids, "v": pa.array(vectors, type=pa.list_(pa.float64()))})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=200)
    pq.write_table(list_table(data.labels, data.ids), tmp_path / "l.parquet")
    messages = []
    for parallel in (True, False):
        if not parallel:
            monkeypatch.setattr(pipeline, "_parallel_blocks", lambda source: None)
        with pytest.raises(DataError) as caught:
            compute_files(str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), join_on="id")
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "row 700 has a vector of length 7, expected 8" in messages[0]


# ------------------------------------------------------------------ the index of the prediction ids


def _expected_rows(prediction_ids: list[int | None], label_ids: list[int | None]) -> list[int]:
    """The oracle: each label id's row among the predictions, -1 for none or a missing id."""
    where = {value: row for row, value in enumerate(prediction_ids) if value is not None}
    return [where.get(value, -1) if value is not None else -1 for value in label_ids]


def _id_array(values: list[int | None], dtype: str) -> np.ndarray:
    """Ids as a reader gives them: an integer array, or objects when one is missing."""
    return np.array(values, dtype=object) if None in values else np.array(values, dtype=dtype)


@given(
    data=st.data(),
    low=st.sampled_from([0, 1000, -50, 2**40]),
    spread=st.sampled_from([1, 3, 10**6]),
    label_dtype=st.sampled_from(["int64", "int32"]),
)
@property_settings(60)
def test_the_lookup_of_integer_ids_finds_each_ids_row(
    data: st.DataObject, low: int, spread: int, label_dtype: str
) -> None:
    """The binary search gives the rows a dict gives."""
    from cosloss_cli.pairing import join

    count = data.draw(st.integers(1, 60))
    pool = data.draw(st.lists(st.integers(0, count * spread), min_size=count, max_size=count, unique=True))
    prediction_ids = [low + offset for offset in data.draw(st.permutations(pool))]
    candidates = prediction_ids + [low - 1, low + count * spread + 1, None]
    if label_dtype == "int32":
        candidates = [v for v in candidates if v is None or -(2**31) <= v < 2**31]
    label_ids = data.draw(st.lists(st.sampled_from(candidates), max_size=40)) if candidates else []
    if label_dtype == "int32" and not label_ids:
        return
    keys = np.array(prediction_ids, dtype=np.int64)
    lookup = join._Lookup(keys, "int", source_of(keys))
    labels = _id_array(label_ids, label_dtype)
    rows = lookup.rows(lookup.keys(labels)) if len(labels) else np.empty(0, dtype=np.intp)
    assert rows.tolist() == _expected_rows(prediction_ids, label_ids)


def source_of(ids: np.ndarray) -> Any:
    """A stand-in for the predictions' source: only its name and row places are used, for errors."""

    class _Source:
        path = "predictions.parquet"

        def where(self, row: int) -> str:
            return f"row {row}"

    return _Source()


@pytest.mark.parametrize("ids", [[3, 1, 2, 1], [7, 7]], ids=["dense", "one id"])
def test_a_duplicated_prediction_id_in_the_table_is_refused_naming_both_rows(ids: list[int]) -> None:
    from cosloss_cli.pairing import join

    with pytest.raises(
        DataError, match=r"id 1 appears more than once \(row 1 and row 3\)|id 7 appears .*row 0 and row 1"
    ):
        join._Lookup(np.array(ids, dtype=np.int64), "int", source_of(np.array(ids)))


def test_unsigned_and_narrow_ids_of_either_side_match(tmp_path: Path) -> None:
    """uint64 predictions' ids against int32 labels' ones, through the files and the table."""
    data = Data()
    values, ids = data.predictions(drop=3)
    pq.write_table(list_table(data.labels, pa.array(data.ids, pa.int32())), tmp_path / "labels.parquet")
    pq.write_table(list_table(values, pa.array(ids, pa.uint64())), tmp_path / "predictions.parquet")
    result = compute_files(str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"), join_on="id")
    assert_joined(result, data, ids)
    assert result.unmatched.labels == 3 and result.unmatched.predictions == 0


@pytest.mark.parametrize("side", ["labels", "predictions"])
def test_a_nan_is_reported_at_its_own_files_row_when_rows_are_matched_by_id(tmp_path: Path, side: str) -> None:
    """Not at its place among the matched rows: label id 1 has no partner, the predictions are in reverse."""
    labels = pd.DataFrame({"id": [1, 2, 3, 4, 5], "a": [1.0, 3, 5, 7, 1], "b": [2.0, 4, 6, 8, 1]})
    predictions = pd.DataFrame({"id": [5, 4, 3, 2], "a": [1.0, 7, 5, 3], "b": [1.0, 8, 6, 4]})
    spoiled = labels if side == "labels" else predictions
    spoiled.loc[spoiled["id"] == 4, "b"] = np.nan  # labels line 5 (data row 3), predictions line 3 (row 1)
    labels.to_csv(tmp_path / "l.csv", index=False)
    predictions.to_csv(tmp_path / "p.csv", index=False)
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--join-on", "id"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    where = f"{tmp_path / 'l.csv'}: line 5" if side == "labels" else f"{tmp_path / 'p.csv'}: line 3"
    assert f"Error: {where}, column 'b' is NaN (or empty)" in result.stderr


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("side", ["labels", "predictions"])
def test_a_nan_in_parquet_vectors_is_reported_at_its_own_files_row(tmp_path: Path, side: str, threads: int) -> None:
    """Row groups decoded on one thread or on two (each block looked up and summed where it was decoded)."""
    data = Data(rows=600)
    values, ids = data.predictions(drop=40)
    labels = data.labels.copy()
    bad_id = int(ids[350])
    if side == "labels":
        labels[int(np.flatnonzero(data.ids == bad_id)[0]), 2] = np.inf
    else:
        values[350, 2] = np.nan
    pq.write_table(list_table(labels, data.ids), tmp_path / "l.parquet", row_group_size=100)
    pq.write_table(list_table(values, ids), tmp_path / "p.parquet", row_group_size=100)
    with pytest.raises(DataError) as caught:
        compute_files(str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), join_on="id", threads=threads)
    row = int(np.flatnonzero(data.ids == bad_id)[0]) if side == "labels" else 350
    value = "+Inf" if side == "labels" else "NaN (or empty)"
    assert f"row {row}, column 2 is {value}" in str(caught.value)
    assert caught.value.path == str(tmp_path / ("l.parquet" if side == "labels" else "p.parquet"))


def test_text_ids_are_matched_without_importing_pandas(tmp_path: Path) -> None:
    """Text ids (``doc-1``, what embedding APIs return) are found in a dict, not a pandas.Index."""
    data = Data(dtype=np.float64)
    values, ids = data.predictions(drop=2)
    text = [f"doc-{i}" for i in ids]
    pq.write_table(list_table(data.labels, [f"doc-{i}" for i in data.ids]), tmp_path / "labels.parquet")
    pq.write_table(list_table(values, text), tmp_path / "predictions.parquet")
    script = textwrap.dedent(
        """
        import json, sys
        from cosloss_cli import compute_files
        result = compute_files(sys.argv[1], sys.argv[2], join_on="id")
        print(json.dumps({"mean": result.summary.mean, "pandas": "pandas" in sys.modules}))
        """
    )
    report = last_json_line_of(script, str(tmp_path / "labels.parquet"), str(tmp_path / "predictions.parquet"))
    expected, _ = data.expected(ids)
    assert report["mean"] == pytest.approx(float(expected.mean()), rel=1e-12)
    assert report["pandas"] is False


def test_ids_that_are_lists_are_refused_as_ids(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"id": [[1, 2], [3], [4]], "a": [1.0, 2.0, 3.0], "b": [1.0, 0.0, 2.0]}), tmp_path / "l.parquet"
    )
    pq.write_table(
        pa.table({"id": [[3], [1, 2], [4]], "a": [1.0, 2.0, 3.0], "b": [1.0, 0.0, 2.0]}), tmp_path / "p.parquet"
    )
    result = run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--join-on", "id"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "has ids that are neither text nor numbers (such as '[3]')" in result.stderr
