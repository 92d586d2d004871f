"""CSV and TSV readers (gzip too), streamed block by block with pyarrow's parser.

pyarrow parses on its own threads and reports errors without line numbers, so when
it fails on a file on disk we re-scan that file with the standard ``csv`` module to
name the line, column and value: the slow path runs only to explain an error.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

import numpy as np

from ..base.shown import clip
from ..errors import DataError, InputUsageError
from .base import Block, GeneratedBlocks, ReadOptions, Source
from .list_cells import cell_width, choose_list_column, vectors_of
from .names import choose_components, split_ids, without_weight_column
from .streams import GZIP_MAGIC, PeekableReader, file_size, is_regular_file, open_binary, read_exactly
from .wide import WIDE_COLUMNS, Layout, bounded_lines, line_finder, too_wide, wide_blocks

_PEEK_BYTES = 64 * 1024


def _is_number(cell: str, decimal: str = ".") -> bool:
    """Whether a cell parses as a number (empty cells count: they are missing values)."""
    text = cell.strip()
    if not text:
        return True
    if decimal != ".":
        if "." in text:
            return False
        text = text.replace(decimal, ".")
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text


def _is_range_header(cells: list[str]) -> bool:
    """A first line ``0,1,...,K-1`` (after an empty index cell, if any): what pandas writes for a frame
    without column names. Two columns at least: a lone ``0`` is as likely a value."""
    names = [c.strip() for c in cells]
    if names and names[0] == "":
        names = names[1:]
    return len(names) >= 2 and names == [str(i) for i in range(len(names))]


def _choose_delimiter(fmt: str, first_line: str, options: ReadOptions) -> str:
    if options.delimiter:
        return "\t" if options.delimiter in ("\\t", "tab") else options.delimiter
    if fmt == "tsv":
        return "\t"
    # Spreadsheets in many locales write ';' (and decimal commas): a line 1 without ',' tells.
    return ";" if "," not in first_line and ";" in first_line else ","


def _choose_decimal(delimiter: str, sample: list[str], options: ReadOptions) -> str:
    """The decimal mark: given, or ',' when ';'-separated lines hold numbers like ``0,5``."""
    if options.decimal:
        return options.decimal
    if delimiter != "," and any(re.search(r"\d,\d", line) for line in sample):
        return ","
    return "."


def open_csv(path: str, options: ReadOptions) -> Source:
    """Open a CSV file (the ``csv`` entry of the readers' table)."""
    return open_delimited(path, "csv", options)


def open_tsv(path: str, options: ReadOptions) -> Source:
    """Open a TSV file (the ``tsv`` entry of the readers' table)."""
    return open_delimited(path, "tsv", options)


def open_delimited(path: str, fmt: str, options: ReadOptions) -> Source:
    """Open a CSV or TSV file (plain or gzip) and stream it in blocks of rows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = open_binary(path, options.storage_options)
    prefix = read_exactly(raw, _PEEK_BYTES)
    gzipped = prefix.startswith(GZIP_MAGIC)
    limit = options.max_line_bytes
    while len(prefix) % _PEEK_BYTES == 0 and not _has_line_end(prefix, gzipped, limit):
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
    lines = _first_lines(prefix, gzipped, path, limit)
    first_line = lines[0]
    if not first_line.strip():
        if path != "-":
            raw.close()
        raise DataError("is empty: no header and no rows", path=path)
    delimiter = _choose_delimiter(fmt, first_line, options)
    decimal = _choose_decimal(delimiter, lines[1:], options)
    if decimal == delimiter:
        raise InputUsageError(
            f"the decimal mark {decimal!r} is also the field separator", path=path, hint="pass --delimiter too"
        )
    notes: list[str] = []
    if fmt == "csv" and delimiter == ";" and not options.delimiter:
        decimals = " with decimal commas" if decimal == "," else ""
        notes.append(f"{path}: read as {_separator_name(delimiter)}-separated{decimals} (line 1 has no ',')")
    try:
        cells = next(csv.reader([first_line], delimiter=delimiter))
    except csv.Error as exc:
        raise DataError(f"line 1 cannot be parsed: {exc}", path=path) from None
    header = options.header
    if header is None:
        header = not all(_is_number(c, decimal) for c in cells)
        if not header and _is_range_header(cells):
            header = True
            notes.append(
                f"{path}: line 1 ({_short(first_line)}) read as column names, as pandas writes them "
                "(--no-header reads it as data)"
            )
    names = [c.strip() for c in cells] if header else [str(i) for i in range(len(cells))]
    _check_unique(names, path)
    kinds = _sample_kinds(prefix, gzipped, limit, delimiter, decimal, names, header)
    features, id_column, key_columns, column_notes = _select_columns(names, kinds, options, path, header)
    notes += column_notes
    if len(names) > WIDE_COLUMNS:
        wanted = _positions(names, features)
        layout = Layout(
            path,
            delimiter,
            decimal,
            len(names),
            np.array([index for index, _ in wanted], dtype=np.int64),
            None if id_column is None else names.index(id_column),
            None if options.weight_column is None else names.index(options.weight_column),
            header,
            limit,
            lambda number, line: _check_line(number, line, delimiter, names, wanted, decimal),
            key_positions=tuple(names.index(name) for name in key_columns),
        )
        source = _wide_source(path, fmt, raw, prefix, gzipped, layout, options, notes, id_column, names)
        return source._replace(key_columns=tuple(key_columns))
    # A column of list cells ("[0.1, 0.2]", numpy's "[0.1 0.2]") is the vectors, as in Parquet.
    list_column, width = _list_column(prefix, gzipped, limit, delimiter, header, names, features, options, path)
    if list_column is not None:
        features = [list_column]
    line_of = _line_finder(path, gzipped, delimiter, header)

    if is_regular_file(path):
        raw.close()
        stream: Any = pa.input_stream(path, compression="gzip" if gzipped else None)
    else:
        stream = pa.PythonFile(io.BufferedReader(PeekableReader(prefix, raw)), mode="r")
        if gzipped:
            stream = pa.CompressedInputStream(stream, "gzip")

    # pyarrow cannot select a column named '' (pandas' unnamed index): it gets a stand-in name.
    arrow = {name: name or "\x00index" for name in names}
    column_types = {arrow[name]: _arrow_type(pa, kinds, name, list_column) for name in features}
    booleans = list_column is None and any(kinds.get(name) == "b" for name in features)
    if id_column is not None:
        column_types[arrow[id_column]] = pa.string()
    for name in key_columns:
        column_types[arrow[name]] = pa.string()
    weight_column = options.weight_column
    if weight_column is not None:
        column_types[arrow[weight_column]] = pa.float64()  # an empty cell: NaN, refused with its line
    parsing = _Parsing(path, gzipped, delimiter, names, features, header, decimal, limit)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=list(arrow.values()),
                skip_rows=1 if header else 0,
                # pyarrow reads up to 32 blocks ahead of the consumer: 1 MB blocks bound that
                # to 32 MB per file, and parse as fast as larger ones.
                block_size=max(1 << 16, min(options.block_bytes, 1 << 20)),
                use_threads=True,
            ),
            # numpy's str of an array spans several lines inside the quotes.
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=list_column is not None),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                include_columns=list(column_types),
                quoted_strings_can_be_null=False,
                decimal_point=decimal,
            ),
        )
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
        raise _explain(exc, parsing) from None

    def blocks() -> Generator[Block, None, None]:
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
                if list_column is not None:
                    values = vectors_of(
                        batch.column(arrow[list_column]),
                        width,
                        list_column,
                        rows_done - batch.num_rows,
                        path,
                        line_of,
                    )
                else:
                    # Column-major: a copy per column; the core transposes chunks in cache.
                    selected = batch.select([arrow[f] for f in features])
                    if booleans:  # true/false columns: 1.0 and 0.0, as a Parquet file's booleans
                        selected = pa.RecordBatch.from_arrays(
                            [column.cast(pa.float64()) for column in selected.columns], names=selected.schema.names
                        )
                    values = np.asarray(selected.to_tensor(null_to_nan=True, row_major=False))
                ids = None
                if id_column is not None:
                    ids = np.asarray(batch.column(arrow[id_column]).to_pylist(), dtype=object)
                    ids[ids == ""] = None  # an empty cell is no id: it matches nothing, as a Parquet null
                weights = None
                if weight_column is not None:
                    weights = batch.column(arrow[weight_column]).to_numpy(zero_copy_only=False)
                keys = tuple(batch.column(arrow[name]) for name in key_columns) if key_columns else None
                yield Block(values, ids, weights, keys)
        except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
            raise _explain(exc, parsing, rows_done) from None
        finally:
            reader.close()

    return Source(
        path,
        fmt,
        (None, len(features) if list_column is None else width),
        GeneratedBlocks(blocks()),
        columns=features,
        has_ids=id_column is not None,
        has_weights=weight_column is not None,
        size_bytes=file_size(path),
        named=header and list_column is None,
        id_column=id_column,
        notes=tuple(notes),
        line_of=line_of,
        file_columns=tuple(names),
        key_columns=tuple(key_columns),
    )


def _arrow_type(pa: Any, kinds: dict[str, str], name: str, list_column: str | None) -> Any:
    """How pyarrow converts a feature column: list cells as text, true/false as booleans, else float64."""
    if list_column is not None:
        return pa.string()
    return pa.bool_() if kinds.get(name) == "b" else pa.float64()


def _wide_source(
    path: str,
    fmt: str,
    raw: Any,
    prefix: bytes,
    gzipped: bool,
    layout: Layout,
    options: ReadOptions,
    notes: list[str],
    id_column: str | None,
    names: list[str],
) -> Source:
    """A file of more than :data:`WIDE_COLUMNS` columns, read by :mod:`.wide` (see there why)."""
    text = _peek_text(prefix, gzipped, layout.max_line_bytes)
    end = re.search(rb"\r\n?|\n", text)
    if end is not None and end.group() == b"\r" and end.end() < len(text):
        raise DataError(
            "has lines ending in a lone carriage return, which wide files cannot have",
            path=path,
            hint="convert them with: tr '\\r' '\\n'",
        )

    def reopen() -> Any:
        return gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115

    if is_regular_file(path):
        raw.close()
        handle: Any = reopen()
        line_of = line_finder(reopen, layout)
    else:
        handle = io.BufferedReader(PeekableReader(prefix, raw))
        if gzipped:
            handle = gzip.GzipFile(fileobj=handle, mode="rb")

        def line_of(row: int) -> int:
            return row + 1 + int(layout.header)

    features = [names[int(i)] for i in layout.features]

    def blocks() -> Generator[Block, None, None]:
        try:
            yield from wide_blocks(handle, layout, options.block_bytes)
        except (OSError, EOFError, zlib.error) as exc:
            problem = f"corrupt or truncated gzip data ({exc})"
            raise DataError(problem, path=path, hint="was it fully written?") from None

    return Source(
        path,
        fmt,
        (None, len(features)),
        GeneratedBlocks(blocks()),
        columns=features,
        has_ids=id_column is not None,
        has_weights=layout.weight_position is not None,
        size_bytes=file_size(path),
        named=layout.header,
        id_column=id_column,
        notes=tuple(notes),
        line_of=line_of,
        file_columns=tuple(names),
    )


def _list_column(
    prefix: bytes,
    gzipped: bool,
    limit: int,
    delimiter: str,
    header: bool,
    names: list[str],
    features: list[str],
    options: ReadOptions,
    path: str,
) -> tuple[str | None, int]:
    """The column of list cells that holds the vectors, and their length; (None, 0) if none.

    Told from the first data row of the peeked bytes, parsed with the ``csv`` module (a
    quoted cell may span lines).
    """
    data = _peek_text(prefix, gzipped, limit)
    if not header or b"[" not in data:
        return None, 0
    text = data.decode("utf-8-sig", "replace")
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        next(reader)
        start = reader.line_num + 1
        record = next(reader)
    except (csv.Error, StopIteration):
        return None, 0
    row = dict(zip(names, record, strict=False))
    column = choose_list_column(features, row, options.columns, path)
    if column is None:
        return None, 0
    width = cell_width(row[column], column, path, start)
    if width == 0:
        raise DataError(f"line {start}, column {column!r} holds an empty list: nothing to compare", path=path)
    return column, width


def _cell_text(cell: str, limit: int = 60) -> str:
    """A cell quoted in a message: at most ``limit`` characters of it, and its length when cut."""
    return clip(cell, limit)


def _short(line: str, limit: int = 40) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _line_finder(path: str, gzipped: bool, delimiter: str, header: bool) -> Callable[[int], int]:
    """A function from a 0-based data row to its 1-based line in the file (the header counts).

    Used only for messages: a file on disk is re-read up to that row (pyarrow skips empty
    lines and quoted fields may span lines, so counting rows is not enough); a stream
    cannot be re-read and is assumed to have neither.
    """

    def line_of(row: int) -> int:
        if not is_regular_file(path):
            return row + 1 + int(header)
        opener: Any = gzip.open if gzipped else open
        with opener(path, "rt", encoding="utf-8-sig", newline="", errors="replace") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            seen = -1 if header else 0
            start = reader.line_num
            for record in reader:
                if record:  # pyarrow skips empty lines
                    if seen == row:
                        return start + 1
                    seen += 1
                start = reader.line_num
        return row + 1 + int(header)

    return line_of


def _peek_text(prefix: bytes, gzipped: bool, limit: int) -> bytes:
    """The start of the text: the peeked bytes, decompressed if gzip (zlib.error if corrupt).

    At most a little over ``limit`` bytes are decompressed: a gzip bomb is not inflated here.
    """
    return zlib.decompressobj(wbits=31).decompress(prefix, limit + 2) if gzipped else prefix


def _has_line_end(prefix: bytes, gzipped: bool, limit: int) -> bool:
    """Whether line 1 ends in the peeked bytes, or is known to be too long to read."""
    try:
        text = _peek_text(prefix, gzipped, limit)
    except zlib.error:
        return True  # _first_line reports the corrupt data
    return b"\n" in text or b"\r" in text or len(text) > limit


def _first_lines(prefix: bytes, gzipped: bool, path: str, limit: int) -> list[str]:
    """Line 1 and the other complete lines of the peeked bytes (a sample for detection)."""
    try:
        data = _peek_text(prefix, gzipped, limit)
    except zlib.error as exc:
        raise DataError(f"corrupt gzip data: {exc}", path=path) from None
    lines = re.split(rb"\r\n?|\n", data, maxsplit=8)[:8]  # pyarrow ends lines at \r too
    if len(lines[0]) > limit:
        raise too_wide(path, 1, None, limit)
    try:
        first = lines[0].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"is not UTF-8 text (byte 0x{lines[0][exc.start]:02x} in the first line)",
            path=path,
            hint="convert it with: iconv -f latin1 -t utf-8",
        ) from None
    return [first] + [line.decode("utf-8", "replace") for line in lines[1:-1]]


def _check_unique(names: list[str], path: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"the header names column {name!r} twice", path=path, hint="rename one of them")
        seen.add(name)


class _Columns(NamedTuple):
    features: list[str]
    id_column: str | None
    key_columns: list[str]
    notes: tuple[str, ...]


def _select_columns(names: list[str], kinds: dict[str, str], options: ReadOptions, path: str, header: bool) -> _Columns:
    """The feature columns, the id column and the key columns, checked against the header.

    Ids by name (:func:`~.names.split_ids`), then components by content
    (:func:`~.names.choose_components`, on the kinds of a sample of the rows).
    """
    if options.columns:
        missing = [c for c in options.columns if c not in names]
        if missing:
            raise InputUsageError(
                f"no column named {missing[0]!r} for --columns", path=path, hint=f"columns: {_listing(names)}"
            )
    usable = without_weight_column(names, options.weight_column, path, options.partition_keys)
    split = split_ids(
        usable,
        id_column=options.id_column,
        columns=options.columns,
        detect=options.detect_ids and header,
        path=path,
    )
    data = [n for n in usable if n != split.id_column and n not in split.others]
    chosen = choose_components(
        data,
        kinds if header else {},
        columns=options.columns,
        exclude=options.exclude_columns,
        path=path,
    )
    if not chosen.features:
        raise DataError("has no feature columns", path=path)
    return _Columns(chosen.features, split.id_column, [*split.others, *chosen.left_out], split.notes + chosen.notes)


#: Up to this many rows of the peeked bytes tell what each column holds.
_SAMPLE_ROWS = 200

_INTEGER = re.compile(r"[+-]?\d+")


def _sample_kinds(
    prefix: bytes, gzipped: bool, limit: int, delimiter: str, decimal: str, names: list[str], header: bool
) -> dict[str, str]:
    """Each column's kind (``f``, ``i``, ``b`` or ``O`` for text) from the rows in the peeked bytes.

    A sample, not the file: a column of numbers that holds text further down is still
    refused by the parser, with its line. Empty cells say nothing; a column with only
    empty cells in the sample counts as floats.
    """
    try:
        text = _peek_text(prefix, gzipped, limit).decode("utf-8-sig", "replace")
    except zlib.error:
        return {}
    complete = text[: max(text.rfind("\n"), text.rfind("\r")) + 1] if len(prefix) % _PEEK_BYTES == 0 else text
    rows = csv.reader(io.StringIO(complete, newline=""), delimiter=delimiter)
    if header:
        next(rows, None)
    seen: list[set[str]] = [set() for _ in names]
    for count, row in enumerate(rows):
        if count >= _SAMPLE_ROWS:
            break
        for index, cell in enumerate(row[: len(names)]):
            cell = cell.strip()
            if cell:
                seen[index].add(_cell_kind(cell, decimal))
    for found in seen:
        found.discard("")
    kinds = {}
    for name, found in zip(names, seen, strict=True):
        if "f" in found:
            kinds[name] = "f"
        elif "i" in found:
            kinds[name] = "i"
        elif found == {"b"}:
            kinds[name] = "b"
        else:
            kinds[name] = "O" if "O" in found else "f"
    return kinds


def _cell_kind(cell: str, decimal: str) -> str:
    """``i``, ``f``, ``b``, ``O`` (text), or ``""`` for NaN and infinities, which say nothing of the column.

    A column holding numbers is numbers even if some cells are text (a typo is then
    refused with its line by the parser, not a reason to drop the column); only a
    column of text alone is text.
    """
    if _INTEGER.fullmatch(cell):
        return "i"
    if cell.startswith("["):  # a list cell: a vector of its own (see _list_column), numbers then
        return "f"
    if _is_number(cell, decimal):
        return "f" if math.isfinite(float(cell.replace(decimal, "."))) else ""
    return "b" if cell.lower() in ("true", "false") else "O"


def _listing(names: list[str], limit: int = 12) -> str:
    return clip(names, quote=False, most=limit)


class _Parsing(NamedTuple):
    """How a CSV/TSV file is parsed: what a parse error is explained with, the file read again."""

    path: str
    gzipped: bool
    delimiter: str
    names: list[str]
    features: list[str]
    header: bool
    decimal: str
    limit: int


def _explain(exc: BaseException, parsing: _Parsing, rows_done: int = 0) -> DataError:
    """Turn a pyarrow parse error into one that names the line, column and value.

    A file on disk is re-scanned to find the line; a stream (stdin, a FIFO) cannot be
    read again, so the message says how many data rows were read before the problem.
    """
    path, header = parsing.path, parsing.header
    if isinstance(exc, (EOFError, zlib.error)) or "gzip" in str(exc).lower() or "compress" in str(exc).lower():
        return DataError(f"corrupt or truncated gzip data ({exc})", path=path, hint="was it fully written?")
    if is_regular_file(path):
        try:
            found = _scan_for_problem(parsing)
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
        f"cannot parse{f' after line {rows_done + int(header)}' if rows_done else ''}: {exc}",
        path=path,
        hint="save the data to a file and run again for the exact line",
    )


def _scan_for_problem(parsing: _Parsing) -> str | None:
    """Find the first ragged row, non-numeric cell or undecodable byte, with its line."""
    path, gzipped, delimiter, names, features, header, decimal, limit = parsing
    opener = gzip.open if gzipped else open
    wanted = _positions(names, features)
    with opener(path, "rb") as handle:
        for line_number, raw_line in enumerate(bounded_lines(handle, limit, path), start=1):
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
            found = _check_line(line_number, line, delimiter, names, wanted, decimal)
            if found:
                return found
    return None


def _positions(names: list[str], features: list[str]) -> list[tuple[int, str]]:
    """Each feature's position among the file's columns, and its name (names are unique)."""
    position = {name: index for index, name in enumerate(names)}
    return [(position[name], name) for name in features]


def _check_line(
    line_number: int, line: str, delimiter: str, names: list[str], wanted: list[tuple[int, str]], decimal: str
) -> str | None:
    """What is wrong with one line of data (its fields, a cell not a number), or None."""
    if not line.strip():
        if line.strip("\r\n"):  # pyarrow skips empty lines, not lines of spaces
            return f"line {line_number} holds only spaces or tabs (empty lines are fine: delete the spaces)"
        return None
    line = line.rstrip("\r\n")
    # Without quotes the fields are counted before the line is split into thousands of strings.
    fields = line.count(delimiter) + 1 if '"' not in line else None
    if fields is None or fields == len(names):
        cells = next(csv.reader([line], delimiter=delimiter))
        fields = len(cells)
    if fields != len(names):
        return (
            f"line {line_number} has {fields} fields, expected {len(names)} "
            f"(separator {_separator_name(delimiter)}{_other_separator(line, delimiter)})"
        )
    for index, name in wanted:
        if not _is_number(cells[index], decimal):
            return f"line {line_number}, column {clip(name)}: {_cell_text(cells[index])} is not a number"
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


def _separator_name(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


def _other_separator(line: str, delimiter: str) -> str:
    """A hint when the line looks separated by something else (a ';' file read with ',')."""
    for other in (";", "\t", ",", "|"):
        if other != delimiter and other in line:
            return f"; the line holds {_separator_name(other)}: try --delimiter {other!r}"
    return ""
