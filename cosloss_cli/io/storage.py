"""Object storage (``s3://``, ``gs://``, ``az://``, ``https://``, ``memory://``) through fsspec.

Local paths never import fsspec: :func:`is_url` is a regular expression, and fsspec
(with its backend, s3fs, gcsfs or adlfs) is imported only when a URL is opened. Every
failure becomes a :mod:`cosloss_cli.errors` exception that names the URL with any
secret removed (:func:`cosloss_cli.base.shown.shown_path`, :func:`redact`), so no
access key, token or password ever reaches a message, a log or ``--debug`` output.

Credentials and endpoints come from where the backend looks for them (the ``AWS_*``
variables and ``~/.aws`` files for S3, and so on), plus ``--storage-option KEY=VALUE``.
botocore (since 1.31.57, which the ``s3`` extra requires) reads ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_S3`` itself, so S3-compatible stores need nothing from us.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

from ..base.shown import scrub, shown_path
from ..errors import CoslossError, DataError, InputUsageError, OutputError

#: ``scheme://``: two characters at least, so ``C://x`` (a drive letter) stays a path.
_URL = r"^([A-Za-z][A-Za-z0-9+.-]+)://"

#: Read-ahead of sequential reads (NPY rows, CSV text): each read fetches what it needs
#: plus this much, so small reads (a header, pyarrow's CSV blocks) cost few requests and
#: a header costs no more than this.
READ_BLOCK_BYTES = 1024 * 1024

#: URL scheme -> (module the backend needs, the cosloss extra that installs it).
BACKENDS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
    "adl": ("adlfs", "azure"),
    "http": ("aiohttp", ""),
    "https": ("aiohttp", ""),
}

#: Storage option names whose values are secrets (compared in lower case, as substrings).
_SECRET_NAMES = ("key", "secret", "token", "password", "credential", "sas", "connection_string", "signature")

#: Environment variables whose values are secrets.
_SECRET_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)


def is_url(path: str) -> bool:
    """Whether ``path`` is ``scheme://...`` (an fsspec URL) rather than a local path or ``-``."""
    return "://" in path and re.match(_URL, path) is not None


def scheme(url: str) -> str:
    """The URL's scheme in lower case (``s3`` of ``s3://bucket/key``)."""
    found = re.match(_URL, url)
    return found.group(1).lower() if found else ""


def parse_storage_options(items: Sequence[str]) -> dict[str, Any]:
    """``["anon=true", "block_size=1024"]`` -> ``{"anon": True, "block_size": 1024}``.

    What ``--storage-option KEY=VALUE`` (repeatable) gives fsspec: ``true``/``false``
    become booleans and integers become ints, as a backend expects them; anything
    else stays a string. A later item overrides an earlier one with the same key.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputUsageError(
                f"--storage-option needs KEY=VALUE, got {_redact_option_text(item)!r}",
                hint="for example --storage-option anon=true",
            )
        options[key] = _option_value(value)
    return options


def _option_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


def _redact_option_text(item: str) -> str:
    """A malformed ``--storage-option`` as an error may show it: never a secret's value."""
    return "***" if _is_secret_name(item) else item


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_NAMES)


def secrets_in(storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The secret strings a message must never contain: from the options and the environment."""
    found = list(_secret_values(storage_options or {}))
    found += [os.environ[name] for name in _SECRET_VARIABLES if os.environ.get(name)]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _secret_values(options: Mapping[str, Any]) -> Iterator[str]:
    """String values of secret-named options, nested ones too (``client_kwargs``)."""
    for name, value in options.items():
        if isinstance(value, Mapping):
            yield from _secret_values(value)
        elif isinstance(value, str) and _is_secret_name(name):
            yield value


def redact(text: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """``text`` without secrets: URLs shown by :func:`~cosloss_cli.base.shown.shown_path`, known secret values ``***``.

    >>> redact("https://alice:hunter22@example.com/a.csv?token=t1 failed")
    'https://example.com/a.csv?token=*** failed'
    >>> redact("token sk-12345 refused", {"token": "sk-12345"})
    'token *** refused'
    """
    text = scrub(text)
    for secret in secrets_in(storage_options):
        text = text.replace(secret, "***")
    return text


def _display(url: str) -> str:
    """The URL as messages show it (:func:`~cosloss_cli.base.shown.shown_path`)."""
    return shown_path(url)


def url_path(url: str) -> str:
    """The path part of a URL, without an ``https`` query string (for the file extension)."""
    if scheme(url) in ("http", "https"):
        return re.split(r"[?#]", url, maxsplit=1)[0]
    return url


# -- the filesystem ------------------------------------------------------------------------


def filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of ``url``; a missing backend is a usage error."""
    protocol = scheme(url)
    _require_backend(url, protocol)
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:  # a scheme fsspec knows, whose package we do not: fsspec names it
        raise InputUsageError(redact(str(exc), storage_options), path=_display(url)) from None
    except ValueError as exc:
        raise InputUsageError(f"cannot use this URL: {redact(str(exc), storage_options)}", path=_display(url)) from None
    except Exception as exc:  # a backend's own configuration errors (bad option names, types)
        raise storage_error(exc, url, storage_options, "cannot connect") from None
    return fs, str(path)


def _require_backend(url: str, protocol: str) -> None:
    """Import fsspec and the scheme's backend now, so a missing one names the extra to install."""
    import importlib

    needed = ["fsspec"] + ([BACKENDS[protocol][0]] if protocol in BACKENDS else [])
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            raise _missing_backend(url, protocol, module) from None


def _missing_backend(url: str, protocol: str, module: str) -> InputUsageError:
    """A usage error naming what to install: the cosloss extra of a known scheme."""
    extra = BACKENDS.get(protocol, ("", ""))[1]
    if extra:
        hint = f"pip install 'cosloss[{extra}]'"
    else:
        hint = "pip install fsspec" + ("" if module == "fsspec" else f" {module}")
    return InputUsageError(f"{protocol}:// URLs need {module}, which is not installed", path=_display(url), hint=hint)


def storage_error(exc: BaseException, url: str, storage_options: Mapping[str, Any] | None, doing: str) -> CoslossError:
    """A storage failure as one line naming the URL, without a secret: missing input is a usage error.

    ``doing`` says what failed (``cannot list``, ``cannot open``...); the dataset reader
    lists prefixes with it too.
    """
    shown = _display(url)
    if isinstance(exc, CoslossError):
        return exc
    if isinstance(exc, FileNotFoundError) and _connection_failure(exc) is not None:
        # fsspec's HTTP file system answers any failure of a HEAD request with FileNotFoundError
        reason = redact(_first_line(str(_connection_failure(exc))), storage_options)
        return DataError(f"cannot connect to the server: {reason}", path=shown, hint="is the server up?")
    if isinstance(exc, FileNotFoundError):
        return InputUsageError("no such object (or bucket)", path=shown, hint="check the URL")
    if isinstance(exc, IsADirectoryError):
        return InputUsageError(
            "is a folder (a prefix), not an object", path=shown, hint="use 'cosloss batch' for folders"
        )
    if isinstance(exc, ValueError) and "range requests" in str(exc):  # fsspec's HTTP file system
        return DataError(
            "the server does not answer range requests, which reading this format needs",
            path=shown,
            hint="download the file first, or use CSV, which is read from the start",
        )
    if isinstance(exc, PermissionError):
        return DataError("permission denied", path=shown, hint="check the credentials and the object's permissions")
    detail = redact(_first_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__), storage_options)
    return DataError(f"{doing}: {detail}", path=shown)


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The refused or failed connection behind an error, if any (a cause that is an OSError, not a missing file)."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# -- reading -------------------------------------------------------------------------------


def check_readable(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Raise a clear error unless ``url`` names an existing object (not a prefix)."""
    _info(url, storage_options)


def _info(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    fs, path = filesystem(url, storage_options)
    try:
        info = fs.info(path)
    except Exception as exc:
        raise storage_error(exc, url, storage_options, "cannot open") from None
    if info.get("type") == "directory":
        raise storage_error(IsADirectoryError(path), url, storage_options, "cannot open")
    return dict(info)


def exists(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether an object (or a prefix) is at ``url``; errors other than absence are raised."""
    fs, path = filesystem(url, storage_options)
    try:
        return bool(fs.exists(path))
    except Exception as exc:
        raise storage_error(exc, url, storage_options, "cannot open") from None


def size(url: str, storage_options: Mapping[str, Any] | None = None) -> int | None:
    """The object's size in bytes (``None`` if the store does not say)."""
    found = _info(url, storage_options).get("size")
    return None if found is None else int(found)


def open_input(url: str, storage_options: Mapping[str, Any] | None = None, *, random_access: bool = False) -> BinaryIO:
    """A seekable binary file reading ``url`` by ranged requests, nothing downloaded up front.

    Sequential readers get a read-ahead of :data:`READ_BLOCK_BYTES`. ``random_access``
    (Parquet) fetches exactly the ranges asked for: pyarrow coalesces the column chunks
    of a row group into few large reads itself, and a read-ahead window would be thrown
    away by every jump between columns.
    """
    fs, path = filesystem(url, storage_options)
    cache = {"cache_type": "none"} if random_access else {"cache_type": "readahead", "block_size": READ_BLOCK_BYTES}
    try:
        handle = fs.open(path, "rb", **cache)
        if not getattr(handle, "size", 1) and fs.isdir(path):  # a prefix opens as an empty object
            handle.close()
            raise IsADirectoryError(path)
    except Exception as exc:
        raise storage_error(exc, url, storage_options, "cannot open") from None
    return _GuardedFile(handle, url, storage_options)  # type: ignore[return-value]


class _GuardedFile:
    """An fsspec file whose read errors (network, permissions) become one-line DataErrors."""

    def __init__(self, handle: Any, url: str, storage_options: Mapping[str, Any] | None):
        self._handle = handle
        self._url = url
        self._options = storage_options
        self.size = getattr(handle, "size", None)

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._handle.read(size))
        except Exception as exc:
            raise storage_error(exc, self._url, self._options, "cannot read") from None

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._handle.seek(offset, whence))

    def tell(self) -> int:
        return int(self._handle.tell())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return bool(self._handle.closed)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _GuardedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


# -- listing -------------------------------------------------------------------------------


def scan(
    root: str,
    recursive: bool,
    patterns: Sequence[str] = (),
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[list[tuple[str, str]], list[str]]:
    """(relative posix path, URL) of the objects under the prefix ``root``, sorted, and the
    sub-prefixes not searched because ``recursive`` is off.

    Like a local folder scan for ``batch``: objects with a path component starting with
    ``.`` are hidden and skipped, and ``patterns`` (globs) keep the objects whose name or
    relative path matches one of them.
    """
    import fnmatch
    import posixpath

    fs, path = filesystem(root, storage_options)
    base = path.rstrip("/")
    prefix = root.rstrip("/")
    try:
        if not fs.isdir(base):
            raise InputUsageError("no such folder (prefix)", path=_display(root), hint="check the URL")
        entries = fs.find(base, withdirs=False, detail=False) if recursive else fs.ls(base, detail=True)
    except CoslossError:
        raise
    except Exception as exc:
        raise storage_error(exc, root, storage_options, "cannot list") from None
    found: list[tuple[str, str]] = []
    skipped: list[str] = []
    for entry in entries:
        name = entry if isinstance(entry, str) else entry["name"]
        kind = "file" if isinstance(entry, str) else entry.get("type")
        rel = name.rstrip("/")[len(base) :].lstrip("/") if name.startswith(base) else posixpath.basename(name)
        if not rel or any(part.startswith(".") for part in rel.split("/")):
            continue
        url = f"{prefix}/{rel}"
        if kind == "directory":
            skipped.append(url)
            continue
        if patterns and not any(
            fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(posixpath.basename(rel), p) for p in patterns
        ):
            continue
        found.append((rel, url))
    return sorted(found), sorted(skipped)


# -- writing -------------------------------------------------------------------------------


@contextmanager
def atomic_output_url(
    url: str, storage_options: Mapping[str, Any] | None = None, before_upload: Callable[[], None] | None = None
) -> Iterator[BinaryIO]:
    """Yield a binary file whose content appears at ``url`` only once complete.

    The bytes go to a local temporary file first; after the block ends without an
    exception they are uploaded in one ``put`` (one PUT, or a multipart upload that the
    store makes visible only when it completes). On an exception or Ctrl-C nothing is
    uploaded, so no object, not even an empty one, is created.
    """
    import tempfile

    fs, path = filesystem(url, storage_options)
    try:
        fd, temporary = tempfile.mkstemp(prefix=".cosloss-upload-", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write the local temporary file: {exc.strerror}", path=_display(url)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        if before_upload is not None:  # an exception from it (a batch stopped) uploads nothing
            before_upload()
        try:
            fs.put_file(temporary, path)
        except Exception as exc:
            error = storage_error(exc, url, storage_options, "cannot write")
            raise OutputError(error.message, path=error.path, hint=error.hint) from None
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass
