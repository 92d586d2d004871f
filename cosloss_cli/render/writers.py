"""Result files (``--output``, ``--output-dir``): written whole or not at all.

Every file is written to a temporary name in the destination folder, synced, and
renamed into place, so a failure, a full disk or Ctrl-C never leaves a partial file
and never replaces a good older file with a bad one.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np

from ..base.shown import url_location
from ..errors import OutputError, OutputUsageError
from ..io.storage import atomic_output_url, is_url
from ..pipeline.result import LossResult
from .output import DEFAULT_VIEW, FILE_EXTENSIONS, FILE_WRITERS, RESULT_WRITERS, View, writer


def output_format_for(path: str) -> str:
    """The file format an output path asks for, or a usage error listing the choices."""
    lower = url_location(path).lower()  # a URL's query is not its name
    for ext, fmt in FILE_EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    raise OutputUsageError(
        f"cannot tell the output format of {path!r}",
        hint=f"end the name in one of {', '.join(FILE_EXTENSIONS)}",
    )


@contextmanager
def atomic_output(
    path: str, storage_options: Mapping[str, Any] | None = None, before_replace: Callable[[], None] | None = None
) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only once it is completely written.

    Special files (``/dev/stdout``, ``/dev/full``, FIFOs) are written in place: they
    cannot be renamed over, and a device is not a file to protect. A symlink's target is
    written (its temporary file beside the target), and a file replaced keeps its mode. A URL is uploaded in
    one piece once written (:func:`cosloss_cli.io.storage.atomic_output_url`).

    ``before_replace`` is called once the bytes are written, just before they replace
    ``path``: an exception from it (a batch stopped meanwhile) removes them instead.
    """
    if "://" in path:
        if is_url(path):
            with atomic_output_url(path, storage_options, before_replace) as remote:
                yield remote
            return
    target = os.path.realpath(path) if os.path.islink(path) else path  # a link is kept, its target written
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror}", path=path) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputError("is a directory", path=path, hint="give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        try:
            with open(target, "wb") as special:
                yield special
        except OSError as exc:
            raise OutputError(f"cannot write: {exc.strerror}", path=path) from None
        return
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror}", path=path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace()
        os.chmod(temporary, stat.S_IMODE(mode) if mode is not None else 0o644 & ~_umask())  # a 0600 file stays 0600
        os.replace(temporary, target)
    except OSError as exc:
        _remove_quietly(temporary)
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=path) from None
    except BaseException:
        _remove_quietly(temporary)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_losses_file(
    path: str,
    result: Any,
    fmt: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    registry: dict[str, str] = FILE_WRITERS,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Write the per-vector losses of ``result`` to ``path`` in ``fmt``, by default that of its extension.

    ``storage_options`` are fsspec's for a URL ``path`` (``--storage-option``).
    ``registry`` has the writers of the result's kind (a :class:`LossResult` by default;
    ``compare`` passes its own); its text formats are stdout writers, wrapped here in UTF-8.
    ``before_replace``: see :func:`atomic_output`.
    """
    fmt = fmt or output_format_for(path)
    write = writer(registry, fmt)
    with atomic_output(path, storage_options, before_replace) as handle:
        if fmt not in RESULT_WRITERS:
            write(result, handle, View())
            return
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        write(result, text, View())
        text.flush()
        text.detach()


def write_npy(result: LossResult, handle: BinaryIO, view: View = DEFAULT_VIEW) -> None:
    """The losses array as NPY, in the input shape without the axis (omitted ones NaN)."""
    np.save(handle, result.losses, allow_pickle=False)


def write_parquet(result: LossResult, handle: BinaryIO, view: View = DEFAULT_VIEW) -> None:
    """A table of ``id`` or ``index`` (``index_0``... for N-D losses) and ``loss``; omitted rows left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kept = np.nonzero(~result.omitted.ravel())[0]
    columns: dict[str, object] = {}
    if result.ids is not None:
        columns["id"] = pa.array(result.ids[kept].tolist())
    elif result.losses.ndim == 1:
        columns["index"] = pa.array(kept, type=pa.int64())
    else:
        for axis, values in enumerate(np.unravel_index(kept, result.losses.shape)):
            columns[f"index_{axis}"] = pa.array(values, type=pa.int64())
    columns["loss"] = pa.array(result.losses.ravel()[kept], type=pa.float64())
    pq.write_table(pa.table(columns), handle)


def remove_temporaries(targets: Iterable[str]) -> int:
    """Remove the temporary files a killed writer left beside ``targets`` (``.NAME.XXXXXXXX.tmp``).

    A process killed with SIGKILL while it writes cannot remove its temporary file; the
    batch that sent it removes them when it ends. Each folder is listed once, and only
    the temporaries of these targets are touched. Returns how many were removed.
    """
    import re

    wanted: dict[str, set[str]] = {}
    for target in targets:
        folder, name = os.path.split(target)
        wanted.setdefault(folder or os.curdir, set()).add(name)
    removed = 0
    for folder, names in wanted.items():
        try:
            entries = [entry.name for entry in os.scandir(folder) if entry.name.endswith(".tmp")]
        except OSError:
            continue
        for name in entries:
            found = re.fullmatch(r"\.(.+)\.[A-Za-z0-9_]{8}\.tmp", name)
            if found is not None and found.group(1) in names:
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def write_text_file(path: str, text: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as the loss files are written (``--report``)."""
    with atomic_output(path, storage_options) as handle:
        handle.write(text.encode("utf-8"))
