"""Object storage: URLs read through fsspec, against memory:// and a real S3 server (moto).

Files are written the way users write them (numpy, pandas, pyarrow), uploaded, and read
back through the readers; the numbers must equal the local run to the last bit and an
independent float64 reference. Error cases run the real executable for exit codes and
the exact stderr line, and check that no secret is ever printed.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cosloss_cli.errors import DataError, InputUsageError, OutputError
from cosloss_cli.io import ReadOptions, open_source, storage
from cosloss_cli.pipeline.compute import compute_files, open_pair
from cosloss_cli.status import ExitStatus
from tests.conftest import ROOT, run_executable
from tests.servers import SAMPLES_BUCKET, TEST_SECRET_KEY

fsspec = pytest.importorskip("fsspec")


def reference_losses(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Per-row loss computed independently in float64 (TF's definition, eps 1e-12)."""
    lab = labels.astype(np.float64)
    pred = predictions.astype(np.float64)
    ln = lab / np.sqrt(np.maximum((lab * lab).sum(axis=1, keepdims=True), 1e-12))
    pn = pred / np.sqrt(np.maximum((pred * pred).sum(axis=1, keepdims=True), 1e-12))
    return 1.0 - (ln * pn).sum(axis=1)


# -- pure helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("s3://bucket/key.npy", True),
        ("gs://bucket/a.csv", True),
        ("gcs://bucket/a.csv", True),
        ("az://container/a.parquet", True),
        ("abfs://container/a.parquet", True),
        ("https://example.com/a.csv?x=1", True),
        ("http://example.com/a.csv", True),
        ("file:///tmp/a.npy", True),
        ("memory://a/b.npy", True),
        ("C://data/a.npy", False),
        ("C:\\data\\a.npy", False),
        ("data/a.npy", False),
        ("-", False),
        ("weird name://x", False),
    ],
)
def test_is_url(path: str, expected: bool) -> None:
    assert storage.is_url(path) is expected


def test_parse_storage_options_converts_booleans_and_ints() -> None:
    parsed = storage.parse_storage_options(["anon=true", "use_ssl=False", "block_size=1024", "profile=dev", "x=a=b"])
    assert parsed == {"anon": True, "use_ssl": False, "block_size": 1024, "profile": "dev", "x": "a=b"}


def test_parse_storage_options_rejects_items_without_value_and_hides_secrets() -> None:
    with pytest.raises(InputUsageError, match="KEY=VALUE"):
        storage.parse_storage_options(["anon"])
    with pytest.raises(InputUsageError) as caught:
        storage.parse_storage_options(["secret:abc123xyz"])
    assert "abc123xyz" not in str(caught.value)
    assert storage.parse_storage_options(["a=1", "a=2"]) == {"a": 2}


def test_redact_removes_userinfo_option_secrets_and_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    text = "https://bob:pa55word@host/x.csv failed with key sk-live-1 and env-secret-value"
    options = {"key": "sk-live-1", "anon": False, "use_key_ring": True, "client_kwargs": {"aws_session_token": "tok-9"}}
    shown = storage.redact(text + " True tok-9", options)
    assert "tok-9" not in shown and shown.endswith(" True ***")
    assert "pa55word" not in shown and "bob" not in shown
    assert "sk-live-1" not in shown and "env-secret-value" not in shown
    assert shown.startswith("https://host/x.csv failed")


def test_detect_format_ignores_an_https_query_string() -> None:
    from cosloss_cli.io import detect_format

    assert detect_format("https://h/x/labels.parquet?X-Amz-Signature=abc&b=c.csv", None) == "parquet"
    assert detect_format("s3://b/k/labels.csv.gz", None) == "csv"


# -- the stores ----------------------------------------------------------------------------


class Store:
    """A place to upload test files to: memory:// or the moto S3 server."""

    def __init__(self, prefix: str, put: Callable[[str, bytes], None]):
        self.prefix = prefix
        self._put = put

    def put(self, key: str, data: bytes) -> str:
        self._put(key, data)
        return f"{self.prefix}/{key}"


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        fs = fsspec.filesystem("memory")
        root = f"/cosloss-test-{id(request)}"
        yield Store(f"memory:/{root}", lambda key, data: fs.pipe(f"{root}/{key}", data))
        fs.rm(root, recursive=True)
        return
    server = request.getfixturevalue("s3_server")
    client = server.client()
    bucket = f"cosloss-test-{abs(hash(request.node.name)) % 10**8}"
    client.create_bucket(Bucket=bucket)
    yield Store(f"s3://{bucket}", lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data))
    _clear_fsspec_caches()


def _clear_fsspec_caches() -> None:
    """Drop s3fs's listing caches: a test's bucket may be listed by a later one."""
    s3fs = sys.modules.get("s3fs")
    if s3fs is not None:
        s3fs.S3FileSystem.clear_instance_cache()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _pair(seed: int, rows: int = 50, width: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, width)), rng.normal(size=(rows, width))


def _frame(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])


def _npz_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, vectors=array)
    return buffer.getvalue()


WRITERS: dict[str, tuple[str, Callable[[np.ndarray], bytes]]] = {
    "npy": (".npy", _npy_bytes),
    "npz": (".npz", _npz_bytes),
    "csv": (".csv", lambda a: _frame(a).to_csv(index=False).encode()),
    "csv.gz": (".csv.gz", lambda a: gzip.compress(_frame(a).to_csv(index=False).encode())),
    "parquet-columns": (".parquet", lambda a: _frame(a).to_parquet(index=False)),
    "parquet-list": (".parquet", lambda a: _parquet_list(a)),
}


def _parquet_list(values: np.ndarray) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"vec": pa.array(list(values), type=pa.list_(pa.float64()))}), sink)
    return sink.getvalue()


@pytest.mark.parametrize("kind", list(WRITERS))
def test_remote_inputs_equal_local_and_reference(kind: str, store: Store, tmp_path: Path) -> None:
    ext, write = WRITERS[kind]
    labels, predictions = _pair(seed=len(kind))
    urls = [store.put(f"in/{name}{ext}", write(a)) for name, a in (("labels", labels), ("preds", predictions))]
    local = []
    for name, array in (("labels", labels), ("preds", predictions)):
        (tmp_path / f"{name}{ext}").write_bytes(write(array))
        local.append(str(tmp_path / f"{name}{ext}"))
    remote_result = compute_files(*urls)
    local_result = compute_files(*local)
    assert remote_result.losses.tobytes() == local_result.losses.tobytes()
    assert remote_result.summary == local_result.summary
    np.testing.assert_allclose(remote_result.losses, reference_losses(labels, predictions), rtol=1e-12, atol=1e-15)


def test_compute_files_on_s3_samples_equals_local_bit_for_bit(s3_server: Any) -> None:
    for labels, predictions in [
        ("labels.csv", "predictions.csv"),
        ("embeddings_labels.npy", "embeddings_predictions.npy"),
        ("embeddings_labels.parquet", "embeddings_predictions.parquet"),
        ("embeddings_labels.npy", "embeddings_predictions.parquet"),
    ]:
        local = compute_files(f"sample_data/{labels}", f"sample_data/{predictions}")
        remote = compute_files(
            f"s3://{SAMPLES_BUCKET}/sample_data/{labels}", f"s3://{SAMPLES_BUCKET}/sample_data/{predictions}"
        )
        assert remote.losses.tobytes() == local.losses.tobytes()
        assert remote.summary == local.summary


def test_executable_computes_s3_urls_like_local_files(s3_server: Any) -> None:
    base = f"s3://{SAMPLES_BUCKET}/sample_data"
    remote = run_executable(
        ["compute", f"{base}/labels.csv", f"{base}/predictions.csv", "--axis", "1", "--json"],
        env=s3_server.subprocess_env(),
        cwd=ROOT,
    )
    local = run_executable(
        ["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--axis", "1", "--json"], cwd=ROOT
    )
    assert remote.returncode == ExitStatus.OK, remote.stderr
    remote_doc, local_doc = json.loads(remote.stdout), json.loads(local.stdout)
    assert remote_doc.pop("labels") == f"{base}/labels.csv"
    remote_doc.pop("predictions")
    local_doc.pop("labels"), local_doc.pop("predictions")
    assert remote_doc == local_doc  # json floats: repr round-trips, so this is bit for bit


def test_size_and_existence_of_objects(s3_server: Any) -> None:
    base = f"s3://{SAMPLES_BUCKET}/sample_data"
    assert storage.size(f"{base}/labels.csv") == (ROOT / "sample_data/labels.csv").stat().st_size
    assert storage.exists(f"{base}/labels.csv") and storage.exists(f"{base}/batch")
    assert not storage.exists(f"{base}/missing.csv")
    with pytest.raises(InputUsageError, match="is a folder"):
        storage.check_readable(f"{base}/batch")


# -- ranged reads --------------------------------------------------------------------------


class _CountingFetches:
    """Count the bytes s3fs fetches by ranged GETs (what leaves the server)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        import s3fs.core

        self.fetched = 0
        original = s3fs.core.S3File._fetch_range

        def counting(file: Any, start: int, end: int) -> bytes:
            data = original(file, start, end)
            self.fetched += len(data)
            return bytes(data)

        monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counting)


def test_remote_npy_is_read_by_ranges_not_downloaded_whole(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _CountingFetches(monkeypatch)
    client = s3_server.client()
    client.create_bucket(Bucket="ranged")
    rng = np.random.default_rng(3)
    array = rng.normal(size=(6000, 512)).astype(np.float32)  # 12 MB
    data = _npy_bytes(array)
    client.put_object(Bucket="ranged", Key="big.npy", Body=data)

    source = open_source("s3://ranged/big.npy", ReadOptions(block_bytes=1 << 20))
    assert source.shape == (6000, 512)
    assert source.size_bytes == len(data)
    first = next(source.blocks)
    assert counter.fetched < len(data) // 2, "the first block must not need the whole object"
    np.testing.assert_array_equal(first.values, array[: len(first)])
    rest = np.concatenate([b.values for b in source.blocks])
    np.testing.assert_array_equal(np.concatenate([first.values, rest]), array)
    assert counter.fetched <= len(data) + storage.READ_BLOCK_BYTES, "each byte is fetched about once"


def test_remote_parquet_fetches_row_groups_as_needed(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _CountingFetches(monkeypatch)
    client = s3_server.client()
    client.create_bucket(Bucket="ranged-pq")
    rng = np.random.default_rng(4)
    frame = _frame(rng.normal(size=(200_000, 16)))
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False, row_group_size=20_000)
    data = sink.getvalue()
    client.put_object(Bucket="ranged-pq", Key="big.parquet", Body=data)

    source = open_source("s3://ranged-pq/big.parquet", ReadOptions(block_bytes=1 << 20))
    first = next(source.blocks)
    assert counter.fetched < len(data) // 2
    np.testing.assert_array_equal(first.values, frame.to_numpy()[: len(first)])
    source.blocks.close()


# -- listing -------------------------------------------------------------------------------


def test_scan_lists_objects_skips_hidden_and_honours_recursive(s3_server: Any) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="listing")
    for key in ["top/a.npy", "top/b.csv", "top/.hidden.npy", "top/.git/c.npy", "top/sub/d.npy", "top/sub/.e.npy"]:
        client.put_object(Bucket="listing", Key=key, Body=b"x")
    _clear_fsspec_caches()
    found, skipped = storage.scan("s3://listing/top", recursive=False)
    assert found == [("a.npy", "s3://listing/top/a.npy"), ("b.csv", "s3://listing/top/b.csv")]
    assert skipped == ["s3://listing/top/sub"]
    found, skipped = storage.scan("s3://listing/top/", recursive=True)
    assert [rel for rel, _ in found] == ["a.npy", "b.csv", "sub/d.npy"]
    assert skipped == []
    found, _ = storage.scan("s3://listing/top", recursive=True, patterns=["*.npy"])
    assert [rel for rel, _ in found] == ["a.npy", "sub/d.npy"]


def test_scan_of_the_sample_batch_folder_matches_the_local_folder(s3_server: Any) -> None:
    found, _ = storage.scan(f"s3://{SAMPLES_BUCKET}/sample_data/batch/labels", recursive=True)
    local = sorted(
        p.relative_to(ROOT / "sample_data/batch/labels").as_posix()
        for p in (ROOT / "sample_data/batch/labels").rglob("*")
        if p.is_file()
    )
    assert [rel for rel, _ in found] == local


def test_scan_of_a_missing_prefix_is_a_usage_error(s3_server: Any) -> None:
    with pytest.raises(InputUsageError, match="no such folder"):
        storage.scan(f"s3://{SAMPLES_BUCKET}/no/such/prefix", recursive=True)


# -- atomic writes -------------------------------------------------------------------------


def test_atomic_write_creates_the_object_only_when_complete(s3_server: Any) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="writes")
    with storage.atomic_output_url("s3://writes/out/ok.json") as handle:
        handle.write(b'{"a": 1}')
        assert client.list_objects_v2(Bucket="writes").get("KeyCount", 0) == 0, "nothing visible while writing"
    assert client.get_object(Bucket="writes", Key="out/ok.json")["Body"].read() == b'{"a": 1}'


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_leaves_no_object_on_failure(s3_server: Any, failure: type[BaseException]) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="failed-writes")
    with pytest.raises(failure):
        with storage.atomic_output_url("s3://failed-writes/out/bad.json") as handle:
            handle.write(b"partial")
            raise failure()
    assert client.list_objects_v2(Bucket="failed-writes").get("KeyCount", 0) == 0


def test_atomic_write_to_a_missing_bucket_is_an_output_error(s3_server: Any) -> None:
    with pytest.raises(OutputError) as caught:
        with storage.atomic_output_url("s3://no-such-bucket-for-writes/x.json") as handle:
            handle.write(b"x")
    assert "s3://no-such-bucket-for-writes/x.json" in str(caught.value)


# -- errors, through the executable ----------------------------------------------------------


def _run(s3_server: Any, args: list[str], **env: str) -> Any:
    return run_executable(args, env={**s3_server.subprocess_env(), **env}, cwd=ROOT)


def _assert_one_clean_line(result: Any, status: ExitStatus, *needles: str, secrets: tuple[str, ...] = ()) -> None:
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr
    for secret in (TEST_SECRET_KEY, *secrets):
        assert secret not in result.stderr + result.stdout


def test_missing_bucket_is_one_usage_error_line(s3_server: Any) -> None:
    url = "s3://no-such-bucket-here/labels.csv"
    result = _run(s3_server, ["compute", url, "sample_data/predictions.csv"])
    _assert_one_clean_line(result, ExitStatus.USAGE_ERROR, url, "no such object")


def test_missing_key_is_one_usage_error_line(s3_server: Any) -> None:
    url = f"s3://{SAMPLES_BUCKET}/sample_data/missing.npy"
    result = _run(s3_server, ["compute", url, "sample_data/embeddings_predictions.npy"])
    _assert_one_clean_line(result, ExitStatus.USAGE_ERROR, url, "no such object")


@pytest.fixture
def s3_authentication(s3_server: Any) -> Iterator[None]:
    """Make the moto server check credentials (it accepts any by default)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    saved = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = saved


def test_bad_credentials_are_one_data_error_line_without_the_secret(s3_server: Any, s3_authentication: None) -> None:
    url = f"s3://{SAMPLES_BUCKET}/sample_data/labels.csv"
    secret = "wrong-secret-d41d8cd98f00"
    result = _run(
        s3_server,
        ["compute", url, "sample_data/predictions.csv", "--debug"],
        AWS_ACCESS_KEY_ID="AKIAWRONGKEY12345678",
        AWS_SECRET_ACCESS_KEY=secret,
    )
    assert result.returncode == ExitStatus.DATA_ERROR, result.stderr
    assert url in result.stderr
    assert secret not in result.stderr and "AKIAWRONGKEY12345678" not in result.stderr


def test_bad_credentials_without_debug_is_one_line(s3_server: Any, s3_authentication: None) -> None:
    url = f"s3://{SAMPLES_BUCKET}/sample_data/labels.csv"
    result = _run(
        s3_server,
        ["compute", url, "sample_data/predictions.csv"],
        AWS_ACCESS_KEY_ID="AKIAWRONGKEY12345678",
        AWS_SECRET_ACCESS_KEY="wrong-secret-d41d8cd98f00",
    )
    _assert_one_clean_line(
        result,
        ExitStatus.DATA_ERROR,
        url,
        "permission denied",
        secrets=("wrong-secret-d41d8cd98f00", "AKIAWRONGKEY12345678"),
    )


def test_storage_option_secrets_never_appear_in_errors(s3_server: Any, s3_authentication: None) -> None:
    options = {"key": "AKIAOPTIONKEY9876543", "secret": "option-secret-77e1"}
    with pytest.raises(DataError) as caught:
        compute_files(
            f"s3://{SAMPLES_BUCKET}/sample_data/labels.csv",
            "sample_data/predictions.csv",
            read_options=ReadOptions(storage_options=options),
        )
    text = str(caught.value)
    assert "permission denied" in text
    assert "option-secret-77e1" not in text and "AKIAOPTIONKEY9876543" not in text
    _clear_fsspec_caches()


def test_truncated_npy_object_is_one_data_error_line(s3_server: Any) -> None:
    client = s3_server.client()
    data = (ROOT / "sample_data/embeddings_labels.npy").read_bytes()
    client.put_object(Bucket=SAMPLES_BUCKET, Key="truncated/labels.npy", Body=data[: len(data) - 40])
    url = f"s3://{SAMPLES_BUCKET}/truncated/labels.npy"
    result = _run(s3_server, ["compute", url, "sample_data/embeddings_predictions.npy"])
    _assert_one_clean_line(result, ExitStatus.DATA_ERROR, url, "truncated")


def test_truncated_parquet_object_is_one_data_error_line(s3_server: Any) -> None:
    client = s3_server.client()
    data = (ROOT / "sample_data/embeddings_labels.parquet").read_bytes()
    client.put_object(Bucket=SAMPLES_BUCKET, Key="truncated/labels.parquet", Body=data[: len(data) // 2])
    url = f"s3://{SAMPLES_BUCKET}/truncated/labels.parquet"
    result = _run(s3_server, ["compute", url, "sample_data/embeddings_predictions.parquet"])
    _assert_one_clean_line(result, ExitStatus.DATA_ERROR, url)


def test_missing_backend_is_a_usage_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now raises ImportError
    with pytest.raises(InputUsageError) as caught:
        open_pair("s3://bucket/labels.npy", "s3://bucket/preds.npy", ReadOptions())
    assert str(caught.value) == (
        "s3://bucket/labels.npy: s3:// URLs need s3fs, which is not installed (pip install 'cosloss[s3]')"
    )
    assert caught.value.exit_status == ExitStatus.USAGE_ERROR


@pytest.mark.parametrize(("url", "extra"), [("gs://b/a.npy", "gcs"), ("az://c/a.npy", "azure")])
def test_other_backends_name_their_extra(url: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = storage.BACKENDS[storage.scheme(url)][0]
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(InputUsageError, match=rf"pip install 'cosloss\[{extra}\]'"):
        open_source(url, ReadOptions())


def test_http_without_aiohttp_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(InputUsageError) as caught:
        open_source("https://example.com/data/labels.npy?sig=s3cr3t-value", ReadOptions())
    assert str(caught.value) == (
        "https://example.com/data/labels.npy?sig=***: https:// URLs need aiohttp, which is not installed "
        "(pip install fsspec aiohttp)"
    )


def test_missing_backend_through_the_executable_exits_2(s3_server: Any, tmp_path: Path) -> None:
    """A real install without s3fs: a module on PYTHONPATH that fails to import stands in for it."""
    (tmp_path / "s3fs.py").write_text("raise ImportError('No module named s3fs')\n")
    result = _run(
        s3_server,
        ["compute", f"s3://{SAMPLES_BUCKET}/sample_data/labels.csv", "sample_data/predictions.csv"],
        PYTHONPATH=str(tmp_path),
    )
    _assert_one_clean_line(result, ExitStatus.USAGE_ERROR, "pip install 'cosloss[s3]'")


def test_url_userinfo_is_never_printed(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    url = "memory://user:pa55w0rd-secret@nowhere/labels.npy"
    with pytest.raises(InputUsageError) as caught:
        open_source(url, ReadOptions())
    assert "pa55w0rd-secret" not in str(caught.value)


def test_local_paths_do_not_import_fsspec() -> None:
    """The storage module is loaded with the readers (it is small); fsspec and its backends only for a URL."""
    code = (
        "import sys; from cosloss_cli.pipeline.compute import compute_files; "
        "compute_files('sample_data/labels.csv', 'sample_data/predictions.csv'); "
        "print(sorted(m for m in ('fsspec', 's3fs', 'gcsfs', 'adlfs', 'aiohttp') if m in sys.modules))"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_a_prefix_of_files_of_several_formats_is_refused(s3_server: Any) -> None:
    """A prefix is a dataset (see tests/test_datasets.py): its files must share one format."""
    url = f"s3://{SAMPLES_BUCKET}/sample_data"
    result = _run(s3_server, ["compute", url, "sample_data/predictions.csv"])
    _assert_one_clean_line(result, ExitStatus.DATA_ERROR, url, "the files of one dataset must share one format")


@pytest.mark.parametrize("extension", [".parquet", ".json", ".npy"])
def test_output_to_s3_is_uploaded_whole(s3_server: Any, tmp_path: Path, extension: str) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="outputs")
    url = f"s3://outputs/run/losses{extension}"
    args = ["compute", "sample_data/labels.csv", "sample_data/predictions.csv", "--axis", "1", "-q"]
    remote = _run(s3_server, [*args, "-o", url])
    assert remote.returncode == ExitStatus.OK, remote.stderr
    local = run_executable([*args, "-o", str(tmp_path / f"losses{extension}")], cwd=ROOT)
    assert local.returncode == ExitStatus.OK, local.stderr
    uploaded = client.get_object(Bucket="outputs", Key=f"run/losses{extension}")["Body"].read()
    assert uploaded == (tmp_path / f"losses{extension}").read_bytes()


def test_failed_run_with_s3_output_leaves_no_object(s3_server: Any) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="outputs-failed")
    result = _run(
        s3_server,
        ["compute", "sample_data/batch/labels/broken.csv", "sample_data/batch/predictions/broken.csv"]
        + ["-o", "s3://outputs-failed/losses.json"],
    )
    assert result.returncode == ExitStatus.DATA_ERROR, result.stderr
    assert client.list_objects_v2(Bucket="outputs-failed").get("KeyCount", 0) == 0


class _RangeHandler:
    """Mixin: answer ``Range: bytes=A-B`` as object stores and CDNs do (the stdlib server does not)."""

    def send_head(self) -> Any:
        wanted = self.headers.get("Range") if self.ranges else None
        if not wanted or not wanted.startswith("bytes="):
            return super().send_head()
        path = self.translate_path(self.path)
        try:
            data = Path(path).read_bytes()
        except OSError:
            self.send_error(404)
            return None
        first, _, last = wanted[len("bytes=") :].partition("-")
        start, stop = int(first), min(int(last) + 1 if last else len(data), len(data))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        return io.BytesIO(data[start:stop])


@pytest.fixture(scope="module", params=["ranges", "no-ranges"])
def http_samples(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    """``sample_data/`` served over HTTP on 127.0.0.1, with or without range requests."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(_RangeHandler, SimpleHTTPRequestHandler):
        ranges = request.param == "ranges"

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(ROOT / "sample_data")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Handler.ranges
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("labels", "predictions"),
    [("labels.csv", "predictions.csv"), ("embeddings_labels.npy", "embeddings_predictions.parquet")],
)
def test_http_urls_with_query_strings_read_like_local_files(
    http_samples: tuple[str, bool], labels: str, predictions: str
) -> None:
    pytest.importorskip("aiohttp")
    base, ranges = http_samples
    urls = (f"{base}/{labels}?version=3", f"{base}/{predictions}?version=3")
    local = compute_files(f"sample_data/{labels}", f"sample_data/{predictions}")
    if not ranges and predictions.endswith(".parquet"):
        with pytest.raises(DataError, match="range requests") as caught:
            compute_files(*urls)
        assert str(caught.value).startswith(urls[1].replace("version=3", "version=***"))
        return
    remote = compute_files(*urls)
    assert remote.losses.tobytes() == local.losses.tobytes()
