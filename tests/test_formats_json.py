"""JSON Lines and JSON-array inputs, written as users write them (json, pandas, polars)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.status import ExitStatus
from tests.conftest import run_cli, run_executable
from tests.oracle import reference_losses

ROWS, WIDTH = 60, 12


@pytest.fixture(scope="module")
def vectors() -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ids = [f"doc-{i}" for i in range(ROWS)]
    return ids, rng.normal(size=(ROWS, WIDTH)), rng.normal(size=(ROWS, WIDTH))


def write_jsonl(path, ids, values, order=None, vector="embedding"):
    order = range(len(ids)) if order is None else order
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as handle:
        for i in order:
            handle.write(json.dumps({"id": ids[i], "text": f"text {i}", vector: values[i].tolist()}) + "\n")
    return str(path)


def mean_of(result) -> float:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["mean"]


def test_jsonl_shuffled_joined_matches_reference_through_the_executable(tmp_path, vectors):
    ids, labels, predictions = vectors
    order = np.random.default_rng(1).permutation(ROWS)
    lpath = write_jsonl(tmp_path / "labels.jsonl", ids, labels)
    ppath = write_jsonl(tmp_path / "predictions.jsonl", ids, predictions, order)
    proc = run_executable(["compute", lpath, ppath, "--join-on", "id", "--json", "--no-losses"])
    assert proc.returncode == 0, proc.stderr
    expected = reference_losses(labels, predictions).mean()
    assert abs(json.loads(proc.stdout)["mean"] - expected) < 1e-12


def test_pandas_records_lines_gzip_and_integer_first_vector(tmp_path, vectors):
    ids, labels, predictions = vectors
    labels = labels.copy()
    labels[0] = np.arange(WIDTH)  # written as integers: the first block must not fix the type
    frame = pd.DataFrame({"doc_id": ids, "embedding": [row.tolist() for row in labels]})
    frame["embedding"] = [[int(v) for v in labels[0]]] + frame["embedding"].tolist()[1:]
    lpath = tmp_path / "labels.ndjson.gz"
    frame.to_json(lpath, orient="records", lines=True, double_precision=15, compression="gzip")
    ppath = write_jsonl(tmp_path / "predictions.jsonl", ids, predictions)
    parsed = np.array(pd.read_json(lpath, lines=True)["embedding"].tolist(), dtype=float)
    mean = mean_of(run_cli(["compute", str(lpath), ppath, "--json", "--no-losses"]))
    assert abs(mean - reference_losses(parsed, predictions).mean()) < 1e-12


def test_polars_ndjson_and_json_array(tmp_path, vectors):
    pl = pytest.importorskip("polars")
    ids, labels, predictions = vectors
    order = np.random.default_rng(2).permutation(ROWS)
    pl.DataFrame({"id": ids, "embedding": labels.tolist()}).write_ndjson(tmp_path / "l.jsonl")
    shuffled = pl.DataFrame({"id": [ids[i] for i in order], "embedding": predictions[order].tolist()})
    shuffled.write_json(tmp_path / "p.json")  # a top-level array of records
    mean = mean_of(
        run_cli(
            ["compute", str(tmp_path / "l.jsonl"), str(tmp_path / "p.json"), "--join-on", "id", "--json", "--no-losses"]
        )
    )
    assert abs(mean - reference_losses(labels, predictions).mean()) < 1e-12


def test_json_array_indented_and_of_bare_vectors(tmp_path, vectors):
    ids, labels, predictions = vectors
    with open(tmp_path / "l.json", "w") as handle:
        json.dump([{"id": i, "embedding": v.tolist()} for i, v in zip(ids, labels, strict=True)], handle, indent=2)
    with open(tmp_path / "p.json", "w") as handle:
        json.dump(predictions.tolist(), handle)
    args = ["compute", str(tmp_path / "l.json"), str(tmp_path / "p.json"), "--json", "--no-losses"]
    assert abs(mean_of(run_cli(args)) - reference_losses(labels, predictions).mean()) < 1e-12


def test_numeric_fields_are_columns_and_weight_column(tmp_path):
    rows = [{"id": i, "a": float(i + 1), "b": 2, "w": i % 3} for i in range(5)]
    with open(tmp_path / "l.jsonl", "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    predictions = np.array([[1.0, 1.0]] * 5)
    np.save(tmp_path / "p.npy", predictions)
    labels = np.array([[r["a"], r["b"]] for r in rows])
    weights = np.array([r["w"] for r in rows], dtype=float)
    args = ["compute", str(tmp_path / "l.jsonl"), str(tmp_path / "p.npy"), "--weight-column", "w", "--json"]
    doc = json.loads(run_cli(args).stdout)
    losses = reference_losses(labels, predictions)
    assert abs(doc["loss"] - (losses * weights).sum() / np.count_nonzero(weights)) < 1e-12


def test_missing_vector_and_wrong_length_name_the_line(tmp_path):
    good = json.dumps({"id": "a", "embedding": [1.0, 2.0]})
    np.save(tmp_path / "p.npy", np.ones((3, 2)))
    (tmp_path / "missing.jsonl").write_text(good + "\n\n" + good + "\n" + json.dumps({"id": "c"}) + "\n")
    result = run_cli(["compute", str(tmp_path / "missing.jsonl"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "line 4 has no vector 'embedding'" in result.stderr
    (tmp_path / "short.jsonl").write_text(good + "\n" + json.dumps({"id": "b", "embedding": [1.0]}) + "\n" + good)
    result = run_cli(["compute", str(tmp_path / "short.jsonl"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "line 2 has a vector of length 1, expected 2" in result.stderr


def test_bad_json_error_is_short(tmp_path):
    np.save(tmp_path / "p.npy", np.ones((2, 2)))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"embedding": [1.0, 2.0]}) + "\n{" + "x" * 5000 + "\n")
    result = run_cli(["compute", str(tmp_path / "bad.jsonl"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert len(result.stderr.strip()) < 400 and "Traceback" not in result.stderr
    (tmp_path / "bad.json").write_text('[{"embedding": [1.0, 2.0]}, {"embedding": "' + "y" * 5000 + '"')
    result = run_cli(["compute", str(tmp_path / "bad.json"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert len(result.stderr.strip()) < 400


def test_stdin_jsonl_gzip(tmp_path, vectors):
    ids, labels, predictions = vectors
    ppath = write_jsonl(tmp_path / "p.jsonl.gz", ids, predictions)
    lpath = write_jsonl(tmp_path / "l.jsonl", ids, labels)
    data = (tmp_path / "p.jsonl.gz").read_bytes()
    args = ["compute", lpath, "-", "--predictions-format", "jsonl", "--json", "--no-losses"]
    assert abs(mean_of(run_cli(args, input=data)) - reference_losses(labels, predictions).mean()) < 1e-12
    assert ppath


def test_losses_written_as_jsonl_and_csv_read_back_as_weights(tmp_path):
    labels = np.random.default_rng(3).normal(size=(8, 4))
    predictions = np.random.default_rng(4).normal(size=(8, 4))
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "p.npy", predictions)
    expected = reference_losses(labels, predictions)
    for name in ("out.jsonl", "out.csv"):
        out = tmp_path / name
        assert run_cli(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "-o", str(out)]).exit_code == 0
        doc = json.loads(
            run_cli(
                ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--weights", str(out), "--json"]
            ).stdout
        )
        assert abs(doc["loss"] - (expected * expected).sum() / 8) < 1e-12, name
