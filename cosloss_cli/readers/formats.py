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

#: The extensions that end in a compression suffix, whose suffix before it counts too.
_COMPRESSED = ".gz"


def format_extension(path: str) -> str | None:
    """The recognised data extension of ``path`` (``.csv.gz`` counts whole), if any.

    From the last suffix (and the one before ``.gz``) rather than by trying every
    extension: ``batch`` asks for the extension of every file it lists.
    """
    lower = path.lower()
    dot = lower.rfind(".")
    if dot < 0:
        return None
    if lower.endswith(_COMPRESSED):  # .csv.gz: from the dot before
        dot = lower.rfind(".", 0, dot)
        if dot < 0:
            return None
    ext = lower[dot:]
    return ext if ext in _EXTENSIONS else None


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
