"""No secret of a URL (userinfo, query values) reaches any output of any command.

A password and query tokens are planted in the URLs; every channel is searched for them:
stdout in each format, stderr (errors, notes, warnings, ``--debug`` tracebacks) and the
files written with ``-o``. URLs that fail at once (port 9 of 127.0.0.1) cover the errors;
the moto S3 server, reached over plain HTTP, serves URLs that work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosloss_cli.base.shown import shown_path

from .conftest import ROOT, run_cli, run_executable
from .servers import SAMPLES_BUCKET

PASSWORD = "pw-PLANTED-1"
TOKEN = "tok-PLANTED-2"
SIGNATURE = "sig-PLANTED-3"
SECRETS = (PASSWORD, TOKEN, SIGNATURE)
FORMATS = (["--format", "table", "--debug"], ["--json"], ["--format", "ndjson"], ["--format", "csv"])


def secret_url(host: str, path: str) -> str:
    return f"http://ann:{PASSWORD}@{host}/{path}?access_token={TOKEN}&X-Goog-Signature={SIGNATURE}"


#: Refused at once: nothing listens on port 9.
DEAD = secret_url("127.0.0.1:9", "data/l.npy")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text


@pytest.fixture
def local(tmp_path: Path) -> tuple[str, str]:
    labels, preds = tmp_path / "l.npy", tmp_path / "p.npy"
    np.save(labels, np.array([[1.0, 4.0, 5.0], [5.0, 5.0, 7.0]]))
    np.save(preds, np.array([[3.0, 2.0, 5.0], [3.0, 2.0, 7.0]]))
    return str(labels), str(preds)


def test_shown_path_drops_userinfo_and_every_query_value() -> None:
    assert shown_path(DEAD) == "http://127.0.0.1:9/data/l.npy?access_token=***&X-Goog-Signature=***"
    assert shown_path("s3://bucket/key.npy") == "s3://bucket/key.npy"
    assert shown_path("https://h/a.csv?flag#access_token=x") == "https://h/a.csv?***#access_token=***"
    assert shown_path("local/a b.csv") == "local/a b.csv"


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f[-1])
@pytest.mark.parametrize("where", ["labels", "predictions", "weights", "output"])
def test_compute_errors_never_show_a_secret(local: tuple[str, str], tmp_path: Path, where: str, fmt: list[str]) -> None:
    labels, preds = local
    args = {
        "labels": [DEAD, preds],
        "predictions": [labels, DEAD],
        "weights": [labels, preds, "--weights", DEAD],
        "output": [labels, preds, "-o", DEAD.replace(".npy", ".csv")],
    }[where]
    result = run_cli(["compute", *args, *fmt])
    assert result.exit_code != 0
    assert "127.0.0.1:9" in result.stderr
    assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f[-1])
def test_compare_and_batch_errors_never_show_a_secret(local: tuple[str, str], tmp_path: Path, fmt: list[str]) -> None:
    labels, preds = local
    compares = (["compare", DEAD, labels, preds], ["compare", labels, preds, DEAD], ["compare", labels, preds, preds])
    for args in compares if fmt in FORMATS[:2] else ():  # each starts a stats process: two formats are enough
        result = run_cli([*args, "--resamples", "100", "-o", DEAD.replace(".npy", ".parquet"), *fmt])
        assert result.exit_code != 0
        assert_no_secret(result.stdout, result.stderr)
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"labels,predictions\n{DEAD},{preds}\n{labels},{DEAD.replace('l.npy', 'p.npy')}\n")
    output_dir = DEAD.replace("data/l.npy", "out/")
    for args in (["--manifest", str(manifest)], [str(tmp_path), str(tmp_path), "--output-dir", output_dir]):
        result = run_cli(["batch", *args, "--jobs", "1", *(["--losses"] if "--json" in fmt else []), *fmt])
        assert result.exit_code != 0
        assert_no_secret(result.stdout, result.stderr)


def test_library_messages_quoting_a_url_are_scrubbed() -> None:
    from cosloss_cli.base.shown import scrub
    from cosloss_cli.errors import DataError

    message = f"HTTPError: 403 for url: {DEAD} (token {TOKEN})"
    assert_no_secret(str(DataError(message, path=DEAD, hint=f"see {DEAD}")), scrub(message))


@pytest.fixture
def served(s3_server: Any) -> tuple[str, dict[str, str]]:
    """A working URL prefix (the moto server over HTTP) with userinfo and tokens, and its environment."""
    host = s3_server.endpoint.split("//", 1)[1]
    return host, s3_server.subprocess_env()


def test_working_urls_never_show_a_secret_in_any_output(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    host, env = served
    labels = secret_url(host, f"{SAMPLES_BUCKET}/sample_data/labels.csv")
    preds = secret_url(host, f"{SAMPLES_BUCKET}/sample_data/predictions.csv")
    broken = secret_url(host, f"{SAMPLES_BUCKET}/sample_data/batch/labels/broken.csv")
    missing = secret_url(host, f"{SAMPLES_BUCKET}/sample_data/nothing.csv")
    outputs = []
    for fmt, ext in zip(FORMATS, ("csv", "json", "ndjson", "npy"), strict=True):
        out = tmp_path / f"losses.{ext}"
        result = run_cli(["compute", labels, preds, *fmt, "-o", str(out), "--top", "1"])
        assert result.exit_code == 0, result.stderr
        outputs += [result.stdout, result.stderr, out.read_bytes().decode("latin-1")]
    report = tmp_path / "compare.html"
    args = ["compare", labels, preds, "sample_data/predictions.csv", "--resamples", "100", "--report", str(report)]
    result = run_cli(args)  # the table, and the HTML page with the JSON document's fields
    assert result.exit_code == 0, result.stderr
    outputs += [result.stdout, result.stderr, report.read_text()]
    for bad in (broken, missing):
        result = run_cli(["compute", bad, preds, "--debug"])
        assert result.exit_code != 0 and "Error:" in result.stderr
        outputs += [result.stdout, result.stderr]
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"labels,predictions\n{labels},{preds}\n{broken},{preds}\n")
    for fmt in (["--json"], ["--format", "csv"]):
        result = run_cli(["batch", "--manifest", str(manifest), "--output-dir", str(tmp_path / "out"), *fmt])
        assert result.exit_code == 1, result.stderr
        outputs += [result.stdout, result.stderr]
        if fmt == ["--json"]:
            document = json.loads(result.stdout)
            assert [pair["labels"] for pair in document["pairs"]] == [shown_path(broken), shown_path(labels)]
            assert document["pairs"][1]["labels"].endswith("labels.csv?access_token=***&X-Goog-Signature=***")
    outputs += [path.read_text() for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert_no_secret(*outputs)
    result = run_executable(["compute", broken, preds, "--debug"], env=env, cwd=ROOT)  # a real traceback
    assert result.returncode == 1 and "Error:" in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_short_query_values_are_not_hidden_outside_their_url() -> None:
    from cosloss_cli.base.shown import remember, scrub

    remember(["https://h/a.npy?format=json&v=2"], fresh=True)
    assert scrub("pass --json, version 2") == "pass --json, version 2"
    remember([DEAD], fresh=True)
    assert scrub(f"refused {PASSWORD} and {TOKEN}") == "refused *** and ***"
