"""Parquet list columns decoded on several threads give what the one-thread reader gives.

The join decodes the predictions' row groups into one array on two threads, and the
labels' row groups on two threads with blocks handed over in file order
(``ReadOptions.decode_threads``). Block boundaries matter: the reduced loss sums the
losses block by block, so the blocks must be the same, not only the rows.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli import compute_files
from cosloss_cli.errors import DataError
from cosloss_cli.io import ReadOptions, open_source
from cosloss_cli.io import parquet as parquet_reader


def write_list_file(path: Path, rows: int, width: int, *, ids: Any = None, null_vector: int | None = None) -> None:
    """A list column of float32 vectors in uneven row groups (and an ``id`` column when given)."""
    values = np.random.default_rng(rows).standard_normal((rows, width), dtype=np.float32)
    mask = None if null_vector is None else pa.array(np.arange(rows) == null_vector)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), width, mask=mask)
    table = pa.table({"v": vectors} if ids is None else {"id": ids, "v": vectors})
    writer = pq.ParquetWriter(path, table.schema)
    start = 0
    for size in (37, 250, 1, 300, rows):  # uneven row groups, the last one the rest
        size = min(size, rows - start)
        if size > 0:
            writer.write_table(table.slice(start, size))
        start += size
    writer.close()


def blocks_of(path: Path, threads: int, block_bytes: int = 640) -> list[Any]:
    options = ReadOptions(id_column="id", block_bytes=block_bytes, decode_threads=threads)
    return list(open_source(str(path), options).blocks)


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param(lambda n: np.arange(n, dtype=np.int64) * 7, id="int64"),
        pytest.param(lambda n: [None if i == 3 else i for i in range(n)], id="int with a null"),
        pytest.param(lambda n: [f"doc-{i}" for i in range(n)], id="text"),
    ],
)
@pytest.mark.parametrize("lookahead", [1, 1 << 30])
def test_blocks_decoded_on_two_threads_are_the_sequential_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: Any, lookahead: int
) -> None:
    """Same boundaries, values, dtypes and ids, whether the later row groups wait or run ahead."""
    monkeypatch.setattr(parquet_reader, "_LOOKAHEAD_BYTES", lookahead)
    threads_used = []
    in_order = parquet_reader.in_order
    monkeypatch.setattr(parquet_reader, "in_order", lambda *a: threads_used.append(a[2]) or in_order(*a))
    path = tmp_path / "l.parquet"
    write_list_file(path, 900, 16, ids=ids(900), null_vector=400)
    sequential, parallel = blocks_of(path, 1), blocks_of(path, 2)
    assert threads_used == [2]
    assert [len(b) for b in parallel] == [len(b) for b in sequential]
    assert len(sequential) > 10
    for one, two in zip(sequential, parallel, strict=True):
        assert one.values.dtype == two.values.dtype
        np.testing.assert_array_equal(one.values, two.values)
        assert one.ids.dtype == two.ids.dtype
        if isinstance(ids(1), np.ndarray):  # int64 ids without nulls stay int64, not a Python int per row
            assert one.ids.dtype == np.int64
        assert [type(v) for v in one.ids] == [type(v) for v in two.ids]
        assert list(one.ids) == list(two.ids)


def test_a_bad_vector_in_a_later_row_group_is_reported_as_by_one_thread(tmp_path: Path) -> None:
    vectors = np.random.default_rng(1).standard_normal((700, 8)).tolist()
    vectors[650] = vectors[650][:-1]
    vectors[400] = vectors[400][:-2]  # the first one in file order is the one named
    table = pa.table({"id": np.arange(700), "v": pa.array(vectors, type=pa.list_(pa.float64()))})
    pq.write_table(table, tmp_path / "l.parquet", row_group_size=200)
    messages = []
    for threads in (1, 2):
        with pytest.raises(DataError) as caught:
            blocks_of(tmp_path / "l.parquet", threads)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "row 400 has a vector of length 6, expected 8" in messages[0]


def test_an_early_stop_ends_the_decoding_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet_reader, "_LOOKAHEAD_BYTES", 1)  # the later row groups wait for room
    path = tmp_path / "l.parquet"
    write_list_file(path, 900, 16, ids=np.arange(900))
    before = threading.active_count()
    blocks = open_source(str(path), ReadOptions(id_column="id", block_bytes=640, decode_threads=2)).blocks
    next(blocks)
    blocks.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_join_gives_the_same_result_whatever_the_labels_decoding_threads(tmp_path: Path, threads: int) -> None:
    """``threads`` sets the labels' decoding threads: the losses and the block-wise reduced loss bit for bit."""
    rows, width = 900, 16
    write_list_file(tmp_path / "l.parquet", rows, width, ids=np.arange(rows))
    order = np.random.default_rng(2).permutation(rows)[5:]  # shuffled, 5 label rows without a partner
    values = np.random.default_rng(3).standard_normal((rows, width), dtype=np.float32)[order]
    flat = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), width)
    pq.write_table(pa.table({"id": order, "v": flat}), tmp_path / "p.parquet", row_group_size=128)
    paths = str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")
    one = compute_files(*paths, join_on="id", threads=1, block_bytes=640)
    other = compute_files(*paths, join_on="id", threads=threads, block_bytes=640)
    np.testing.assert_array_equal(one.losses, other.losses)
    assert one.figures.loss == other.figures.loss and one.summary == other.summary
    assert list(one.ids) == list(other.ids) and one.unmatched == other.unmatched


@pytest.mark.parametrize("in_memory", [True, False])
def test_the_labels_use_two_threads_only_when_the_predictions_are_held_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool
) -> None:
    """Predictions spilled to a file (larger than the budget) keep the labels' one-thread memory."""
    from cosloss_cli.pairing import join

    if not in_memory:
        monkeypatch.setattr(join, "MAPPED_BUDGET_BYTES", 1024)
    threads_used = []
    in_order = parquet_reader.in_order
    monkeypatch.setattr(parquet_reader, "in_order", lambda *a: threads_used.append(a[2]) or in_order(*a))
    write_list_file(tmp_path / "l.parquet", 900, 16, ids=np.arange(900))
    write_list_file(tmp_path / "p.parquet", 900, 16, ids=np.arange(900)[::-1].copy())
    result = compute_files(str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), join_on="id", threads=2)
    assert result.summary.count == 900
    assert threads_used == ([2] if in_memory else [])


def test_each_label_block_is_summed_on_a_worker_thread_from_the_rows_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Predictions in memory: on the thread that decoded the labels' block; spilled to a file: on the pool's.

    Either way the prediction rows are read where they are held (the rows given to the
    sums, not a gathered copy), and the results are the same.
    """
    from cosloss_cli.pairing import join
    from cosloss_cli.pipeline import reducer

    write_list_file(tmp_path / "l.parquet", 900, 16, ids=np.arange(900))
    write_list_file(tmp_path / "p.parquet", 900, 16, ids=np.random.default_rng(1).permutation(900))
    paths = str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")
    calls: list[tuple[str, bool]] = []
    reduce = reducer.BlockReducer.reduce

    def recorded(self: Any, lblock: Any, pblock: Any, rows: Any = None) -> Any:
        calls.append((threading.current_thread().name, rows is not None))
        return reduce(self, lblock, pblock, rows)

    monkeypatch.setattr(reducer.BlockReducer, "reduce", recorded)
    held = compute_files(*paths, join_on="id", threads=2, block_bytes=640)
    assert len(calls) > 10 and all(name.startswith("cosloss-parquet") and in_place for name, in_place in calls)
    monkeypatch.setattr(join, "MAPPED_BUDGET_BYTES", 1024)  # spilled to a file, the labels read on one thread
    calls.clear()
    spilled = compute_files(*paths, join_on="id", threads=2, block_bytes=640)
    assert len(calls) > 10 and all(name.startswith("cosloss-block") and in_place for name, in_place in calls)
    np.testing.assert_array_equal(held.losses, spilled.losses)
    assert held.figures.loss == spilled.figures.loss and held.summary == spilled.summary


@pytest.mark.parametrize("slow_group", [0, 1, 3])
def test_label_row_groups_finished_out_of_order_give_the_one_thread_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_group: int
) -> None:
    """A row group summed after the ones behind it: results still taken in file order, bit for bit.

    Row groups 37, 250, 1, 300 and 312 rows; the decoder of ``slow_group`` waits before
    its first block, so the other thread decodes, looks up and sums the later ones first.
    """
    rows, width = 900, 16
    ids = np.arange(rows, dtype=np.int64)
    ids[5], ids[400] = -7, -8  # two label rows without a partner, in different row groups
    write_list_file(tmp_path / "l.parquet", rows, width, ids=ids)
    order = np.random.default_rng(4).permutation(rows)
    values = np.random.default_rng(5).standard_normal((rows, width), dtype=np.float32)
    flat = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), width)
    pq.write_table(pa.table({"id": order, "v": flat}), tmp_path / "p.parquet", row_group_size=128)
    paths = str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet")
    options = {"join_on": "id", "block_bytes": 640, "top": 5, "best": 5, "bins": 10}
    one = compute_files(*paths, threads=1, **options)

    finished: list[int] = []
    blocks = parquet_reader._RowGroupParts.blocks

    def late(self: Any, index: int) -> Any:
        if index == slow_group:
            time.sleep(0.3)
        yield from blocks(self, index)
        finished.append(index)

    monkeypatch.setattr(parquet_reader._RowGroupParts, "blocks", late)
    two = compute_files(*paths, threads=2, **options)
    assert finished != sorted(finished)  # the slow row group was done after a later one
    np.testing.assert_array_equal(one.losses, two.losses)
    assert (
        one.figures.loss == two.figures.loss
        and one.summary == two.summary
        and one.figures.percentiles == two.figures.percentiles
    )
    assert (one.figures.ci_low, one.figures.ci_high, one.figures.worst, one.figures.best) == (
        two.figures.ci_low,
        two.figures.ci_high,
        two.figures.worst,
        two.figures.best,
    )
    assert one.figures.histogram is not None and two.figures.histogram is not None
    np.testing.assert_array_equal(one.figures.histogram[1], two.figures.histogram[1])
    assert list(one.ids) == list(two.ids) and list(one.label_rows) == list(two.label_rows)
    assert one.unmatched == two.unmatched and one.unmatched.label_ids == (-7, -8)


def test_a_duplicated_prediction_id_is_reported_alike_on_any_number_of_threads(tmp_path: Path) -> None:
    """The index is built by whichever thread comes first; every thread that asks fails with its error."""
    write_list_file(tmp_path / "l.parquet", 900, 16, ids=np.arange(900))
    ids = np.arange(900)
    ids[700] = 3
    write_list_file(tmp_path / "p.parquet", 900, 16, ids=ids)
    messages = []
    for threads in (1, 2):
        with pytest.raises(DataError) as caught:
            compute_files(str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), join_on="id", threads=threads)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "id 3 appears more than once (row 3 and row 700)" in messages[0]


def test_label_blocks_of_missing_ids_before_the_first_id_match_nothing(tmp_path: Path) -> None:
    """The index takes the labels' kind of id from the first block that has one, not from a block of nulls."""
    rows = 900
    ids = [None if i < 300 else float(i) for i in range(rows)]  # float ids: the first row groups all null
    write_list_file(tmp_path / "l.parquet", rows, 16, ids=pa.array(ids, type=pa.float64()))
    write_list_file(tmp_path / "p.parquet", rows, 16, ids=np.arange(rows)[::-1].copy())
    for threads in (1, 2):
        result = compute_files(
            str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), join_on="id", threads=threads, block_bytes=640
        )
        assert result.summary.count == rows - 300
        assert result.unmatched.labels == 300 and result.unmatched.predictions == 300
        assert list(result.label_rows) == list(range(300, rows))


def test_a_reader_dropped_midway_does_not_hold_up_the_exit(tmp_path: Path) -> None:
    """Decoding threads waiting for room when the consumer is kept alive (a traceback) are daemons."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "l.parquet"
    write_list_file(path, 900, 16, ids=np.arange(900))
    script = textwrap.dedent(
        f"""
        from cosloss_cli.io import ReadOptions, open_source
        from cosloss_cli.io import parquet
        parquet._LOOKAHEAD_BYTES = 1  # the later row groups wait for room
        blocks = open_source({str(path)!r}, ReadOptions(id_column="id", block_bytes=640, decode_threads=2)).blocks
        next(blocks)  # then exit with the reader alive and its threads waiting
        print("done")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


@pytest.mark.parametrize("with_ids", [False, True])
def test_a_list_column_is_decoded_on_the_reading_thread_not_pyarrows_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_ids: bool
) -> None:
    """One column of vectors has nothing to spread over pyarrow's pool: no handoff per batch.

    Numeric columns still are (each column on a thread of the pool), and the values are
    the file's whatever the choice.
    """
    path = tmp_path / "vectors.parquet"
    write_list_file(path, 700, 8, ids=np.arange(700, dtype=np.int64) if with_ids else None)
    asked: list[bool] = []
    iter_batches = pq.ParquetFile.iter_batches

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("use_threads", True))
        return iter_batches(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording)
    blocks = blocks_of(path, threads=1)
    assert asked and not any(asked)
    expected = pq.read_table(path).column("v").combine_chunks().flatten().to_numpy().reshape(700, 8)
    np.testing.assert_array_equal(np.concatenate([block.values for block in blocks]), expected)

    asked.clear()
    wide = tmp_path / "columns.parquet"
    table = pa.table({f"c{k}": np.arange(300, dtype=np.float64) + k for k in range(4)})
    pq.write_table(table, wide, row_group_size=100)
    monkeypatch.setattr(parquet_reader, "_WHOLE_GROUP_BYTES", 0)  # streamed in batches, not whole
    values = np.concatenate([block.values for block in open_source(str(wide), ReadOptions(block_bytes=640)).blocks])
    assert asked and all(asked)
    np.testing.assert_array_equal(values, np.stack([table.column(k).to_numpy() for k in range(4)], axis=1))
