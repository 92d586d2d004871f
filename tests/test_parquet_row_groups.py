"""Parquet files of one large row group, as ``pq.write_table`` and ``df.to_parquet`` write them.

Such a row group's columns are decoded whole, page by page; read row-wise they were all
held at once (more memory than the file). Numeric columns are now read a slab of
columns at a time (``readers.parquet.ColumnSlabs``): these tests check that path's
numbers, ids and errors against the reference, with the threshold lowered so that small
files take it, and its memory on a file of 140 MB under an address-space limit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.io import parquet
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses
from tests.test_wide_lines import limited


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row group counts as large: the slab path reads the small files of these tests."""
    monkeypatch.setattr(parquet, "_WHOLE_GROUP_BYTES", 0)


def _frame(values: np.ndarray, order: list[int] | None = None) -> pd.DataFrame:
    columns = {f"c{i}": values[:, i] for i in range(values.shape[1])}
    if order is not None:
        columns = {f"c{i}": values[:, i] for i in order}
    return pd.DataFrame(columns)


@pytest.mark.usefixtures("small_threshold")
def test_one_row_group_by_column_slabs_matches_the_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    labels = rng.standard_normal((300, 40)).astype(np.float32)
    predictions = rng.standard_normal((300, 40))
    labels[5] = 0.0  # a zero vector: loss 1
    predictions[7] *= 1e200  # a vector whose squares overflow: rescaled
    frame = _frame(labels)
    frame.insert(0, "id", [f"r{i}" for i in range(300)])
    frame.to_parquet(tmp_path / "l.parquet", index=False)
    other = _frame(predictions, order=list(reversed(range(40))))  # the same names in another order
    other.insert(0, "id", [f"r{i}" for i in range(300)])
    pq.write_table(pa.Table.from_pandas(other, preserve_index=False), tmp_path / "p.parquet")
    result = run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--json", "--top", "2"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    expected = reference_losses(labels, predictions, axis=1)
    np.testing.assert_allclose(document["losses"], expected, rtol=1e-12, atol=1e-15)
    assert document["zero_vectors"] == 1
    assert document["worst"][0]["id"] == f"r{int(np.argmax(expected))}"


@pytest.mark.usefixtures("small_threshold")
@pytest.mark.parametrize("side", ["labels", "predictions"])
def test_a_nan_is_named_by_its_row_and_column(tmp_path: Path, side: str) -> None:
    values = np.ones((50, 20))
    bad = values.copy()
    bad[30, 17] = np.nan
    bad[31, 2] = np.inf  # a later row: not the first
    paths = {}
    for name, array in (("labels", values), ("predictions", values)):
        paths[name] = tmp_path / f"{name}.parquet"
        _frame(bad if name == side else array).to_parquet(paths[name], index=False)
    result = run_cli(["compute", str(paths["labels"]), str(paths["predictions"])])
    assert result.exit_code == 1
    assert f"{side}.parquet: row 30, column 'c17' is NaN" in result.stderr
    omitted = run_cli(["compute", str(paths["labels"]), str(paths["predictions"]), "--nan-policy", "omit", "--json"])
    assert json.loads(omitted.stdout)["omitted"] == 2


@pytest.mark.usefixtures("small_threshold")
def test_row_groups_of_other_sizes_take_the_row_wise_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    labels, predictions = rng.standard_normal((2, 200, 12))
    pq.write_table(pa.Table.from_pandas(_frame(labels)), tmp_path / "l.parquet", row_group_size=64)
    pq.write_table(pa.Table.from_pandas(_frame(predictions)), tmp_path / "p.parquet", row_group_size=100)
    result = run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--json"])
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(
        json.loads(result.stdout)["losses"], reference_losses(labels, predictions, axis=1), rtol=1e-12
    )


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_a_row_group_of_140_mb_fits_in_a_gibibyte(tmp_path: Path) -> None:
    """Read row-wise, this file's row group took 560 MB per file; the pair did not fit in 1 GiB."""
    rng = np.random.default_rng(13)
    values = np.asfortranarray(rng.standard_normal((140_000, 256), dtype=np.float32))
    path = tmp_path / "big.parquet"
    # pq.write_table's one row group; plain and uncompressed only to write it quickly
    # (its columns are still one page each, decoded whole).
    table = pa.table({f"f{i}": values[:, i] for i in range(256)})
    pq.write_table(table, path, use_dictionary=False, compression="none")
    assert pq.read_metadata(path).num_row_groups == 1
    proc = run_executable(["compute", str(path), str(path), "--json", "--no-losses"], preexec_fn=limited())
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["count"] == 140_000
    assert document["max"] == pytest.approx(0.0, abs=1e-12)
