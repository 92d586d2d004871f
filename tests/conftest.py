"""Shared fixtures: golden cases, an in-process CLI runner with a fake terminal."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from cosloss_cli.base.terminal import Environment
from cosloss_cli.cli import cli

#: Tables honour ``COLUMNS``; a value exported by the shell that runs the suite must not
#: change the tables the tests compare (tests that need it set it themselves).
os.environ.pop("COLUMNS", None)

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent

#: The installed console script, beside this interpreter.
EXECUTABLE = str(Path(sys.executable).with_name("cosloss"))

PIPED = Environment(stdin_isatty=False, stdout_isatty=False, stderr_isatty=False, no_color=False)
TERMINAL = Environment(stdin_isatty=True, stdout_isatty=True, stderr_isatty=True, no_color=False)


@dataclass
class GoldenCase:
    name: str
    folder: Path
    expected: dict[str, Any]

    @property
    def labels(self) -> Path:
        return self.folder / self.expected["labels"]

    @property
    def predictions(self) -> Path:
        return self.folder / self.expected["predictions"]

    @property
    def axis(self) -> int:
        return int(self.expected["axis"])


def property_settings(default_examples: int) -> settings:
    """Hypothesis settings of the property and fuzz tests.

    ``COSLOSS_FUZZ_EXAMPLES`` sets the examples per test (``make fuzz`` sets 5000). Runs
    of the default size are derandomized, so CI is reproducible; larger runs explore.
    """
    examples = int(os.environ.get("COSLOSS_FUZZ_EXAMPLES", str(default_examples)))
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=examples <= max(default_examples, 100),
        database=None,
    )


@pytest.fixture(scope="module", params=["native", "numpy"])
def each_kernel(request: pytest.FixtureRequest) -> Any:
    """Run a module's tests on the C kernel and on the pure-numpy path (its fallback).

    Module-scoped so that hypothesis tests can use it; the numpy path is forced by
    unsetting ``core._native``, as a build without a compiler would have it.
    """
    from cosloss_cli.core import cosine as core

    saved = core._native
    if request.param == "native" and saved is None:
        pytest.skip("the C kernel is not built here (no C compiler at install time)")
    if request.param == "numpy":
        core._native = None
    yield request.param
    core._native = saved


def assert_same_json(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal JSON documents, floats within 1e-12 relative (the C kernel and the numpy
    path may differ in the last bits; a documented sample must hold for both)."""
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-15, nan_ok=True), path
    elif isinstance(expected, dict) and isinstance(actual, dict):
        assert list(actual) == list(expected), path
        for key in expected:
            assert_same_json(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, path


def golden_cases() -> list[GoldenCase]:
    return [
        GoldenCase(folder.name, folder, json.loads((folder / "expected.json").read_text()))
        for folder in sorted(GOLDEN.iterdir())
        if (folder / "expected.json").exists()
    ]


def run_cli(args: list[str], *, env: Environment = PIPED, input: bytes | str | None = None) -> Result:
    """Invoke ``cosloss`` in-process; stdout and stderr are kept apart."""
    runner = CliRunner()
    return runner.invoke(cli, args, obj={"environment": env}, input=input, catch_exceptions=False)


def run_executable(args: list[str], *, prefix: Sequence[str] = (), **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cosloss`` console script in a subprocess (after ``prefix``, e.g. setpriv)."""
    return subprocess.run([*prefix, EXECUTABLE, *args], capture_output=True, text=True, timeout=120, **kwargs)


def last_json_line_of(script: str, *args: str) -> Any:
    """Run ``script`` in a fresh interpreter (``python -c``) and parse the last line it prints as JSON.

    For measurements that must not see this process's memory or imports (peak RSS of one
    computation, the modules one command loads).
    """
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_executable_without_root_powers(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the real executable; as root, without the capabilities that bypass file permissions."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return run_executable(args, prefix=prefix)


@pytest.fixture
def cli_run():
    return run_cli


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A moto S3 server on 127.0.0.1 with ``sample_data/`` in a bucket; this process's
    ``AWS_*`` variables point at it while it runs (``.subprocess_env()`` for the executable)."""
    pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (make test installs it)")
    pytest.importorskip("s3fs", reason="the S3 tests need s3fs (make test installs it)")
    from tests.servers import S3Server, environment

    server = S3Server()
    try:
        with environment(server.env):
            server.upload_samples()
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, all killed at the end."""
    pytest.importorskip("distributed", reason="the cluster tests need dask[distributed] (make test installs it)")
    from tests.servers import DaskCluster

    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.close()


#: pytest's base temporary folder (``--basetemp``), under which every tmp_path is made.
_BASETEMP: list[str] = []


@pytest.fixture(autouse=True, scope="session")
def _record_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Remember the base temporary folder for :func:`without_paths` (it may hold spaces and any word)."""
    _BASETEMP.append(str(tmp_path_factory.getbasetemp()))


#: An absolute path in a message, up to a space, quote, colon, comma or closing bracket.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/[^\s'\":,)\]]*")


def without_paths(text: str, *folders: object) -> str:
    """``text`` with every file path in it replaced by ``<path>``: what to assert a word's absence on.

    The checkout and pytest's tmp_path (named after the test) may hold any word
    (``git clone ... /home/me/loss-nan/cosloss``, ``--basetemp``): a word a test expects
    not to be printed may still be in a path the output names. ``folders`` (a test's
    tmp_path), pytest's base temporary folder and the checkout are replaced whole, spaces
    and all; any other absolute path up to a space, quote, colon, comma or closing bracket.
    """
    for folder in sorted({str(ROOT), *_BASETEMP, *map(str, folders)}, key=len, reverse=True):
        text = text.replace(folder, "<path>")
    return _ABSOLUTE_PATH.sub("<path>", text)
