"""Which reader a path needs: by extension, or by ``--input-format``."""

from __future__ import annotations

from ..errors import InputUsageError

#: Format names accepted by ``--input-format``.
FORMATS = ("csv", "tsv", "npy", "npz", "parquet")

_EXTENSIONS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".tab": "tsv",
    ".npy": "npy",
    ".npz": "npz",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: The extensions, longest first (``.csv.gz`` before ``.gz``-less ones): sorted once, as
#: ``batch`` asks for the extension of every file it lists (8,000 calls for 2,000 pairs).
_BY_LENGTH = sorted(_EXTENSIONS, key=len, reverse=True)


def format_extension(path: str) -> str | None:
    """The recognised data extension of ``path`` (``.csv.gz`` counts whole), if any."""
    lower = path.lower()
    for ext in _BY_LENGTH:
        if lower.endswith(ext):
            return ext
    return None


def strip_format_extension(path: str) -> str:
    """``run1/a.csv.gz`` -> ``run1/a``; paths without a known extension are unchanged."""
    ext = format_extension(path)
    return path[: -len(ext)] if ext else path


def detect_format(path: str, override: str | None) -> str:
    """The format to read ``path`` with; a usage error names the options when unknown."""
    if override:
        fmt = override.lower()
        if fmt not in FORMATS:
            raise InputUsageError(f"unknown input format {override!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        raise InputUsageError("reading from stdin needs --input-format", hint=f"one of {', '.join(FORMATS)}")
    ext = format_extension(_named_path(path))
    if ext is None:
        raise InputUsageError(
            "cannot tell the format from the file name",
            path=path,
            hint=f"pass --input-format with one of {', '.join(FORMATS)}",
        )
    return _EXTENSIONS[ext]


def _named_path(path: str) -> str:
    """The part of ``path`` that ends in the file name: an https URL without its query string."""
    if "://" not in path:
        return path
    from ..storage import url_path

    return url_path(path)
