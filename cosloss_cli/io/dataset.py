"""Datasets: a folder, a glob or an object-storage prefix read as ONE table of rows.

What people hand over is rarely one file: Spark writes ``part-0000k-<uuid>.parquet``
shards next to ``_SUCCESS``, polars and pyarrow.dataset write hive folders
(``split=test/``), Hugging Face's ``save_to_disk`` writes Arrow stream shards listed in
``state.json``. This layer finds the files of such a dataset, orders them (natural sort
of their paths; ``state.json``'s order for a Hugging Face folder), and reads them one
after the other through the per-file reader of their format, as one :class:`Source`:
any registered format works, and memory stays that of one file at a time.

Discovery is done here rather than by ``pyarrow.dataset`` because it must serve every
registered format (NPY, CSV... as well as Parquet and Arrow) and keep the natural
order; the rules are pyarrow.dataset's: names starting with ``_`` or ``.`` (``_SUCCESS``,
``_metadata``, ``.part-0.crc``) are bookkeeping, and ``key=value`` folders are hive
partitions whose keys become columns. Those columns can be the row ids (``--id-column``,
``--join-on``) or the weights (``--weight-column``), never vector components.
"""

from __future__ import annotations

import bisect
import glob
import itertools
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote

import numpy as np

from ..errors import CoslossError, DataError, InputUsageError
from .base import Block, Blocks, BlockStream, ReadOptions, Source
from .formats import detect_format, format_extension, is_glob, natural_key
from .parquet import files_row_group_blocks, in_order
from .storage import filesystem, is_url, open_input, storage_error, url_path

T = TypeVar("T")

#: Opens one file of a known format: ``io.open_file``.
FileOpener = Callable[[str, ReadOptions], Source]


#: Hugging Face's ``save_to_disk``: the file listing the data files in order.
HF_STATE = "state.json"

#: The largest block of a dataset's files, in bytes of float64 values. A dataset is read
#: file after file, each file's blocks going through the same prefetch and reduction
#: queues as a single file's: blocks of 2 MB (a Parquet list column is then decoded a
#: block-sized batch at a time, in cache) held 135 MB of peak RSS instead of 190 MB
#: for 64 shards of 200,000 x 256 float32 in all, for the same CPU time.
DATASET_BLOCK_BYTES = 2 * 1024 * 1024

#: The value pyarrow and Spark write for a missing partition value.
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class DataFile(NamedTuple):
    """One file of a dataset: where it is, how to show it, its hive keys and values."""

    path: str
    #: The path relative to the dataset's root, for messages.
    name: str
    partition: tuple[tuple[str, str | None], ...] = ()


class Dataset(NamedTuple):
    """The files of a dataset, in reading order, and the format they are read as."""

    path: str
    files: list[DataFile]
    #: The hive keys of every file, in folder order.
    keys: tuple[str, ...] = ()
    #: How the files were found (for the note): "folder", "glob", "prefix", "Hugging Face folder".
    kind: str = "folder"
    #: The format every file is read as when it is not given by the extension (HF: "arrow").
    file_format: str | None = None


def dataset_of(path: str, options: ReadOptions) -> Dataset | None:
    """The dataset ``path`` names (a folder, a glob, a prefix), or None for a single file.

    Cheap for a single local file (a stat); a URL without a known extension costs one
    request to ask whether it is a prefix.
    """
    if path == "-":
        return None
    if "://" in path:
        if is_url(path):
            return _remote_dataset(path, options)
        return None
    if os.path.isdir(path):
        return _local_folder(path)
    if is_glob(path) and not os.path.exists(path):
        return _local_glob(path)
    return None


# ------------------------------------------------------------------ discovery


def _bookkeeping(name: str) -> bool:
    """Files and folders a dataset's writer leaves beside its data (pyarrow.dataset's rule)."""
    return name.startswith(("_", ".")) or name.endswith(".crc")


def _partition(parts: list[str]) -> tuple[tuple[str, str | None], ...]:
    """The hive ``key=value`` folders among the folders ``parts`` (URL-decoded, as pyarrow does)."""
    found: list[tuple[str, str | None]] = []
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key:
            text = unquote(value)
            found.append((unquote(key), None if text == _HIVE_NULL else text))
    return tuple(found)


def _local_folder(root: str) -> Dataset:
    state = os.path.join(root, HF_STATE)
    if os.path.isfile(state):
        with open(state, encoding="utf-8") as handle:
            return _hf_dataset(root, handle.read(), lambda name: os.path.join(root, name))
    found: list[DataFile] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not _bookkeeping(d)]
        rel_folder = os.path.relpath(folder, root)
        parts = [] if rel_folder == "." else rel_folder.split(os.sep)
        partition = _partition(parts)
        for name in names:
            if not _bookkeeping(name):
                rel = posixpath.join(*parts, name) if parts else name
                found.append(DataFile(os.path.join(folder, name), rel, partition))
    return _ordered(root, found, "folder")


def _glob_base(pattern: str, sep: str) -> str:
    """The folders of ``pattern`` before its first wildcard (what names are shown relative to)."""
    parts = pattern.split(sep)
    fixed = []
    for part in parts[:-1]:
        if is_glob(part):
            break
        fixed.append(part)
    return sep.join(fixed)


def _local_glob(pattern: str) -> Dataset:
    base = _glob_base(pattern, os.sep)
    found: list[DataFile] = []
    for path in glob.glob(pattern, recursive=True):
        if not os.path.isfile(path):
            continue
        rel = os.path.relpath(path, base or ".")
        parts = rel.split(os.sep)
        if any(_bookkeeping(part) for part in parts):
            continue
        found.append(DataFile(path, "/".join(parts), _partition(parts[:-1])))
    return _ordered(pattern, found, "glob")


def _remote_dataset(url: str, options: ReadOptions) -> Dataset | None:
    """A glob or a prefix of object storage (fsspec), or None for one object."""
    named = url_path(url)
    glob_pattern = is_glob(named.split("://", 1)[1])
    if not glob_pattern and not named.endswith("/") and format_extension(named) is not None:
        return None  # a file's name: the reader opens (and checks) it
    fs, inner = filesystem(url, options.storage_options)
    scheme = url.split("://", 1)[0]
    try:
        if glob_pattern:
            base = _glob_base(inner, "/")
            entries = [name for name in fs.glob(inner) if fs.isfile(name)]
            kind = "glob"
        else:
            base = inner.rstrip("/")
            if not fs.isdir(base):
                return None  # not a prefix: the reader says what it is
            if fs.isfile(f"{base}/{HF_STATE}"):
                with fs.open(f"{base}/{HF_STATE}", "rb") as handle:
                    text = handle.read().decode("utf-8")
                return _hf_dataset(url.rstrip("/"), text, lambda name: f"{url.rstrip('/')}/{name}")
            entries = fs.find(base, withdirs=False, detail=False)
            kind = "prefix"
    except CoslossError:
        raise
    except Exception as exc:
        raise storage_error(exc, url, options.storage_options, "cannot list") from None
    found: list[DataFile] = []
    for name in entries:
        name = name.rstrip("/")
        rel = name[len(base) :].lstrip("/") if base and name.startswith(base) else posixpath.basename(name)
        parts = rel.split("/")
        if not rel or any(_bookkeeping(part) for part in parts):
            continue
        found.append(DataFile(f"{scheme}://{name}", rel, _partition(parts[:-1])))
    return _ordered(url, found, kind)


def _hf_dataset(root: str, state_text: str, path_of: Callable[[str], str]) -> Dataset:
    """A Hugging Face ``save_to_disk`` folder: its Arrow stream files in ``state.json``'s order."""
    try:
        state = json.loads(state_text)
        names = [entry["filename"] for entry in state["_data_files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{HF_STATE} does not list the data files (_data_files): {exc}", path=root, hint="was it fully written?"
        ) from None
    if not names or not all(isinstance(name, str) and name for name in names):
        raise DataError(f"{HF_STATE} lists no data files", path=root)
    files = [DataFile(path_of(name), name) for name in names]
    return Dataset(root, files, (), "Hugging Face folder", "arrow")


def _ordered(root: str, files: list[DataFile], kind: str) -> Dataset:
    """The files in natural order of their paths, with the same hive keys in each."""
    if not files:
        if kind == "folder":
            raise InputUsageError(
                "is a directory without data files to read as one dataset",
                path=root,
                hint="cosloss batch compares two folders of files pair by pair",
            )
        raise InputUsageError(f"no data files match this {kind}", path=root, hint="check the path")
    files.sort(key=lambda file: natural_key(file.name))
    keys = tuple(key for key, _ in files[0].partition)
    for file in files:
        if tuple(key for key, _ in file.partition) != keys:
            raise DataError(
                f"{file.name} is in hive folders {_keys_text(file)}, the first file {files[0].name} in "
                f"{_keys_text(files[0])}: the files of one dataset must be partitioned alike",
                path=root,
            )
    return Dataset(root, files, keys, kind)


def _keys_text(file: DataFile) -> str:
    return "/".join(f"{key}=" for key, _ in file.partition) or "none"


# ------------------------------------------------------------------ reading


def open_dataset(dataset: Dataset, options: ReadOptions, open_file: FileOpener) -> Source:
    """Read the files of ``dataset`` one after the other as one :class:`Source`.

    The first file is opened now (its shape, columns and ids are the dataset's); the
    others are opened only when the blocks reach them, and each must agree with the first
    (format, columns, vector shape, ids), else the error names the first file that differs.
    """
    hive = _Hive(dataset, options)
    file_options = hive.file_options(options)
    file_options = file_options._replace(block_bytes=min(file_options.block_bytes, DATASET_BLOCK_BYTES))
    formats = [_file_format(dataset, file, options) for file in dataset.files]
    for file, fmt in zip(dataset.files, formats, strict=True):
        if fmt != formats[0]:
            raise DataError(
                f"{file.name} is {fmt.upper()} while the first file {dataset.files[0].name} is "
                f"{formats[0].upper()}: the files of one dataset must share one format",
                path=dataset.path,
            )
    fmt = formats[0]
    file_options = file_options._replace(input_format=fmt)
    file_rows = _file_rows(dataset, fmt)
    chain = _Chain(dataset, file_options, open_file, hive, fmt, file_rows)
    first = chain.first
    count = len(dataset.files)
    note = f"{dataset.path}: a dataset of {count} {fmt.upper()} file{'s' if count > 1 else ''}, read as one table"
    columns_shown = (*(first.file_columns or first.columns or ()), *dataset.keys)
    return first._replace(
        path=dataset.path,
        # Each file of 1-D arrays is one vector: a dataset of them is a table of rows.
        one_vector=first.one_vector and count == 1,
        shape=(None if file_rows is None else sum(file_rows), *first.shape[1:]) if count > 1 else first.shape,
        blocks=chain,
        size_bytes=None,
        notes=(*first.notes, note) if count > 1 else first.notes,
        line_of=None,
        file_columns=columns_shown if columns_shown else None,
        where_of=chain.where,
    )


def _file_format(dataset: Dataset, file: DataFile, options: ReadOptions) -> str:
    if dataset.file_format is not None:
        return dataset.file_format
    if options.input_format:
        return detect_format(file.path, options.input_format)
    try:
        return detect_format(file.path, None)
    except InputUsageError:
        raise InputUsageError(
            f"cannot tell the format of {file.name} from its name",
            path=dataset.path,
            hint="pass --input-format, or a glob that selects the data files ('folder/*.parquet')",
        ) from None


class _Hive:
    """The hive keys of a dataset used as the row ids or weights (``--id-column``, ``--weight-column``)."""

    def __init__(self, dataset: Dataset, options: ReadOptions):
        keys = self.keys = dataset.keys
        for name in options.columns or ():
            if name in keys:
                raise InputUsageError(
                    f"{name!r} is a hive partition key (folders {name}=...), not a vector component",
                    path=dataset.path,
                    hint="--columns names the vector's columns; a key can be the ids (--join-on) or weights",
                )
        self.id_key = options.id_column if options.id_column in keys else None
        self.weight_key = options.weight_column if options.weight_column in keys else None
        # A key of integers is read as integers (as pyarrow.dataset infers it), else as text.
        self.kinds: dict[str, bool] = {}
        for index, key in enumerate(keys):
            values = [file.partition[index][1] for file in dataset.files]
            self.kinds[key] = all(value is not None and re.fullmatch(r"-?\d+", value) for value in values)

    def file_options(self, options: ReadOptions) -> ReadOptions:
        """Read options for one file: a key named as ids or weights is not looked for in it."""
        options = options._replace(partition_keys=self.keys)
        if self.id_key is not None:
            options = options._replace(id_column=None)
        if self.weight_key is not None:
            options = options._replace(weight_column=None)
        return options

    def opened(self, source: Source, file: DataFile) -> Source:
        """The file's source with the key's value as the ids (or weights) of its rows."""
        if self.id_key is None and self.weight_key is None:
            return source
        values = dict(file.partition)
        id_value: Any = None
        if self.id_key is not None:
            text = values[self.id_key]
            id_value = int(text) if text is not None and self.kinds[self.id_key] else text
        weight = None
        if self.weight_key is not None:
            weight = _weight_value(values[self.weight_key], self.weight_key, file)
        blocks = _WithKeys(source.blocks, id_value if self.id_key else _NO_VALUE, weight)
        return source._replace(
            blocks=blocks,
            has_ids=source.has_ids or self.id_key is not None,
            id_column=self.id_key or source.id_column,
            has_weights=source.has_weights or self.weight_key is not None,
        )


_NO_VALUE = object()


def _weight_value(text: str | None, key: str, file: DataFile) -> float:
    try:
        return float(text) if text is not None else float("nan")
    except ValueError:
        raise DataError(f"the weight key {key}={text} is not a number", path=file.path) from None


class _WithKeys(Blocks):
    """A file's blocks with the hive key's value as the ids (or weights) of every row.

    Asked to decode on one thread, or to close, the file's own blocks are.
    """

    __slots__ = ("_blocks", "_id_value", "_weight")

    def __init__(self, blocks: BlockStream, id_value: Any, weight: float | None):
        self._blocks = blocks
        self._id_value = id_value
        self._weight = weight

    def __next__(self) -> Block:
        block = next(self._blocks)
        rows = len(block)
        ids = block.ids
        if self._id_value is not _NO_VALUE:
            ids = np.empty(rows, dtype=object)
            ids[:] = [self._id_value] * rows if rows else []
        weights = block.weights if self._weight is None else np.full(rows, self._weight)
        return Block(block.values, ids, weights, block.keys)

    def one_thread(self) -> None:
        self._blocks.one_thread()

    def close(self) -> None:
        self._blocks.close()


class _Chain(Blocks):
    """The blocks of every file of a dataset in order, one file open at a time.

    The first file with rows is opened at once (its shape and columns are the
    dataset's); files without rows are skipped (Spark writes empty part files, pandas
    an empty frame with columns of no type). Keeps where each file starts (in rows of
    the dataset) so that a row can be named as users find it: the file and its own row
    or line (:meth:`where`).
    """

    def __init__(
        self,
        dataset: Dataset,
        options: ReadOptions,
        open_file: FileOpener,
        hive: _Hive,
        fmt: str,
        file_rows: list[int] | None = None,
    ):
        self._dataset = dataset
        #: Each file's rows from its footer (local Parquet files), else None.
        self._file_rows = file_rows
        self._options = options
        self._open = open_file
        self._hive = hive
        self._format = fmt
        self._index = -1
        self._rows = 0
        self._one_thread = False
        #: The first row, the name and the source of each file opened so far.
        self._starts: list[int] = []
        self._names: list[str] = []
        self._sources: list[Source] = []
        self._blocks: BlockStream | None = None
        first = None
        while first is None:
            self._index += 1
            if self._index == len(dataset.files):  # every file is empty: the first one's error
                self._index = 0
                first = self._opened(dataset.files[0], check=False)
                break
            first = self._open_next(dataset.files[self._index], first=True)
        self.first: Source = first
        self._start(first, dataset.files[self._index])

    def __next__(self) -> Block:
        while True:
            if self._blocks is not None:
                block = next(self._blocks, None)
                if block is not None:
                    self._rows += len(block)
                    return block
                self._close_current()
            self._index += 1
            if self._index >= len(self._dataset.files):
                raise StopIteration
            file = self._dataset.files[self._index]
            source = self._open_next(file)
            if source is not None:
                self._start(source, file)

    def _start(self, source: Source, file: DataFile) -> None:
        self._starts.append(self._rows)
        self._names.append(file.name)
        # Only what names a row: the reader (a Parquet file's footer) is not kept alive.
        self._sources.append(source._replace(blocks=Blocks(), columns=None, file_columns=None, notes=()))
        self._blocks = source.blocks

    def _opened(self, file: DataFile, check: bool = True) -> Source:
        source = self._hive.opened(self._open(file.path, self._options), file)
        if check:
            _check_agrees(self.first, source, self._dataset, file)
        if self._one_thread:
            source.blocks.one_thread()
        return source

    def _open_next(self, file: DataFile, first: bool = False) -> Source | None:
        """The file's source, or None for a file without rows (whatever its columns)."""
        try:
            return self._opened(file, check=not first)
        except DataError:
            if _row_count(file.path, self._format, self._options) == 0:
                return None
            raise

    def _close_current(self) -> None:
        if self._blocks is not None:
            self._blocks.close()
        self._blocks = None

    def __length_hint__(self) -> int:
        return len(self._dataset.files) - self._index + 1

    def one_thread(self) -> None:
        """Decode every file on one thread (see ``io.parquet._Blocks.one_thread``)."""
        self._one_thread = True
        self.first.blocks.one_thread()

    def close(self) -> None:
        self._close_current()

    def map_on_decoders(self, func: Callable[[Block], T]) -> Iterator[T] | None:
        """``func`` of every block, called on the thread that decoded it, in order; None: read block by block.

        A join's labels (``ReadOptions.decode_threads`` > 1, before any block is read): as
        ``io.parquet._Blocks.map_on_decoders`` does with the row groups of one file,
        the files are decoded on that many threads at once, each block looked up, gathered
        and summed where it was decoded. Local Parquet files only: their footers say where
        each file starts, for messages that name a row.
        """
        threads = self._options.decode_threads
        if threads <= 1 or self._one_thread or self._rows or not self._locate_by_footers():
            return None
        self._close_current()
        self._index = len(self._dataset.files)  # the chain's own blocks are not read
        return in_order(_FileParts(self), len(self._dataset.files), threads, func)

    def _locate_by_footers(self) -> bool:
        """Record where every file starts from the Parquet footers; False if they cannot tell."""
        if self._file_rows is None:
            return False
        starts = list(itertools.accumulate(self._file_rows, initial=0))[:-1]
        self._starts, self._names = starts, [file.name for file in self._dataset.files]
        self._sources = [self.first] * len(starts)
        return True

    def all_rows(self, max_bytes: int) -> Iterator[Block] | None:
        """Every row in one block, the files' row groups decoded on both cores; None: read block by block.

        For a join's predictions, which are all kept anyway (see
        ``io.parquet.row_group_blocks``): local Parquet files of a list column whose
        ids are a column of the files (not a hive key), before any block is read.
        """
        if self._format != "parquet" or self._rows or self._hive.id_key or self._hive.weight_key:
            return None
        first = self.first._replace(shape=(None, *self.first.shape[1:]))
        whole = files_row_group_blocks(first, [file.path for file in self._dataset.files], max_bytes)
        if whole is None or not self._locate_by_footers():
            return None
        self._close_current()
        self._index = len(self._dataset.files)  # the chain's own blocks are not read
        return whole

    def where(self, row: int) -> str:
        """Row ``row`` of the dataset as the file that holds it and its row (or line) there."""
        index = max(0, bisect.bisect_right(self._starts, row) - 1)
        source = self._sources[index]
        return f"file {self._names[index]}, {source.where(row - self._starts[index])}"


def _file_rows(dataset: Dataset, fmt: str) -> list[int] | None:
    """The rows of each file of a dataset of local Parquet files, from their footers (None: unknown until read).

    Known rows let a join keep the predictions in memory rather than in a temporary
    file (``join._Spill``), refuse row counts that differ before reading, and say where
    each file starts when files are decoded on several threads (``_Chain.map_on_decoders``).
    Footers are read one file at a time, once; for object storage that would be a
    request per file, so the counts are left unknown there.
    """
    if fmt != "parquet" or any("://" in file.path for file in dataset.files):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return [int(pq.read_metadata(file.path).num_rows) for file in dataset.files]
    except (pa.ArrowException, OSError, ValueError):
        return None  # the file's reader reports it when the blocks reach it


class _FileParts:
    """The files of a dataset as parts that threads decode at once (``io.parquet._in_order``).

    Each part is a whole file, opened, checked against the first and read on the thread
    that asks for it, its own row groups on that one thread.
    """

    def __init__(self, chain: _Chain):
        self._chain = chain
        self._options = chain._options._replace(decode_threads=1)

    def blocks(self, index: int) -> Iterator[Block]:
        chain = self._chain
        file = chain._dataset.files[index]
        try:
            source = chain._hive.opened(chain._open(file.path, self._options), file)
            if index:
                _check_agrees(chain.first, source, chain._dataset, file)
        except DataError:
            if _row_count(file.path, chain._format, self._options) == 0:
                return
            raise
        try:
            yield from source.blocks
        finally:
            source.blocks.close()

    def close(self) -> None:
        self._chain.first.blocks.close()


def _row_count(path: str, fmt: str, options: ReadOptions) -> int | None:
    """The rows of a Parquet file from its footer (None: another format, or unreadable)."""
    if fmt != "parquet":
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if "://" in path:
            with open_input(path, options.storage_options, random_access=True) as handle:
                return int(pq.read_metadata(handle).num_rows)
        return int(pq.read_metadata(path).num_rows)
    except (pa.ArrowException, OSError, ValueError, CoslossError):
        return None


def _check_agrees(first: Source, source: Source, dataset: Dataset, file: DataFile) -> None:
    """A file must have the first file's columns, vector shape and ids."""
    first_name = dataset.files[0].name
    problem = None
    if source.format != first.format:
        problem = f"is {source.format.upper()}, the first file {first_name} {first.format.upper()}"
    elif source.shape[1:] != first.shape[1:] or source.one_vector != first.one_vector:
        problem = f"has vectors of shape {_rest(source)}, the first file {first_name} {_rest(first)}"
    elif first.named and source.columns != first.columns:
        problem = f"has columns {_names(source.columns)}, the first file {first_name} {_names(first.columns)}"
    elif source.key_columns != first.key_columns:  # compared with the other input's, block by block
        problem = (
            f"has columns besides the vectors {_names(list(source.key_columns))}, "
            f"the first file {first_name} {_names(list(first.key_columns))}"
        )
    elif source.has_ids != first.has_ids or source.id_column != first.id_column:
        problem = (
            f"has id column {source.id_column!r}, the first file {first_name} {first.id_column!r}"
            if source.has_ids and first.has_ids
            else f"{'has' if source.has_ids else 'has no'} id column {source.id_column or first.id_column!r}, "
            f"unlike the first file {first_name}"
        )
    if problem is not None:
        raise DataError(
            f"{file.name} {problem}: the files of one dataset must agree", path=dataset.path, hint=f"fix {file.path}"
        )


def _rest(source: Source) -> str:
    return "(" + ", ".join(str(n) for n in source.shape[1:]) + ")"


def _names(columns: list[str] | None, limit: int = 6) -> str:
    names = list(columns or [])
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


__all__ = ["Dataset", "DataFile", "dataset_of", "natural_key", "open_dataset"]
