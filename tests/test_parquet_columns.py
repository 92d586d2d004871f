"""Parquet files of numeric columns: the column-major blocks give the same losses as rows.

The reader hands over each batch of columns as one column-major block, which the C
kernel sums down the columns with the same additions as a row-major block (the same
bits as the same values saved as .npy); row groups are decoded whole or streamed by
size. Files are written with pandas and pyarrow, as users write them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.io import ReadOptions, parquet
from cosloss_cli.pipeline import blocks
from cosloss_cli.pipeline.compute import compute_files
from cosloss_cli.pipeline.result import ComputeOptions

from .oracle import reference_losses

pytestmark = pytest.mark.usefixtures("each_kernel")

ROWS, WIDTH = 1_500, 19  # 19: not a multiple of the kernel's 8 lanes


def _vectors(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((ROWS, WIDTH)) * rng.uniform(0.01, 100.0, (ROWS, 1))).astype(np.float32)


def _write_pandas(path: Path, values: np.ndarray, row_group_size: int = 400) -> None:
    frame = pd.DataFrame({f"f{j}": values[:, j] for j in range(values.shape[1])})
    frame.to_parquet(path, row_group_size=row_group_size)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    labels, predictions = _vectors(1), _vectors(2)
    _write_pandas(tmp_path / "labels.parquet", labels)
    _write_pandas(tmp_path / "predictions.parquet", predictions)
    return tmp_path / "labels.parquet", tmp_path / "predictions.parquet", labels, predictions


def _losses(labels: Path, predictions: Path, block_bytes: int = 16_000, columns: list[str] | None = None) -> np.ndarray:
    """Small blocks: several per row group and blocks that straddle none (batches are cut per group)."""
    options = ReadOptions(block_bytes=block_bytes, columns=columns)
    result = compute_files(str(labels), str(predictions), options, ComputeOptions())
    return result.losses


def test_columns_give_the_bits_of_the_same_rows_as_npy(pair, tmp_path: Path) -> None:
    labels_path, predictions_path, labels, predictions = pair
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "predictions.npy", predictions)
    from_columns = _losses(labels_path, predictions_path)
    from_rows = _losses(tmp_path / "labels.npy", tmp_path / "predictions.npy")
    assert np.array_equal(from_columns, from_rows)
    np.testing.assert_allclose(from_columns, reference_losses(labels, predictions, axis=1), rtol=0, atol=1e-12)


def test_large_row_groups_are_streamed_with_the_same_results(pair, monkeypatch: pytest.MonkeyPatch) -> None:
    labels_path, predictions_path, labels, predictions = pair
    whole = _losses(labels_path, predictions_path)
    monkeypatch.setattr(parquet, "_WHOLE_GROUP_BYTES", 0)  # every row group counts as large
    # Read by slabs of columns (readers.parquet.ColumnSlabs): a row's sums are added slab
    # by slab, a different rounding from one pass over the row.
    by_slabs = _losses(labels_path, predictions_path)
    np.testing.assert_allclose(by_slabs, reference_losses(labels, predictions, axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(by_slabs, whole, rtol=1e-13, atol=1e-15)
    monkeypatch.setattr(blocks, "column_slabs", lambda *args: None)  # in record batches, row by row
    assert np.array_equal(_losses(labels_path, predictions_path), whole)


def test_mixed_column_types_are_widened_to_float64(tmp_path: Path) -> None:
    """int64 and float64 columns next to float32 ones: cast, then the same sums."""
    labels, predictions = _vectors(3), _vectors(4)
    integers = np.round(labels * 10)
    columns = {"f0": integers[:, 0].astype(np.int64), "f1": labels[:, 1].astype(np.float64)}
    columns |= {f"f{j}": labels[:, j] for j in range(2, WIDTH)}
    pq.write_table(pa.table(columns), tmp_path / "labels.parquet", row_group_size=300)
    _write_pandas(tmp_path / "predictions.parquet", predictions)
    expected_labels = labels.astype(np.float64)
    expected_labels[:, 0] = integers[:, 0]
    columns_in_order = [f"f{j}" for j in range(WIDTH)]  # an integer column beside floats: only when named
    losses = _losses(tmp_path / "labels.parquet", tmp_path / "predictions.parquet", columns=columns_in_order)
    np.testing.assert_allclose(losses, reference_losses(expected_labels, predictions, axis=1), rtol=0, atol=1e-12)


def test_nulls_are_nan_and_can_be_omitted(pair, tmp_path: Path) -> None:
    labels_path, _, labels, predictions = pair
    frame = pd.DataFrame({f"f{j}": predictions[:, j] for j in range(WIDTH)})
    frame.loc[7, "f3"] = None
    frame.to_parquet(tmp_path / "holes.parquet", row_group_size=400)
    result = compute_files(
        str(labels_path), str(tmp_path / "holes.parquet"), ReadOptions(), ComputeOptions(nan_policy="omit")
    )
    assert result.omitted.nonzero()[0].tolist() == [7]
    expected = reference_losses(labels, predictions, axis=1)
    kept = np.arange(ROWS) != 7
    np.testing.assert_allclose(result.losses[kept], expected[kept], rtol=0, atol=1e-12)


def test_reading_leaves_pyarrows_default_pool_as_it_was(pair) -> None:
    """jemalloc is used for the reader only: a library caller's own pool setting stays."""
    labels_path, predictions_path, _, _ = pair
    before = pa.default_memory_pool().backend_name
    _losses(labels_path, predictions_path)
    assert pa.default_memory_pool().backend_name == before


def test_readers_opened_on_several_threads_restore_the_pool(pair) -> None:
    labels_path, predictions_path, _, _ = pair
    before = pa.default_memory_pool().backend_name
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _losses(labels_path, predictions_path), range(8)))
    assert all(np.array_equal(r, results[0]) for r in results)
    assert pa.default_memory_pool().backend_name == before
