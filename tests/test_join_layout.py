"""Joins that never drop rows silently: shards cut at different rows, ``matched N of M rows``, ``--min-matched``.

The shards are written with pandas and pyarrow as jobs write them; the numbers are checked
against the float64 reference of :mod:`tests.oracle` on the rows the ids pair up.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosloss_cli import compute_files
from cosloss_cli.errors import UnmatchedRowsError
from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable
from .oracle import reference_losses
from .test_schemas import validate, validate_lines

DIM = 4


def _frame(values: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(DIM)])
    frame.insert(0, "id", ids)
    return frame


def _vectors(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(rows, DIM))
    return labels, labels + 0.3 * rng.normal(size=(rows, DIM))


def _shards(tmp_path: Path, rows: int, label_cut: int, prediction_cut: int, fmt: str = "parquet") -> tuple[str, str]:
    """The same rows cut into label shards of ``label_cut`` rows and prediction shards of ``prediction_cut``."""
    labels, predictions = _vectors(rows, seed=3)
    ids = np.arange(rows)
    order = np.random.default_rng(4).permutation(rows)  # the predictions' job wrote them in another order
    folders = []
    for side, values, index, cut in (
        ("labels", labels, ids, label_cut),
        ("predictions", predictions[order], ids[order], prediction_cut),
    ):
        folder = tmp_path / side
        folder.mkdir()
        for shard, start in enumerate(range(0, rows, cut)):
            part = _frame(values[start : start + cut], index[start : start + cut])
            path = folder / f"part-{shard}.{fmt}"
            part.to_parquet(path, index=False) if fmt == "parquet" else part.to_csv(path, index=False)
        folders.append(str(folder))
    return folders[0], folders[1]


# ------------------------------------------------------------------ shards cut at different rows


@pytest.mark.parametrize("extra", [[], ["--min-matched", "0"], ["--min-matched", "0", "-j", "2", "--json"]])
def test_batch_refuses_shards_that_split_the_rows_differently(tmp_path: Path, extra: list[str]) -> None:
    """3 x 40 label rows against 4 x 30 prediction rows: each pair alone would drop rows, so exit 1."""
    labels, predictions = _shards(tmp_path, 120, 40, 30)
    args = ["batch", labels, predictions, "--join-on", "id", *extra]
    if not extra:  # the user trial's command, through the real executable
        done = run_executable(args)
        status, stderr = done.returncode, done.stderr
    else:
        result = run_cli(args)
        status, stderr = result.exit_code, result.stderr
    assert status == ExitStatus.DATA_ERROR, stderr
    assert "split the rows differently" in stderr
    assert "cosloss compute LABELS_DIR PREDICTIONS_DIR --join-on id" in stderr


def test_partners_in_a_file_without_a_partner_file_count_too(tmp_path: Path) -> None:
    """Predictions cut into 3 files against labels in 2: the third file holds the partners of pair b's rows."""
    labels, predictions = _vectors(120, seed=6)
    ids = np.arange(120)
    (tmp_path / "labels").mkdir(), (tmp_path / "predictions").mkdir()
    for name, rows in (("a", slice(0, 60)), ("b", slice(60, 120))):
        _frame(labels[rows], ids[rows]).to_parquet(tmp_path / "labels" / f"{name}.parquet", index=False)
    for name, rows in (("a", slice(0, 60)), ("b", slice(60, 90)), ("c", slice(90, 120))):
        _frame(predictions[rows][::-1], ids[rows][::-1]).to_csv(tmp_path / "predictions" / f"{name}.csv", index=False)
    args = ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--join-on", "id", "-j", "1"]
    result = run_cli([*args, "--min-matched", "0"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "split the rows differently: 30 id(s)" in result.stderr
    assert "c.csv (no labels file)" in result.stderr


def test_the_hint_reads_each_side_as_one_dataset(tmp_path: Path) -> None:
    """What the refusal suggests works: every row matched, the mean of all of them."""
    labels, predictions = _shards(tmp_path, 120, 40, 30)
    result = run_cli(["compute", labels, predictions, "--join-on", "id", "--json", "--no-losses", "--min-matched", "1"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["matched_rows"], doc["join_rows"]) == (120, 120)
    expected = reference_losses(*_vectors(120, seed=3)).mean()
    assert doc["mean"] == pytest.approx(expected, rel=1e-12)


def test_batch_split_check_compares_text_ids_across_pairs(tmp_path: Path) -> None:
    """CSV ids (read as text in some readers) are compared across pairs as well."""
    labels, predictions = _shards(tmp_path, 60, 20, 15, fmt="csv")
    result = run_cli(["batch", labels, predictions, "--join-on", "id", "--min-matched", "0", "-j", "1"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "split the rows differently" in result.stderr


def test_batch_of_shards_cut_alike_joins_every_row(tmp_path: Path) -> None:
    """Shards cut at the same rows but shuffled within: every row matched, the mean of all rows."""
    labels_dir, predictions_dir = tmp_path / "labels", tmp_path / "predictions"
    labels_dir.mkdir(), predictions_dir.mkdir()
    labels, predictions = _vectors(60, seed=5)
    ids = np.arange(60)
    for shard in range(3):
        rows = slice(shard * 20, shard * 20 + 20)
        order = np.random.default_rng(shard).permutation(20)
        _frame(labels[rows], ids[rows]).to_parquet(labels_dir / f"s{shard}.parquet", index=False)
        _frame(predictions[rows][order], ids[rows][order]).to_parquet(predictions_dir / f"s{shard}.parquet")
    done = run_cli(["batch", str(labels_dir), str(predictions_dir), "--join-on", "id", "--json"])
    assert done.exit_code == ExitStatus.OK, done.stderr
    doc = json.loads(done.stdout)
    validate(doc, "batch")
    assert doc["overall"]["matched_rows"] == 60 and doc["overall"]["join_rows"] == 60
    assert doc["overall"]["mean"] == pytest.approx(reference_losses(labels, predictions).mean(), rel=1e-12)
    assert [(p["matched_rows"], p["join_rows"]) for p in doc["pairs"]] == [(20, 20)] * 3


# ------------------------------------------------------------------ matched N of M, --min-matched


@pytest.fixture
def partial(tmp_path: Path) -> tuple[Path, Path, float]:
    """10 label rows (ids 0-9) against 9 prediction rows: 8 of them partners (ids 0-7 shuffled) and id 99."""
    labels, predictions = _vectors(10, seed=8)
    order = np.random.default_rng(1).permutation(8)
    _frame(labels, np.arange(10)).to_parquet(tmp_path / "l.parquet", index=False)
    extra = np.random.default_rng(2).normal(size=(1, DIM))
    kept = np.vstack([predictions[order], extra])
    _frame(kept, np.append(order, 99)).to_csv(tmp_path / "p.csv", index=False)
    return tmp_path / "l.parquet", tmp_path / "p.csv", float(reference_losses(labels[:8], predictions[:8]).mean())


def test_compute_json_and_table_say_matched_n_of_m(partial: tuple[Path, Path, float]) -> None:
    labels, predictions, mean = partial
    result = run_cli(["compute", str(labels), str(predictions), "--join-on", "id", "--json", "--no-losses"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    doc = json.loads(result.stdout)
    validate(doc, "compute")
    # rows of the outer join: 8 pairs + 2 labels + 1 prediction without a partner
    assert (doc["matched_rows"], doc["join_rows"]) == (8, 11)
    assert doc["unmatched"]["labels"] == 2 and doc["unmatched"]["predictions"] == 1  # unchanged keys
    assert doc["mean"] == pytest.approx(mean, rel=1e-12)
    table = run_cli(["compute", str(labels), str(predictions), "--join-on", "id", "--max-rows", "0"])
    assert "matched" in table.stdout and "8 of 11 rows" in table.stdout
    for fmt in ("csv", "ndjson"):  # a line per loss: said on stderr
        lines = run_cli(["compute", str(labels), str(predictions), "--join-on", "id", "--format", fmt])
        assert "Note: matched 8 of 11 rows by id (--join-on id)" in lines.stderr


def test_compute_min_matched_gates_the_join(partial: tuple[Path, Path, float]) -> None:
    labels, predictions, _ = partial
    args = ["compute", str(labels), str(predictions), "--join-on", "id", "--json", "--no-losses"]
    refused = run_executable([*args, "--min-matched", "0.75"])  # 8 / 11 = 0.727
    assert refused.returncode == ExitStatus.DATA_ERROR
    assert refused.stdout == ""
    assert "matched 8 of 11 rows by id, fewer than --min-matched 0.75" in refused.stderr
    assert run_cli([*args, "--min-matched", "0.72"]).exit_code == ExitStatus.OK
    assert run_cli([*args, "--min-matched", "1.5"]).exit_code == ExitStatus.USAGE_ERROR


def test_library_min_matched(partial: tuple[Path, Path, float]) -> None:
    labels, predictions, mean = partial
    result = compute_files(str(labels), str(predictions), join_on="id")
    assert result.unmatched is not None and result.unmatched.matched_text() == "matched 8 of 11 rows"
    assert result.summary.mean == pytest.approx(mean, rel=1e-12)
    with pytest.raises(UnmatchedRowsError, match="fewer than --min-matched 0.9"):
        compute_files(str(labels), str(predictions), join_on="id", min_matched=0.9)


def test_batch_min_matched_defaults_to_every_row(tmp_path: Path) -> None:
    """In batch an unmatched row is a layout error unless --min-matched says how many may go."""
    labels_dir, predictions_dir = tmp_path / "labels", tmp_path / "predictions"
    labels_dir.mkdir(), predictions_dir.mkdir()
    labels, predictions = _vectors(10, seed=9)
    _frame(labels, np.arange(10)).to_parquet(labels_dir / "a.parquet", index=False)
    _frame(predictions[:9][::-1], np.arange(9)[::-1]).to_parquet(predictions_dir / "a.parquet", index=False)
    args = ["batch", str(labels_dir), str(predictions_dir), "--join-on", "id", "-j", "1"]
    strict = run_executable([*args, "--json"])
    assert strict.returncode == ExitStatus.DATA_ERROR
    pair = json.loads(strict.stdout)["pairs"][0]
    assert pair["status"] == "error" and "matched 9 of 10 rows by id" in pair["error"]
    assert (pair["matched_rows"], pair["join_rows"]) == (9, 10)

    relaxed = run_cli([*args, "--min-matched", "0.9", "--format", "csv"])
    assert relaxed.exit_code == ExitStatus.OK, relaxed.stderr
    (row,) = csv.DictReader(io.StringIO(relaxed.stdout))
    assert (row["matched_rows"], row["join_rows"]) == ("9", "10")
    assert float(row["mean"]) == pytest.approx(reference_losses(labels[:9], predictions[:9]).mean(), rel=1e-12)
    ndjson = run_cli([*args, "--min-matched", "0.9", "--format", "ndjson"])
    assert json.loads(ndjson.stdout)["matched_rows"] == 9
    validate_lines(ndjson.stdout, "batch")
    table = run_cli([*args, "--min-matched", "0.9"])
    assert "9 of 10 rows" in table.stdout
