"""A folder, a glob, a prefix or a Hugging Face folder read as ONE table of rows.

Shards are written by the tools that write them in the wild (pandas, polars'
``partition_by``, pyarrow.dataset, Spark-like names beside ``_SUCCESS``, a Hugging Face
``save_to_disk`` layout), cut at different rows on the two sides and shuffled, and the
mean is checked against the float64 reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from cosloss_cli import compute_files
from cosloss_cli.status import ExitStatus
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses

ROWS, WIDTH = 2600, 6


def vectors(seed: int = 0, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(rows, WIDTH))
    predictions = labels + rng.normal(scale=0.7, size=(rows, WIDTH))
    return np.arange(rows) * 7 + 3, labels, predictions


def reference_mean(labels: np.ndarray, predictions: np.ndarray) -> float:
    return float(reference_losses(labels, predictions).mean())


def shard_pandas(
    folder: Path, ids: np.ndarray | None, values: np.ndarray, rows: int, name: str = "part-{k}.parquet"
) -> list[Path]:
    """Write ``values`` (a list column ``v``) in shards of ``rows`` rows with pandas."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, start in enumerate(range(0, len(values), rows)):
        frame = pd.DataFrame({"v": list(values[start : start + rows])})
        if ids is not None:
            frame.insert(0, "id", ids[start : start + rows])
        path = folder / name.format(k=k)
        frame.to_parquet(path, index=False)
        written.append(path)
    return written


def json_mean(args: list[str]) -> tuple[float, dict[str, Any], str]:
    result = run_cli(["compute", *args, "--format", "json", "--no-losses"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    return doc["mean"], doc, result.stderr


def refused(args: list[str], status: ExitStatus, *fragments: str) -> str:
    result = run_cli(args)
    assert result.exit_code == status, (result.exit_code, result.stdout, result.stderr)
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return result.stderr


# ------------------------------------------------------------ matched across shards


def test_executable_joins_shards_cut_at_different_rows_by_their_shared_ids(tmp_path: Path) -> None:
    """1,000-row shards on one side, 750-row shards of the shuffled rows on the other: matched by id."""
    ids, labels, predictions = vectors()
    order = np.random.default_rng(1).permutation(ROWS)
    shard_pandas(tmp_path / "labels", ids, labels, 1000)
    shard_pandas(tmp_path / "predictions", ids[order], predictions[order], 750)
    (tmp_path / "labels" / "_SUCCESS").write_text("")
    done = run_executable(
        ["compute", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--format", "json", "--no-losses"]
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["count"] == ROWS
    assert doc["mean"] == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)
    assert "rows matched by id" in done.stderr


def test_join_on_across_every_file_of_both_sides(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(2)
    order = np.random.default_rng(3).permutation(ROWS)
    shard_pandas(tmp_path / "l", ids, labels, 1000)
    shard_pandas(tmp_path / "p", ids[order], predictions[order], 750)
    mean, doc, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p"), "--join-on", "id"])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)
    assert doc["unmatched"]["labels"] == 0 and doc["unmatched"]["predictions"] == 0


def test_rows_by_position_across_shards_cut_at_different_rows(tmp_path: Path) -> None:
    """Without ids, the same rows in the same order, cut at 1,000 and 750: paired by position."""
    _, labels, predictions = vectors(4)
    shard_pandas(tmp_path / "l", None, labels, 1000)
    shard_pandas(tmp_path / "p", None, predictions, 750)
    mean, doc, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p")])
    assert doc["count"] == ROWS
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_files_are_read_in_natural_order_of_their_paths(tmp_path: Path) -> None:
    """part-2 before part-10: a plain sort would pair rows with the wrong partners."""
    _, labels, predictions = vectors(5, rows=1200)
    shard_pandas(tmp_path / "l", None, labels, 100)  # part-0 ... part-11
    pq.write_table(pa.table({"v": list(predictions)}), tmp_path / "p.parquet")
    mean, _, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p.parquet")])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_a_quoted_glob_is_a_dataset(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(6)
    shard_pandas(tmp_path / "l", ids, labels, 1000)
    shard_pandas(tmp_path / "p", ids, predictions, 750)
    (tmp_path / "l" / "notes.txt").write_text("not data")  # left out by the glob
    mean, _, _ = json_mean([str(tmp_path / "l" / "*.parquet"), str(tmp_path / "p" / "part-*.parquet")])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_spark_names_and_bookkeeping_files_are_skipped(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(7)
    folder = tmp_path / "spark"
    shard_pandas(folder, ids, labels, 1000, name="part-{k:05d}-3f1c2a9e-c000.snappy.parquet")
    for name in ("_SUCCESS", "_metadata", "_common_metadata", ".part-00000-3f1c2a9e-c000.snappy.parquet.crc"):
        (folder / name).write_bytes(b"bookkeeping")
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "part-9.parquet").write_bytes(b"half written")
    pq.write_table(pa.table({"id": ids, "v": list(predictions)}), tmp_path / "p.parquet")
    mean, _, _ = json_mean([str(folder), str(tmp_path / "p.parquet")])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_pyarrow_write_dataset_with_row_limits(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(8)
    table = pa.table({"id": ids, "v": pa.array(list(labels), type=pa.list_(pa.float64()))})
    ds.write_dataset(table, tmp_path / "l", format="parquet", max_rows_per_file=1000, max_rows_per_group=1000)
    order = np.random.default_rng(9).permutation(ROWS)
    shuffled = pa.table({"id": ids[order], "v": pa.array(list(predictions[order]), type=pa.list_(pa.float64()))})
    ds.write_dataset(shuffled, tmp_path / "p", format="parquet", max_rows_per_file=750, max_rows_per_group=750)
    assert len(list((tmp_path / "p").iterdir())) == 4
    mean, _, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p"), "--join-on", "id"])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


# ------------------------------------------------------------ hive partitions


def test_polars_partition_by_keys_are_columns_never_components(tmp_path: Path) -> None:
    """polars writes the key into each file too: it is left out of the vectors."""
    pl = pytest.importorskip("polars")
    ids, labels, predictions = vectors(10)
    split = np.where(np.arange(ROWS) % 3 == 0, "test", "train")
    pl.DataFrame({"id": ids, "split": split, "v": labels}).write_parquet(tmp_path / "l", partition_by="split")
    assert (tmp_path / "l" / "split=test").is_dir()
    order = np.random.default_rng(11).permutation(ROWS)
    pl.DataFrame({"id": ids[order], "v": predictions[order]}).write_parquet(tmp_path / "p.parquet")
    mean, _, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p.parquet"), "--join-on", "id"])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_a_hive_key_can_be_the_weights(tmp_path: Path) -> None:
    """pyarrow.dataset's hive folders (``w=2/``): the key is a column, here the weight of its rows."""
    ids, labels, predictions = vectors(12)
    weights = np.where(np.arange(ROWS) % 4 == 0, 3, 1)
    table = pa.table({"id": ids, "w": weights, "v": list(labels)})
    ds.write_dataset(table, tmp_path / "l", format="parquet", partitioning=["w"], partitioning_flavor="hive")
    assert (tmp_path / "l" / "w=3").is_dir()
    pq.write_table(pa.table({"id": ids, "v": list(predictions)}), tmp_path / "p.parquet")
    result = run_cli(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p.parquet"), "--join-on", "id", "--weight-column", "w"]
        + ["--reduction", "mean", "--format", "json", "--no-losses"]
    )
    assert result.exit_code == 0, result.stderr
    losses = reference_losses(labels, predictions)
    assert json.loads(result.stdout)["loss"] == pytest.approx(
        float((losses * weights).sum() / weights.sum()), rel=0, abs=1e-12
    )


def test_a_hive_key_can_be_the_join_key(tmp_path: Path) -> None:
    """Folders ``doc=17/`` (one per document): the key, read as integers, matches the other side's ids."""
    ids, labels, predictions = vectors(33, rows=24)
    table = pa.table({"doc": ids, "v": list(labels)})
    ds.write_dataset(table, tmp_path / "l", format="parquet", partitioning=["doc"], partitioning_flavor="hive")
    order = np.random.default_rng(34).permutation(24)
    pq.write_table(pa.table({"doc": ids[order], "v": list(predictions[order])}), tmp_path / "p.parquet")
    mean, doc, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p.parquet"), "--join-on", "doc"])
    assert doc["count"] == 24
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_a_hive_key_named_by_columns_is_refused(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(13, rows=40)
    table = pa.table({"split": ["a", "b"] * 20, "x": labels[:, 0], "y": labels[:, 1]})
    ds.write_dataset(table, tmp_path / "l", format="parquet", partitioning=["split"], partitioning_flavor="hive")
    pq.write_table(pa.table({"x": predictions[:, 0], "y": predictions[:, 1]}), tmp_path / "p.parquet")
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p.parquet"), "--columns", "x,split"],
        ExitStatus.USAGE_ERROR,
        "'split' is a hive partition key",
    )


# ------------------------------------------------------------ Hugging Face save_to_disk


def write_hf_folder(folder: Path, ids: np.ndarray, values: np.ndarray, rows: int) -> None:
    """The layout of ``datasets.Dataset.save_to_disk``: Arrow stream shards, state.json, dataset_info.json."""
    folder.mkdir()
    names = []
    shards = -(-len(values) // rows)
    schema = pa.schema([("doc_id", pa.int64()), ("embedding", pa.list_(pa.float32()))])
    for k in range(shards):
        name = f"data-{k:05d}-of-{shards:05d}.arrow"
        part = slice(k * rows, (k + 1) * rows)
        table = pa.table({"doc_id": ids[part], "embedding": list(values[part].astype(np.float32))}, schema=schema)
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table, max_chunksize=300)
        names.append(name)
    # Listed in an order a name sort would not give: state.json's order is the dataset's.
    names = names[1:] + names[:1]
    state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": "x", "_split": None}
    (folder / "state.json").write_text(json.dumps(state))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))


def test_executable_reads_a_hugging_face_folder_in_state_json_order(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(14)
    write_hf_folder(tmp_path / "hf", ids, labels, 1000)
    names = [entry["filename"] for entry in json.loads((tmp_path / "hf" / "state.json").read_text())["_data_files"]]
    order = np.concatenate([np.arange(ROWS)[int(name[5:10]) * 1000 :][:1000] for name in names])
    np.save(tmp_path / "p.npy", predictions[order].astype(np.float32))
    done = run_executable(["compute", str(tmp_path / "hf"), str(tmp_path / "p.npy"), "--format", "json", "--no-losses"])
    assert done.returncode == 0, done.stderr
    expected = reference_mean(labels[order].astype(np.float32), predictions[order].astype(np.float32))
    assert json.loads(done.stdout)["mean"] == pytest.approx(expected, rel=0, abs=1e-12)


def test_a_hugging_face_folder_joined_by_id_to_a_parquet_dataset(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(15)
    write_hf_folder(tmp_path / "hf", ids, labels, 1000)
    order = np.random.default_rng(16).permutation(ROWS)
    frame = pd.DataFrame({"doc_id": ids[order], "embedding": list(predictions[order].astype(np.float32))})
    (tmp_path / "p").mkdir()
    for k, start in enumerate(range(0, ROWS, 750)):
        frame.iloc[start : start + 750].to_parquet(tmp_path / "p" / f"train-{k:05d}.parquet", index=False)
    mean, _, _ = json_mean([str(tmp_path / "hf"), str(tmp_path / "p"), "--join-on", "doc_id"])
    expected = reference_mean(labels.astype(np.float32), predictions.astype(np.float32))
    assert mean == pytest.approx(expected, rel=0, abs=1e-12)


# ------------------------------------------------------------ other formats, compare, the library


def test_csv_and_npy_shards_are_datasets_too(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(17, rows=900)
    (tmp_path / "l").mkdir()
    (tmp_path / "p").mkdir()
    columns = [f"f{i}" for i in range(WIDTH)]
    for k, start in enumerate(range(0, 900, 400)):
        frame = pd.DataFrame(labels[start : start + 400], columns=columns)
        frame.insert(0, "id", ids[start : start + 400])
        frame.to_csv(tmp_path / "l" / f"part-{k}.csv", index=False)
    for k, start in enumerate(range(0, 900, 250)):
        np.save(tmp_path / "p" / f"part-{k}.npy", predictions[start : start + 250])
    result = compute_files(str(tmp_path / "l"), str(tmp_path / "p"), axis=1)
    assert result.summary.mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)
    assert list(result.ids) == [str(i) for i in ids]  # CSV ids are text


def test_compare_reads_datasets(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(18, rows=500)
    other = predictions[::-1].copy()
    shard_pandas(tmp_path / "l", ids, labels, 200)
    shard_pandas(tmp_path / "a", ids, predictions, 150)
    shard_pandas(tmp_path / "b", ids, other, 130)
    result = run_cli(["compare", str(tmp_path / "l"), str(tmp_path / "a"), str(tmp_path / "b"), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    means = [model["mean"] for model in doc["models"]]
    assert means[0] == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)
    assert means[1] == pytest.approx(reference_mean(labels, other), rel=0, abs=1e-12)


def test_batch_keeps_pairing_folders_file_by_file(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(19, rows=300)
    shard_pandas(tmp_path / "l", ids, labels, 100)
    shard_pandas(tmp_path / "p", ids, predictions, 100)
    result = run_cli(["batch", str(tmp_path / "l"), str(tmp_path / "p"), "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["pairs"]) == 3


# ------------------------------------------------------------ refusals that name the file


def test_a_file_with_other_columns_is_named(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(20, rows=300)
    shard_pandas(tmp_path / "l", ids, labels, 100)
    pd.DataFrame({"id": ids[:100], "v": list(labels[:100, :4])}).to_parquet(tmp_path / "l" / "part-10.parquet")
    all_ids = np.concatenate([ids, ids[:100]])
    rows = np.concatenate([predictions, predictions[:100]])
    pq.write_table(pa.table({"id": all_ids, "v": list(rows)}), tmp_path / "p.parquet")
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p.parquet")],
        ExitStatus.DATA_ERROR,
        "part-10.parquet has vectors of shape (4)",
        "part-0.parquet",
    )


def test_files_of_two_formats_are_refused(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(21, rows=200)
    shard_pandas(tmp_path / "l", None, labels[:100], 100)
    np.save(tmp_path / "l" / "part-1.npy", labels[100:])
    np.save(tmp_path / "p.npy", predictions)
    refused(["compute", str(tmp_path / "l"), str(tmp_path / "p.npy")], ExitStatus.DATA_ERROR, "part-1.npy is NPY")


def test_a_nan_is_named_by_its_file_and_row(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(22, rows=300)
    labels[237, 2] = np.nan
    shard_pandas(tmp_path / "l", ids, labels, 100)
    pq.write_table(pa.table({"id": ids, "v": list(predictions)}), tmp_path / "p.parquet")
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p.parquet")],
        ExitStatus.DATA_ERROR,
        "file part-2.parquet, row 37",
    )


def test_a_joined_prediction_is_named_by_its_file_and_row(tmp_path: Path) -> None:
    """The predictions of a join are decoded all at once (on both cores): errors still name the file."""
    ids, labels, predictions = vectors(29, rows=300)
    predictions[164, 1] = np.inf
    order = np.random.default_rng(30).permutation(300)
    shard_pandas(tmp_path / "l", ids[order], labels[order], 100)
    shard_pandas(tmp_path / "p", ids, predictions, 75)
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p"), "--join-on", "id"],
        ExitStatus.DATA_ERROR,
        "file part-2.parquet, row 14",
        "+Inf",
    )
    pd.DataFrame({"id": ids[:10], "v": list(predictions[:10, :5])}).to_parquet(tmp_path / "p" / "part-1.parquet")
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p"), "--join-on", "id"],
        ExitStatus.DATA_ERROR,
        "part-1.parquet",
    )


def test_a_joined_label_is_named_by_its_file_and_row(tmp_path: Path) -> None:
    """The labels of a join are decoded file by file on both cores: errors still name the file."""
    ids, labels, predictions = vectors(31, rows=400)
    labels[250, 3] = np.nan
    order = np.random.default_rng(32).permutation(400)
    shard_pandas(tmp_path / "l", ids, labels, 100)
    shard_pandas(tmp_path / "p", ids[order], predictions[order], 75)
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p"), "--join-on", "id"],
        ExitStatus.DATA_ERROR,
        "file part-2.parquet, row 50",
        "NaN",
    )
    pd.DataFrame({"id": ids[300:], "v": list(labels[300:, :5])}).to_parquet(tmp_path / "l" / "part-3.parquet")
    labels[250, 3] = 0.5
    shard_pandas(tmp_path / "l", ids[:300], labels[:300], 100)
    refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p"), "--join-on", "id"],
        ExitStatus.DATA_ERROR,
        "part-3.parquet has vectors of shape (5)",
    )


def test_a_duplicate_id_across_files_is_named_by_both_files(tmp_path: Path) -> None:
    ids, labels, predictions = vectors(23, rows=300)
    ids[250] = ids[10]
    shard_pandas(tmp_path / "l", ids, labels, 100)
    pq.write_table(pa.table({"id": np.arange(300), "v": list(predictions)}), tmp_path / "p.parquet")
    stderr = refused(
        ["compute", str(tmp_path / "l"), str(tmp_path / "p.parquet"), "--join-on", "id"],
        ExitStatus.DATA_ERROR,
        "more than once",
    )
    assert "file part-0.parquet, row 10" in stderr and "file part-2.parquet, row 50" in stderr


def test_a_bad_csv_cell_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "a-1.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "l" / "a-2.csv").write_text("x,y\n1,2\n3,oops\n")
    (tmp_path / "p.csv").write_text("x,y\n1,2\n3,4\n1,2\n3,4\n")
    refused(["compute", str(tmp_path / "l"), str(tmp_path / "p.csv")], ExitStatus.DATA_ERROR, "a-2.csv", "line 3")


def test_an_empty_folder_and_an_empty_glob(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "p.npy", np.ones((2, 3)))
    refused(["compute", str(tmp_path / "empty"), str(tmp_path / "p.npy")], ExitStatus.USAGE_ERROR, "without data files")
    refused(
        ["compute", str(tmp_path / "nothing-*.npy"), str(tmp_path / "p.npy")],
        ExitStatus.USAGE_ERROR,
        "no data files match",
    )


def test_empty_shards_are_skipped(tmp_path: Path) -> None:
    """Spark writes empty part files; pandas writes an empty frame's list column with no type."""
    ids, labels, predictions = vectors(27, rows=300)
    shard_pandas(tmp_path / "l", ids, labels, 100, name="part-{k}0.parquet")
    empty = pd.DataFrame({"id": pd.Series([], dtype="int64"), "v": pd.Series([], dtype=object)})
    empty.to_parquet(tmp_path / "l" / "part-0.parquet")  # first in order
    empty.to_parquet(tmp_path / "l" / "part-15.parquet")
    pq.write_table(pa.table({"id": ids, "v": list(predictions)}), tmp_path / "p.parquet")
    mean, doc, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p.parquet")])
    assert doc["count"] == 300
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_files_of_one_vector_each_are_rows(tmp_path: Path) -> None:
    _, labels, predictions = vectors(28, rows=5)
    (tmp_path / "l").mkdir()
    for k, row in enumerate(labels):
        np.save(tmp_path / "l" / f"doc-{k}.npy", row)  # 1-D: one vector per file
    np.save(tmp_path / "p.npy", predictions)
    mean, doc, _ = json_mean([str(tmp_path / "l"), str(tmp_path / "p.npy")])
    assert doc["shape"] == [5, WIDTH]
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_only_one_file_is_open_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays that of one file: each file is opened once the one before is read."""
    from cosloss_cli.io import dataset

    _, labels, predictions = vectors(24, rows=1000)
    for k in range(10):
        (tmp_path / "l").mkdir(exist_ok=True)
        np.save(tmp_path / "l" / f"s{k}.npy", labels[k * 100 : (k + 1) * 100])
    np.save(tmp_path / "p.npy", predictions)
    opened: list[int] = []
    original = dataset._Chain._opened

    def counting(self: Any, file: Any, check: bool = True) -> Any:
        opened.append(self._rows)
        return original(self, file, check)

    monkeypatch.setattr(dataset._Chain, "_opened", counting)
    result = compute_files(str(tmp_path / "l"), str(tmp_path / "p.npy"), threads=1)
    assert opened == [100 * k for k in range(10)]
    assert result.summary.mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)


def test_reading_lists_of_any_length_does_not_import_pandas(tmp_path: Path) -> None:
    """pandas writes list<double>, not fixed-size lists: finding their length imported pandas (0.9 s a run)."""
    import subprocess
    import sys

    ids, labels, predictions = vectors(35, rows=40)
    rows: list[Any] = list(labels)
    rows[0] = None  # a null list first: the length comes from the next row
    (tmp_path / "l").mkdir()
    pq.write_table(
        pa.table({"id": ids[:20], "v": pa.array(rows[:20], type=pa.list_(pa.float64()))}), tmp_path / "l/a.parquet"
    )
    pq.write_table(
        pa.table({"id": ids[20:], "v": pa.array(rows[20:], type=pa.list_(pa.float64()))}), tmp_path / "l/b.parquet"
    )
    np.save(tmp_path / "p.npy", predictions)
    code = (
        "import sys; from cosloss_cli.io import open_source, ReadOptions; "
        "s = open_source(sys.argv[1], ReadOptions()); print(s.shape[1], 'pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "l")], capture_output=True, text=True)
    assert done.stdout.split() == [str(WIDTH), "False"], done.stderr


# ------------------------------------------------------------ object storage


def test_an_s3_prefix_is_a_dataset(s3_server: Any, tmp_path: Path) -> None:
    ids, labels, predictions = vectors(25)
    files = shard_pandas(tmp_path / "l", ids, labels, 1000)
    client = s3_server.client()
    client.create_bucket(Bucket="shards")
    for path in files:
        client.put_object(Bucket="shards", Key=f"run/labels/{path.name}", Body=path.read_bytes())
    client.put_object(Bucket="shards", Key="run/labels/_SUCCESS", Body=b"")
    order = np.random.default_rng(26).permutation(ROWS)
    shard_pandas(tmp_path / "p", ids[order], predictions[order], 750)
    mean, _, _ = json_mean(["s3://shards/run/labels/", str(tmp_path / "p")])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)
    mean, _, _ = json_mean(["s3://shards/run/labels/part-*.parquet", str(tmp_path / "p"), "--join-on", "id"])
    assert mean == pytest.approx(reference_mean(labels, predictions), rel=0, abs=1e-12)
