"""How paths, URLs and user values appear in anything cosloss prints or writes.

One function, :func:`shown_path`, renders a path or URL for people and machines alike
(errors, notes, warnings, table titles, JSON/CSV/NDJSON fields, batch reports, ``--debug``
output): a URL loses its userinfo (``user:password@``) and the values of its query
parameters, whose names stay (``?access_token=***``), because signed URLs and
presigned tokens travel in exactly those places. :func:`scrub` applies the same rendering
to free text that quotes a URL, such as the messages pyarrow, fsspec or aiohttp build.

:func:`clip` bounds how much of a value or a list an error line quotes, and
:func:`printable` escapes control characters before a name reaches a terminal.

Only :mod:`re` is imported: errors use this module, and they load at every start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: ``scheme://`` at the start of a path: two characters at least, so ``C://x`` stays a path.
_URL_START = r"^([A-Za-z][A-Za-z0-9+.-]+://)([^/?#]*)(.*)$"

#: A URL inside free text: up to whitespace, a quote or a closing bracket.
_URL_IN_TEXT = r"[A-Za-z][A-Za-z0-9+.-]+://[^\s'\"<>()\[\]{}`]+"

#: What a hidden secret is shown as.
HIDDEN = "***"

#: The secret parts of URLs seen so far (userinfo, query values), hidden wherever they appear.
_secrets: set[str] = set()

#: Outside a URL, a password or a secret-named query value is hidden from this length on,
#: any other query value from the second: shorter ones are too likely to be ordinary words.
_SHORTEST_PASSWORD = 6
_SHORTEST_TOKEN = 12


def shown_path(path: str) -> str:
    """``path`` as cosloss shows it: a URL without userinfo and without its query values.

    >>> shown_path("https://alice:hunter22@example.com/a.npy?X-Amz-Signature=abc&v=2")
    'https://example.com/a.npy?X-Amz-Signature=***&v=***'
    >>> shown_path("labels/a.csv")
    'labels/a.csv'
    """
    if "://" not in path:
        return path
    found = re.match(_URL_START, path, re.S)
    if found is None:
        return path
    scheme, authority, rest = found.groups()
    _remember(authority, rest)
    host = authority.rpartition("@")[2]
    location, mark, query = rest.partition("?")
    if not mark:
        location, mark, query = rest.partition("#")
    return scheme + host + location + (mark + _hidden_values(query) if mark else "")


def url_location(path: str) -> str:
    """A URL without userinfo, query and fragment (a local path as it is): what names are made of.

    >>> url_location("https://u:p@host/dir/a.npy?token=t")
    'https://host/dir/a.npy'
    """
    if "://" not in path:
        return path
    return re.split(r"[?#]", shown_path(path), maxsplit=1)[0]


def _hidden_values(query: str) -> str:
    """``a=1&b=2#c=3`` -> ``a=***&b=***#c=***``: the names kept, every value hidden.

    A part without ``=`` may itself be a token (``?SECRET``), so it is hidden whole.
    """
    query, hash_mark, fragment = query.partition("#")
    parts = []
    for part in re.split(r"([&;])", query):
        if part in ("&", ";", ""):
            parts.append(part)
        else:
            name, equals, _ = part.partition("=")
            parts.append(f"{name}={HIDDEN}" if equals else HIDDEN)
    text = "".join(parts)
    return text + (hash_mark + _hidden_values(fragment) if hash_mark else "")


def _remember(authority: str, rest: str) -> None:
    """Keep the URL's secret parts, so text that quotes them without the URL hides them too.

    Only parts that cannot be ordinary words are kept: a password, and a query value that
    is long or named like a secret. A short ``?format=json`` must not hide every "json".
    """
    pieces: list[str] = []
    if "@" in authority:
        password = authority.rpartition("@")[0].partition(":")[2]
        if len(password) >= _SHORTEST_PASSWORD:
            pieces.append(password)
    if "?" in rest or "#" in rest:
        query = rest.split("?", 1)[1] if "?" in rest else rest.split("#", 1)[1]
        for part in re.split(r"[&;#]", query):
            name, equals, value = part.partition("=")
            value = value if equals else name
            if len(value) >= _SHORTEST_TOKEN or (len(value) >= _SHORTEST_PASSWORD and _secret_name(name)):
                pieces.append(value)
    for piece in pieces:
        _secrets.add(piece)
        _secrets.add(_percent_decoded(piece))


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in ("key", "secret", "token", "sig", "pass", "auth", "credential", "sas"))


def _percent_decoded(text: str) -> str:
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


def remember(paths: Iterable[str | None], *, fresh: bool = False) -> None:
    """Note the secrets of the URLs among ``paths`` (a command's arguments) before anything runs.

    ``fresh``: forget those of earlier commands first (a command run in-process, by tests).
    """
    if fresh:
        _secrets.clear()
    for path in paths:
        if path and "://" in path:
            shown_path(path)


def scrub(text: str) -> str:
    """``text`` with every URL in it shown by :func:`shown_path`, and every secret seen hidden.

    For messages cosloss does not word itself (pyarrow's, fsspec's, a traceback): they may
    quote a URL whole, or a piece of it.
    """
    if "://" in text:
        text = re.sub(_URL_IN_TEXT, lambda found: shown_path(found.group(0)), text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


#: Characters of a value an error line quotes at most (about: the cut ends with "...").
CLIP_CHARACTERS = 100


def clip(value: Any, limit: int = CLIP_CHARACTERS, *, quote: bool = True, most: int | None = None) -> str:
    """A value, or a list of values, as an error line quotes it: about ``limit`` characters at most.

    Every cell, key list and column list an error line quotes goes through here, so a
    10,000-member archive or a megabyte cell does not make a 70 KB error line. Strings are
    quoted with ``repr`` unless ``quote`` is off; a list shows its items (``most`` of them at
    most) until the limit, then how many there are in all.

    >>> clip(["a", "b"])
    "'a', 'b'"
    >>> clip([f"k{i}" for i in range(1000)], quote=False)[-40:]
    '7, k18, k19, k20, k21, ... (1000 in all)'
    >>> clip("x" * 300)[-23:]
    "xx'... (300 characters)"
    """
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        items = list(value)
        shown: list[str] = []
        used = 0
        for item in items[: len(items) if most is None else most]:
            text = _one(item, quote, limit)
            if shown and used + len(text) > limit:
                break
            shown.append(text)
            used += len(text) + 2
        listed = ", ".join(shown)
        return listed + (f", ... ({len(items)} in all)" if len(shown) < len(items) else "")
    if isinstance(value, str) and quote and len(value) > limit:
        return f"{value[: max(1, limit - 3)]!r}... ({len(value)} characters)"
    return _one(value, quote, limit)


def _one(value: Any, quote: bool, limit: int) -> str:
    text = repr(value) if quote and isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "..."


#: Control characters: C0, DEL and C1 (ESC starts a terminal escape sequence).
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"


def printable(name: str) -> str:
    """``name`` with control characters escaped (``\\x1b``, ``\\r``), for tables on a terminal.

    >>> printable("a\\x1b[31mb")
    'a\\\\x1b[31mb'
    """
    if re.search(_CONTROL, name) is None:
        return name
    return re.sub(_CONTROL, lambda found: repr(found.group(0))[1:-1], name)
