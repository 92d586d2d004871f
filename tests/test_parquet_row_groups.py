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
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli import ComputeOptions, compute_files
from cosloss_cli.core.cosine import block_sums, losses_from_sums
from cosloss_cli.io import parquet
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses
from tests.test_wide_lines import limited

#: Columns per slab in these tests: several slabs, as in the large files the path is for.
SLAB = 8


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row group counts as large: the slab path reads these tests' small files, :data:`SLAB` columns a slab."""
    monkeypatch.setattr(parquet, "_WHOLE_GROUP_BYTES", 0)
    init = parquet.ColumnSlabs.__init__

    def narrow(self: parquet.ColumnSlabs, *args: Any) -> None:
        init(self, *args)
        self.columns = SLAB

    monkeypatch.setattr(parquet.ColumnSlabs, "__init__", narrow)


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


def _slab_reference(labels: np.ndarray, predictions: np.ndarray, width: int) -> np.ndarray:
    """The losses of summing ``width`` columns at a time, each slab's sums merged by ``Sums.merge``."""
    merged = None
    for first in range(0, labels.shape[1], width):
        sums = block_sums(labels[:, first : first + width], predictions[:, first : first + width], 1)
        merged = sums if merged is None else merged.merge(sums)
    assert merged is not None
    return np.asarray(losses_from_sums(merged))


@pytest.mark.usefixtures("small_threshold")
@pytest.mark.parametrize("plain", [True, False])
def test_slabs_are_read_and_summed_on_two_threads_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: bool
) -> None:
    """The slabs go to both threads; their sums, added in place while plain, are those of ``Sums.merge``."""
    rng = np.random.default_rng(14)
    labels = rng.standard_normal((400, 60)).astype(np.float32)
    predictions = rng.standard_normal((400, 60))
    if not plain:  # plain slabs first, then slabs that are not (rescaled, a zero part), then plain again
        predictions[9, 30:36] = 1e200  # its squares overflow: rescaled
        labels[3, 40:48] = 0.0
    _frame(labels).to_parquet(tmp_path / "l.parquet", index=False)
    _frame(predictions).to_parquet(tmp_path / "p.parquet", index=False)
    threads: set[int] = set()
    read = parquet.ColumnSlabs.read

    def recorded(self: parquet.ColumnSlabs, group: int, first: int) -> tuple[np.ndarray, np.ndarray]:
        threads.add(threading.get_ident())
        time.sleep(0.01)  # each slab long enough for the other thread to take the next
        return read(self, group, first)

    monkeypatch.setattr(parquet.ColumnSlabs, "read", recorded)
    paths = str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")
    two = compute_files(*paths, options=ComputeOptions(axis=1, threads=2))
    assert len(threads) == 2
    one = compute_files(*paths, options=ComputeOptions(axis=1, threads=1))
    expected = _slab_reference(labels, predictions, SLAB)
    assert np.array_equal(two.losses, expected) and np.array_equal(one.losses, expected)
    np.testing.assert_allclose(two.losses, reference_losses(labels, predictions, axis=1), rtol=1e-12)


@pytest.mark.usefixtures("small_threshold")
def test_a_damaged_column_read_on_a_worker_thread_is_one_error_line(tmp_path: Path) -> None:
    values = np.random.default_rng(15).standard_normal((300, 40))
    path = tmp_path / "damaged.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(values)), path, compression="none", use_dictionary=False)
    # Garble the page header of a column of the fourth slab (8 columns a slab).
    offset = pq.read_metadata(path).row_group(0).column(30).data_page_offset
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xff" * 24)
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pandas(_frame(values)), good)
    done = run_cli(["compute", str(good), str(path)])
    assert done.exit_code == 1, done.stderr
    assert "damaged.parquet: cannot read row group data" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.usefixtures("small_threshold")
def test_row_groups_of_slabs_keep_their_ids_in_order(tmp_path: Path) -> None:
    """Each row group's slabs on the threads of its own pass; its ids and losses land at its rows."""
    rng = np.random.default_rng(16)
    labels, predictions = rng.standard_normal((2, 600, 30))
    ids = [f"r{i}" for i in range(600)]
    for name, values in (("l", labels), ("p", predictions)):
        table = pa.Table.from_pandas(_frame(values).assign(id=ids), preserve_index=False)
        pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=200)
    result = run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--json", "--top", "3"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    expected = reference_losses(labels, predictions, axis=1)
    np.testing.assert_allclose(document["losses"], expected, rtol=1e-12)
    assert [row["id"] for row in document["worst"]] == [f"r{i}" for i in np.argsort(-expected)[:3]]


@pytest.mark.usefixtures("small_threshold")
def test_many_row_groups_of_slabs_keep_a_few_files_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each row group's pass has threads of its own, each with readers of both files: closed after the pass."""
    rng = np.random.default_rng(17)
    labels, predictions = rng.standard_normal((2, 400, 24))
    for name, values in (("l", labels), ("p", predictions)):
        pq.write_table(pa.Table.from_pandas(_frame(values)), tmp_path / f"{name}.parquet", row_group_size=10)
    open_now: set[int] = set()
    most = 0

    class Counted(pq.ParquetFile):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            nonlocal most
            super().__init__(*args, **kwargs)
            open_now.add(id(self))
            most = max(most, len(open_now))

        def close(self, force: bool = False) -> None:
            open_now.discard(id(self))
            super().close(force=force)

    monkeypatch.setattr(pq, "ParquetFile", Counted)
    result = compute_files(str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), axis=1)
    np.testing.assert_allclose(result.losses, reference_losses(labels, predictions, axis=1), rtol=1e-12)
    assert most <= 8  # the two sources' own, and both files for each of at most three threads
