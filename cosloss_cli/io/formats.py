"""Which reader a path needs: by extension, or by ``--input-format``.

:data:`READERS` is the one table of the formats cosloss reads: each names the module
and the function that opens one path (``(path, ReadOptions) -> Source``), imported only
when a file of that format is opened. A dataset layer over many files calls the same
function per file (:func:`reader`). Formats cosloss recognises but never reads (pickles,
PyTorch checkpoints, spreadsheets) are in :data:`_REFUSED`, with what to convert to.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..errors import InputUsageError
from .storage import url_path

if TYPE_CHECKING:
    from .base import ReadOptions, Source


class Reader(NamedTuple):
    """One readable format: where its opener lives and what the format offers."""

    #: Module in ``cosloss_cli.io`` holding the opener.
    module: str
    #: ``(path, options) -> Source``.
    function: str
    #: The extensions that select it (lower case; ``.gz`` ones whole).
    extensions: tuple[str, ...]
    #: Whether the format has named columns (``--columns``, ``--weight-column``, ids).
    columns: bool
    #: Whether ``--key`` (``--labels-key``, ``--predictions-key``) chooses an array in it.
    keyed: bool
    #: How users write it, for the error listing what cosloss reads.
    label: str


#: Every format cosloss reads, by its ``--input-format`` name.
READERS: dict[str, Reader] = {
    "csv": Reader("delimited", "open_csv", (".csv", ".csv.gz"), True, False, "CSV"),
    "tsv": Reader("delimited", "open_tsv", (".tsv", ".tsv.gz", ".tab"), True, False, "TSV"),
    "npy": Reader("npy", "open_npy", (".npy", ".npy.gz"), False, False, "NPY"),
    "npz": Reader("npy", "open_npz", (".npz",), False, True, "NPZ"),
    "parquet": Reader("parquet", "open_parquet", (".parquet", ".pq"), True, False, "Parquet"),
    "jsonl": Reader("jsonl", "open_jsonl", (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"), True, False, "JSON Lines"),
    "json": Reader("jsonl", "open_json_array", (".json", ".json.gz"), True, False, "JSON array of records"),
    "arrow": Reader("arrow_ipc", "open_arrow", (".arrow", ".feather", ".ipc", ".arrows"), True, False, "Arrow IPC"),
    "hdf5": Reader("hdf5", "open_hdf5", (".h5", ".hdf5", ".he5"), False, True, "HDF5"),
    "safetensors": Reader("safetensors", "open_safetensors", (".safetensors",), False, True, "safetensors"),
}

#: Format names accepted by ``--input-format``.
FORMATS = tuple(READERS)

_EXTENSIONS = {ext: name for name, spec in READERS.items() for ext in spec.extensions}

#: The one-line examples the refusals below give.
_TO_SAFETENSORS = "safetensors.numpy.save_file({'embeddings': array}, 'x.safetensors')"
_TO_NPY = "numpy.save('x.npy', array)"
_TO_PARQUET = "pandas.read_excel('x.xlsx').to_parquet('x.parquet')"

#: Formats recognised by extension but never read: (what it is, what to do instead).
_REFUSED = {
    ".pt": ("a PyTorch file (a pickle), which cosloss never loads", f"save the tensor with {_TO_SAFETENSORS}"),
    ".pth": ("a PyTorch file (a pickle), which cosloss never loads", f"save the tensor with {_TO_SAFETENSORS}"),
    ".bin": ("a PyTorch .bin file (a pickle), which cosloss never loads", f"save the tensor with {_TO_SAFETENSORS}"),
    ".ckpt": ("a checkpoint (a pickle), which cosloss never loads", f"save the tensor with {_TO_SAFETENSORS}"),
    ".pkl": ("a pickle, which cosloss never loads (it can run any code)", f"save the array with {_TO_NPY}"),
    ".pickle": ("a pickle, which cosloss never loads (it can run any code)", f"save the array with {_TO_NPY}"),
    ".joblib": ("a joblib pickle, which cosloss never loads", f"save the array with {_TO_NPY}"),
    ".xlsx": ("a spreadsheet, which cosloss does not read", f"convert it: {_TO_PARQUET}"),
    ".xls": ("a spreadsheet, which cosloss does not read", f"convert it: {_TO_PARQUET}"),
    ".orc": (
        "an ORC file, which cosloss does not read",
        "convert it: pyarrow.parquet.write_table(pyarrow.orc.read_table('x.orc'), 'x.parquet')",
    ),
    ".avro": ("an Avro file, which cosloss does not read", "convert it to Parquet, e.g. with polars or duckdb"),
    ".mat": (
        "a MATLAB file, which cosloss does not read",
        "convert it: numpy.save('x.npy', scipy.io.loadmat('x.mat')['name'])",
    ),
    ".tfrecord": ("a TFRecord file, which cosloss does not read", f"save the tensor's .numpy() with {_TO_NPY}"),
}

#: The extensions that end in a compression suffix, whose suffix before it counts too.
_COMPRESSED = ".gz"


def reader(fmt: str) -> Callable[[str, ReadOptions], Source]:
    """The function that opens one path of format ``fmt`` (a :data:`READERS` name)."""
    spec = READERS[fmt]
    module = importlib.import_module(f"{__package__}.{spec.module}")
    opener: Callable[[str, ReadOptions], Source] = getattr(module, spec.function)
    return opener


def format_extension(path: str) -> str | None:
    """The recognised data extension of ``path`` (``.csv.gz`` counts whole), if any.

    From the last suffix (and the one before ``.gz``) rather than by trying every
    extension: ``batch`` asks for the extension of every file it lists.
    """
    ext = _extension(path)
    return ext if ext in _EXTENSIONS else None


def _extension(path: str) -> str | None:
    """The last suffix of ``path`` in lower case (with the one before ``.gz``)."""
    lower = path.lower()
    dot = lower.rfind(".")
    if dot < 0 or "/" in lower[dot:]:
        return None
    if lower.endswith(_COMPRESSED):  # .csv.gz: from the dot before
        before = lower.rfind(".", 0, dot)
        if before >= 0 and "/" not in lower[before:]:
            return lower[before:]
    return lower[dot:]


def strip_format_extension(path: str) -> str:
    """``run1/a.csv.gz`` -> ``run1/a``; paths without a known extension are unchanged."""
    ext = format_extension(path)
    return path[: -len(ext)] if ext else path


def readable_formats() -> str:
    """What cosloss reads, for an error: ``CSV (.csv, ...), ...``."""
    return "; ".join(f"{spec.label} ({', '.join(spec.extensions)})" for spec in READERS.values())


def detect_format(path: str, override: str | None) -> str:
    """The format to read ``path`` with; a usage error names the options when unknown."""
    if override:
        fmt = override.lower()
        if fmt not in FORMATS:
            raise InputUsageError(f"unknown input format {override!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        raise InputUsageError("reading from stdin needs --input-format", hint=f"one of {', '.join(FORMATS)}")
    named = _named_path(path)
    ext = format_extension(named)
    if ext is None:
        refused(path, _extension(named))
        raise InputUsageError(
            "cannot tell the format from the file name",
            path=path,
            hint=f"cosloss reads {readable_formats()}; or pass --input-format with one of {', '.join(FORMATS)}",
        )
    return _EXTENSIONS[ext]


def refused(path: str, ext: str | None) -> None:
    """Raise the refusal of a recognised format cosloss never reads (a pickle...); else nothing."""
    if ext is None:
        return
    if ext.endswith(_COMPRESSED) and ext not in _REFUSED:
        ext = ext[: -len(_COMPRESSED)]
    found = _REFUSED.get(ext) or _REFUSED.get(ext[ext.rfind(".") :])
    if found is not None:
        what, advice = found
        raise InputUsageError(f"is {what}", path=path, hint=advice)


def refusal_for_signature(signature: str) -> tuple[str, str] | None:
    """(what, advice) for a file whose bytes show a format cosloss never reads (a pickle)."""
    if signature == "pickle":
        return _REFUSED[".pkl"]
    if signature == "torch":
        return _REFUSED[".pt"]
    return None


def _named_path(path: str) -> str:
    """The part of ``path`` that ends in the file name: an https URL without its query string."""
    if "://" not in path:
        return path
    return url_path(path)


def short(text: str, limit: int = 100) -> str:
    """``text`` cut to about ``limit`` characters: an error line never quotes a whole cell or record."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listing(names: list[str], limit: int = 100) -> str:
    """Names for an error, cut to about ``limit`` characters."""
    text = ", ".join(names)
    return text if len(text) <= limit else text[: limit - 3].rsplit(", ", 1)[0] + ", ..."


def is_glob(path: str) -> bool:
    """Whether ``path`` holds a wildcard (``*``, ``?``, ``[``): a glob of files when no file has that name."""
    return "*" in path or "?" in path or "[" in path


@functools.lru_cache(maxsize=1 << 16)  # a batch sorts its names several times
def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key of a name with runs of digits compared as numbers: ``m/5`` before ``m/10``.

    >>> sorted(["m/10", "m/5", "m/b", "m/a2"], key=natural_key)
    ['m/5', 'm/10', 'm/a2', 'm/b']
    """
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name)))
