"""Real servers for the tests, on 127.0.0.1 only: an S3 store (moto) and a Dask cluster.

Both are started by session fixtures in ``conftest.py`` and torn down whatever the tests
did. They are real processes or sockets, not mocks: the ``cosloss`` executable reaches the
S3 server through ``AWS_ENDPOINT_URL`` as it would reach MinIO, and the Dask cluster is the
``dask scheduler`` and ``dask worker`` commands a user runs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent

#: The bucket the S3 fixture creates, holding ``sample_data/`` under the same key names.
SAMPLES_BUCKET = "cosloss-samples"

#: Fake credentials moto accepts; the tests also check they never appear in messages.
TEST_ACCESS_KEY = "testing"
TEST_SECRET_KEY = "testing-secret-3f9a"


class S3Server:
    """A moto S3 server on a free port of 127.0.0.1; ``env`` points AWS clients at it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on stderr
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        """A boto3 client for arranging test data (independent of the code under test)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            region_name="us-east-1",
        )

    def upload_samples(self) -> None:
        """Create :data:`SAMPLES_BUCKET` with every file of ``sample_data/`` (hidden ones too)."""
        client = self.client()
        client.create_bucket(Bucket=SAMPLES_BUCKET)
        for path in sorted((ROOT / "sample_data").rglob("*")):
            if path.is_file():
                client.put_object(Bucket=SAMPLES_BUCKET, Key=path.relative_to(ROOT).as_posix(), Body=path.read_bytes())

    def subprocess_env(self) -> dict[str, str]:
        """The environment for a ``cosloss`` subprocess: this one plus the server's variables."""
        return {**os.environ, **self.env}

    def stop(self) -> None:
        self._server.stop()


class DaskCluster:
    """A ``dask scheduler`` and workers on 127.0.0.1, each in its own process group."""

    def __init__(self, folder: Path, workers: int = 2):
        self.folder = folder
        self.scheduler_file = str(folder / "scheduler.json")
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheduler = self._spawn(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", self.scheduler_file]
            + ["--no-dashboard"],
        )
        try:
            self._wait_for_file()
            for _ in range(workers):
                self.start_worker()
            self.wait_for_workers(workers)
        except BaseException:
            self.close()
            raise

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 (kept by the process)
        dask = str(Path(sys.executable).with_name("dask"))
        # The checkout on PYTHONPATH: tasks may be functions of the test modules.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        process = subprocess.Popen(
            [dask, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,
        )
        log.close()  # the child holds its own copy
        return process

    def _wait_for_file(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.scheduler_file) or os.path.getsize(self.scheduler_file) == 0:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited with {self.scheduler.returncode}: {self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no scheduler file after {timeout} s: {self.logs()}")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give the listener a moment

    def start_worker(self) -> int:
        """Start one more worker process (one thread); returns its index in ``workers``."""
        local = self.folder / f"worker-{len(self.workers)}"
        local.mkdir(exist_ok=True)
        args = ["worker", "--scheduler-file", self.scheduler_file, "--nworkers", "1", "--nthreads", "1"]
        args += ["--host", "127.0.0.1", "--local-directory", str(local), "--no-dashboard"]
        self.workers.append(self._spawn(f"worker-{len(self.workers)}", args))
        return len(self.workers) - 1

    def client(self) -> Any:
        from distributed import Client

        return Client(scheduler_file=self.scheduler_file, timeout=30)

    def wait_for_workers(self, count: int, timeout: float = 60) -> None:
        with self.client() as client:
            client.wait_for_workers(count, timeout=timeout)

    def worker_count(self) -> int:
        with self.client() as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])

    def kill_worker(self, index: int) -> None:
        """Kill worker ``index`` and its nanny at once (SIGKILL): a machine lost mid-run."""
        _kill_group(self.workers[index], signal.SIGKILL)

    def logs(self) -> str:
        return " | ".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.folder.glob("*.log")))

    def close(self) -> None:
        """Stop every process this cluster started (workers first), and reap them.

        Each command leads a process group (a worker's nanny, its worker and its
        resource tracker): the group is signalled, and waited for until it is empty.
        """
        processes = [*self.workers, self.scheduler]
        for process in processes:
            _kill_group(process, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
                process.wait(timeout=10)
            _wait_until_group_ends(process)


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group the process leads (a worker's nanny and its child)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _wait_until_group_ends(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Wait until no process of the group is left (children exit after their parent)."""
    deadline = time.monotonic() + timeout
    killed = False
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        if _only_zombies_left(process.pid):
            return  # exited; reaping orphans is init's job, not ours
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {process.pid} still has processes after {timeout} s")
        if not killed and time.monotonic() > deadline - timeout / 2:
            _kill_group(process, signal.SIGKILL)
            killed = True
        time.sleep(0.05)


def _only_zombies_left(group: int) -> bool:
    """Whether every process of the group has exited but is not reaped yet (Linux ``/proc``)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ...
            states.append(fields[0])
    return bool(states) and all(state == "Z" for state in states)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the old values after it."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
