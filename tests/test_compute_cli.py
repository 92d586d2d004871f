"""``cosloss compute`` end to end: numbers, formats, exit codes and stderr."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.status import ExitStatus

from .conftest import ROOT, TERMINAL, GoldenCase, golden_cases, run_cli, run_executable, without_paths

SEED_LABELS = str(ROOT / "sample_data" / "labels.csv")
SEED_PREDICTIONS = str(ROOT / "sample_data" / "predictions.csv")
SEED_MEAN = 0.07716870145213545


def as_json(result) -> dict:
    assert result.exit_code == ExitStatus.OK, result.stderr
    return json.loads(result.stdout)


# --- golden cases through the real command --------------------------------------


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c.name)
def test_golden_case_through_the_cli(case: GoldenCase) -> None:
    doc = as_json(run_cli(["compute", str(case.labels), str(case.predictions), "--axis", str(case.axis), "--json"]))
    expected = case.expected
    assert doc["shape"] == expected["shape"]
    assert doc["axis"] == case.axis
    losses = np.array(doc["losses"], dtype=np.float64)
    assert list(losses.shape) == expected["losses_shape"]
    np.testing.assert_allclose(losses, np.array(expected["exact_losses"]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(losses, np.array(expected["losses"]), rtol=0, atol=1e-6)
    assert doc["mean"] == pytest.approx(expected["exact_mean"], abs=1e-9)
    assert doc["count"] == losses.size


@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c.name)
def test_golden_case_through_the_installed_executable(case: GoldenCase) -> None:
    proc = run_executable(
        ["compute", str(case.labels), str(case.predictions), "--axis", str(case.axis), "--json", "--no-losses"]
    )
    assert proc.returncode == ExitStatus.OK, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["mean"] == pytest.approx(case.expected["exact_mean"], abs=1e-9)
    assert "losses" not in doc


def test_tutorial_example_json_document() -> None:
    doc = as_json(run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", "--json"]))
    assert doc["schema_version"] == 1
    assert doc["labels"] == SEED_LABELS and doc["predictions"] == SEED_PREDICTIONS
    assert doc["mean"] == pytest.approx(SEED_MEAN, abs=1e-15)
    assert round(doc["mean"], 7) == 0.0771687
    assert doc["losses"] == pytest.approx([0.09887288622083401, 0.05546451668343688], abs=1e-15)
    assert doc["count"] == 2 and doc["zero_vectors"] == 0 and doc["omitted"] == 0
    assert set(doc) >= {"std", "min", "max", "median", "shape", "axis"}


def test_no_normalize_gives_tensorflows_raw_value() -> None:
    doc = as_json(run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", "--json", "--no-normalize"]))
    assert doc["mean"] == -54.0


def test_axis_zero_is_one_loss_per_column_and_negative_axis_is_normalized() -> None:
    doc = as_json(run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "0", "--json"]))
    assert doc["count"] == 3 and doc["axis"] == 0
    doc = as_json(run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "-1", "--json"]))
    assert doc["axis"] == 1


# --- output formats -------------------------------------------------------------


def test_table_shows_losses_and_summary_without_colour_when_piped() -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1"])
    assert result.exit_code == ExitStatus.OK
    out = result.stdout
    assert "\x1b[" not in out
    assert "0.07716870145" in out  # the mean, at least 7 significant digits
    for word in ("count", "mean", "std", "min", "median", "max", "zero vectors", "omitted"):
        assert word in out
    assert result.stderr == ""


def test_table_has_colour_on_a_terminal_unless_no_color() -> None:
    coloured = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS], env=TERMINAL)
    assert "\x1b[" in coloured.stdout
    no_color = TERMINAL.__class__(stdin_isatty=True, stdout_isatty=True, stderr_isatty=True, no_color=True)
    plain = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS], env=no_color)
    assert "\x1b[" not in plain.stdout


def test_table_shows_head_and_tail_with_an_ellipsis(tmp_path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "l.npy", rng.normal(size=(50, 4)))
    np.save(tmp_path / "p.npy", rng.normal(size=(50, 4)))
    out = run_cli(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--max-rows", "4"]).stdout
    assert "(46 more)" in out
    assert "│     0 │" in out and "│    49 │" in out and "│    10 │" not in out


def test_ndjson_is_one_object_per_loss_and_nothing_else() -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--format", "ndjson"])
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"index": 0, "loss": 0.09887288622083401},
        {"index": 1, "loss": 0.05546451668343688},
    ]


def test_csv_output() -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--format", "csv"])
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["index", "loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1]
    assert float(rows[1][1]) == 0.09887288622083401


def test_nd_losses_are_nested_in_json_and_indexed_in_ndjson() -> None:
    case = next(c for c in golden_cases() if c.name == "tensor3d_axis1")
    args = ["compute", str(case.labels), str(case.predictions), "--axis", "1"]
    doc = as_json(run_cli([*args, "--json"]))
    assert np.array(doc["losses"]).shape == (4, 6)
    first = json.loads(run_cli([*args, "--format", "ndjson"]).stdout.splitlines()[0])
    assert first["index"] == [0, 0]
    header = run_cli([*args, "--format", "csv"]).stdout.splitlines()[0]
    assert header == "index_0,index_1,loss"


@pytest.mark.parametrize("ext", [".csv", ".json", ".jsonl", ".ndjson", ".parquet", ".npy"])
def test_output_file_in_every_format(tmp_path, ext: str) -> None:
    target = tmp_path / f"losses{ext}"
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "-o", str(target), "--json", "--no-losses"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert json.loads(result.stdout)["count"] == 2  # the summary still goes to stdout
    if ext == ".npy":
        losses = np.load(target)
    elif ext == ".parquet":
        losses = pq.read_table(target).column("loss").to_numpy()
    elif ext == ".csv":
        losses = np.array([float(r["loss"]) for r in csv.DictReader(target.open())])
    elif ext == ".json":
        losses = np.array(json.loads(target.read_text())["losses"])
    else:
        losses = np.array([json.loads(line)["loss"] for line in target.read_text().splitlines()])
    np.testing.assert_allclose(losses, [0.09887288622083401, 0.05546451668343688], rtol=0, atol=1e-15)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left behind


def test_output_with_unknown_extension_is_a_usage_error_before_any_work(tmp_path) -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "-o", str(tmp_path / "losses.xlsx")])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert result.stderr.startswith("Error: ") and ".parquet" in result.stderr
    assert result.stdout == ""


# --- inputs ---------------------------------------------------------------------


def write_csv(path, header, rows, delimiter=",") -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def test_id_column_is_carried_into_every_output(tmp_path) -> None:
    write_csv(tmp_path / "l.csv", ["id", "a", "b"], [["x", 1, 0], ["y", 0, 1]])
    write_csv(tmp_path / "p.csv", ["id", "a", "b"], [["x", 1, 0], ["y", 1, 0]])
    args = ["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--id-column", "id"]
    doc = as_json(run_cli([*args, "--json"]))
    assert doc["ids"] == ["x", "y"] and doc["losses"] == [0.0, 1.0]
    assert json.loads(run_cli([*args, "-f", "ndjson"]).stdout.splitlines()[1]) == {"index": 1, "id": "y", "loss": 1.0}
    assert run_cli([*args, "-f", "csv"]).stdout.splitlines()[:2] == ["id,loss", "x,0.0"]
    assert "│ y " in run_cli(args).stdout


def test_id_columns_that_disagree_are_an_error(tmp_path) -> None:
    write_csv(tmp_path / "l.csv", ["id", "a"], [["x", 1], ["y", 2]])
    write_csv(tmp_path / "p.csv", ["id", "a"], [["x", 1], ["z", 2]])
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--id-column", "id"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "rows are matched by position, and their ids differ: line 3 of labels has id 'y'" in result.stderr
    assert "has 'z'" in result.stderr and "pass --join-on id to leave such rows out" in result.stderr


def test_non_numeric_column_without_id_column_is_named(tmp_path) -> None:
    """A text column is left out with a note naming it; named in --columns it is refused with its type."""
    write_csv(tmp_path / "l.csv", ["name", "a", "b"], [["x", 1, 0], ["y", 2, 1]])
    write_csv(tmp_path / "p.csv", ["name", "a", "b"], [["x", 1, 0], ["y", 2, 1]])
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--json"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert json.loads(result.stdout)["shape"] == [2, 2]
    assert f"Note: {tmp_path / 'l.csv'}: column 'name' holds text, not numbers: not a vector component" in result.stderr
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--columns", "name,a"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stderr.startswith(
        f"Error: {tmp_path / 'l.csv'}: column 'name' named in --columns holds text, not numbers"
    )


def test_columns_selects_and_orders_features(tmp_path) -> None:
    write_csv(tmp_path / "l.csv", ["a", "b", "c"], [[1, 0, 5], [0, 1, 5]])
    write_csv(tmp_path / "p.csv", ["c", "b", "a"], [[-5, 0, 1], [-5, 1, 0]])
    doc = as_json(run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv"), "--columns", "a,b", "--json"]))
    assert doc["losses"] == [0.0, 0.0] and doc["shape"] == [2, 2]


def test_headerless_csv_and_tsv_and_gzip(tmp_path) -> None:
    write_csv(tmp_path / "l.csv", None, [[1, 4, 5], [5, 5, 7]])
    write_csv(tmp_path / "p.tsv", None, [[3, 2, 5], [3, 2, 7]], delimiter="\t")
    with gzip.open(tmp_path / "p.csv.gz", "wt") as handle:
        handle.write("f0,f1,f2\n3,2,5\n3,2,7\n")
    for predictions in ("p.tsv", "p.csv.gz"):
        doc = as_json(run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / predictions), "--json"]))
        assert doc["mean"] == pytest.approx(SEED_MEAN, abs=1e-15)


def test_forced_header_off_makes_a_text_header_an_error(tmp_path) -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--no-header"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "line 1, column '0': 'f0' is not a number" in result.stderr


def test_npz_key_selection(tmp_path) -> None:
    labels = np.array([[1.0, 4, 5], [5, 5, 7]])
    np.savez(tmp_path / "both.npz", labels=labels, predictions=np.array([[3.0, 2, 5], [3, 2, 7]]))
    np.savez(tmp_path / "one.npz", arr=labels)
    result = run_cli(["compute", str(tmp_path / "both.npz"), str(tmp_path / "one.npz")])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "holds 2 arrays (labels, predictions)" in result.stderr and "--key" in result.stderr
    result = run_cli(["compute", str(tmp_path / "one.npz"), str(tmp_path / "both.npz"), "--key", "nope"])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "no array named 'nope'" in result.stderr


def test_parquet_list_and_columns_and_mixed_formats(tmp_path) -> None:
    labels = np.array([[1.0, 4, 5], [5, 5, 7]])
    predictions = np.array([[3.0, 2, 5], [3, 2, 7]])
    pq.write_table(pa.table({"v": pa.array(labels.tolist())}), tmp_path / "l.parquet")
    pq.write_table(
        pa.table({"a": predictions[:, 0], "b": predictions[:, 1], "c": predictions[:, 2]}), tmp_path / "p.pq"
    )
    np.save(tmp_path / "p.npy", predictions)
    for other in ("p.pq", "p.npy"):
        doc = as_json(run_cli(["compute", str(tmp_path / "l.parquet"), str(tmp_path / other), "--json"]))
        assert doc["mean"] == pytest.approx(SEED_MEAN, abs=1e-15)


def test_stdin_with_input_format(tmp_path) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[3.0, 2, 5], [3, 2, 7]]))
    np.save(tmp_path / "l.npy", np.array([[1.0, 4, 5], [5, 5, 7]]))
    result = run_cli(
        ["compute", str(tmp_path / "l.npy"), "-", "--predictions-format", "npy", "--json"], input=buffer.getvalue()
    )
    assert as_json(result)["mean"] == pytest.approx(SEED_MEAN, abs=1e-15)
    result = run_cli(["compute", "-", SEED_PREDICTIONS, "--input-format", "csv", "--json"], input="1,4,5\n5,5,7\n")
    assert as_json(result)["mean"] == pytest.approx(SEED_MEAN, abs=1e-15)


def test_stdin_needs_a_format_and_refuses_a_terminal() -> None:
    result = run_cli(["compute", "-", SEED_PREDICTIONS], input="1,2,3\n")
    assert result.exit_code == ExitStatus.USAGE_ERROR and "--input-format" in result.stderr
    result = run_cli(["compute", "-", SEED_PREDICTIONS, "--input-format", "csv"], env=TERMINAL)
    assert result.exit_code == ExitStatus.USAGE_ERROR and "stdin is a terminal" in result.stderr


# --- errors and exit codes ------------------------------------------------------


def test_missing_file_is_a_usage_error() -> None:
    result = run_cli(["compute", "nope.csv", SEED_PREDICTIONS])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert result.stderr == "Error: nope.csv: no such file (check the path)\n"
    assert result.stdout == ""


def test_unknown_extension_suggests_input_format(tmp_path) -> None:
    (tmp_path / "l.txt").write_text("1,2\n")
    result = run_cli(["compute", str(tmp_path / "l.txt"), SEED_PREDICTIONS])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "--input-format" in result.stderr


def test_shape_mismatch_names_both_shapes_and_files(tmp_path) -> None:
    np.save(tmp_path / "l.npy", np.ones((2, 3)))
    np.save(tmp_path / "p.npy", np.ones((2, 4)))
    result = run_cli(["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy")])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert f"labels {tmp_path / 'l.npy'} (2, 3), predictions {tmp_path / 'p.npy'} (2, 4)" in result.stderr


def test_csv_row_count_mismatch_found_while_streaming(tmp_path) -> None:
    write_csv(tmp_path / "l.csv", ["a", "b"], [[1, 2]] * 5)
    write_csv(tmp_path / "p.csv", ["a", "b"], [[1, 2]] * 3)
    result = run_cli(["compute", str(tmp_path / "l.csv"), str(tmp_path / "p.csv")])
    assert result.exit_code == ExitStatus.DATA_ERROR and "row counts differ: labels has 2 more rows" in result.stderr


def test_axis_out_of_range_is_a_usage_error() -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "2"])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "axis 2 is out of range for 2-D data" in result.stderr


def test_bad_option_values_are_usage_errors() -> None:
    assert run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--eps", "-1"]).exit_code == ExitStatus.USAGE_ERROR
    assert run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--format", "xml"]).exit_code == ExitStatus.USAGE_ERROR
    assert run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--bogus"]).exit_code == ExitStatus.USAGE_ERROR


@pytest.fixture
def nan_files(tmp_path):
    write_csv(tmp_path / "l.csv", ["a", "b"], [[1, 0], [1, "nan"], [0, 1]])
    write_csv(tmp_path / "p.csv", ["a", "b"], [[1, 0], [1, 1], [1, 0]])
    return str(tmp_path / "l.csv"), str(tmp_path / "p.csv")


def test_nan_policy_raise_names_file_row_and_column(nan_files) -> None:
    result = run_cli(["compute", *nan_files])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stderr.startswith(f"Error: {nan_files[0]}: line 3, column 'b' is NaN")  # line 1 is the header
    assert "--nan-policy" in result.stderr and "Traceback" not in result.stderr


def test_nan_policy_omit_drops_and_reports(nan_files) -> None:
    result = run_cli(["compute", *nan_files, "--nan-policy", "omit", "--json"])
    doc = as_json(result)
    assert doc["losses"] == [0.0, 1.0] and doc["omitted"] == 1 and doc["count"] == 2
    assert doc["mean"] == 0.5 and doc["omitted_indices"] == [1]
    assert "1 vector pair(s) with NaN/Inf omitted" in result.stderr
    lines = run_cli(["compute", *nan_files, "--nan-policy", "omit", "-f", "ndjson"]).stdout.splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 2]


def test_nan_policy_propagate_gives_null(nan_files) -> None:
    doc = as_json(run_cli(["compute", *nan_files, "--nan-policy", "propagate", "--json"]))
    assert doc["losses"] == [0.0, None, 1.0] and doc["mean"] is None and doc["count"] == 3


def test_fail_above_exits_3_after_printing_results() -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--json", "--fail-above", "0.05"])
    assert result.exit_code == ExitStatus.THRESHOLD_EXCEEDED
    assert json.loads(result.stdout)["mean"] == pytest.approx(SEED_MEAN)
    assert "above --fail-above 0.05" in result.stderr
    assert (
        run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--json", "--fail-above", "0.1"]).exit_code == ExitStatus.OK
    )


def test_zero_vector_warning_goes_to_stderr_and_quiet_hides_it(tmp_path) -> None:
    np.save(tmp_path / "l.npy", np.array([[0.0, 0.0], [1.0, 1.0]]))
    np.save(tmp_path / "p.npy", np.array([[1.0, 0.0], [1.0, 1.0]]))
    args = ["compute", str(tmp_path / "l.npy"), str(tmp_path / "p.npy"), "--json"]
    result = run_cli(args)
    assert as_json(result)["zero_vectors"] == 1
    assert "Warning: 1 vector pair(s) with a zero vector" in result.stderr
    assert run_cli([*args, "--quiet"]).stderr == ""


# --- the program itself -----------------------------------------------------------


def test_version_says_which_kernel_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    from cosloss_cli import __version__
    from cosloss_cli.core import cosine as core

    monkeypatch.setattr(core, "_native", object())
    assert run_cli(["--version"]).stdout == f"cosloss, version {__version__} (C kernel)\n"
    monkeypatch.setattr(core, "_native", None)
    assert run_cli(["-V"]).stdout.startswith(f"cosloss, version {__version__} (numpy kernel; ")


def test_help_with_examples() -> None:
    help_text = run_cli(["compute", "--help"]).stdout
    assert "Examples:" in help_text and "cosloss compute labels.csv predictions.csv --axis 1" in help_text
    assert "Examples:" in run_cli(["--help"]).stdout


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cosloss_cli", "compute", SEED_LABELS, SEED_PREDICTIONS, "--json", "--no-losses"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == ExitStatus.OK and json.loads(proc.stdout)["mean"] == pytest.approx(SEED_MEAN)


def test_errors_through_the_executable_have_no_traceback(tmp_path) -> None:
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    proc = run_executable(["compute", str(tmp_path / "broken.npy"), SEED_PREDICTIONS])
    assert proc.returncode == ExitStatus.DATA_ERROR
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_help_imports_no_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from cosloss_cli.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'pyarrow', 'rich', 'numpy') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage:" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


def test_progress_bar_draws_rows_and_rate(capsys) -> None:
    from cosloss_cli.render.progress import row_progress

    stream = io.StringIO()
    with row_progress(True, 1000, "computing", stream=stream) as advance:
        assert advance is not None
        for _ in range(10):
            advance(100)
    drawn = stream.getvalue()
    assert "computing" in drawn and "/1000" in drawn and "rows" in drawn
    assert capsys.readouterr().out == ""
    with row_progress(False, 1000, "computing") as advance:
        assert advance is None


def test_debug_shows_the_traceback() -> None:
    result = run_cli(["compute", "nope.csv", SEED_PREDICTIONS, "--debug"])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "Traceback" in result.stderr and result.stderr.rstrip().endswith("(check the path)")


@pytest.mark.parametrize(
    ("labels", "predictions", "absent"),
    [
        ("sample_data/embeddings_labels.npy", "sample_data/embeddings_predictions.npy", ("pandas", "pyarrow", "rich")),
        ("sample_data/labels.csv", "sample_data/predictions.csv", ("pandas", "rich")),
        ("sample_data/embeddings_labels.parquet", "sample_data/embeddings_predictions.parquet", ("pandas", "rich")),
    ],
)
def test_compute_imports_only_what_the_formats_need(labels: str, predictions: str, absent: tuple) -> None:
    code = (
        "import sys\n"
        "from cosloss_cli.cli import main\n"
        f"try:\n    main(['compute', {labels!r}, {predictions!r}, '--json', '--no-losses'])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print('LOADED=' + ','.join(m for m in {absent!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == ExitStatus.OK, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "LOADED="


def test_csv_parse_error_on_stdin_says_where_the_reading_stopped(tmp_path) -> None:
    result = run_cli(["compute", "-", SEED_PREDICTIONS, "--input-format", "csv"], input="a,b\n1,2\n3,4\n5,x\n")
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert result.stderr.startswith("Error: -: cannot parse: ")
    assert "invalid value 'x'" in result.stderr and "save the data to a file" in result.stderr
    # Past the first block (1 MB), the message bounds where the problem is.
    rows = 400_000
    write_csv(tmp_path / "p.csv", ["a", "b"], [[1, 2]] * (rows + 1))
    text = "a,b\n" + "1,2\n" * rows + "5,x\n"
    result = run_cli(["compute", "-", str(tmp_path / "p.csv"), "--input-format", "csv"], input=text)
    assert result.exit_code == ExitStatus.DATA_ERROR
    after = int(result.stderr.split("after line ")[1].split(":")[0])  # 1-based, counting the header
    assert 1 < after <= rows + 1


# --- output options ---------------------------------------------------------------


@pytest.mark.parametrize(
    "order", [["--json", "--format", "csv"], ["--format", "csv", "--json"], ["-f", "table", "--json"]]
)
def test_json_with_another_format_is_a_usage_error(order: list[str]) -> None:
    result = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", *order])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "--json and --format" in result.stderr and result.stdout == ""


def test_json_with_format_json_is_fine() -> None:
    assert as_json(run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", "--json", "-f", "json"]))


@pytest.mark.parametrize(("flag", "has_losses"), [([], True), (["--losses"], True), (["--no-losses"], False)])
def test_losses_flag_both_spellings(flag: list[str], has_losses: bool) -> None:
    doc = as_json(run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", "--json", *flag]))
    assert ("losses" in doc) is has_losses
    assert doc["mean"] == pytest.approx(SEED_MEAN, rel=1e-12)


def test_max_rows_0_prints_the_summary_without_an_empty_losses_table() -> None:
    out = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", "--max-rows", "0"]).stdout
    assert "loss" not in without_paths(out) and "index" not in without_paths(out)  # the heading names the files
    assert out.splitlines()[1] == "summary" and "0.07716870145" in out


@pytest.mark.parametrize("args", [[], ["--max-rows", "0"], ["--max-rows", "1"]])
def test_table_lines_have_no_trailing_spaces(args: list[str]) -> None:
    out = run_cli(["compute", SEED_LABELS, SEED_PREDICTIONS, "--axis", "1", *args]).stdout
    assert [line for line in out.splitlines() if line != line.rstrip()] == []


def test_input_options_build_one_read_options_per_side() -> None:
    from cosloss_cli.cli.options import _inputs

    inputs = _inputs(
        {"input_format": "csv", "labels_format": None, "predictions_format": "npy", "key": "k", "header": True}
        | {"columns": ["a"], "id_column": "id"}
    )
    assert inputs.labels.input_format == "csv" and inputs.predictions.input_format == "npy"
    assert inputs.labels._replace(input_format=None) == inputs.predictions._replace(input_format=None)
    assert inputs.labels.columns == ["a"] and inputs.labels.id_column == "id" and inputs.labels.key == "k"
    with pytest.raises(TypeError, match="no_such_field"):
        _inputs({"no_such_field": 1})
