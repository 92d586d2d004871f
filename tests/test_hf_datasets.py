"""Folders written by Hugging Face ``datasets`` itself, read as one table of rows.

``tests/test_datasets.py`` writes the ``save_to_disk`` layout with pyarrow (Arrow
stream shards, ``state.json``, ``dataset_info.json``); here the package writes it, as
users do: ``Dataset.from_dict`` with an embedding column, shuffled (``save_to_disk``
then writes the rows in the shuffled order), and saved in shards of other sizes on the
two sides, so that no shard of the labels lines up with one of the predictions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import datasets
import numpy as np
import pytest

from tests.conftest import run_executable
from tests.oracle import reference_losses

ROWS, WIDTH = 3000, 16


@pytest.fixture(autouse=True)
def quiet_progress() -> Iterator[None]:
    """``save_to_disk`` draws a progress bar per call on stderr: none in the test output."""
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(31)
    labels = rng.normal(size=(ROWS, WIDTH)).astype(np.float32)
    predictions = (labels + rng.normal(scale=0.6, size=(ROWS, WIDTH))).astype(np.float32)
    labels[17] = 0.0  # a zero vector: loss 1
    return np.arange(ROWS) * 7 + 3, labels, predictions


def save(folder: Path, ids: np.ndarray, values: np.ndarray, seed: int, shards: int) -> np.ndarray:
    """``values`` with their ids saved shuffled in ``shards`` shards; the ids in the order saved."""
    table = datasets.Dataset.from_dict({"doc_id": ids, "embedding": list(values)})
    shuffled = table.shuffle(seed=seed)
    shuffled.save_to_disk(str(folder), num_shards=shards)
    assert len(list(folder.glob("data-*.arrow"))) == shards
    return np.asarray(shuffled["doc_id"])


def mean_of(args: list[str]) -> tuple[float, str]:
    """The mean loss of ``compute ARGS`` run by the executable, and its stderr."""
    done = run_executable(["compute", *args, "--json", "--no-losses"])
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["count"] == ROWS
    assert document["zero_vectors"] == 1
    return float(document["mean"]), done.stderr


def test_two_folders_saved_in_shards_of_1000_and_750_rows_by_position(tmp_path: Path) -> None:
    ids, labels, predictions = vectors()
    order = save(tmp_path / "labels", ids, labels, seed=5, shards=3)
    assert np.array_equal(save(tmp_path / "predictions", ids, predictions, seed=5, shards=4), order)
    expected = float(reference_losses(labels, predictions).mean())
    mean, stderr = mean_of([str(tmp_path / "labels"), str(tmp_path / "predictions")])
    assert mean == pytest.approx(expected, rel=0, abs=1e-12)
    assert "a dataset of 3 ARROW files" in stderr and "a dataset of 4 ARROW files" in stderr


def test_two_folders_shuffled_differently_joined_on_their_id_column(tmp_path: Path) -> None:
    ids, labels, predictions = vectors()
    label_order = save(tmp_path / "labels", ids, labels, seed=5, shards=3)
    prediction_order = save(tmp_path / "predictions", ids, predictions, seed=6, shards=4)
    assert not np.array_equal(label_order, prediction_order)
    expected = float(reference_losses(labels, predictions).mean())
    mean, _ = mean_of([str(tmp_path / "labels"), str(tmp_path / "predictions"), "--join-on", "doc_id"])
    assert mean == pytest.approx(expected, rel=0, abs=1e-12)
    # Without --join-on, ids listed in other orders are matched too, and said so.
    mean, stderr = mean_of([str(tmp_path / "labels"), str(tmp_path / "predictions")])
    assert mean == pytest.approx(expected, rel=0, abs=1e-12)
    assert "rows matched by id (column 'doc_id')" in stderr
