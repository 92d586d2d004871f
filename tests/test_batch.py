"""``cosloss batch``: pairing, manifests, parallel runs, outputs, exit codes, interrupts."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosloss_cli.batch import discover_pairs, is_safe_name, read_manifest
from cosloss_cli.errors import DataError
from cosloss_cli.status import ExitStatus

from .conftest import EXECUTABLE, ROOT, TERMINAL, assert_same_json, run_cli
from .oracle import reference_losses

PAIR_KEYS = [
    "name",
    "labels",
    "predictions",
    "status",
    "error",
    "count",
    "mean",
    "std",
    "min",
    "max",
    "median",
    "zero_vectors",
    "omitted",
    "reduction",
    "weighted",
    "loss",
    "p05",
    "p25",
    "p75",
    "p95",
    "p99",
]


def save(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` in the format of ``path``'s extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".npy"):
        np.save(path, array)
    elif name.endswith(".npz"):
        np.savez(path, vectors=array)
    elif name.endswith(".parquet"):
        pq.write_table(pa.table({f"f{i}": array[:, i] for i in range(array.shape[1])}), path)
    elif name.endswith(".csv"):
        lines = [",".join(f"f{i}" for i in range(array.shape[1]))]
        lines += [",".join(repr(float(x)) for x in row) for row in array]
        path.write_text("\n".join(lines) + "\n")
    else:
        raise AssertionError(name)
    return path


def make_pair(root: Path, name: str, label_ext: str, pred_ext: str, rows: int, seed: int, dim: int = 5, noise=0.5):
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(rows, dim))
    predictions = labels + noise * rng.normal(size=(rows, dim))
    save(root / "labels" / f"{name}{label_ext}", labels)
    save(root / "predictions" / f"{name}{pred_ext}", predictions)
    return labels, predictions


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mirrored folders, mixed formats, nested subfolders; pairs of different sizes."""
    return {
        "a": make_pair(tmp_path, "a", ".npy", ".parquet", rows=7, seed=1),
        "b": make_pair(tmp_path, "b", ".csv", ".npy", rows=3, seed=2, noise=2.0),
        "sub/c": make_pair(tmp_path, "sub/c", ".parquet", ".csv", rows=11, seed=3),
        "sub/deeper/d": make_pair(tmp_path, "sub/deeper/d", ".npz", ".npy", rows=2, seed=4, noise=0.1),
    }


def batch_json(tmp_path: Path, *args: str) -> tuple[dict, object]:
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--json", *args])
    return json.loads(result.stdout), result


# --------------------------------------------------------------------------- pairing


def test_mirrored_folders_mixed_formats_recursive(tmp_path, tree):
    doc, result = batch_json(tmp_path, "-r", "-j", "2")
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert doc["schema_version"] == 1
    assert [p["name"] for p in doc["pairs"]] == ["a", "b", "sub/c", "sub/deeper/d"]
    for pair in doc["pairs"]:
        assert list(pair) == PAIR_KEYS
        labels, predictions = tree[pair["name"]]
        expected = reference_losses(labels, predictions)
        assert pair["status"] == "ok" and pair["error"] is None
        assert pair["count"] == len(expected)
        assert pair["mean"] == pytest.approx(expected.mean(), abs=1e-12)
        assert pair["max"] == pytest.approx(expected.max(), abs=1e-12)
        assert pair["labels"].startswith(str(tmp_path / "labels"))
    assert doc["unmatched"] == {"labels": [], "predictions": []}


def test_pooled_mean_is_exact_over_every_loss_not_mean_of_means(tmp_path, tree):
    doc, result = batch_json(tmp_path, "-r")
    every = np.concatenate([reference_losses(*tree[name]) for name in sorted(tree)])
    means = [reference_losses(*tree[name]).mean() for name in sorted(tree)]
    overall = doc["overall"]
    figures = {"reduction", "weighted", "loss", "p05", "p25", "p75", "p95", "p99"}  # see tests/test_figures.py
    assert {key: value for key, value in overall.items() if key not in figures} == {
        "pairs": 4,
        "ok": 4,
        "failed": 0,
        "skipped": 0,
        "count": every.size,
        "mean": pytest.approx(float(np.mean(every)), rel=1e-13),
        "mean_of_means": pytest.approx(float(np.mean(means)), rel=1e-13),
    }
    assert abs(overall["mean"] - overall["mean_of_means"]) > 1e-3  # the pair sizes differ on purpose


def test_not_recursive_by_default(tmp_path, tree):
    doc, result = batch_json(tmp_path)
    assert [p["name"] for p in doc["pairs"]] == ["a", "b"]
    assert result.exit_code == ExitStatus.OK


def test_hidden_files_skipped_and_symlinked_folders_not_followed(tmp_path, tree):
    save(tmp_path / "labels" / ".hidden.npy", np.ones((2, 5)))
    save(tmp_path / "predictions" / ".hidden.npy", np.ones((2, 5)))
    save(tmp_path / "labels" / ".cache" / "x.npy", np.ones((2, 5)))
    save(tmp_path / "predictions" / ".cache" / "x.npy", np.ones((2, 5)))
    os.symlink(tmp_path / "labels", tmp_path / "labels" / "loop")  # a loop
    os.symlink(tmp_path / "predictions", tmp_path / "predictions" / "loop")
    doc, result = batch_json(tmp_path, "-r")
    assert result.exit_code == ExitStatus.OK
    assert [p["name"] for p in doc["pairs"]] == ["a", "b", "sub/c", "sub/deeper/d"]


def test_pairs_are_in_natural_order_in_table_json_and_csv(tmp_path):
    names = ["m/10", "m/5", "m/1", "m/a2", "m/a10"]
    pairs = {name: make_pair(tmp_path, name, ".npy", ".npy", rows=2, seed=i) for i, name in enumerate(names)}
    expected = ["m/1", "m/5", "m/10", "m/a2", "m/a10"]
    doc, result = batch_json(tmp_path, "-r", "-j", "2")
    assert [pair["name"] for pair in doc["pairs"]] == expected
    for pair in doc["pairs"]:
        assert pair["mean"] == pytest.approx(reference_losses(*pairs[pair["name"]]).mean(), abs=1e-12)
    rows = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "-f", "csv"]).stdout
    assert [line.split(",")[0] for line in rows.splitlines()[1:]] == expected
    table = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r"]).stdout
    assert [table.index(f" {name} ") for name in expected] == sorted(table.index(f" {name} ") for name in expected)


def test_pattern_limits_files(tmp_path, tree):
    doc, result = batch_json(tmp_path, "-r", "--pattern", "c.*", "--pattern", "a.*")
    assert [p["name"] for p in doc["pairs"]] == ["a", "sub/c"]
    # b.csv matches no pattern on either side: not "unmatched", simply not selected
    assert doc["unmatched"] == {"labels": [], "predictions": []}


def test_discover_pairs_unit(tmp_path, tree):
    found = discover_pairs(str(tmp_path / "labels"), str(tmp_path / "predictions"), recursive=True)
    assert [(p.name, Path(p.labels).name, Path(p.predictions).name) for p in found.pairs] == [
        ("a", "a.npy", "a.parquet"),
        ("b", "b.csv", "b.npy"),
        ("sub/c", "c.parquet", "c.csv"),
        ("sub/deeper/d", "d.npz", "d.npy"),
    ]


def test_two_files_with_one_name_is_an_error(tmp_path, tree):
    save(tmp_path / "labels" / "a.csv", np.ones((7, 5)))
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions")])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stderr.startswith("Error: ") and "would both be pair 'a'" in result.stderr


# --------------------------------------------------------------------------- unmatched and no pairs


def test_unmatched_files_are_listed_and_reported(tmp_path, tree):
    save(tmp_path / "labels" / "only_labels.npy", np.ones((2, 5)))
    save(tmp_path / "predictions" / "only_preds.csv", np.ones((2, 5)))
    doc, result = batch_json(tmp_path)
    assert result.exit_code == ExitStatus.OK
    assert doc["unmatched"] == {
        "labels": [str(tmp_path / "labels" / "only_labels.npy")],
        "predictions": [str(tmp_path / "predictions" / "only_preds.csv")],
    }
    assert "Warning: 2 file(s) without a partner" in result.stderr
    assert "only_labels.npy (no predictions file)" in result.stderr
    quiet = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--json", "-q"])
    assert quiet.stderr == ""


def test_strict_makes_unmatched_an_error_before_work(tmp_path, tree):
    save(tmp_path / "labels" / "only_labels.npy", np.ones((2, 5)))
    out = tmp_path / "out"
    result = run_cli(
        ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--strict", "--output-dir", str(out)]
    )
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error_lines == [result.stderr.splitlines()[-1]]
    assert error_lines[0].startswith("Error: 1 file(s) without a partner (--strict)")
    assert "only_labels.npy" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_no_pairs_is_an_error_naming_folders_and_patterns(tmp_path, tree):
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--pattern", "*.nothing", "-q"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("Error: no pairs of files found in")
    assert str(tmp_path / "labels") in message and str(tmp_path / "predictions") in message
    assert "'*.nothing'" in message and "-r" in message


# --------------------------------------------------------------------------- failures


def test_broken_pair_among_good_ones(tmp_path, tree):
    rng = np.random.default_rng(9)
    save(tmp_path / "labels" / "broken.csv", rng.normal(size=(4, 5)))
    save(tmp_path / "predictions" / "broken.npy", rng.normal(size=(4, 3)))
    (tmp_path / "labels" / "garbage.npy").write_bytes(b"not an npy file at all")
    save(tmp_path / "predictions" / "garbage.npy", np.ones((2, 5)))
    doc, result = batch_json(tmp_path, "-j", "2")
    assert result.exit_code == ExitStatus.DATA_ERROR
    by_name = {p["name"]: p for p in doc["pairs"]}
    assert [p["name"] for p in doc["pairs"]] == ["a", "b", "broken", "garbage"]
    assert by_name["broken"]["status"] == "error"
    assert "shapes differ" in by_name["broken"]["error"]
    assert by_name["broken"]["mean"] is None and by_name["broken"]["count"] is None
    assert by_name["garbage"]["status"] == "error" and "garbage.npy" in by_name["garbage"]["error"]
    assert by_name["a"]["status"] == by_name["b"]["status"] == "ok"
    assert doc["overall"]["ok"] == 2 and doc["overall"]["failed"] == 2
    expected = np.concatenate([reference_losses(*tree["a"]), reference_losses(*tree["b"])])
    assert doc["overall"]["count"] == expected.size
    assert doc["overall"]["mean"] == pytest.approx(expected.mean(), rel=1e-13)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [errors[0]] and errors[0].startswith("Error: 2 of 4 pair(s) failed; broken: shapes differ")
    assert "Traceback" not in result.stderr


def test_table_shows_rows_errors_and_overall(tmp_path, tree):
    save(tmp_path / "labels" / "broken.csv", np.ones((4, 5)))
    save(tmp_path / "predictions" / "broken.csv", np.ones((6, 5)))
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "-q"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    out = result.stdout
    for name in ("a", "b", "broken", "sub/c", "sub/deeper/d"):
        assert f" {name} " in out
    assert "failed pairs:" in out and "broken: " in out and "row counts differ" in out
    every = np.concatenate([reference_losses(*tree[name]) for name in sorted(tree)])
    assert f"{every.mean():.10g}" in out
    assert "pooled mean" in out and "mean of pair means" in out
    assert "\x1b[" not in out  # no colour off a terminal


def test_fail_fast_stops_scheduling(tmp_path, tree):
    save(tmp_path / "labels" / "a0.csv", np.ones((4, 5)))  # names a, a0, b: the failure comes second
    save(tmp_path / "predictions" / "a0.csv", np.ones((4, 3)))
    doc, result = batch_json(tmp_path, "--fail-fast", "-j", "1")
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert [p["name"] for p in doc["pairs"]] == ["a", "a0"]
    assert doc["overall"]["skipped"] == 1 and doc["overall"]["pairs"] == 3
    assert "--fail-fast" in result.stderr


def test_nan_under_raise_fails_the_pair_and_omit_applies_to_every_pair(tmp_path, tree):
    labels, predictions = tree["a"]
    predictions = predictions.copy()
    predictions[2, 1] = np.nan
    save(tmp_path / "predictions" / "a.parquet", predictions)
    doc, result = batch_json(tmp_path)
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert doc["pairs"][0]["status"] == "error" and "row 2" in doc["pairs"][0]["error"]
    doc, result = batch_json(tmp_path, "--nan-policy", "omit", "--losses")
    assert result.exit_code == ExitStatus.OK
    pair = doc["pairs"][0]
    assert pair["omitted"] == 1 and pair["count"] == 6 and pair["omitted_indices"] == [2]
    expected = np.delete(reference_losses(labels, predictions), 2)
    np.testing.assert_allclose(pair["losses"], expected, atol=1e-12)


def test_compute_options_apply_to_every_pair(tmp_path, tree):
    doc, result = batch_json(tmp_path, "--axis", "0")
    assert result.exit_code == ExitStatus.OK
    for pair in doc["pairs"]:
        labels, predictions = tree[pair["name"]]
        assert pair["count"] == 5
        assert pair["mean"] == pytest.approx(reference_losses(labels, predictions, axis=0).mean(), abs=1e-12)


# --------------------------------------------------------------------------- formats


def test_jobs_1_and_jobs_2_give_identical_json(tmp_path, tree):
    save(tmp_path / "labels" / "broken.csv", np.ones((4, 5)))
    save(tmp_path / "predictions" / "broken.csv", np.ones((4, 2)))
    one = run_cli(
        ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "--json", "--losses", "-j", "1"]
    )
    two = run_cli(
        ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "--json", "--losses", "-j", "2"]
    )
    assert one.exit_code == two.exit_code == ExitStatus.DATA_ERROR
    assert one.stdout == two.stdout
    assert len(json.loads(one.stdout)["pairs"]) == 5


def test_ndjson_lines_parse_one_by_one(tmp_path, tree):
    save(tmp_path / "labels" / "broken.csv", np.ones((4, 5)))
    save(tmp_path / "predictions" / "broken.csv", np.ones((4, 2)))
    result = run_cli(
        ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "-f", "ndjson", "-j", "2"]
    )
    assert result.exit_code == ExitStatus.DATA_ERROR
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    objects = [json.loads(line) for line in lines]
    assert all(list(obj) == PAIR_KEYS for obj in objects)
    assert sorted(obj["name"] for obj in objects) == ["a", "b", "broken", "sub/c", "sub/deeper/d"]
    as_json = json.loads(
        run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "--json"]).stdout
    )
    assert sorted(objects, key=lambda obj: obj["name"]) == as_json["pairs"]


def test_ndjson_with_losses(tmp_path, tree):
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-f", "ndjson", "--losses"])
    objects = {obj["name"]: obj for obj in map(json.loads, result.stdout.splitlines())}
    np.testing.assert_allclose(objects["b"]["losses"], reference_losses(*tree["b"]), atol=1e-12)


@pytest.mark.parametrize(("flag", "has_losses"), [([], False), (["--losses"], True), (["--no-losses"], False)])
def test_losses_flag_both_spellings(tmp_path, tree, flag, has_losses):
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "--json", *flag])
    pairs = {obj["name"]: obj for obj in json.loads(result.stdout)["pairs"]}
    assert ("losses" in pairs["b"]) is has_losses
    assert pairs["b"]["mean"] == pytest.approx(reference_losses(*tree["b"]).mean(), abs=1e-12)


@pytest.mark.parametrize("order", [["--json", "-f", "ndjson"], ["-f", "csv", "--json"]])
def test_json_with_another_format_is_a_usage_error(tmp_path, tree, order):
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), *order])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "--json and --format" in result.stderr and result.stdout == ""


def test_csv_one_row_per_pair(tmp_path, tree):
    save(tmp_path / "labels" / "broken.csv", np.ones((4, 5)))
    save(tmp_path / "predictions" / "broken.csv", np.ones((4, 2)))
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-f", "csv", "-q"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == PAIR_KEYS
    assert [row["name"] for row in rows] == ["a", "b", "broken"]
    assert float(rows[0]["mean"]) == pytest.approx(reference_losses(*tree["a"]).mean(), abs=1e-12)
    assert rows[2]["status"] == "error" and rows[2]["mean"] == "" and "shapes differ" in rows[2]["error"]


# --------------------------------------------------------------------------- output dir


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npy", "jsonl"])
def test_output_dir_contents(tmp_path, tree, fmt):
    save(tmp_path / "labels" / "broken.csv", np.ones((4, 5)))
    save(tmp_path / "predictions" / "broken.csv", np.ones((4, 2)))
    out = tmp_path / "losses"
    result = run_cli(
        [
            "batch",
            str(tmp_path / "labels"),
            str(tmp_path / "predictions"),
            "-r",
            "--json",
            "--output-dir",
            str(out),
            "--output-format",
            fmt,
        ]
    )
    assert result.exit_code == ExitStatus.DATA_ERROR  # the broken pair
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [f"a.{fmt}", f"b.{fmt}", f"sub/c.{fmt}", f"sub/deeper/d.{fmt}"]
    doc = json.loads(result.stdout)
    assert {p["name"]: p["output"] for p in doc["pairs"]}["sub/c"] == str(out / "sub" / f"c.{fmt}")
    path = out / "sub" / f"c.{fmt}"
    if fmt == "csv":
        losses = [float(row["loss"]) for row in csv.DictReader(path.open())]
    elif fmt == "parquet":
        losses = pq.read_table(path).column("loss").to_pylist()
    elif fmt == "npy":
        losses = np.load(path).tolist()
    else:
        losses = [json.loads(line)["loss"] for line in path.read_text().splitlines()]
    np.testing.assert_allclose(losses, reference_losses(*tree["sub/c"]), atol=1e-12)


def test_output_dir_inside_labels_folder_is_not_searched(tmp_path, tree):
    out = tmp_path / "labels" / "out"
    args = ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "--json", "--output-dir", str(out)]
    first = run_cli(args)
    second = run_cli(args)
    assert first.exit_code == second.exit_code == ExitStatus.OK
    assert json.loads(second.stdout)["unmatched"] == {"labels": [], "predictions": []}


def test_manifest_pairs_and_output_never_outside_dir(tmp_path, tree):
    (tmp_path / "pairs.csv").write_text(
        "labels,predictions,name\n"
        "labels/a.npy,predictions/a.parquet,first\n"
        "labels/sub/c.parquet,predictions/sub/c.csv,\n"
        "labels/b.csv,predictions/b.npy,nested/second\n"
    )
    out = tmp_path / "out"
    result = run_cli(["batch", "--manifest", str(tmp_path / "pairs.csv"), "--json", "--output-dir", str(out)])
    assert result.exit_code == ExitStatus.OK, result.stderr
    doc = json.loads(result.stdout)
    assert [p["name"] for p in doc["pairs"]] == ["first", "labels/sub/c", "nested/second"]
    means = {p["name"]: p["mean"] for p in doc["pairs"]}
    assert means["first"] == pytest.approx(reference_losses(*tree["a"]).mean(), abs=1e-12)
    assert means["nested/second"] == pytest.approx(reference_losses(*tree["b"]).mean(), abs=1e-12)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["first.csv", "labels/sub/c.csv", "nested/second.csv"]

    (tmp_path / "evil.csv").write_text("labels,predictions,name\nlabels/a.npy,predictions/a.parquet,../../escape\n")
    result = run_cli(["batch", "--manifest", str(tmp_path / "evil.csv"), "--output-dir", str(out)])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "line 2" in result.stderr and "'../../escape'" in result.stderr
    assert not (tmp_path.parent / "escape.csv").exists()


def test_output_dir_refuses_symlink_escape(tmp_path, tree):
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    os.symlink(outside, out / "sub")
    result = run_cli(
        ["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-r", "--json", "--output-dir", str(out)]
    )
    assert result.exit_code == ExitStatus.DATA_ERROR
    by_name = {p["name"]: p for p in json.loads(result.stdout)["pairs"]}
    assert by_name["sub/c"]["status"] == "error" and "outside" in by_name["sub/c"]["error"]
    assert by_name["a"]["status"] == "ok"
    assert list(outside.rglob("*")) == []


def test_manifest_unit_errors(tmp_path):
    (tmp_path / "m.csv").write_text("labels,preds\na.npy,b.npy\n")
    with pytest.raises(DataError, match="labels,predictions"):
        read_manifest(str(tmp_path / "m.csv"))
    (tmp_path / "m.csv").write_text("labels,predictions\nx/a.npy,a.npy\ny/a.npy,a.npy\nx/a.csv,b.npy\n")
    with pytest.raises(DataError, match="line 4: name 'x/a' is already used on line 2"):
        read_manifest(str(tmp_path / "m.csv"))
    assert not is_safe_name("/abs") and not is_safe_name("a/../../b") and is_safe_name("a/b")


# --------------------------------------------------------------------------- exit codes and usage


def test_fail_above_uses_the_pooled_mean(tmp_path, tree):
    every = np.concatenate([reference_losses(*tree[name]) for name in sorted(tree)])
    pooled = float(every.mean())
    mean_of_means = float(np.mean([reference_losses(*tree[name]).mean() for name in sorted(tree)]))
    between = (pooled + mean_of_means) / 2
    labels, predictions = str(tmp_path / "labels"), str(tmp_path / "predictions")
    gate = run_cli(["batch", labels, predictions, "-r", "--json", "--fail-above", str(between)])
    expected_status = 3 if pooled > between else 0
    assert gate.exit_code == expected_status
    assert json.loads(gate.stdout)["overall"]["mean"] == pytest.approx(pooled, rel=1e-13)  # printed anyway
    above = run_cli(["batch", labels, predictions, "-r", "-q", "--fail-above", str(pooled * 0.999)])
    below = run_cli(["batch", labels, predictions, "-r", "-q", "--fail-above", str(pooled * 1.001)])
    assert (above.exit_code, below.exit_code) == (3, 0)
    assert "pooled mean loss" in above.stderr and "above --fail-above" in above.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["batch"], "give two folders"),
        (["batch", "nope_labels", "nope_preds"], "no such folder"),
        (["batch", "--manifest", "nope.csv"], "no such file"),
        (["batch", "a", "b", "--manifest", "m.csv"], "not both"),
        (["batch", "a", "b", "--output-format", "npy"], "--output-dir"),
        (["batch", "a", "b", "--jobs", "0"], "--jobs"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, needle, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(args)
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert needle in result.stderr
    assert result.stdout == ""


def test_progress_bar_never_on_stdout(tmp_path, tree):
    result = run_cli(["batch", str(tmp_path / "labels"), str(tmp_path / "predictions"), "-f", "ndjson"], env=TERMINAL)
    assert result.exit_code == ExitStatus.OK
    assert sorted(json.loads(line)["name"] for line in result.stdout.splitlines()) == ["a", "b"]  # completion order


def test_sample_data_batch_shows_everything():
    base = ROOT / "sample_data" / "batch"
    result = run_cli(["batch", str(base / "labels"), str(base / "predictions"), "-r", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == ExitStatus.DATA_ERROR
    statuses = {p["name"]: p["status"] for p in doc["pairs"]}
    assert statuses.pop("broken") == "error"
    assert len(statuses) >= 3 and set(statuses.values()) == {"ok"}
    assert any("/" in name for name in statuses)  # a nested subfolder
    assert doc["unmatched"]["labels"]


def test_batch_json_sample_in_the_docs_is_what_the_tool_prints(monkeypatch):
    """The docs' batch JSON sample is real output."""
    for doc in (ROOT / "docs" / "commands" / "batch.md", ROOT / "README.md"):
        text = doc.read_text(encoding="utf-8") if doc.exists() else ""
        if "<!-- batch-json-sample:start -->" in text:
            break
    else:
        pytest.fail("no batch JSON sample in docs/commands/batch.md")
    block = text.split("<!-- batch-json-sample:start -->", 1)[1].split("<!-- batch-json-sample:end -->", 1)[0]
    sample = json.loads(block.split("```json\n", 1)[1].split("```", 1)[0])
    monkeypatch.chdir(ROOT)
    result = run_cli(["batch", "sample_data/batch/labels", "sample_data/batch/predictions", "-r", "--json"])
    assert_same_json(json.loads(result.stdout), sample)


# --------------------------------------------------------------------------- interrupts (real executable)


@pytest.mark.parametrize(
    "sig, status, word, jobs",
    [
        (signal.SIGINT, 130, "Interrupted", "1"),
        (signal.SIGTERM, 143, "Terminated", "1"),
        (signal.SIGINT, 130, "Interrupted", "2"),
        (signal.SIGTERM, 143, "Terminated", "2"),
    ],
)
def test_interrupt_stops_cleanly(tmp_path, tree, sig, status, word, jobs):
    """Pair 'b' reads a FIFO nobody writes to, so it blocks until the signal: no timing involved."""
    os.mkfifo(tmp_path / "blocked.csv")
    (tmp_path / "pairs.csv").write_text(
        "labels,predictions,name\nlabels/a.npy,predictions/a.parquet,a\nblocked.csv,predictions/b.npy,b\n"
    )
    out = tmp_path / "out"

    args = [EXECUTABLE, "batch", "--manifest", str(tmp_path / "pairs.csv"), "-f", "ndjson", "-j", jobs]
    process = subprocess.Popen(
        [*args, "--output-dir", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = process.stdout.readline()  # pair 'a' finished; 'b' is blocked on the FIFO
        assert json.loads(first)["name"] == "a"
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == status, stderr
    assert stdout == ""
    assert f"{word}: 1 of 2 pair(s) finished." in stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.rglob("*")) == ["a.csv"]  # no partial or temporary files


def test_subfolders_left_out_without_recursive_are_named_with_a_hint(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = run_cli(["batch", "sample_data/batch/labels", "sample_data/batch/predictions", "--json"])
    assert "Warning: 2 subfolder(s) not searched" in result.stderr and "pass -r" in result.stderr
    names = [pair["name"] for pair in json.loads(result.stdout)["pairs"]]
    assert names == ["broken", "shard_0", "shard_1"]


def test_pair_progress_counts_pairs_and_rows():
    import io

    from cosloss_cli.render.progress import pair_progress

    stream = io.StringIO()
    with pair_progress(True, 3, stream=stream) as advance:
        assert advance is not None
        advance(10)
        advance(32)
    drawn = stream.getvalue()
    assert "/3" in drawn and "42 rows" in drawn


def test_table_into_a_closed_pipe_ends_quietly(tmp_path):
    """``cosloss batch ... | head``: the table outgrows the pipe buffer, and rich must not exit 1."""
    rng = np.random.default_rng(7)
    (tmp_path / "labels").mkdir()
    (tmp_path / "predictions").mkdir()
    for i in range(1500):  # ~120 KB of table, more than a pipe holds
        np.save(tmp_path / "labels" / f"pair_{i:04}.npy", rng.normal(size=(2, 3)))
        np.save(tmp_path / "predictions" / f"pair_{i:04}.npy", rng.normal(size=(2, 3)))

    folders = f'"{tmp_path / "labels"}" "{tmp_path / "predictions"}"'
    script = f'"{EXECUTABLE}" batch {folders} -j 1 | head -2; echo "status=${{PIPESTATUS[0]}}" >&2'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.stdout.splitlines()[0].startswith("pairs")
    assert proc.stderr == "status=0\n"


# --------------------------------------------------------------------------- executor interface


class RecordingExecutor:
    """A stand-in for another runner (a cluster one): results in reverse order, cancel recorded."""

    def __init__(self, fail_on: str | None = None):
        self.pulled: list[str] = []
        self.cancelled = False
        self.fail_on = fail_on

    def submit(self, task, pairs):
        from cosloss_cli.batch import PairResult

        for pair in pairs:  # pulled one at a time, as a runner with one slot would
            self.pulled.append(pair.name)
            if pair.name == self.fail_on:
                raise KeyboardInterrupt
            yield PairResult(pair, "error" if pair.name == "b" else "ok", error="boom" if pair.name == "b" else None)

    def cancel(self):
        self.cancelled = True


def _pairs(*names):
    from cosloss_cli.batch import Pair

    return [Pair(name, f"{name}.npy", f"{name}.npy") for name in names]


def test_runner_works_on_any_executor_and_orders_results_naturally():
    from cosloss_cli.batch import BatchRunner, PairTask
    from cosloss_cli.io import ReadOptions
    from cosloss_cli.pipeline.result import ComputeOptions

    task = PairTask(ReadOptions(), ReadOptions(), ComputeOptions())
    seen = []
    runner = BatchRunner(_pairs("m10", "m5", "b"), task, RecordingExecutor(), on_result=lambda r: seen.append(r.name))
    results = runner.run()
    assert seen == ["m10", "m5", "b"]  # completion order, as the executor yields them
    assert [r.name for r in results] == ["b", "m5", "m10"]
    assert not runner.stopped_early and runner.done == runner.total == 3

    # fail_fast stops pulling pairs after the first failed result
    executor = RecordingExecutor()
    runner = BatchRunner(_pairs("b", "c", "d"), task, executor, fail_fast=True)
    assert [r.name for r in runner.run()] == ["b"] and executor.pulled == ["b"] and runner.stopped_early

    # an interrupt cancels the executor before it reaches the caller
    executor = RecordingExecutor(fail_on="c")
    with pytest.raises(KeyboardInterrupt):
        BatchRunner(_pairs("a", "c", "d"), task, executor).run()
    assert executor.cancelled and executor.pulled == ["a", "c"]


def test_json_document_is_written_in_parts_as_one_dumps_would_write_it(tmp_path, tree):
    """The pairs are encoded before the pooled percentiles are waited for; the text is unchanged."""
    from cosloss_cli.batch import InProcess, PairTask, Report, overall
    from cosloss_cli.batch.render import overall_object, pair_object, write_json
    from cosloss_cli.io import ReadOptions
    from cosloss_cli.pipeline.result import ComputeOptions
    from cosloss_cli.render.output import View
    from cosloss_cli.render.result import SCHEMA_VERSION
    from cosloss_cli.stats.figures import FigureOptions

    discovery = discover_pairs(str(tmp_path / "labels"), str(tmp_path / "predictions"), recursive=True)
    task = PairTask(ReadOptions(), ReadOptions(), ComputeOptions(), figures=FigureOptions(confidence=0))
    results = list(InProcess().submit(task, discovery.pairs))
    summary = overall(results, len(results))
    asked: list[str] = []
    percentiles = {"p05": 0.125, "p25": 0.25, "p75": 0.75, "p95": 0.875, "p99": 0.96875}

    def pending() -> dict[str, float]:
        asked.append("percentiles")
        return percentiles

    out = io.StringIO()
    write_json(Report(results, summary, discovery, pending), out, View(losses=False))
    expected = {
        "schema_version": SCHEMA_VERSION,
        "pairs": [pair_object(result) for result in results],
        "overall": overall_object(summary.with_percentiles(percentiles)),
        "unmatched": {"labels": discovery.unmatched_labels, "predictions": discovery.unmatched_predictions},
    }
    assert out.getvalue() == json.dumps(expected, allow_nan=False) + "\n"
    assert asked == ["percentiles"] and json.loads(out.getvalue())["overall"]["p95"] == 0.875

    # Pair objects encoded as each pair finished are written as they were encoded.
    first = results[0]
    encoded = {first.pair: json.dumps({**pair_object(first), "mean": 12.5})}
    out = io.StringIO()
    write_json(Report(results, summary, discovery, pending, encoded), out, View(losses=False))
    expected["pairs"][0]["mean"] = 12.5
    assert out.getvalue() == json.dumps(expected, allow_nan=False) + "\n"


# --- the worker processes ------------------------------------------------------------------


def test_a_worker_that_dies_fails_its_pairs_and_is_replaced(tmp_path, tree, monkeypatch):
    """The workers are forked from this process, so they inherit the patched run_pairs."""
    import cosloss_cli.batch.runner as runner

    real = runner.run_pairs

    def dying(task, pairs):
        if any(pair.name == "b" for pair in pairs):
            os._exit(9)  # as the kernel's OOM killer would end it: no result, no goodbye
        return real(task, pairs)

    monkeypatch.setattr(runner, "run_pairs", dying)
    doc, result = batch_json(tmp_path, "-r", "-j", "2")
    assert result.exit_code == ExitStatus.DATA_ERROR
    status = {pair["name"]: (pair["status"], pair["error"]) for pair in doc["pairs"]}
    assert status["b"] == ("error", "the worker process died (out of memory? try fewer --jobs)")
    assert all(state == "ok" for name, (state, _) in status.items() if name != "b")  # queued: sent again
    assert "1 of 4 pair(s) failed; b: the worker process died" in result.stderr


def _sleep_through_sigterm(seconds: float) -> str:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # as a main thread stuck in a system call
    time.sleep(seconds)
    return "woke"


def test_a_worker_that_cannot_stop_is_killed_after_the_grace_period(monkeypatch):
    import cosloss_cli.base.workers as workers

    monkeypatch.setattr(workers, "STOP_GRACE_SECONDS", 0.2)
    worker = workers.Worker(_sleep_through_sigterm, lambda: None)
    worker.send(workers.task_payload(0.0), "started")  # answered: SIGTERM is blocked from now on
    assert worker.receive() == ("started", "woke")
    worker.send(workers.task_payload(60.0), "sleep")
    started = time.monotonic()
    worker.stop(now=True)
    assert time.monotonic() - started < 10 and not worker.process.is_alive()
    assert worker.process.exitcode == -signal.SIGKILL


def test_workers_answer_in_order_and_exit_when_their_pipes_close():
    import cosloss_cli.base.workers as workers

    pool = [workers.Worker(_sleep_through_sigterm, lambda: None) for _ in range(3)]
    for worker in pool:
        worker.send(workers.task_payload(0.0), "first")
        worker.send(workers.task_payload(0.0), "second")
    for worker in pool:
        assert worker.receive() == ("first", "woke") and worker.receive() == ("second", "woke")
    for worker in pool:  # each exits on EOF: no worker keeps another's pipe open
        worker.stop()
        assert worker.process.exitcode == 0


@given(
    st.lists(
        st.sampled_from(["", "a", ".", "gz", ".gz", ".GZ", ".csv", ".CSV", ".tsv", ".tab", ".npy", ".npz", ".pq", "/"]),
        max_size=5,
    ).map("".join)
)
def test_format_extension_is_the_longest_listed_ending(path: str) -> None:
    """What the suffix parsing must equal: the longest known extension the lowered name ends with."""
    from cosloss_cli.io.formats import _EXTENSIONS, format_extension

    endings = [ext for ext in _EXTENSIONS if path.lower().endswith(ext)]
    assert format_extension(path) == (max(endings, key=len) if endings else None)
