"""``compare --runs``: every run of a tree compared as ``compare`` compares it, with trends.

Each run's figures must be exactly those of ``cosloss compare`` on that run's files, so a
run taken for another, a model order mixed up or a result lost in a worker fails here.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosloss_cli.compare.runs_render import trend_line
from cosloss_cli.status import ExitStatus

from .conftest import run_cli, run_executable

RUNS, ROWS, DIM = 4, 120, 8


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/day-1 ... day-4, each with labels and models A, B, C (C worse on more rows each day)."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(5)
    for day in range(1, RUNS + 1):
        folder = root / f"day-{day}"
        folder.mkdir()
        labels = rng.normal(size=(ROWS, DIM))
        np.save(folder / "labels.npy", labels)
        for name, noise in (("A", 0.8), ("B", 0.7), ("C", 0.6)):
            predictions = labels + noise * rng.normal(size=labels.shape)
            if name == "C":
                predictions[: 5 * day] = -labels[: 5 * day]
            np.save(folder / f"{name}.npy", predictions)
    (root / "_SUCCESS").write_text("")
    (root / ".hidden").mkdir()
    return root


def single(tree: Path, day: str, *extra: str) -> dict:
    folder = tree / day
    args = ["compare", str(folder / "labels.npy"), *(str(folder / f"{m}.npy") for m in "ABC"), "--json"]
    result = run_cli([*args, "--no-losses", "-q", *extra])
    return json.loads(result.stdout)


def test_each_run_is_what_compare_gives_on_its_files(tree: Path) -> None:
    result = run_cli(["compare", "--runs", str(tree), "--names", "A,B,C", "--json", "-j", "1", "--top", "2"])
    assert result.exit_code == ExitStatus.OK, result.stderr
    document = json.loads(result.stdout)
    assert [run["run"] for run in document["runs"]] == [f"day-{d}" for d in range(1, RUNS + 1)]
    for run in document["runs"]:
        expected = single(tree, run["run"], "--top", "2")
        assert {key: value for key, value in run.items() if key != "run"} == expected
    assert document["failed"] == 0 and document["gates_passed"] is None
    assert document["trend"] == {
        name: [run["comparisons"][i]["mean_difference"] for run in document["runs"]]
        for i, name in enumerate(["B", "C"])
    }


def test_worker_processes_give_the_same_document(tree: Path) -> None:
    one = run_cli(["compare", "--runs", str(tree), "--json", "-j", "1"])
    two = run_executable(["compare", "--runs", str(tree), "--json", "-j", "2"])
    assert one.exit_code == two.returncode == ExitStatus.OK, two.stderr
    assert json.loads(one.stdout) == json.loads(two.stdout)


def test_the_runs_are_spread_over_a_worker_per_cpu_by_default(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cosloss_cli.compare import runs

    monkeypatch.setattr(runs, "usable_cpus", lambda: 3)
    started: list[object] = []
    real_worker = runs.Worker
    monkeypatch.setattr(runs, "Worker", lambda *args: started.append(real_worker(*args)) or started[-1])
    default = run_cli(["compare", "--runs", str(tree), "--json"])
    one = run_cli(["compare", "--runs", str(tree), "--json", "-j", "1"])
    assert default.exit_code == one.exit_code == ExitStatus.OK, default.stderr
    assert len(started) == 3
    assert json.loads(default.stdout) == json.loads(one.stdout)


def test_a_run_whose_worker_dies_is_reported_and_the_others_count(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker comparing day-2 is killed: that run fails, a new worker compares the rest."""
    import os
    import signal

    from cosloss_cli.compare import runs

    parent = os.getpid()
    real = runs.compare_files

    def killed_on_day_2(labels: str, *args: object, **kwargs: object) -> object:
        if "day-2" in labels and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(labels, *args, **kwargs)

    monkeypatch.setattr(runs, "compare_files", killed_on_day_2)
    result = run_cli(["compare", "--runs", str(tree), "--json", "-j", "2"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    document = json.loads(result.stdout)
    assert document["failed"] == 1
    assert document["runs"][1] == {"run": "day-2", "error": runs.WORKER_DIED}
    for index in (0, 2, 3):
        day = f"day-{index + 1}"
        assert document["runs"][index] == {"run": day, **single(tree, day)}


def test_ctrl_c_stops_the_workers_at_once(tree: Path, tmp_path: Path) -> None:
    """A model of day-3 is a FIFO nobody writes to, so its worker blocks until stopped: no timing."""
    import os
    import shutil
    import signal
    import subprocess
    import time

    from .conftest import EXECUTABLE

    copy = tmp_path / "runs"
    shutil.copytree(tree, copy)
    (copy / "day-3" / "B.npy").unlink()
    os.mkfifo(copy / "day-3" / "B.npy")
    process = subprocess.Popen(
        [EXECUTABLE, "compare", "--runs", str(copy), "--json", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        listing = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        while len(children) < 2 and time.monotonic() < deadline:
            children = [int(pid) for pid in listing.read_text().split()] if listing.exists() else []
            time.sleep(0.05)
        assert len(children) == 2, "the workers were not started"
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == ExitStatus.INTERRUPTED, stderr
    assert stdout == "" and "Traceback" not in stderr
    for pid in children:
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text(), f"worker {pid} outlived compare"


def test_ndjson_and_csv_have_a_record_per_run_and_candidate(tree: Path) -> None:
    lines = run_cli(["compare", "--runs", str(tree), "--format", "ndjson", "-q"]).stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(row["run"], row["candidate"]) for row in rows] == [
        (f"day-{d}", name) for d in range(1, RUNS + 1) for name in ("B", "C")
    ]
    day2 = single(tree, "day-2")["comparisons"][1]
    assert rows[3]["mean_difference"] == day2["mean_difference"] and rows[3]["p99"] == day2["tail"]["p99"]
    text = run_cli(["compare", "--runs", str(tree), "--format", "csv", "-q"]).stdout
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame["run"]) == [row["run"] for row in rows]
    np.testing.assert_array_equal(frame["mean_difference"].to_numpy(), [row["mean_difference"] for row in rows])
    assert next(csv.reader(io.StringIO(text)))[:3] == ["run", "baseline", "candidate"]


def test_the_table_has_a_row_per_run_and_candidate_and_a_trend(tree: Path) -> None:
    result = run_cli(["compare", "--runs", str(tree), "--names", "A,C"])
    assert result.exit_code == ExitStatus.OK
    out = result.stdout
    assert out.splitlines()[0] == f"{tree}: {RUNS} runs"
    assert sum(line.startswith("│ day-") for line in out.splitlines()) == RUNS
    trend = [line for line in out.splitlines() if line.startswith("│ C ")]
    assert trend and trend[-1].split("│")[2].strip() == "▁▃▆█"  # C gets worse run after run


def test_gates_apply_per_run_and_name_the_run(tree: Path) -> None:
    plain = json.loads(run_cli(["compare", "--runs", str(tree), "--json", "-q"]).stdout)
    shares = [run["comparisons"][1]["tail"]["worse_share"] for run in plain["runs"]]
    bound = (sorted(shares)[1] + sorted(shares)[2]) / 2  # two runs pass, two fail
    result = run_cli(["compare", "--runs", str(tree), "--max-worse-share", repr(bound), "--json", "-q"])
    assert result.exit_code == ExitStatus.THRESHOLD_EXCEEDED
    document = json.loads(result.stdout)
    assert document["gates_passed"] is False
    assert sum(share > bound for share in shares) == 2
    failing = [
        f"cosloss: run {run['run']}: {item['candidate']}: gate max_worse_share failed "
        f"(value {item['tail']['worse_share']:.6g}, bound {bound:g})"
        for run in plain["runs"]
        for item in run["comparisons"]
        if item["tail"]["worse_share"] > bound
    ]
    assert result.stderr.splitlines() == failing


def test_a_failed_run_is_reported_and_the_others_count(tree: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(tree, copy)
    (copy / "day-3" / "B.npy").write_bytes(b"\x93NUMPY broken")
    result = run_cli(["compare", "--runs", str(copy), "--json"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    document = json.loads(result.stdout)
    assert document["failed"] == 1 and "error" in document["runs"][2]
    assert document["runs"][1] == {"run": "day-2", **single(copy, "day-2")}
    assert document["trend"]["B"][2] is None
    assert result.stderr.startswith("Warning: run day-3: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--names", "A,Z"], "run 'day-1' has no file for model(s) Z"),
        (["extra.npy"], "with --runs, give only the folder of runs"),
        (["--labels-name", "truth"], "no labels file (named truth.*)"),
        (["--baseline-losses", "x.csv"], "--baseline-losses compares one run"),
    ],
)
def test_usage_errors(tree: Path, args: list[str], message: str) -> None:
    result = run_cli(["compare", "--runs", str(tree), *args])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert result.stderr.startswith("Error: ") and message in result.stderr


def test_runs_must_hold_the_same_models_unless_named(tree: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(tree, copy)
    (copy / "day-2" / "C.npy").rename(copy / "day-2" / "D.npy")
    result = run_cli(["compare", "--runs", str(copy)])
    assert result.exit_code == ExitStatus.USAGE_ERROR and "--names" in result.stderr
    named = run_cli(["compare", "--runs", str(copy), "--names", "A,B", "-q"])
    assert named.exit_code == ExitStatus.OK


def test_compare_without_predictions_and_jobs_without_runs_are_usage_errors(tree: Path) -> None:
    labels = str(tree / "day-1" / "labels.npy")
    assert run_cli(["compare", labels]).exit_code == ExitStatus.USAGE_ERROR
    jobs = run_cli(["compare", labels, labels, labels, "-j", "2"])
    assert jobs.exit_code == ExitStatus.USAGE_ERROR and "--runs" in jobs.stderr


def test_trend_line() -> None:
    assert trend_line([1.0, 2.0, 3.0]) == "▁▅█"
    assert trend_line([0.5, 0.5]) == "▁▁"
    assert trend_line([None, None]) == "  "


def test_the_documents_match_their_schemas(tree: Path) -> None:
    from .test_schemas import validate, validator

    document = json.loads(run_cli(["compare", "--runs", str(tree), "--json", "--top", "1", "--bins", "3"]).stdout)
    validate(document, "compare-runs")
    for run in document["runs"]:
        validate({key: value for key, value in run.items() if key != "run"}, "compare")
    lines = run_cli(["compare", "--runs", str(tree), "--format", "ndjson", "--fail-if-worse", "1"]).stdout
    for line in lines.splitlines():
        validator("compare-runs", "line").validate(json.loads(line))
