"""Running at scale, for real: ``batch`` on object storage (a moto S3 server) and on a Dask cluster.

Everything goes through the installed ``cosloss`` executable, as a user runs it. The
S3 runs must print exactly what the same run on the local sample folders prints (with
the paths swapped); the cluster runs must print exactly what the local run prints.
The servers are the session fixtures of ``conftest.py`` (real processes on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosloss_cli.status import ExitStatus
from tests.conftest import EXECUTABLE, ROOT, run_cli, run_executable
from tests.servers import SAMPLES_BUCKET, TEST_ACCESS_KEY, TEST_SECRET_KEY
from tests.test_storage import reference_losses
from tests.test_storage import s3_authentication as s3_authentication  # a fixture, used by name

LOCAL_BATCH = "sample_data/batch"
S3_BATCH = f"s3://{SAMPLES_BUCKET}/sample_data/batch"


def _run(args: list[str], env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run_executable(args, env=env or dict(os.environ), cwd=ROOT, **kwargs)


def _batch_args(labels: str, predictions: str, *extra: str) -> list[str]:
    return ["batch", labels, predictions, "-r", "--json", "-q", *extra]


def _one_error_line(result: subprocess.CompletedProcess[str], status: ExitStatus, *needles: str) -> str:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr
    assert TEST_SECRET_KEY not in result.stderr + result.stdout
    return lines[0]


# -- batch on S3 ---------------------------------------------------------------------------


def test_batch_on_s3_folders_prints_what_the_local_run_prints(s3_server: Any) -> None:
    remote = _run(_batch_args(f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions"), s3_server.subprocess_env())
    local = _run(_batch_args(f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions"))
    assert remote.returncode == local.returncode == ExitStatus.DATA_ERROR, remote.stderr  # broken.csv fails in both
    assert remote.stdout.replace(S3_BATCH, LOCAL_BATCH) == local.stdout  # the same numbers, bit for bit
    assert remote.stderr.replace(S3_BATCH, LOCAL_BATCH) == local.stderr
    names = [pair["name"] for pair in json.loads(remote.stdout)["pairs"]]
    assert names == ["broken", "run1/epoch_1", "run1/epoch_2", "shard_0", "shard_1"]


def test_batch_on_s3_without_recursive_names_the_prefix_not_searched(s3_server: Any) -> None:
    args = ["batch", f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions", "--pattern", "shard_*", "--json"]
    result = _run(args, s3_server.subprocess_env())
    assert result.returncode == ExitStatus.OK, result.stderr
    assert [pair["name"] for pair in json.loads(result.stdout)["pairs"]] == ["shard_0", "shard_1"]
    assert f"({S3_BATCH}/labels/run1, {S3_BATCH}/predictions/run1): pass -r" in result.stderr


def test_batch_output_dir_on_s3_holds_the_local_files_byte_for_byte(s3_server: Any, tmp_path: Path) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="batch-outputs")
    extra = ["--pattern", "*shard_*", "--pattern", "run1/*", "--output-format", "npy"]
    remote = _run(
        _batch_args(f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions", "--output-dir", "s3://batch-outputs/run", *extra),
        s3_server.subprocess_env(),
    )
    local = _run(
        _batch_args(f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "--output-dir", str(tmp_path), *extra)
    )
    assert remote.returncode == local.returncode == ExitStatus.OK, remote.stderr
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket="batch-outputs")["Contents"])
    assert keys == ["run/run1/epoch_1.npy", "run/run1/epoch_2.npy", "run/shard_0.npy", "run/shard_1.npy"]
    for key in keys:
        body = client.get_object(Bucket="batch-outputs", Key=key)["Body"].read()
        assert body == (tmp_path / key.removeprefix("run/")).read_bytes(), key
    outputs = [pair["output"] for pair in json.loads(remote.stdout)["pairs"]]
    assert outputs == [f"s3://batch-outputs/{key}" for key in keys]
    assert not Path(ROOT, "s3:").exists()  # no local folder made for a URL


def test_batch_output_dir_in_a_missing_bucket_fails_each_pair_and_leaves_nothing(s3_server: Any) -> None:
    args = _batch_args(f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions", "--output-dir", "s3://no-such-out/x")
    result = _run([*args, "--pattern", "shard_0*"], s3_server.subprocess_env())
    assert result.returncode == ExitStatus.DATA_ERROR, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: 1 of 1 pair(s) failed; shard_0: s3://no-such-out/x/shard_0.csv"), line
    assert TEST_SECRET_KEY not in result.stderr + result.stdout


def test_batch_manifest_on_s3_resolves_relative_entries_against_its_folder(s3_server: Any) -> None:
    client = s3_server.client()
    manifest = "labels,predictions,name\nlabels/shard_1.npy,predictions/shard_1.parquet,one\n"
    manifest += f"{S3_BATCH}/labels/shard_0.csv,{S3_BATCH}/predictions/shard_0.csv,zero\n"
    client.put_object(Bucket=SAMPLES_BUCKET, Key="sample_data/batch/remote-pairs.csv", Body=manifest.encode())
    try:
        remote = _run(["batch", "--manifest", f"{S3_BATCH}/remote-pairs.csv", "--json"], s3_server.subprocess_env())
    finally:
        client.delete_object(Bucket=SAMPLES_BUCKET, Key="sample_data/batch/remote-pairs.csv")
    assert remote.returncode == ExitStatus.OK, remote.stderr
    pairs = json.loads(remote.stdout)["pairs"]
    assert [(p["name"], p["labels"]) for p in pairs] == [
        ("one", f"{S3_BATCH}/labels/shard_1.npy"),
        ("zero", f"{S3_BATCH}/labels/shard_0.csv"),
    ]
    pair = [f"{LOCAL_BATCH}/labels/shard_1.npy", f"{LOCAL_BATCH}/predictions/shard_1.parquet"]
    local = _run(["compute", *pair, "--json"])
    assert pairs[0]["mean"] == json.loads(local.stdout)["mean"]


def test_storage_option_reaches_the_backend_for_inputs_and_outputs(s3_server: Any, tmp_path: Path) -> None:
    """With AWS_ENDPOINT_URL unset, only --storage-option endpoint_url=... can find the server."""
    env = {key: value for key, value in s3_server.subprocess_env().items() if not key.startswith("AWS_ENDPOINT")}
    s3_server.client().create_bucket(Bucket="option-outputs")
    option = ["--storage-option", f"endpoint_url={s3_server.endpoint}"]
    base = f"s3://{SAMPLES_BUCKET}/sample_data"
    compute = ["compute", f"{base}/labels.csv", f"{base}/predictions.csv", "--axis", "1", "--json", "-q"]
    result = _run([*compute, *option, "-o", "s3://option-outputs/losses.csv"], env)
    assert result.returncode == ExitStatus.OK, result.stderr
    local = _run(
        ["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--axis", "1"]
        + ["-o", str(tmp_path / "l.csv")]
    )
    assert local.returncode == ExitStatus.OK, local.stderr
    body = s3_server.client().get_object(Bucket="option-outputs", Key="losses.csv")["Body"].read()
    assert body == (tmp_path / "l.csv").read_bytes()
    batch = _run([*_batch_args(f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions", "--pattern", "shard_*"), *option], env)
    assert batch.returncode == ExitStatus.OK, batch.stderr


def test_storage_option_errors_are_usage_errors_without_the_secret(s3_server: Any) -> None:
    args = ["compute", "a.npy", "b.npy", "--storage-option", "secret_key:sk-abcdef123"]
    result = _run(args, s3_server.subprocess_env())
    assert result.returncode == ExitStatus.USAGE_ERROR, result.stderr
    assert "KEY=VALUE" in result.stderr and "sk-abcdef123" not in result.stderr


def test_batch_on_a_missing_bucket_is_one_usage_error_line(s3_server: Any) -> None:
    args = _batch_args("s3://no-such-bucket-b/labels", "s3://no-such-bucket-b/preds")
    result = _run(args, s3_server.subprocess_env())
    _one_error_line(result, ExitStatus.USAGE_ERROR, "s3://no-such-bucket-b/labels")


def test_batch_on_a_missing_manifest_key_is_one_usage_error_line(s3_server: Any) -> None:
    url = f"{S3_BATCH}/no-such-manifest.csv"
    result = _run(["batch", "--manifest", url], s3_server.subprocess_env())
    _one_error_line(result, ExitStatus.USAGE_ERROR, url, "no such object")


def test_batch_with_bad_credentials_is_one_line_without_the_secret(s3_server: Any, s3_authentication: None) -> None:
    secret = "wrong-secret-batch-77aa"
    env = {**s3_server.subprocess_env(), "AWS_ACCESS_KEY_ID": "AKIAWRONGBATCH123456", "AWS_SECRET_ACCESS_KEY": secret}
    result = _run(_batch_args(f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions"), env)
    line = _one_error_line(result, ExitStatus.DATA_ERROR, f"{S3_BATCH}/labels")
    assert secret not in result.stderr and "AKIAWRONGBATCH123456" not in line


# -- batch on a Dask cluster ---------------------------------------------------------------


def test_batch_on_the_cluster_prints_exactly_the_local_output(dask_cluster: Any, tmp_path: Path) -> None:
    args = _batch_args(f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "--losses")
    on_cluster = _run([*args, "--scheduler-file", dask_cluster.scheduler_file, "--output-dir", str(tmp_path / "c")])
    local = _run([*args, "--output-dir", str(tmp_path / "l")])
    assert on_cluster.returncode == local.returncode == ExitStatus.DATA_ERROR, on_cluster.stderr
    assert on_cluster.stdout.replace(str(tmp_path / "c"), "OUT") == local.stdout.replace(str(tmp_path / "l"), "OUT")
    assert on_cluster.stderr == local.stderr
    written = sorted(p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(tmp_path / "l") for p in (tmp_path / "l").rglob("*") if p.is_file())
    for rel in written:  # written by the workers, byte for byte what the local run writes
        assert (tmp_path / "c" / rel).read_bytes() == (tmp_path / "l" / rel).read_bytes()


def test_batch_on_the_cluster_streams_ndjson_and_numbers_match_a_reference(dask_cluster: Any, tmp_path: Path) -> None:
    labels, predictions = _pairs_of_npy(tmp_path, pairs=40, rows=300, dim=16)
    address = json.loads(Path(dask_cluster.scheduler_file).read_text())["address"]
    result = _run(["batch", labels, predictions, "--format", "ndjson", "--scheduler", address])
    assert result.returncode == ExitStatus.OK, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["name"] for line in lines) == [f"pair_{i:03d}" for i in range(40)]
    for line in lines:
        expected = reference_losses(np.load(line["labels"]), np.load(line["predictions"]))
        assert line["mean"] == pytest.approx(expected.mean(), rel=1e-12)
        assert line["count"] == 300


def test_cluster_failures_are_reported_once_like_the_local_run(dask_cluster: Any) -> None:
    args = ["batch", f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "--fail-fast", "--format", "csv", "-j", "1"]
    local = _run(args)
    on_cluster = _run([a for a in args if a not in ("-j", "1")] + ["--scheduler-file", dask_cluster.scheduler_file])
    assert on_cluster.returncode == local.returncode == ExitStatus.DATA_ERROR
    assert "broken: shapes differ" in on_cluster.stderr
    assert on_cluster.stdout.splitlines()[1] == local.stdout.splitlines()[1]  # the broken pair's row


def test_killing_a_worker_mid_run_loses_no_pair(dask_cluster: Any, tmp_path: Path) -> None:
    """Pairs slow enough (CSV parsing) that a worker dies while holding some; they re-run elsewhere."""
    labels, predictions = _pairs_of_csv(tmp_path, pairs=12, rows=100_000, dim=16)
    local = _run(["batch", labels, predictions, "--json", "-q", "--pattern", "pair_000.csv"])
    assert local.returncode == ExitStatus.OK, local.stderr
    expected = json.loads(local.stdout)["pairs"][0]
    process = _start(
        ["batch", labels, predictions, "-q", "--scheduler-file", dask_cluster.scheduler_file, "-f", "ndjson"]
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # a pair has finished: both workers are busy with others
        assert first, process.stderr.read() if process.stderr else ""
        alive = [i for i, worker in enumerate(dask_cluster.workers) if worker.poll() is None]
        dask_cluster.kill_worker(alive[-1])  # the newest: other tests of the session's cluster kill worker 0
        rest, errors = process.communicate(timeout=180)
    finally:
        _stop(process)
        dask_cluster.start_worker()  # the session's cluster has two workers again for later tests
        dask_cluster.wait_for_workers(2)
    assert process.returncode == ExitStatus.OK, errors
    streamed = [json.loads(line) for line in [first, *rest.splitlines()]]
    assert sorted(line["name"] for line in streamed) == [f"pair_{i:03d}" for i in range(12)]  # each once, none lost
    for line in streamed:  # every pair reads the same two files: the same result, bit for bit
        same = {**expected, "name": line["name"], "labels": line["labels"], "predictions": line["predictions"]}
        assert line == same


def test_ctrl_c_cancels_the_cluster_tasks_and_exits_130(dask_cluster: Any, tmp_path: Path) -> None:
    labels, predictions = _pairs_of_csv(tmp_path, pairs=30, rows=100_000, dim=16)
    process = _start(
        ["batch", labels, predictions, "--format", "ndjson", "--scheduler-file", dask_cluster.scheduler_file]
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline()
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
    finally:
        _stop(process)
    assert process.returncode == ExitStatus.INTERRUPTED, errors
    assert "Interrupted:" in errors and "pair(s) finished" in errors
    _assert_no_cosloss_tasks(dask_cluster)


def _start(args: list[str]) -> subprocess.Popen[str]:
    """The executable in the background, its output read as it comes."""
    return subprocess.Popen([EXECUTABLE, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(process: subprocess.Popen[str]) -> None:
    """Never leave a client running, whatever the test did."""
    if process.poll() is None:
        process.kill()
        process.wait()


def _assert_no_cosloss_tasks(dask_cluster: Any) -> None:
    """Nothing of ours is left on the cluster (cancelled tasks leave within seconds)."""
    with dask_cluster.client() as client:
        deadline = time.monotonic() + 20
        while client.run_on_scheduler(_cosloss_tasks) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.run_on_scheduler(_cosloss_tasks) == 0


def _cosloss_tasks(dask_scheduler: Any) -> int:
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("cosloss-pairs-"))


def test_an_unreachable_scheduler_is_a_usage_error_line() -> None:
    result = _run(["batch", f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "--scheduler-file", "no-such.json"])
    _one_error_line(result, ExitStatus.USAGE_ERROR, "no-such.json", "no such scheduler file")
    result = _run(["batch", f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "--scheduler", "nonsense"])
    _one_error_line(result, ExitStatus.USAGE_ERROR, "nonsense: cannot reach the Dask scheduler")


def test_scheduler_without_distributed_is_exit_2_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    result = run_cli(["batch", f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "--scheduler", "tcp://x:1"])
    assert result.exit_code == ExitStatus.USAGE_ERROR
    assert "pip install 'cosloss[distributed]'" in result.stderr


def test_scheduler_options_are_exclusive_with_each_other_and_jobs() -> None:
    base = ["batch", f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions"]
    both = run_cli([*base, "--scheduler", "tcp://x:1", "--scheduler-file", "f.json"])
    assert both.exit_code == ExitStatus.USAGE_ERROR and "not both" in both.stderr
    jobs = run_cli([*base, "--scheduler", "tcp://x:1", "-j", "2"])
    assert jobs.exit_code == ExitStatus.USAGE_ERROR and "--jobs" in jobs.stderr


def _imported_by(args: list[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that a run of the command in a fresh interpreter loads."""
    code = (
        "import sys\nfrom cosloss_cli.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r}))"
    )
    result = subprocess.run(
        [str(Path(EXECUTABLE).with_name("python")), "-c", code, *args], capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(result.stdout.splitlines()[-1].replace("'", '"'))


def test_batch_without_a_scheduler_never_imports_dask() -> None:
    args = ["batch", f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions", "-r", "-q", "--format", "csv"]
    assert _imported_by(args, ("dask", "distributed", "fsspec")) == []


def test_a_batch_of_npy_pairs_never_imports_pyarrow_or_pandas(tmp_path: Path) -> None:
    labels, predictions = _pairs_of_npy(tmp_path, pairs=3, rows=5, dim=4)
    args = ["batch", labels, predictions, "-q", "--json", "-j", "1"]
    assert _imported_by(args, ("pyarrow", "pandas", "rich", "fsspec", "dask")) == []


# -- data ----------------------------------------------------------------------------------


def _pairs_of_npy(folder: Path, pairs: int, rows: int, dim: int) -> tuple[str, str]:
    rng = np.random.default_rng(13)
    labels, predictions = folder / "labels", folder / "predictions"
    labels.mkdir()
    predictions.mkdir()
    for i in range(pairs):
        a = rng.standard_normal((rows, dim)).astype(np.float32)
        np.save(labels / f"pair_{i:03d}.npy", a)
        np.save(predictions / f"pair_{i:03d}.npy", a + rng.standard_normal(a.shape).astype(np.float32))
    return str(labels), str(predictions)


def _pairs_of_csv(folder: Path, pairs: int, rows: int, dim: int) -> tuple[str, str]:
    """Pairs slow enough to kill a worker in the middle of one: CSV parsing takes a while.

    One pair of files is written (with pyarrow, as users write CSV) and every pair name is
    a symlink to it, so the test does not write hundreds of megabytes.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(7)
    labels, predictions = folder / "labels", folder / "predictions"
    labels.mkdir()
    predictions.mkdir()
    values = rng.standard_normal((rows, dim)).astype(np.float32)
    for side, block in ((labels, values), (predictions, values * 2 + rng.standard_normal(values.shape))):
        pacsv.write_csv(pa.table({f"f{j}": block[:, j] for j in range(dim)}), folder / f"{side.name}.data")
        for i in range(pairs):
            (side / f"pair_{i:03d}.csv").symlink_to(folder / f"{side.name}.data")
    return str(labels), str(predictions)


# -- many small pairs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(60, dtype=np.float32).reshape(10, 6) - 7,
        np.linspace(-1, 1, 48).reshape(4, 3, 4),
        np.arange(12, dtype=">f8").reshape(3, 4),
        np.arange(12, dtype=np.int16).reshape(3, 4),
        np.arange(7, dtype=np.float64),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.zeros((0, 4), dtype=np.float32),
    ],
    ids=["f4", "3d", "big-endian", "int16", "1d", "fortran", "empty"],
)
def test_small_npy_files_read_in_one_go_equal_the_general_reader(
    array: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``batch`` reads small NPY files in one open; the arrays and errors must be the general reader's."""
    from cosloss_cli.io import npy
    from cosloss_cli.pipeline.compute import compute_files

    labels, predictions = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(labels, array)
    np.save(predictions, array * 2 + 1)

    def run() -> Any:
        try:
            return compute_files(str(labels), str(predictions))
        except Exception as exc:  # the same error either way
            return f"{type(exc).__name__}: {exc}"

    fast = run()
    monkeypatch.setattr(npy, "SMALL_FILE_BYTES", 0)
    general = run()
    if isinstance(general, str):
        assert fast == general
        return
    assert fast.losses.tobytes() == general.losses.tobytes() and fast.shape == general.shape
    assert fast.summary == general.summary


def test_small_npy_with_an_unusual_or_broken_header_takes_the_general_path(tmp_path: Path) -> None:
    from cosloss_cli.io import npy

    path = tmp_path / "a.npy"
    np.save(path, np.ones((2, 3), dtype=np.float32))
    data = path.read_bytes()
    assert npy._simple_header(data) == ((2, 3), np.dtype("<f4"), 128)
    assert npy._simple_header(data[:100]) is None  # header cut short
    assert npy._simple_header(data.replace(b"<f4", b"|O8")) is None  # objects: numpy's checks decide
    np.save(path, np.array([["a", "b"]]))
    assert npy._simple_header(path.read_bytes()) is None  # strings: not a plain numeric header


def test_many_small_pairs_give_identical_output_for_any_jobs(tmp_path: Path) -> None:
    """-j 2 sends several pairs per task (80 pairs: 5 a task); the report must not change a bit."""
    from cosloss_cli.batch.runner import pairs_per_task

    assert pairs_per_task(80, 2) == 5 and pairs_per_task(80, 3) == 3
    labels, predictions = _pairs_of_npy(tmp_path, pairs=80, rows=50, dim=8)
    outputs = {jobs: _run(["batch", labels, predictions, "--json", "-j", jobs]) for jobs in ("1", "2", "3")}
    assert all(result.returncode == ExitStatus.OK for result in outputs.values())
    assert outputs["1"].stdout == outputs["2"].stdout == outputs["3"].stdout
    document = json.loads(outputs["2"].stdout)
    means = [reference_losses(np.load(p["labels"]), np.load(p["predictions"])).mean() for p in document["pairs"]]
    assert [p["mean"] for p in document["pairs"]] == pytest.approx(means, rel=1e-12)


def test_reports_never_show_a_password_in_a_url(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text(
        "labels,predictions,name\nhttps://ann:pw-s3cr3t-99@127.0.0.1:9/a.npy,https://127.0.0.1:9/b.npy,a\n"
    )
    result = run_cli(["batch", "--manifest", str(tmp_path / "pairs.csv"), "--json"])
    assert result.exit_code == ExitStatus.DATA_ERROR
    assert "pw-s3cr3t-99" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["pairs"][0]["labels"] == "https://127.0.0.1:9/a.npy"


def test_fail_fast_on_the_cluster_cancels_the_pairs_in_flight(dask_cluster: Any, tmp_path: Path) -> None:
    labels, predictions = _pairs_of_csv(tmp_path, pairs=12, rows=100_000, dim=16)
    (Path(labels) / "a_broken.csv").write_text("a,b\n1,2\n")
    (Path(predictions) / "a_broken.csv").write_text("a,b,c\n1,2,3\n")
    args = ["batch", labels, predictions, "--json", "--fail-fast", "--scheduler-file", dask_cluster.scheduler_file]
    result = _run(args)
    assert result.returncode == ExitStatus.DATA_ERROR, result.stderr
    overall = json.loads(result.stdout)["overall"]
    assert overall["failed"] == 1 and overall["skipped"] >= 1
    assert overall["ok"] + overall["failed"] + overall["skipped"] == 13
    assert f"--fail-fast: stopped after a failure; {overall['skipped']} pair(s) not run" in result.stderr
    _assert_no_cosloss_tasks(dask_cluster)


def test_cluster_workers_read_s3_themselves(s3_server: Any, dask_cluster: Any) -> None:
    """The workers get the URLs and the storage options (credentials too, here), never the
    data, and read S3 on their own."""
    settings = {"endpoint_url": s3_server.endpoint, "key": TEST_ACCESS_KEY, "secret": TEST_SECRET_KEY}
    options = [part for key, value in settings.items() for part in ("--storage-option", f"{key}={value}")]
    args = _batch_args(f"{S3_BATCH}/labels", f"{S3_BATCH}/predictions", *options)
    on_cluster = _run([*args, "--scheduler-file", dask_cluster.scheduler_file], s3_server.subprocess_env())
    local = _run(_batch_args(f"{LOCAL_BATCH}/labels", f"{LOCAL_BATCH}/predictions"))
    assert on_cluster.returncode == local.returncode == ExitStatus.DATA_ERROR, on_cluster.stderr
    assert on_cluster.stdout.replace(S3_BATCH, LOCAL_BATCH) == local.stdout
    assert TEST_SECRET_KEY not in on_cluster.stdout + on_cluster.stderr


def test_the_progress_bar_follows_the_cluster_pairs(
    dask_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import contextmanager

    from cosloss_cli.render import progress
    from tests.conftest import TERMINAL

    advanced: list[int] = []

    @contextmanager
    def recording(enabled: bool, total_pairs: int, stream: Any = None) -> Any:
        assert enabled and total_pairs == 40
        yield advanced.append

    monkeypatch.setattr(progress, "pair_progress", recording)
    labels, predictions = _pairs_of_npy(tmp_path, pairs=40, rows=30, dim=4)
    result = run_cli(
        ["batch", labels, predictions, "--json", "--scheduler-file", dask_cluster.scheduler_file], env=TERMINAL
    )
    assert result.exit_code == ExitStatus.OK, result.stderr
    assert advanced == [30] * 40  # one step per pair, as each finishes
