"""Every reader's blocks are one typed contract: ``io.base.BlockStream``, with the defaults of ``io.base.Blocks``.

Each format (and each way a format is read: mapped, streamed, gzip, wide, list cells,
row groups on threads, datasets, hive keys, columns paired by name) is opened through
``open_source`` on small files written with the libraries users write them with; its
blocks must satisfy the Protocol, hold the values written, and close.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.io import Block, Blocks, BlockStream, ReadOptions, Source, open_source
from cosloss_cli.io import npy as npy_reader
from cosloss_cli.io.formats import READERS
from cosloss_cli.pairing.align import pair_columns

ROWS, WIDTH = 12, 3
VALUES = np.arange(ROWS * WIDTH, dtype=np.float64).reshape(ROWS, WIDTH) / 8 + 1  # exact in every text format


def _frame() -> pd.DataFrame:
    return pd.DataFrame(VALUES, columns=[f"f{j}" for j in range(WIDTH)])


def _list_table(rows: int = ROWS) -> pa.Table:
    return pa.table({"vector": pa.array(VALUES[:rows].tolist(), type=pa.list_(pa.float64()))})


def _csv(tmp: Path) -> Path:
    _frame().to_csv(tmp / "a.csv", index=False)
    return tmp / "a.csv"


def _tsv(tmp: Path) -> Path:
    _frame().to_csv(tmp / "a.tsv", index=False, sep="\t")
    return tmp / "a.tsv"


def _npy(tmp: Path) -> Path:
    np.save(tmp / "a.npy", VALUES)
    return tmp / "a.npy"


def _npz(tmp: Path) -> Path:
    np.savez_compressed(tmp / "a.npz", values=VALUES)
    return tmp / "a.npz"


def _parquet(tmp: Path) -> Path:
    _frame().to_parquet(tmp / "a.parquet", index=False)
    return tmp / "a.parquet"


def _jsonl(tmp: Path) -> Path:
    _frame().to_json(tmp / "a.jsonl", orient="records", lines=True)
    return tmp / "a.jsonl"


def _json(tmp: Path) -> Path:
    _frame().to_json(tmp / "a.json", orient="records")
    return tmp / "a.json"


def _arrow(tmp: Path) -> Path:
    _frame().to_feather(tmp / "a.arrow")
    return tmp / "a.arrow"


def _hdf5(tmp: Path) -> Path:
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp / "a.h5", "w") as handle:
        handle["values"] = VALUES
    return tmp / "a.h5"


def _safetensors(tmp: Path) -> Path:
    numpy_safetensors = pytest.importorskip("safetensors.numpy")
    numpy_safetensors.save_file({"values": VALUES}, str(tmp / "a.safetensors"))
    return tmp / "a.safetensors"


#: One small file of every format, written as users write it.
FORMAT_FILES: dict[str, Callable[[Path], Path]] = {
    "csv": _csv,
    "tsv": _tsv,
    "npy": _npy,
    "npz": _npz,
    "parquet": _parquet,
    "jsonl": _jsonl,
    "json": _json,
    "arrow": _arrow,
    "hdf5": _hdf5,
    "safetensors": _safetensors,
}


def _npy_gz(tmp: Path) -> Path:
    np.save(tmp / "plain.npy", VALUES)
    (tmp / "a.npy.gz").write_bytes(gzip.compress((tmp / "plain.npy").read_bytes()))
    return tmp / "a.npy.gz"


def _npy_fortran(tmp: Path) -> Path:
    np.save(tmp / "a.npy", np.asfortranarray(VALUES))
    return tmp / "a.npy"


def _csv_list_cells(tmp: Path) -> Path:
    pd.DataFrame({"vector": [json.dumps(row) for row in VALUES.tolist()]}).to_csv(tmp / "a.csv", index=False)
    return tmp / "a.csv"


def _csv_wide(tmp: Path) -> Path:
    from cosloss_cli.io.wide import WIDE_COLUMNS

    wide = np.tile(VALUES[:, :1], (1, WIDE_COLUMNS + 1))
    pd.DataFrame(wide, columns=[f"c{j}" for j in range(wide.shape[1])]).to_csv(tmp / "a.csv", index=False)
    return tmp / "a.csv"


def _parquet_row_groups(tmp: Path) -> Path:
    pq.write_table(_list_table(), tmp / "a.parquet", row_group_size=4)
    return tmp / "a.parquet"


def _parquet_dataset(tmp: Path) -> Path:
    (tmp / "data").mkdir()
    _frame().iloc[:5].to_parquet(tmp / "data" / "part-0.parquet", index=False)
    _frame().iloc[5:].to_parquet(tmp / "data" / "part-1.parquet", index=False)
    return tmp / "data"


def _hive_dataset(tmp: Path) -> Path:
    for part, rows in ((1, slice(0, 5)), (2, slice(5, None))):
        folder = tmp / "data" / f"part={part}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"vector": _list_table().column("vector")[rows]}), folder / "a.parquet")
    return tmp / "data"


#: The other ways a format is read, each with its own blocks.
VARIANTS: dict[str, tuple[Callable[[Path], Path], ReadOptions]] = {
    "npy.gz streamed": (_npy_gz, ReadOptions()),
    "npy Fortran order": (_npy_fortran, ReadOptions()),
    "csv list cells": (_csv_list_cells, ReadOptions()),
    "csv wide": (_csv_wide, ReadOptions()),
    "parquet row groups on threads": (_parquet_row_groups, ReadOptions(decode_threads=2, block_bytes=4 * WIDTH * 8)),
    "parquet dataset": (_parquet_dataset, ReadOptions()),
    "hive keys as ids": (_hive_dataset, ReadOptions(id_column="part")),
}


def _check_stream(source: Source, expected: np.ndarray) -> None:
    """The blocks satisfy the Protocol, hold ``expected`` in order, and close."""
    blocks = source.blocks
    assert isinstance(blocks, BlockStream)
    assert isinstance(blocks, Blocks)
    assert isinstance(blocks.cheap, bool)
    read = list(blocks)
    assert read and all(isinstance(block, Block) for block in read)
    values = np.concatenate([np.asarray(block.values, dtype=np.float64) for block in read])
    np.testing.assert_array_equal(values[:, : expected.shape[1]], expected)
    blocks.close()
    blocks.close()  # closing twice is harmless


def test_every_format_has_a_file_here() -> None:
    assert set(FORMAT_FILES) == set(READERS)


@pytest.mark.parametrize("fmt", sorted(FORMAT_FILES))
def test_every_readers_blocks_satisfy_the_protocol(fmt: str, tmp_path: Path) -> None:
    path = FORMAT_FILES[fmt](tmp_path)
    _check_stream(open_source(str(path), ReadOptions()), VALUES)


def test_mapped_npy_blocks_satisfy_the_protocol_and_are_cheap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(npy_reader, "SMALL_FILE_BYTES", 0)  # past the one-read path of small files
    source = open_source(str(_npy(tmp_path)), ReadOptions(block_bytes=5 * WIDTH * 8))
    assert source.blocks.cheap and source.blocks.__length_hint__() == 3
    _check_stream(source, VALUES)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_way_of_reading_gives_blocks_that_satisfy_the_protocol(variant: str, tmp_path: Path) -> None:
    write, options = VARIANTS[variant]
    source = open_source(str(write(tmp_path)), options)
    expected = VALUES[:, :1] if variant == "csv wide" else VALUES
    _check_stream(source, expected)


def test_columns_paired_by_name_keep_the_protocol(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "labels.parquet", index=False)
    _frame()[["f2", "f0", "f1"]].to_parquet(tmp_path / "predictions.parquet", index=False)
    labels = open_source(str(tmp_path / "labels.parquet"), ReadOptions())
    predictions = open_source(str(tmp_path / "predictions.parquet"), ReadOptions())
    _, paired = pair_columns(labels, predictions, None)
    _check_stream(paired, VALUES)


def test_a_stream_that_cannot_do_more_says_so_with_the_defaults(tmp_path: Path) -> None:
    blocks = open_source(str(_csv(tmp_path)), ReadOptions()).blocks
    blocks.one_thread()
    assert blocks.map_on_decoders(len) is None
    assert blocks.all_rows(1 << 30) is None
    assert not blocks.cheap
    assert sum(len(block) for block in blocks) == ROWS
    empty = Blocks()
    assert list(empty) == [] and empty.__length_hint__() is NotImplemented


def test_a_parquet_files_row_groups_come_as_all_rows_in_one_block_before_the_first_block(tmp_path: Path) -> None:
    path = str(_parquet_row_groups(tmp_path))
    whole = open_source(path, ReadOptions()).blocks.all_rows(1 << 30)
    assert whole is not None
    (block,) = list(whole)
    np.testing.assert_array_equal(block.values, VALUES)

    started = open_source(path, ReadOptions(block_bytes=4 * WIDTH * 8)).blocks
    next(started)
    assert started.all_rows(1 << 30) is None  # the blocks have begun: every row is theirs now
    started.close()


def test_a_hive_keyed_dataset_decodes_on_one_thread_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The join's labels, predictions spilled: ``one_thread`` reaches the files under the key's ids."""
    started: list[str] = []
    start = threading.Thread.start

    def recording_start(self: threading.Thread) -> None:
        started.append(self.name)
        start(self)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    for part, rows in ((1, slice(0, 6)), (2, slice(6, None))):
        folder = tmp_path / "data" / f"part={part}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"vector": _list_table().column("vector")[rows]}), folder / "a.parquet", 3)
    options = ReadOptions(id_column="part", decode_threads=2, block_bytes=3 * WIDTH * 8)
    source = open_source(str(tmp_path / "data"), options)
    source.blocks.one_thread()
    read = list(source.blocks)
    assert [thread for thread in started if thread.startswith("cosloss-parquet")] == []
    np.testing.assert_array_equal(np.concatenate([block.values for block in read]), VALUES)
    assert [block.ids.tolist() for block in read] == [[1] * 3, [1] * 3, [2] * 3, [2] * 3]
