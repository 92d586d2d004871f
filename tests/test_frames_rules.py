"""The library follows the CLI's rules: text columns left out, rows matched by id, Arrow-backed vectors.

``cosine_loss`` on pandas, polars and pyarrow objects against the float64 reference of
:mod:`tests.oracle`, and against the CLI on the same data written with pandas.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from cosloss_cli import cosine_loss
from cosloss_cli.errors import DataError, LeftOutWarning, ShapeMismatchError
from cosloss_cli.status import ExitStatus

from .conftest import run_cli
from .oracle import reference_losses

ROWS, DIM = 30, 5
COLUMNS = [f"f{i}" for i in range(DIM)]


@pytest.fixture
def vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    labels = rng.normal(size=(ROWS, DIM))
    predictions = labels + rng.normal(size=(ROWS, DIM))
    return labels, predictions, reference_losses(labels, predictions)


def test_text_columns_are_left_out_with_a_warning(vectors) -> None:
    labels, predictions, expected = vectors
    left = pd.DataFrame(labels, columns=COLUMNS).assign(text=[f"doc {i}" for i in range(ROWS)])
    right = pd.DataFrame(predictions, columns=COLUMNS).assign(text="x")
    with pytest.warns(LeftOutWarning) as caught:
        losses = cosine_loss(left, right)
    assert [str(w.message).split(" left out")[0] for w in caught] == [
        "cosloss: columns of the labels",
        "cosloss: columns of the predictions",
    ]
    assert all("'text'" in str(w.message) for w in caught)
    np.testing.assert_allclose(losses.to_numpy(), expected, rtol=1e-12)


def test_a_frame_of_text_only_is_refused(vectors) -> None:
    frame = pd.DataFrame({"a": ["x", "y"]})
    with pytest.raises(DataError, match="no numeric columns"), warnings.catch_warnings():
        warnings.simplefilter("ignore", LeftOutWarning)
        cosine_loss(frame, frame)


def test_ids_in_another_order_are_matched_as_the_cli_matches_them(vectors, tmp_path: Path) -> None:
    labels, predictions, expected = vectors
    ids = [f"doc-{i}" for i in range(ROWS)]
    left = pd.DataFrame(labels, columns=COLUMNS).assign(id=ids)
    right = pd.DataFrame(predictions, columns=COLUMNS).assign(id=ids).sample(frac=1, random_state=3)
    right = right.reset_index(drop=True)  # only the id column tells the rows apart
    losses = cosine_loss(left, right)
    assert list(losses.index) == ids
    np.testing.assert_allclose(losses.to_numpy(), expected, rtol=1e-12)
    left.to_parquet(tmp_path / "l.parquet", index=False)
    right.to_parquet(tmp_path / "p.parquet", index=False)
    cli = run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / "p.parquet"), "--json", "--no-losses"])
    assert cli.exit_code == ExitStatus.OK, cli.stderr
    assert json.loads(cli.stdout)["mean"] == pytest.approx(float(losses.mean()), rel=1e-12)


def test_an_index_in_another_order_is_matched(vectors) -> None:
    labels, predictions, expected = vectors
    left = pd.DataFrame(labels, columns=COLUMNS)
    right = pd.DataFrame(predictions, columns=COLUMNS).sample(frac=1, random_state=5)  # df.sample keeps the index
    losses = cosine_loss(left, right)
    np.testing.assert_allclose(losses.to_numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ids: ids[:-1] + ["other"], "1 label row.s. without a partner"),
        (lambda ids: ids[:-1] + [ids[0]], "twice in the predictions"),
    ],
)
def test_every_row_must_find_its_partner(vectors, change, message: str) -> None:
    labels, predictions, _ = vectors
    ids = [f"doc-{i}" for i in range(ROWS)]
    left = pd.DataFrame(labels, columns=COLUMNS).assign(id=ids)
    right = pd.DataFrame(predictions, columns=COLUMNS).assign(id=change(ids[::-1]))
    with pytest.raises(DataError, match=f"id column values differ at position 0.*{message}"):
        cosine_loss(left, right)


def test_ids_in_columns_of_different_names_keep_the_refusal(vectors) -> None:
    labels, predictions, _ = vectors
    left = pd.DataFrame(labels, columns=COLUMNS).assign(id=np.arange(ROWS))
    right = pd.DataFrame(predictions, columns=COLUMNS).assign(doc_id=np.arange(ROWS)[::-1])
    with pytest.raises(DataError, match="columns of different names"):
        cosine_loss(left, right)


def _arrow_frames(labels: np.ndarray, predictions: np.ndarray) -> list[tuple[object, object]]:
    """The same vectors as a polars Array and List column, a pyarrow Table, and pyarrow-backed pandas columns."""
    array_type = pl.Array(pl.Float64, DIM)
    polars_array = [
        pl.DataFrame({"id": np.arange(ROWS), "emb": pl.Series(v, dtype=array_type)}) for v in (labels, predictions)
    ]
    polars_list = [pl.DataFrame({"emb": [list(row) for row in v]}) for v in (labels, predictions)]
    tables = [
        pa.table({"emb": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), DIM)}) for v in (labels, predictions)
    ]
    backed = [
        pd.DataFrame(
            {"emb": pd.Series(pa.array([list(row) for row in v]), dtype=pd.ArrowDtype(pa.list_(pa.float64())))}
        )
        for v in (labels, predictions)
    ]
    series = [frame["emb"] for frame in backed]
    chunked = [pa.chunked_array([table.column("emb").chunk(0)]) for table in tables]
    return [tuple(pair) for pair in (polars_array, polars_list, tables, backed, series, chunked)]  # type: ignore[misc]


def test_arrow_backed_vector_columns(vectors) -> None:
    labels, predictions, expected = vectors
    for left, right in _arrow_frames(labels, predictions):
        losses = cosine_loss(left, right)
        np.testing.assert_allclose(np.asarray(losses), expected, rtol=1e-12, err_msg=type(left).__name__)


def test_polars_columns_and_ids(vectors) -> None:
    labels, predictions, expected = vectors
    left = pl.DataFrame({"id": np.arange(ROWS), **{c: labels[:, i] for i, c in enumerate(COLUMNS)}})
    right = pl.DataFrame({"id": np.arange(ROWS), **{c: predictions[:, i] for i, c in enumerate(COLUMNS)}})
    order = np.random.default_rng(2).permutation(ROWS)
    losses = cosine_loss(left, right[order])  # shuffled: matched by the id column
    assert list(losses.index) == list(range(ROWS))
    np.testing.assert_allclose(losses.to_numpy(), expected, rtol=1e-12)


def test_arrow_vectors_of_another_length_are_refused() -> None:
    left = pd.Series(pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]]), dtype=pd.ArrowDtype(pa.list_(pa.float64())))
    with pytest.raises(ShapeMismatchError, match="position 1 has shape"):
        cosine_loss(left, left)
