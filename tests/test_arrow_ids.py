"""Arrow IPC and JSON Lines ids: an int64 column stays an int64 array, with every rule of the Python ints.

Blocks of Arrow record batches carry an int64 id column as numpy int64 (one Python int
per row cost more than the sums of a 256-wide file); ids are then compared, shown and
written as they were when they were Python ints, also against other formats' ids.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from cosloss_cli.io import ReadOptions, open_source
from cosloss_cli.status import ExitStatus
from tests.conftest import run_cli
from tests.oracle import reference_losses

ROWS, WIDTH = 40, 5
RNG = np.random.default_rng(7)
LABELS = RNG.normal(size=(ROWS, WIDTH)).astype(np.float32)
PREDICTIONS = RNG.normal(size=(ROWS, WIDTH)).astype(np.float32)
IDS = np.arange(1000, 1000 + ROWS, dtype=np.int64)
EXPECTED = reference_losses(LABELS.astype(np.float64), PREDICTIONS.astype(np.float64))


def arrow_table(values: np.ndarray, ids: np.ndarray) -> pa.Table:
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), WIDTH)
    return pa.table({"id": pa.array(ids, type=pa.int64()), "v": vectors})


def write_arrow(path, values: np.ndarray, ids: np.ndarray = IDS) -> str:
    table = arrow_table(values, ids)
    with ipc.new_file(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=15)  # several record batches
    return str(path)


def losses_json(args: list[str]) -> dict:
    result = run_cli(["compute", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_an_int64_id_column_is_read_as_an_int64_array(tmp_path):
    source = open_source(write_arrow(tmp_path / "l.arrow", LABELS), ReadOptions())
    blocks = list(source.blocks)
    assert len(blocks) > 1
    assert all(block.ids is not None and block.ids.dtype == np.int64 for block in blocks)
    assert np.concatenate([block.ids for block in blocks]).tolist() == IDS.tolist()


def test_losses_and_ids_are_those_of_the_same_rows_in_parquet(tmp_path):
    labels, predictions = write_arrow(tmp_path / "l.arrow", LABELS), write_arrow(tmp_path / "p.arrow", PREDICTIONS)
    pq.write_table(arrow_table(LABELS, IDS), tmp_path / "l.parquet")
    from_arrow = losses_json([labels, predictions])
    from_parquet = losses_json([str(tmp_path / "l.parquet"), predictions])
    assert from_arrow["ids"] == from_parquet["ids"] == IDS.tolist()
    assert all(type(i) is int for i in from_arrow["ids"])
    np.testing.assert_allclose(from_arrow["losses"], EXPECTED, rtol=1e-6, atol=1e-7)
    assert from_arrow["losses"] == from_parquet["losses"]


def test_int64_ids_match_a_csv_files_ids_read_as_text(tmp_path):
    labels = write_arrow(tmp_path / "l.arrow", LABELS)
    frame = pd.DataFrame(PREDICTIONS, columns=[f"c{i}" for i in range(WIDTH)])
    frame.insert(0, "id", [f"{i}" for i in IDS])
    frame.to_csv(tmp_path / "p.csv", index=False)
    result = losses_json([labels, str(tmp_path / "p.csv"), "--id-column", "id"])
    np.testing.assert_allclose(result["losses"], EXPECTED, rtol=1e-6, atol=1e-7)


def test_ids_that_differ_are_named_as_plain_numbers(tmp_path):
    labels = write_arrow(tmp_path / "l.arrow", LABELS)
    other = IDS.copy()
    other[-1] = 5
    predictions = write_arrow(tmp_path / "p.arrow", PREDICTIONS, other)
    result = run_cli(["compute", labels, predictions, "--json", "--no-losses"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert f"row {ROWS - 1} of labels has id {IDS[-1]}, row {ROWS - 1} of" in result.stderr
    assert "np.int64" not in result.stderr


def test_a_top_row_is_named_by_its_int_id(tmp_path):
    labels, predictions = write_arrow(tmp_path / "l.arrow", LABELS), write_arrow(tmp_path / "p.arrow", PREDICTIONS)
    result = losses_json([labels, predictions, "--no-losses", "--top", "2"])
    worst = np.argsort(-EXPECTED, kind="stable")[:2]
    assert [row["id"] for row in result["worst"]] == IDS[worst].tolist()
