"""Errors that say what a file is and what to do, and per-side keys of one file holding both arrays."""

from __future__ import annotations

import gzip
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from cosloss_cli.io.formats import READERS
from cosloss_cli.status import ExitStatus
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses

LABELS = np.random.default_rng(11).normal(size=(20, 5))
PREDICTIONS = np.random.default_rng(12).normal(size=(20, 5))


@pytest.fixture
def npy_pair(tmp_path):
    np.save(tmp_path / "l.npy", LABELS)
    np.save(tmp_path / "p.npy", PREDICTIONS)
    return str(tmp_path / "l.npy"), str(tmp_path / "p.npy")


def error_of(args, status):
    result = run_cli(args)
    assert result.exit_code == status, result.stderr
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    return result.stderr


def test_unknown_extension_lists_every_format(tmp_path, npy_pair):
    (tmp_path / "x.dat").write_bytes(b"1,2\n")
    message = error_of(["compute", str(tmp_path / "x.dat"), npy_pair[1]], ExitStatus.USAGE_ERROR)
    for spec in READERS.values():
        assert spec.extensions[0] in message


@pytest.mark.parametrize("name", ["model.pt", "x.pkl", "weights.bin"])
def test_pickles_and_torch_files_are_refused_by_name_with_an_example(tmp_path, npy_pair, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(LABELS))
    message = error_of(["compute", str(path), npy_pair[1]], ExitStatus.USAGE_ERROR)
    assert "never loads" in message and ("save_file(" in message or "numpy.save(" in message)


def test_a_pickle_forced_as_npy_is_refused_unloaded(tmp_path, npy_pair):
    path = tmp_path / "x.data"
    path.write_bytes(pickle.dumps(LABELS))
    message = error_of(["compute", str(path), npy_pair[1], "--labels-format", "npy"], ExitStatus.DATA_ERROR)
    assert "is a pickle" in message and "numpy.save(" in message


def test_spreadsheet_says_what_to_convert_to(tmp_path, npy_pair):
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04")
    message = error_of(["compute", str(tmp_path / "x.xlsx"), npy_pair[1]], ExitStatus.USAGE_ERROR)
    assert "to_parquet(" in message


def test_forced_format_names_the_signature_found(tmp_path, npy_pair):
    feather.write_feather(pa.table({"a": LABELS[:, 0]}), tmp_path / "x.arrow")
    message = error_of(
        ["compute", str(tmp_path / "x.arrow"), npy_pair[1], "--labels-format", "parquet"], ExitStatus.USAGE_ERROR
    )
    assert "is an Arrow IPC file, not a valid .parquet file" in message and "fully written" not in message
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    message = error_of(
        ["compute", str(tmp_path / "x.csv.gz"), npy_pair[1], "--labels-format", "parquet"], ExitStatus.USAGE_ERROR
    )
    assert "gzip-compressed, not a valid .parquet file" in message
    np.savez(tmp_path / "x.npz", a=LABELS)
    message = error_of(["compute", str(tmp_path / "x.npz"), npy_pair[1], "--labels-format", "npy"], 2)
    assert "zip archive (NPZ), not a valid .npy file" in message and "--input-format npz" in message


def test_wrong_extension_names_what_the_file_is(tmp_path, npy_pair):
    path = tmp_path / "x.parquet"
    np.save(path.with_suffix(".npy"), LABELS)
    (tmp_path / "x.npy").rename(path)
    message = error_of(["compute", str(path), npy_pair[1]], ExitStatus.DATA_ERROR)
    assert "is an NPY file, not a valid .parquet file" in message


def test_one_npz_holding_both_arrays_needs_a_key_per_side(tmp_path):
    path = str(tmp_path / "eval.npz")
    np.savez(path, labels=LABELS, predictions=PREDICTIONS)
    message = error_of(["compute", path, path, "--key", "labels"], ExitStatus.USAGE_ERROR)
    assert "labels and predictions are the same array" in message
    result = run_cli(["compute", path, path, "--labels-key", "labels", "--predictions-key", "predictions", "--json"])
    assert result.exit_code == 0, result.stderr
    assert abs(json.loads(result.stdout)["mean"] - reference_losses(LABELS, PREDICTIONS).mean()) < 1e-12
    # --key for one side, the other's own key over it
    proc = run_executable(["compute", path, path, "--key", "labels", "--predictions-key", "predictions", "--json"])
    assert proc.returncode == 0, proc.stderr
    assert abs(json.loads(proc.stdout)["mean"] - reference_losses(LABELS, PREDICTIONS).mean()) < 1e-12


def test_the_same_archive_twice_through_a_link_is_refused_but_a_table_is_not(tmp_path, npy_pair):
    np.savez(tmp_path / "one.npz", embeddings=LABELS)
    link = tmp_path / "link.npz"
    link.hardlink_to(tmp_path / "one.npz")
    message = error_of(["compute", str(tmp_path / "one.npz"), str(link)], ExitStatus.USAGE_ERROR)
    assert "the same array" in message
    result = run_cli(["compute", npy_pair[0], npy_pair[0], "--json"])  # a sanity check users run on purpose
    assert result.exit_code == 0 and json.loads(result.stdout)["mean"] < 1e-12


def test_compare_takes_keys_per_side(tmp_path):
    path = str(tmp_path / "eval.npz")
    np.savez(path, labels=LABELS, a=PREDICTIONS, b=PREDICTIONS[::-1].copy())
    np.savez(tmp_path / "other.npz", labels=LABELS, a=PREDICTIONS[::-1].copy())
    other = str(tmp_path / "other.npz")
    args = ["compare", path, path, other, "--labels-key", "labels", "--predictions-key", "a", "--json"]
    result = run_cli(args)
    assert result.exit_code == 0, result.stderr
    means = [model["mean"] for model in json.loads(result.stdout)["models"]]
    assert abs(means[0] - reference_losses(LABELS, PREDICTIONS).mean()) < 1e-12
    message = error_of(["compare", path, path, other, "--key", "labels"], ExitStatus.USAGE_ERROR)
    assert "the same array" in message


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_one_table_holding_both_sides_as_list_columns_takes_a_key_per_side(tmp_path, suffix):
    """``--labels-key``/``--predictions-key`` name a table's list columns as they name an archive's arrays."""
    import pandas as pd

    path = str(tmp_path / f"eval{suffix}")
    frame = pd.DataFrame({"id": range(20), "truth": list(LABELS), "model": list(PREDICTIONS)})
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:  # json.dumps writes every float exactly (pandas' to_json keeps 10 digits)
        rows = ({"id": i, "truth": list(LABELS[i]), "model": list(PREDICTIONS[i])} for i in range(20))
        (tmp_path / f"eval{suffix}").write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["compute", path, path, "--labels-key", "truth", "--predictions-key", "model", "--json"]
    result = run_cli(args)
    assert result.exit_code == 0, result.stderr
    assert abs(json.loads(result.stdout)["mean"] - reference_losses(LABELS, PREDICTIONS).mean()) < 1e-12
    message = error_of(["compute", path, path, "--key", "truth"], ExitStatus.USAGE_ERROR)
    assert "labels and predictions are the same array" in message
    # A key naming no list column of the table is the other side's (an archive's array).
    np.savez(tmp_path / "labels.npz", truth=LABELS)
    args = ["compute", str(tmp_path / "labels.npz"), path, "--key", "truth", "--columns", "model", "--json"]
    result = run_cli(args)
    assert result.exit_code == 0, result.stderr
    assert abs(json.loads(result.stdout)["mean"] - reference_losses(LABELS, PREDICTIONS).mean()) < 1e-12
