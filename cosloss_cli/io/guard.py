"""An output never replaces an input: checked before anything is read.

``-o losses.npy`` given the predictions' name, a ``--weights`` file, or an ``--output-dir``
that is (or holds, or sits in) an input folder would have replaced the inputs with the
losses, and exited 0. Files are compared by device and inode, so a symlink or a hard
link to an input counts as the input; URLs by their text without the query.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable

from ..base.shown import shown_path, url_location
from ..errors import OutputUsageError
from .storage import is_url

#: A local file's identity: (device, inode).
FileId = tuple[int, int]


def check_outputs(outputs: Iterable[str | None], inputs: Iterable[str | None]) -> None:
    """Refuse (exit 2) when an output file is one of the input files, naming both.

    ``inputs`` are every file the command reads (labels, predictions, weights...); ``-``
    is stdin, which counts when it is a regular file (``< predictions.npy``).
    """
    inputs = list(inputs)
    known = _identities(_expanded(inputs))
    folders = _dataset_folders(inputs)
    for output in outputs:
        if output and output != "-":
            _check_one(output, _identity(output), known)
            _check_outside(output, folders)


def _expanded(inputs: list[str | None]) -> list[str | None]:
    """The inputs with each local glob (a dataset of files) replaced by its files."""
    import glob

    found: list[str | None] = []
    for path in inputs:
        if path and "://" not in path and any(c in path for c in "*?[") and not os.path.exists(path):
            found += glob.glob(path, recursive=True)
        else:
            found.append(path)
    return found


def _dataset_folders(inputs: list[str | None]) -> dict[str, str]:
    """Real path -> the path given, of each local input that is a folder (a dataset)."""
    return {os.path.realpath(path): path for path in inputs if path and "://" not in path and os.path.isdir(path)}


def _check_outside(output: str, folders: dict[str, str]) -> None:
    """An output inside an input folder would join that dataset the next time it is read: refused."""
    if not folders or "://" in output:
        return
    real = os.path.realpath(output)
    for folder, given in folders.items():
        if os.path.commonpath([folder, real]) == folder:
            raise OutputUsageError(
                f"the output would be written inside the input folder {_named(given)}",
                path=output,
                hint="write the output outside the input folders",
            )


def check_output_files(targets: Iterable[str], inputs: Iterable[str | None]) -> None:
    """:func:`check_outputs` for the many files of an ``--output-dir``: each target against every input.

    A target that does not exist yet cannot be an input; one that exists is compared by
    identity, which catches an output folder that is, holds or is inside an input folder
    (through a symlink too) whenever a name collides.
    """
    known = _identities(inputs)
    if not known:
        return
    for target in targets:
        _check_one(target, _identity(target), known)


def _check_one(output: str, identity: FileId | str | None, known: dict[FileId | str, str]) -> None:
    if identity is not None and identity in known:
        raise OutputUsageError(
            f"the output would replace the input {_named(known[identity])}",
            path=output,
            hint="write the output to another file or folder",
        )


def _identities(paths: Iterable[str | None]) -> dict[FileId | str, str]:
    """Identity -> the path given, for every input that exists."""
    found: dict[FileId | str, str] = {}
    for path in paths:
        if path:
            identity = _stdin_identity() if path == "-" else _identity(path)
            if identity is not None:
                found.setdefault(identity, path)
    return found


def _identity(path: str) -> FileId | str | None:
    """(device, inode) of an existing regular file, the location of a URL, else None."""
    if "://" in path:
        if is_url(path):
            return url_location(path).rstrip("/")
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISREG(found.st_mode) else None


def _stdin_identity() -> FileId | None:
    """Stdin's file when it is a regular one (a shell redirection), else None."""
    try:
        found = os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISREG(found.st_mode) else None


def _named(path: str) -> str:
    return "- (stdin)" if path == "-" else shown_path(path)
