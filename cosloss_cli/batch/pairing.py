"""Which pairs a batch runs: two mirrored folders, or a manifest; and where their outputs go.

Pairs are named by their relative path without the format extension and kept in
natural order (``m/5`` before ``m/10``), the order of every report.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import posixpath
import re
from collections.abc import Sequence
from typing import NamedTuple

from ..errors import DataError, InputUsageError, OutputError
from ..readers.formats import format_extension, strip_format_extension

#: Unmatched files listed one by one in warnings before "... and N more".
MAX_LISTED = 10


class Pair(NamedTuple):
    """A labels file and a predictions file to compare; ``name`` identifies it in reports."""

    name: str
    labels: str
    predictions: str


class Discovery(NamedTuple):
    """What pairing found: the pairs (in natural order) and the files left without a partner."""

    pairs: list[Pair]
    unmatched_labels: Sequence[str] = ()
    unmatched_predictions: Sequence[str] = ()
    #: Subfolders left out because ``recursive`` was off (for a hint to pass -r).
    skipped_folders: Sequence[str] = ()

    @property
    def unmatched(self) -> int:
        return len(self.unmatched_labels) + len(self.unmatched_predictions)


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key of a name with runs of digits compared as numbers: ``m/5`` before ``m/10``.

    >>> sorted(["m/10", "m/5", "m/b", "m/a2"], key=natural_key)
    ['m/5', 'm/10', 'm/a2', 'm/b']
    """
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name)))


def discover_pairs(
    labels_dir: str,
    predictions_dir: str,
    *,
    recursive: bool = False,
    patterns: Sequence[str] = (),
    labels_format: str | None = None,
    predictions_format: str | None = None,
    exclude: Sequence[str] = (),
) -> Discovery:
    """Pair files of two folders by their relative path without the format extension.

    ``labels/run1/a.npy`` pairs with ``predictions/run1/a.parquet`` as ``run1/a``. Hidden
    files and folders are skipped, symlinked folders are not followed, and only files
    with a known data extension count (any file when a format is forced for that side).
    ``patterns`` (globs) keep the files whose name or relative path matches one of them.
    Folders in ``exclude`` (e.g. the output folder) are not searched.
    """
    for folder in (labels_dir, predictions_dir):
        if not os.path.isdir(folder):
            reason = "no such folder" if not os.path.exists(folder) else "is not a folder"
            raise InputUsageError(reason, path=folder, hint="give two folders, or --manifest FILE.csv")
    skip = {os.path.realpath(path) for path in exclude}
    skipped: list[str] = []
    labels = _keyed(labels_dir, recursive, patterns, labels_format, skip, skipped)
    predictions = _keyed(predictions_dir, recursive, patterns, predictions_format, skip, skipped)
    pairs = [
        Pair(name, labels[name], predictions[name])
        for name in sorted(labels.keys() & predictions.keys(), key=natural_key)
    ]
    return Discovery(
        pairs=pairs,
        unmatched_labels=[labels[name] for name in sorted(labels.keys() - predictions.keys(), key=natural_key)],
        unmatched_predictions=[
            predictions[name] for name in sorted(predictions.keys() - labels.keys(), key=natural_key)
        ],
        skipped_folders=skipped,
    )


def _keyed(
    folder: str,
    recursive: bool,
    patterns: Sequence[str],
    forced_format: str | None,
    skip: set[str],
    skipped: list[str],
) -> dict[str, str]:
    """Pair name -> path of the eligible files of one folder; two files with one name is an error."""
    keyed: dict[str, str] = {}
    for rel, path in _scan(folder, recursive, skip, skipped):
        if patterns and not any(
            fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(posixpath.basename(rel), p) for p in patterns
        ):
            continue
        if format_extension(rel) is not None:
            name = strip_format_extension(rel)
        elif forced_format:
            name = posixpath.splitext(rel)[0] or rel
        else:
            continue
        if name in keyed:
            raise DataError(
                f"{keyed[name]} and {path} would both be pair {name!r}",
                hint="keep one format per name, or choose files with --pattern",
            )
        keyed[name] = path
    return keyed


def _scan(root: str, recursive: bool, skip: set[str], skipped: list[str]) -> list[tuple[str, str]]:
    """(relative posix path, path) of the regular files under ``root``, in sorted order.

    Subfolders not searched because ``recursive`` is off are appended to ``skipped``.
    """
    found: list[tuple[str, str]] = []
    stack: list[tuple[str, str]] = [("", root)]
    while stack:
        rel_dir, folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            raise DataError(f"cannot list the folder: {exc.strerror}", path=folder) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and os.path.realpath(entry.path) not in skip:
                        stack.append((rel, entry.path))
                    elif not recursive and os.path.realpath(entry.path) not in skip:
                        skipped.append(entry.path)
                elif entry.is_file():  # a symlink to a folder is neither: not followed
                    found.append((rel, entry.path))
            except OSError:
                continue
    return sorted(found)


def read_manifest(path: str) -> list[Pair]:
    """Pairs listed in a CSV file with columns ``labels``, ``predictions`` and optional ``name``.

    Paths are relative to the manifest's folder. A pair's name defaults to its labels
    path without the format extension. Names must be unique relative paths.
    """
    folder = os.path.dirname(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise InputUsageError("no such file", path=path, hint="check the --manifest path") from None
    except IsADirectoryError:
        raise InputUsageError("is a folder, not a CSV file", path=path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the manifest: {exc}", path=path) from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "labels" not in header or "predictions" not in header:
        raise DataError(
            f"the manifest needs a header with columns labels,predictions (found: {','.join(header) or 'nothing'})",
            path=path,
            hint="first line: labels,predictions[,name]",
        )
    where = {column: header.index(column) for column in ("labels", "predictions", "name") if column in header}
    pairs: list[Pair] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = {column: row[i].strip() if i < len(row) else "" for column, i in where.items()}
        if not cells["labels"] or not cells["predictions"]:
            raise DataError(f"line {line}: empty labels or predictions path", path=path)
        name = cells.get("name") or _default_name(cells["labels"])
        if not is_safe_name(name):
            raise DataError(
                f"line {line}: name {name!r} must be a relative path inside the output folder (no '..')",
                path=path,
            )
        name = posixpath.normpath(name)
        if name in seen:
            raise DataError(f"line {line}: name {name!r} is already used on line {seen[name]}", path=path)
        seen[name] = line
        pairs.append(Pair(name, os.path.join(folder, cells["labels"]), os.path.join(folder, cells["predictions"])))
    return sorted(pairs, key=lambda pair: natural_key(pair.name))


def _default_name(labels: str) -> str:
    name = strip_format_extension(labels.replace(os.sep, "/"))
    if is_safe_name(name):
        return posixpath.normpath(name)
    return strip_format_extension(posixpath.basename(name)) or "pair"


def is_safe_name(name: str) -> bool:
    """A pair name usable as a relative path under the output folder."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\0" in name:
        return False
    parts = posixpath.normpath(name).split("/")
    return all(part not in ("", ".", "..") for part in parts)


def output_path(output_dir: str, name: str, extension: str) -> str:
    """``DIR/<name>.<ext>``; an error if that would resolve outside ``DIR``."""
    if not is_safe_name(name):
        raise OutputError(f"pair name {name!r} is not a safe relative path", path=output_dir)
    target = os.path.join(output_dir, *name.split("/")) + "." + extension
    check_inside(output_dir, target)
    return target


def check_inside(output_dir: str, target: str) -> None:
    """Refuse a target that resolves outside ``output_dir`` (through a symlink or '..')."""
    root = os.path.realpath(output_dir)
    real = os.path.realpath(target)
    if os.path.commonpath([root, real]) != root:
        raise OutputError(f"would be written outside {output_dir} (through a symlink?)", path=target)
