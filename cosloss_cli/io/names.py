"""Which named columns are row ids and which are vector components.

One set of rules for every reader of named columns (CSV/TSV headers, Parquet fields)
and for pandas DataFrames in the library, so that a file and the frame it was written
from are read the same way. :func:`split_ids` looks at names only (the header or the
schema); :func:`choose_components` then looks at what each remaining column holds (its
type, or for CSV a sample of its cells), as names alone let a ``docid`` text column or
an integer ``label`` column pass for a vector component.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from ..base.shown import clip
from ..errors import DataError, InputUsageError

#: Column names taken as row ids (compared without case), besides names ending in ``_id``.
ID_NAMES = frozenset({"id", "ids", "key", "index", "uuid", "uid"})

#: What pandas writes for an unnamed index: an empty CSV header cell (read back by pandas
#: as ``Unnamed: 0``) or a ``__index_level_N__`` Parquet column.
_PANDAS_INDEX = re.compile(r"|Unnamed: 0|__index_level_\d+__")


def looks_like_id(name: object) -> bool:
    """Whether a column name says the column holds row ids rather than vector components."""
    if not isinstance(name, str):
        return False
    text = name.strip()
    lower = text.lower()
    return lower in ID_NAMES or lower.endswith("_id") or _PANDAS_INDEX.fullmatch(text) is not None


def describe(name: str) -> str:
    """A column name for a message: pandas' unnamed index is described, not shown as ''."""
    return "the first column (no name: a pandas index)" if not name.strip() else f"column {name!r}"


class Split(NamedTuple):
    """The data columns (in file order), the id column if any, and notes for the user."""

    features: list[str]
    id_column: str | None
    notes: tuple[str, ...] = ()
    #: Other columns named like ids, not used as data or as the row ids.
    others: tuple[str, ...] = ()


def split_ids(
    names: Sequence[str],
    *,
    id_column: str | None,
    columns: Sequence[str] | None,
    detect: bool,
    index_columns: Iterable[str] = (),
    path: str | None = None,
) -> Split:
    """Separate row-id columns from data columns by name.

    When ``detect`` is on, pandas' index columns (``index_columns``, from Parquet
    metadata) and columns that :func:`looks_like_id` are not data, and each gets a note;
    the row ids are the explicit ``id_column`` when the file has it (a file without it
    simply has no ids), else the first of them. Explicit ``columns`` always win: a
    column they name is data whatever its name.
    """
    chosen = set(columns or ())
    detected: list[str] = []
    if detect:
        detected = [n for n in index_columns if n in names and n not in chosen]
        detected += [n for n in names if n not in detected and n not in chosen and looks_like_id(n)]
    if id_column is not None:
        ids = id_column if id_column in names else None
        others = [n for n in detected if n != id_column]
    else:
        ids = detected[0] if detected else None
        others = detected[1:]
    prefix = f"{path}: " if path else ""
    notes = []
    if ids is not None and id_column is None:
        notes.append(f"{prefix}using {describe(ids)} as row ids, not data (--no-detect-ids reads it as data)")
    unused = "looks like ids: not used as data (name it in --columns to use it)"
    notes += [f"{prefix}{describe(n)} {unused}" for n in others]
    excluded = {ids, *detected}
    features = list(columns) if columns else [n for n in names if n not in excluded]
    return Split(features, ids, tuple(notes), tuple(n for n in detected if n != ids))


def without_weight_column(
    names: Sequence[str], weight_column: str | None, path: str | None = None, partition_keys: Sequence[str] = ()
) -> list[str]:
    """The column names but the weight column, which holds weights, not ids or components.

    A file without that column is a usage error listing its columns: the weights were
    asked for and cannot be found. ``partition_keys`` (the hive keys of the dataset the
    file belongs to, which polars also writes into each file) are left out too: they
    say which folder a row is in, and are never vector components.
    """
    if partition_keys:
        names = [n for n in names if n not in partition_keys]
    if weight_column is None:
        return list(names)
    if weight_column not in names:
        shown = clip(list(names), most=12)
        raise InputUsageError(
            f"no column named {weight_column!r} for --weight-column", path=path, hint=f"columns: {shown}"
        )
    return [n for n in names if n != weight_column]


def pair_names(labels: Sequence[object], predictions: Sequence[object]) -> list[int] | None:
    """How to reorder the predictions' columns to pair them with the labels' by name.

    Returns ``None`` to pair by position: the names are the same in the same order, or
    the two sets are disjoint (``label_0..`` against ``pred_0..``). Returns the
    permutation when the sets are equal in another order. Raises ``ValueError`` with the
    differences when the sets overlap only in part: pairing by position would pair
    some same-named columns with others.
    """
    if list(labels) == list(predictions):
        return None
    label_set, prediction_set = set(labels), set(predictions)
    if label_set.isdisjoint(prediction_set):
        return None
    if label_set == prediction_set and len(label_set) == len(labels) == len(predictions):
        where = {name: i for i, name in enumerate(predictions)}
        return [where[name] for name in labels]
    only_labels = [n for n in labels if n not in prediction_set]
    only_predictions = [n for n in predictions if n not in label_set]
    raise ValueError(
        f"the column names overlap only in part: labels alone have {_listing(only_labels)}; "
        f"predictions alone have {_listing(only_predictions)}"
    )


def _listing(names: Sequence[object], limit: int = 8) -> str:
    if not names:
        return "none"
    return clip(list(names), most=limit)


#: Kinds of column content, as numpy's ``dtype.kind``: ``f`` floats, ``i``/``u`` integers,
#: ``b`` booleans; anything else (text, dates, nested types...) is not a number.
NUMERIC_KINDS = frozenset("fiub")


class Components(NamedTuple):
    """The vector components chosen from a file's data columns, and what was left out.

    ``left_out`` are the columns whose content is not numbers (text, dates...): never
    components unless named in ``columns``, which is then an error. Together with the
    columns ``split_ids`` found (besides the row ids), they are what the pipeline
    compares between the two files to tell whether the rows are in the same order.
    """

    features: list[str]
    left_out: list[str]
    notes: tuple[str, ...] = ()


def choose_components(
    names: Sequence[str],
    kinds: Mapping[str, str],
    *,
    columns: Sequence[str] | None,
    exclude: Sequence[str] | None = None,
    type_names: Mapping[str, str] | None = None,
    path: str | None = None,
) -> Components:
    """Which of the data columns ``names`` (ids already left out) are vector components.

    ``kinds`` gives each column's content kind (numpy's ``dtype.kind``; ``NUMERIC_KINDS``
    are numbers) and ``type_names`` the type to show in messages. The rules, for CSV,
    Parquet and pandas DataFrames alike:

    - ``columns`` (``--columns``) are the components, in that order; one of them that
      does not hold numbers is an error naming its type (``DataError``, exit 1).
    - ``exclude`` (``--exclude-columns``) are never components.
    - Columns that do not hold numbers are left out, each with a note.
    - Integer or boolean columns beside float ones are an error naming them: an integer
      class ``label`` beside 768 float columns is not component 769. Integer-only
      vectors (quantized embeddings) are components as they are.
    """
    prefix = f"{path}: " if path else ""
    shown = type_names or {}

    def type_of(name: str) -> str:
        return shown.get(name) or _KIND_NAMES.get(kinds.get(name, "O"), "not numbers")

    for name in columns or ():
        if kinds.get(name, "f") not in NUMERIC_KINDS:
            raise DataError(
                f"column {name!r} named in --columns holds {type_of(name)}, not numbers",
                path=path,
                hint="name only columns of numbers in --columns",
            )
    skipped = set(exclude or ())
    if columns:
        others = [n for n in names if n not in columns and n not in skipped]
        return Components(list(columns), [n for n in others if kinds.get(n, "f") not in NUMERIC_KINDS])
    candidates = [n for n in names if n not in skipped]
    left_out = [n for n in candidates if kinds.get(n, "f") not in NUMERIC_KINDS]
    features = [n for n in candidates if n not in left_out]
    floats = [n for n in features if kinds.get(n, "f") == "f"]
    others = [n for n in features if kinds.get(n, "f") != "f"]
    if floats and others:
        listed = ", ".join(f"{n!r} ({type_of(n)})" for n in others[:8])
        more = f", ... ({len(others)} in all)" if len(others) > 8 else ""
        raise DataError(
            f"integer or boolean columns beside {len(floats)} float columns: {listed}{more}; "
            "are they vector components?",
            path=path,
            hint=f"leave them out with --exclude-columns {','.join(others[:8])}, or choose the components with "
            "--columns A,B,C",
        )
    notes = tuple(f"{prefix}{describe(n)} holds {type_of(n)}, not numbers: not a vector component" for n in left_out)
    return Components(features, left_out, notes)


_KIND_NAMES = {"f": "floats", "i": "integers", "u": "integers", "b": "booleans", "O": "text", "U": "text"}


#: The content kind of a column of vectors (lists or arrays of numbers in each cell), beside
#: numpy's ``dtype.kind`` letters of :data:`NUMERIC_KINDS`; Parquet's reader uses it too.
VECTORS = "L"


class DataColumns(NamedTuple):
    """The columns a loss is computed from, and those left out (for the caller to say so)."""

    #: The one column of vectors, when there is one: then ``features`` is empty.
    vectors: str | None
    #: The numeric columns, each a vector component, in order.
    features: list[str]
    #: The columns left out.
    left_out: list[str]


def choose_data_columns(
    names: Sequence[str], kinds: Mapping[str, str], *, type_names: Mapping[str, str] | None = None
) -> DataColumns:
    """Which data columns (ids already set apart) hold the vectors, for columns without ``--columns``.

    One column of vectors (kind :data:`VECTORS`) is used alone and every other column is
    left out, as beside a Parquet list column; otherwise :func:`choose_components`
    decides, as for a file: columns that are not numbers are left out, integer columns
    beside float ones are a DataError. Several columns of vectors, or nothing numeric,
    are a ValueError (the caller's error says how to choose).

    >>> choose_data_columns(["text", "x", "y"], {"text": "O", "x": "f", "y": "f"})
    DataColumns(vectors=None, features=['x', 'y'], left_out=['text'])
    >>> choose_data_columns(["emb", "score"], {"emb": "L", "score": "f"})
    DataColumns(vectors='emb', features=[], left_out=['score'])
    """
    lists = [name for name in names if kinds.get(name) == VECTORS]
    if len(lists) > 1:
        raise ValueError(f"{len(lists)} columns of vectors ({_listing(lists)}): choose one")
    if lists:
        return DataColumns(lists[0], [], [name for name in names if name != lists[0]])
    chosen = choose_components(names, kinds, columns=None, type_names=type_names)
    if not chosen.features:
        raise ValueError("no numeric columns")
    return DataColumns(None, chosen.features, chosen.left_out)
