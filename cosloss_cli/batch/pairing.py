"""Which pairs a batch runs: two mirrored folders, or a manifest; and where their outputs go.

Pairs are named by their relative path without the format extension and kept in
natural order (``m/5`` before ``m/10``), the order of every report.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..base.shown import url_location
from ..errors import DataError, InputUsageError, OutputError
from ..io.formats import format_extension, natural_key, strip_format_extension
from ..io.storage import is_url, open_input, scan

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


def discover_pairs(
    labels_dir: str,
    predictions_dir: str,
    *,
    recursive: bool = False,
    patterns: Sequence[str] = (),
    labels_format: str | None = None,
    predictions_format: str | None = None,
    exclude: Sequence[str] = (),
    storage_options: Mapping[str, Any] | None = None,
) -> Discovery:
    """Pair files of two folders by their relative path without the format extension.

    ``labels/run1/a.npy`` pairs with ``predictions/run1/a.parquet`` as ``run1/a``. Hidden
    files and folders are skipped, symlinked folders are not followed, and only files
    with a known data extension count (any file when a format is forced for that side).
    ``patterns`` (globs) keep the files whose name or relative path matches one of them.
    Folders in ``exclude`` (e.g. the output folder) are not searched.

    Either folder may be a URL (``s3://bucket/prefix``): its objects are listed with
    :func:`cosloss_cli.io.storage.scan` under the same rules, with ``storage_options``.
    """
    for folder in (labels_dir, predictions_dir):
        if not is_remote(folder) and not os.path.isdir(folder):
            reason = "no such folder" if not os.path.exists(folder) else "is not a folder"
            raise InputUsageError(reason, path=folder, hint="give two folders, or --manifest FILE.csv")
    skipped: list[str] = []
    labels = _keyed(_listing(labels_dir, recursive, exclude, skipped, storage_options), patterns, labels_format)
    predictions = _keyed(
        _listing(predictions_dir, recursive, exclude, skipped, storage_options), patterns, predictions_format
    )
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


def is_remote(path: str) -> bool:
    """``scheme://...``: an object-storage URL (read through fsspec), not a local path."""
    if "://" not in path:
        return False
    return is_url(path)


def _listing(
    folder: str,
    recursive: bool,
    exclude: Sequence[str],
    skipped: list[str],
    storage_options: Mapping[str, Any] | None,
) -> list[tuple[str, str]]:
    """(relative posix path, path or URL) of the files of a local folder or an object prefix."""
    if not is_remote(folder):
        return _scan(folder, recursive, {os.path.realpath(path) for path in exclude if not is_remote(path)}, skipped)
    found, not_searched = scan(folder, recursive, (), storage_options)
    inside = [path.rstrip("/") + "/" for path in exclude if is_remote(path)]
    skipped += [url for url in not_searched if not any((url + "/").startswith(prefix) for prefix in inside)]
    return [(rel, url) for rel, url in found if not any(url.startswith(prefix) for prefix in inside)]


def _keyed(listing: list[tuple[str, str]], patterns: Sequence[str], forced_format: str | None) -> dict[str, str]:
    """Pair name -> path of the eligible files of one folder; two files with one name is an error."""
    keyed: dict[str, str] = {}
    for rel, path in listing:
        if patterns and not any(
            fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(posixpath.basename(rel), p) for p in patterns
        ):
            continue
        ext = format_extension(rel)
        if ext is not None:
            name = rel[: -len(ext)]
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


def read_manifest(path: str, storage_options: Mapping[str, Any] | None = None) -> list[Pair]:
    """Pairs listed in a CSV file with columns ``labels``, ``predictions`` and optional ``name``.

    Paths are relative to the manifest's folder (its URL's folder for a manifest in
    object storage); entries that are URLs are kept as they are. A pair's name defaults
    to its labels path without the format extension. Names must be unique relative paths.
    """
    remote = is_remote(path)
    folder = posixpath.dirname(path) if remote else os.path.dirname(path)
    try:
        rows = _manifest_rows(path, storage_options) if remote else _local_manifest_rows(path)
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
        pairs.append(Pair(name, _entry(folder, cells["labels"], remote), _entry(folder, cells["predictions"], remote)))
    return sorted(pairs, key=lambda pair: natural_key(pair.name))


def _local_manifest_rows(path: str) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def _manifest_rows(url: str, storage_options: Mapping[str, Any] | None) -> list[list[str]]:
    """The CSV rows of a manifest in object storage (a small object: read whole)."""
    import io

    with open_input(url, storage_options) as handle:
        text = handle.read().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


def _entry(folder: str, entry: str, remote: bool) -> str:
    """A manifest entry as a path: URLs and absolute paths as given, others relative to ``folder``."""
    if is_remote(entry):
        return entry
    if remote:
        protocol, location = folder.split("://", 1)
        return f"{protocol}://{posixpath.normpath(posixpath.join(location, entry))}"
    return os.path.join(folder, entry)


def _default_name(labels: str) -> str:
    name = strip_format_extension(url_location(labels).replace(os.sep, "/"))  # never a URL's secrets
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
    if is_remote(output_dir):  # no symlinks in object storage, and the name has no '..'
        return f"{output_dir.rstrip('/')}/{posixpath.normpath(name)}.{extension}"
    target = os.path.join(output_dir, *name.split("/")) + "." + extension
    check_inside(output_dir, target)
    return target


def check_inside(output_dir: str, target: str) -> None:
    """Refuse a target that resolves outside ``output_dir`` (through a symlink or '..')."""
    root = os.path.realpath(output_dir)
    real = os.path.realpath(target)
    if os.path.commonpath([root, real]) != root:
        raise OutputError(f"would be written outside {output_dir} (through a symlink?)", path=target)
