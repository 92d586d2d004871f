"""JSON Lines and JSON-array readers: pyarrow's JSON parser, streamed in blocks.

A record's list-valued field is the vector column (as a Parquet list column), scalar
numbers are columns, id-like names are row ids: the rules of
:mod:`~cosloss_cli.io.arrow_batches`. pyarrow infers types from the first block
only, so ``[1, 2]`` there and ``[0.5, 1]`` later would fail: the first record is
parsed here and its vectors and numbers are declared float64 up front.

A top-level JSON array (``json.dump(records)``, ``df.to_json(orient="records")``) is
turned into JSON Lines as it is read, one record at a time, so that memory stays at a
block of records whatever the file's size.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import DataError
from .arrow_batches import batches_source
from .base import ReadOptions, Source
from .formats import short
from .names import looks_like_id
from .streams import GZIP_MAGIC, PeekableReader, check_readable, file_size, is_regular_file, open_binary, read_exactly

#: Bytes of JSON pyarrow parses at a time (a record batch). pyarrow's streaming reader
#: holds several blocks ahead: 8 MB blocks peaked at 3x the memory of 2 MB ones (a 560 MB
#: file: 625 MB against 214 MB), for no time saved.
_BLOCK_BYTES = 2 << 20

#: The longest first record read to learn the fields (a 100,000-dimension float vector is ~2 MB).
_MAX_FIRST_RECORD = 64 << 20

#: Bytes read at a time when looking for the first record or converting an array.
_CHUNK = 1 << 20


def open_jsonl(path: str, options: ReadOptions) -> Source:
    """Open a JSON Lines file (``.jsonl``, ``.ndjson``, gzip too): one JSON object a line."""
    stream, gzipped = _decompressed(path, options)
    return _json_source(path, "jsonl", stream, gzipped, options, records=False)


def open_json_array(path: str, options: ReadOptions) -> Source:
    """Open a JSON file holding one array of records (or of vectors), converted as it is read."""
    stream, gzipped = _decompressed(path, options)
    lines: Any = _ArrayAsLines(stream, path)
    return _json_source(path, "json", lines, gzipped, options, records=True)


def _json_source(
    path: str, fmt: str, stream: BinaryIO, gzipped: bool, options: ReadOptions, *, records: bool
) -> Source:
    import pyarrow as pa
    import pyarrow.json as pajson

    try:
        head, read = _first_record(stream, path)
        first = json.loads(head) if head.strip() else None
    except DataError:
        stream.close()
        raise
    except (ValueError, OSError, EOFError) as exc:
        stream.close()
        first_one = "record 1" if records else "line 1"
        raise DataError(f"{first_one} is not JSON: {short(str(exc))}", path=path) from None
    if not isinstance(first, dict):
        stream.close()
        if first is None:
            raise DataError("is empty: no records", path=path)
        what = "record 1" if records else "line 1"
        raise DataError(
            f"{what} is {type(first).__name__}, not a record (a JSON object)",
            path=path,
            hint='write one object per line, e.g. {"id": "doc-1", "embedding": [0.1, 0.2]}',
        )
    replay = pa.PythonFile(io.BufferedReader(PeekableReader(read, stream), _CHUNK), mode="r")
    schema = _declared_schema(first, options)
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    where = _where(records)

    def explain(exc: BaseException, done: int) -> DataError:
        return DataError(
            f"cannot parse the JSON after {where(done - 1) if done else 'the start'}: {short(str(exc))}",
            path=path,
            hint="one JSON object per line",
        )

    try:
        reader = pajson.open_json(replay, read_options=pajson.ReadOptions(block_size=_BLOCK_BYTES), parse_options=parse)
    except (pa.ArrowException, OSError, ValueError) as exc:
        replay.close()
        stream.close()
        raise explain(exc, 0) from None

    def close() -> None:
        replay.close()
        stream.close()

    line_of = None if records or gzipped or not is_regular_file(path) else _line_finder(path)
    return batches_source(
        path,
        fmt,
        reader.schema,
        iter(reader),
        None,
        options,
        size_bytes=file_size(path),
        where=(lambda row: f"line {line_of(row)}") if line_of else where,
        line_of=line_of,
        vector_required=True,
        close=close,
        explain=explain,
    )


def _where(records: bool) -> Callable[[int], str]:
    """How a 0-based row is named: its record of the array, or its line (as if no blank lines)."""
    if records:
        return lambda row: f"record {row + 1}"
    return lambda row: f"line {row + 1}"


def _declared_schema(first: dict[str, Any], options: ReadOptions) -> Any:
    """The float64 types of the first record's vectors and numbers, declared before parsing.

    Ids keep their inferred type (an integer id stays an integer), as does anything not
    a number or a list of numbers.
    """
    import pyarrow as pa

    ids = {options.id_column} if options.id_column else set()
    fields = []
    for name, value in first.items():
        if name in ids or (options.detect_ids and looks_like_id(name)):
            continue
        if isinstance(value, list) and all(_is_number(v) for v in value[:1000]):
            fields.append(pa.field(name, pa.list_(pa.float64())))
        elif _is_number(value):
            fields.append(pa.field(name, pa.float64()))
    return pa.schema(fields)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _decompressed(path: str, options: ReadOptions) -> tuple[BinaryIO, bool]:
    """The file's bytes as a stream, gunzipped when they start with gzip's magic."""
    check_readable(path, options.storage_options)
    raw = open_binary(path, options.storage_options)
    magic = read_exactly(raw, 2)
    gzipped = magic == GZIP_MAGIC
    stream: BinaryIO = io.BufferedReader(PeekableReader(magic, raw), _CHUNK)
    if gzipped:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    elif path.lower().endswith(".gz"):
        stream.close()
        raise DataError("the name ends in .gz but the file is not gzip-compressed", path=path, hint="rename it")
    return stream, gzipped


def _first_record(stream: BinaryIO, path: str) -> tuple[bytes, bytes]:
    """(the first non-blank line, every byte read from the stream to find it)."""
    data = b""
    while True:
        end = data.find(b"\n")
        while end >= 0 and not data[:end].strip():  # blank leading lines
            end = data.find(b"\n", end + 1)
        if end >= 0:
            return data[: end + 1], data
        if len(data) > _MAX_FIRST_RECORD:
            raise DataError(f"the first record is longer than {_MAX_FIRST_RECORD >> 20} MB", path=path)
        chunk = stream.read(_CHUNK)
        if not chunk:
            return data, data
        data += chunk


def _line_finder(path: str) -> Callable[[int], int]:
    """0-based record -> the file's 1-based line, skipping blank lines (read only for an error)."""

    def line_of(row: int) -> int:
        seen = -1
        try:
            with open(path, "rb") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        seen += 1
                        if seen == row:
                            return number
        except OSError:
            pass
        return row + 1

    return line_of


class _ArrayAsLines(io.RawIOBase):
    """A stream of a top-level JSON array, read as JSON Lines: one element a line.

    Each element is found with the standard library's scanner (``raw_decode``) and
    passed on as its own text, its newlines (whitespace outside strings, where JSON
    cannot hold a raw one) made spaces. An element that is a list of numbers becomes
    ``{"vector": [...]}``. Only one chunk and the element being read are in memory.
    """

    def __init__(self, source: BinaryIO, path: str):
        super().__init__()
        self._source = source
        self._path = path
        self._decoder = json.JSONDecoder()
        self._text = ""
        self._pos = 0
        self._out = b""
        self._started = False
        self._done = False
        self._count = 0
        import codecs

        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._source.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while len(self._out) < len(view) and not self._done:
            self._out += self._next_lines(len(view))
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _more(self) -> bool:
        chunk = self._source.read(_CHUNK)
        self._text = self._text[self._pos :] + self._utf8.decode(chunk, final=not chunk)
        self._pos = 0
        return bool(chunk)

    def _skip_space(self) -> str:
        """The next non-space character (reading on as needed); '' at the end."""
        while True:
            while self._pos < len(self._text) and self._text[self._pos] in " \t\r\n":
                self._pos += 1
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._more():
                return ""

    def _next_lines(self, wanted: int) -> bytes:
        """Some elements as lines of JSON, about ``wanted`` bytes; sets ``_done`` at the array's end."""
        if not self._started:
            if self._skip_space() != "[":
                self._done = True
                raise DataError(
                    "is not a JSON array of records (it does not start with '[')",
                    path=self._path,
                    hint="JSON Lines files take the extension .jsonl",
                )
            self._pos += 1
            self._started = True
        lines: list[str] = []
        size = 0
        while size < wanted:
            char = self._skip_space()
            if char == "]":
                self._done = True
                break
            if self._count and char == ",":
                self._pos += 1
                char = self._skip_space()
            elif self._count:
                raise self._bad(f"expected ',' or ']' after record {self._count}")
            if char == "":
                raise self._bad("the array ends early")
            while True:
                try:
                    value, end = self._decoder.raw_decode(self._text, self._pos)
                    break
                except ValueError as exc:  # cut off at the chunk's end, or bad
                    if not self._more():
                        raise self._bad(f"record {self._count + 1} is not valid JSON: {short(str(exc))}") from None
            text = self._text[self._pos : end].replace("\n", " ").replace("\r", " ")
            self._pos = end
            self._count += 1
            if isinstance(value, list):
                text = '{"vector": ' + text + "}"
            elif not isinstance(value, dict):
                raise self._bad(f"record {self._count} is {type(value).__name__}, not a record (a JSON object)")
            lines.append(text)
            size += len(text) + 1
        return "".join(line + "\n" for line in lines).encode()

    def _bad(self, message: str) -> DataError:
        self._done = True
        return DataError(message, path=self._path, hint="write a JSON array of objects, or JSON Lines")
