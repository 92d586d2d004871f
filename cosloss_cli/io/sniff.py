"""What a file's first bytes say it is, so that a wrong format is named, not blamed on truncation.

A file read as Parquet that is an Arrow file used to fail with "magic bytes not found
(was it fully written?)": here the signatures of the binary formats users meet are
checked before the reader runs, and a mismatch says what the file is and how to read it.
Text formats (CSV, TSV, JSON) have no signature: they are never refused here.
"""

from __future__ import annotations

import os
import stat
import sys

from ..errors import DataError, InputUsageError
from .formats import READERS, refusal_for_signature

#: Bytes a signature is looked for in.
_PEEK = 64

#: What each signature is, in words.
_WHAT = {
    "gzip": "gzip-compressed",
    "hdf5": "an HDF5 file",
    "arrow": "an Arrow IPC file",
    "feather1": "a Feather v1 file",
    "zip": "a zip archive (NPZ)",
    "torch": "a PyTorch file (a zip of pickles)",
    "pickle": "a pickle",
    "parquet": "a Parquet file",
    "npy": "an NPY file",
    "safetensors": "a safetensors file",
}

#: The ``--input-format`` that reads each signature.
_READ_AS = {
    "hdf5": "hdf5",
    "arrow": "arrow",
    "zip": "npz",
    "parquet": "parquet",
    "npy": "npy",
    "safetensors": "safetensors",
}

#: The signatures each format's files may have (None: no signature, text).
_ACCEPTS: dict[str, frozenset[str | None]] = {
    "csv": frozenset({None, "gzip"}),
    "tsv": frozenset({None, "gzip"}),
    "jsonl": frozenset({None, "gzip"}),
    "json": frozenset({None, "gzip"}),
    "npy": frozenset({None, "npy", "gzip"}),
    "npz": frozenset({None, "zip"}),
    "parquet": frozenset({None, "parquet"}),
    "arrow": frozenset({None, "arrow"}),
    "hdf5": frozenset({None, "hdf5"}),
    "safetensors": frozenset({None, "safetensors"}),
}


def signature(data: bytes) -> str | None:
    """The format the bytes at a file's start show (a key of ``_WHAT``), or None.

    >>> signature(b"PAR1...."), signature(b"\\x1f\\x8b\\x08"), signature(b"id,x\\n1,2")
    ('parquet', 'gzip', None)
    """
    if data.startswith(b"\x1f\x8b"):
        return "gzip"
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if data.startswith(b"ARROW1") or data.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    if data.startswith(b"FEA1"):
        return "feather1"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "torch" if b"data.pkl" in data or b"/version" in data else "zip"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle"
    if data.startswith(b"PAR1"):
        return "parquet"
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if len(data) >= 10 and data[8:10] in (b'{"', b"{}") and int.from_bytes(data[:8], "little") < 1 << 28:
        return "safetensors"
    return None


def peek(path: str) -> bytes | None:
    """The first bytes of a regular file or of stdin (without consuming them); None for URLs, FIFOs or when unknown."""
    if path == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        peeker = getattr(buffer, "peek", None)
        if peeker is None:
            return None
        try:
            return bytes(peeker(_PEEK)[:_PEEK])
        except (OSError, ValueError):
            return None
    if "://" in path:
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO's bytes, once read, are gone: its reader must see them
        with open(path, "rb") as handle:
            return handle.read(_PEEK)
    except OSError:
        return None  # the reader reports it, as it always did


def check_signature(path: str, fmt: str, data: bytes | None, forced: bool) -> None:
    """Refuse a file whose bytes show another format than ``fmt``, naming what it is.

    ``forced``: the format was given (``--input-format``), a usage error; else the
    extension was wrong, an error in the data (exit 1). A pickle (or a PyTorch file)
    is refused whatever the format asked for: it is never loaded. Gzip is accepted by
    the text formats and NPY, which decompress it.
    """
    if not data:
        return
    found = signature(data)
    refusal = refusal_for_signature(found) if found else None
    if refusal is not None:
        what, advice = refusal
        raise DataError(f"is {what}", path=path, hint=advice)
    if found in _ACCEPTS[fmt]:
        return
    assert found is not None
    if found == "gzip":
        hint = "decompress it first (gunzip); cosloss decompresses CSV, TSV, JSON Lines, JSON and NPY itself"
    elif found == "feather1":
        hint = "rewrite it as Feather v2: pyarrow.feather.write_feather(pyarrow.feather.read_table('x'), 'x.arrow')"
    else:
        hint = f"read it with --input-format {_READ_AS[found]}"
    error = InputUsageError if forced else DataError
    raise error(f"is {_WHAT[found]}, not a valid {READERS[fmt].extensions[0]} file", path=path, hint=hint)
