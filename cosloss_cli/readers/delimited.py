"""CSV and TSV readers (gzip too), streamed block by block with pyarrow's parser.

pyarrow parses on its own threads and reports errors without line numbers, so when
it fails on a file on disk we re-scan that file with the standard ``csv`` module to
name the line, column and value: the slow path runs only to explain an error.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import DataError, InputUsageError
from .base import Block, ReadOptions, Source
from .streams import GZIP_MAGIC, PeekableReader, file_size, is_regular_file, open_binary, read_exactly

_PEEK_BYTES = 64 * 1024
_MAX_FIRST_LINE = 64 * 1024 * 1024


def _is_number(cell: str) -> bool:
    """Whether a cell parses as a number (empty cells count: they are missing values)."""
    text = cell.strip()
    if not text:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text


def open_delimited(path: str, fmt: str, options: ReadOptions) -> Source:
    """Open a CSV or TSV file (plain or gzip) and stream it in blocks of rows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = "\t" if fmt == "tsv" else ","
    raw = open_binary(path, options.storage_options)
    prefix = read_exactly(raw, _PEEK_BYTES)
    gzipped = prefix.startswith(GZIP_MAGIC)
    while len(prefix) % _PEEK_BYTES == 0 and len(prefix) < _MAX_FIRST_LINE and not _has_line_end(prefix, gzipped):
        more = read_exactly(raw, len(prefix))  # a header wider than the peek: read until it ends
        if not more:
            break
        prefix += more
    if path.lower().endswith(".gz") and not gzipped:
        raw.close()
        raise DataError(
            "the name ends in .gz but the file is not gzip-compressed",
            path=path,
            hint="rename it without .gz",
        )
    first_line = _first_line(prefix, gzipped, path)
    if not first_line.strip():
        if path != "-":
            raw.close()
        raise DataError("is empty: no header and no rows", path=path)
    try:
        cells = next(csv.reader([first_line], delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"line 1 cannot be parsed: {exc}", path=path) from None
    header = options.header if options.header is not None else not all(_is_number(c) for c in cells)
    names = [c.strip() for c in cells] if header else [str(i) for i in range(len(cells))]
    _check_unique(names, path)
    features, id_column = _select_columns(names, options, path)

    if is_regular_file(path):
        raw.close()
        stream: Any = pa.input_stream(path, compression="gzip" if gzipped else None)
    else:
        stream = pa.PythonFile(io.BufferedReader(PeekableReader(prefix, raw)), mode="r")
        if gzipped:
            stream = pa.CompressedInputStream(stream, "gzip")

    column_types = {name: pa.float64() for name in features}
    if id_column is not None:
        column_types[id_column] = pa.string()
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names,
                skip_rows=1 if header else 0,
                # pyarrow reads up to 32 blocks ahead of the consumer: 1 MB blocks bound that
                # to 32 MB per file, and parse as fast as larger ones.
                block_size=max(1 << 16, min(options.block_bytes, 1 << 20)),
                use_threads=True,
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                include_columns=features + ([id_column] if id_column else []),
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
        raise _explain(exc, path, gzipped, delimiter, names, features, header) from None

    def blocks() -> Iterator[Block]:
        rows_done = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                if batch.num_rows == 0:
                    continue
                rows_done += batch.num_rows
                # Column-major: a copy per column; the core transposes chunks in cache.
                values = np.asarray(batch.select(features).to_tensor(null_to_nan=True, row_major=False))
                ids = None
                if id_column is not None:
                    ids = np.asarray(batch.column(id_column).to_pylist(), dtype=object)
                yield Block(values, ids)
        except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
            raise _explain(exc, path, gzipped, delimiter, names, features, header, rows_done) from None
        finally:
            reader.close()

    return Source(
        path,
        fmt,
        (None, len(features)),
        blocks(),
        columns=features,
        has_ids=id_column is not None,
        size_bytes=file_size(path),
    )


def _peek_text(prefix: bytes, gzipped: bool) -> bytes:
    """The start of the text: the peeked bytes, decompressed if gzip (zlib.error if corrupt)."""
    return zlib.decompressobj(wbits=31).decompress(prefix) if gzipped else prefix


def _has_line_end(prefix: bytes, gzipped: bool) -> bool:
    try:
        text = _peek_text(prefix, gzipped)
    except zlib.error:
        return True  # _first_line reports the corrupt data
    return b"\n" in text or b"\r" in text


def _first_line(prefix: bytes, gzipped: bool, path: str) -> str:
    try:
        data = _peek_text(prefix, gzipped)
    except zlib.error as exc:
        raise DataError(f"corrupt gzip data: {exc}", path=path) from None
    line = re.split(rb"\r\n?|\n", data, maxsplit=1)[0]  # pyarrow ends lines at \r too
    try:
        return line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"is not UTF-8 text (byte 0x{line[exc.start]:02x} in the first line)",
            path=path,
            hint="convert it with: iconv -f latin1 -t utf-8",
        ) from None


def _check_unique(names: list[str], path: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"the header names column {name!r} twice", path=path, hint="rename one of them")
        seen.add(name)


def _select_columns(names: list[str], options: ReadOptions, path: str) -> tuple[list[str], str | None]:
    """The feature columns and the id column, checked against the header."""
    # A file without the id column simply has no ids; the pipeline checks that one file has them.
    id_column = options.id_column if options.id_column in names else None
    if options.columns:
        missing = [c for c in options.columns if c not in names]
        if missing:
            raise InputUsageError(
                f"no column named {missing[0]!r} for --columns", path=path, hint=f"columns: {_listing(names)}"
            )
        return list(options.columns), id_column
    features = [n for n in names if n != id_column]
    if not features:
        raise DataError("has no feature columns", path=path)
    return features, id_column


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _explain(
    exc: BaseException,
    path: str,
    gzipped: bool,
    delimiter: str,
    names: list[str],
    features: list[str],
    header: bool,
    rows_done: int = 0,
) -> DataError:
    """Turn a pyarrow parse error into one that names the line, column and value.

    A file on disk is re-scanned to find the line; a stream (stdin, a FIFO) cannot be
    read again, so the message says how many data rows were read before the problem.
    """
    if isinstance(exc, (EOFError, zlib.error)) or "gzip" in str(exc).lower() or "compress" in str(exc).lower():
        return DataError(f"corrupt or truncated gzip data ({exc})", path=path, hint="was it fully written?")
    if is_regular_file(path):
        try:
            found = _scan_for_problem(path, gzipped, delimiter, names, features, header)
        except DataError as problem:
            return problem
        except csv.Error as scan_exc:
            return DataError(f"cannot parse: {scan_exc}", path=path)
        except (OSError, EOFError, zlib.error) as scan_exc:
            return DataError(f"corrupt or truncated gzip data ({scan_exc})", path=path)
        if found:
            return DataError(found, path=path)
        return DataError(f"cannot parse: {exc}", path=path)
    return DataError(
        f"cannot parse{f' after data row {rows_done}' if rows_done else ''}: {exc}",
        path=path,
        hint="save the data to a file and run again for the exact line",
    )


def _scan_for_problem(
    path: str, gzipped: bool, delimiter: str, names: list[str], features: list[str], header: bool
) -> str | None:
    """Find the first ragged row, non-numeric cell or undecodable byte, with its line."""
    opener = gzip.open if gzipped else open
    wanted = {names.index(f): f for f in features}
    with opener(path, "rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            try:
                line = raw_line.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"line {line_number} is not UTF-8 (byte 0x{raw_line[exc.start]:02x})",
                    path=path,
                    hint="convert it with: iconv -f latin1 -t utf-8",
                ) from None
            if line_number == 1 and header:
                continue
            if not line.strip():
                if line.strip("\r\n"):  # pyarrow skips empty lines, not lines of spaces
                    return f"line {line_number} holds only spaces or tabs (empty lines are fine: delete the spaces)"
                continue
            cells = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter))
            if len(cells) != len(names):
                return f"line {line_number} has {len(cells)} fields, expected {len(names)}"
            for index, name in wanted.items():
                if not _is_number(cells[index]):
                    return f"line {line_number}, column {name!r}: {cells[index]!r} is not a number"
    return None


def line_of_row(path: str, fmt: str, row: int, header: bool | None = None) -> int | None:
    """The 1-based line of data row ``row`` (0-based) of a CSV/TSV file on disk, or None.

    For messages about a value found bad only after parsing (a negative weight): pyarrow
    does not report lines, and skips empty ones, so the file is read again to count them.
    ``header`` is ``--header``'s value (None: guessed from the first line, as when
    opening). None for streams, which cannot be read again, and for files whose lines end
    in a lone ``\\r``, where the count here would not be pyarrow's.
    """
    if not is_regular_file(path) or row < 0:
        return None
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == GZIP_MAGIC
    delimiter = "\t" if fmt == "tsv" else ","
    data_row = -1
    with (gzip.open if gzipped else open)(path, "rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            text = raw_line.rstrip(b"\r\n")
            if b"\r" in text:
                return None
            if line_number == 1:
                first = text.decode("utf-8-sig", errors="replace")
                cells = next(csv.reader([first], delimiter=delimiter), [])
                if header if header is not None else not all(_is_number(c) for c in cells):
                    continue
            if not text:
                continue
            data_row += 1
            if data_row == row:
                return line_number
    return None
