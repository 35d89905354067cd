"""The one place that turns user inputs into named numpy columns.

Every layer takes ``dict[str, numpy.ndarray]``: ``float64`` for numeric columns (NaN for a
missing value), ``bool`` for complete boolean columns, ``object`` (``str`` or ``None``) for
anything categorical. :func:`to_columns` converts pandas and polars frames, pyarrow tables,
numpy arrays (2-D or structured) and mappings of arrays; :func:`read_table` reads CSV or
Parquet files. Libraries are imported only when their input type is seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

__all__ = ["Categories", "read_table", "to_columns"]


@dataclass(frozen=True, slots=True, eq=False)
class Categories:
    """A categorical column encoded once: integer codes into its labels.

    :func:`to_columns` returns this form, when asked with ``encode_categories=True``, for the
    columns its source already holds as strings or categories (pandas ``str``/``category``,
    Arrow and polars strings): the source's own hash encoding is read instead of building a
    Python string object per row, which for a million rows costs more time and memory than
    every drift test after it.

    Attributes
    ----------
    codes
        One integer per row: an index into ``labels``, or ``-1`` for a missing value.
    labels
        The distinct values as text (an ``object`` array of ``str``), each once.

    Examples
    --------
    >>> c = Categories(np.array([0, 1, -1, 0]), np.array(["FR", "DE"], dtype=object))
    >>> c.size, c.decode().tolist()
    (4, ['FR', 'DE', None, 'FR'])
    """

    codes: np.ndarray
    labels: np.ndarray

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self.codes.size)

    def decode(self) -> np.ndarray:
        """The column as an ``object`` array of ``str`` (``None`` where missing)."""
        table = np.empty(self.labels.size + 1, dtype=object)
        table[:-1] = self.labels
        out: np.ndarray = table[np.where(self.codes < 0, self.labels.size, self.codes)]
        return out


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def _from_array(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r} must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "iu":
        return arr.astype(np.float64)
    if kind == "f":
        return arr.astype(np.float64, copy=False)
    if kind == "b":
        return arr
    if kind == "M":
        return _datetime_seconds(arr)
    if kind in "US":
        return arr.astype(object)
    return arr


def _datetime_seconds(arr: np.ndarray) -> np.ndarray:
    """Datetimes become float seconds since the epoch (NaT becomes NaN)."""
    out = arr.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    out[np.isnat(arr)] = np.nan
    return out


def _pandas_categories(s: Any) -> Categories | None:
    """Codes without hashing a string per row where the column already has them: a
    ``category`` column's own codes, Arrow's dictionary encoding for Arrow-backed strings
    (pandas 3's default ``str``), pandas' factorisation for other string storage."""
    import pandas as pd

    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        labels = np.asarray(dtype.categories.astype(str), dtype=object)
        return Categories(np.asarray(s.cat.codes), labels)
    if not pd.api.types.is_string_dtype(dtype):
        return None
    if dtype == object:  # noqa: E721 - object columns may mix types: keep them as objects
        return None
    arrow = getattr(s.array, "__arrow_array__", None)
    if arrow is not None:
        coded = _arrow_categories(arrow())
        if coded is not None:
            return coded
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return Categories(np.asarray(codes), np.asarray(uniques.astype(str), dtype=object))


def _from_pandas(frame: Any, encode: bool = False) -> dict[str, Any]:
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in frame.columns:
        s = frame[name]
        key = str(name)
        if isinstance(s, pd.DataFrame):
            raise ValueError(f"column {key!r} appears more than once")
        dtype = s.dtype
        if pd.api.types.is_bool_dtype(dtype) and not s.hasnans:
            columns[key] = s.to_numpy(dtype=bool)
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            columns[key] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            columns[key] = _datetime_seconds(s.to_numpy(dtype="datetime64[ns]"))
        elif encode and (coded := _pandas_categories(s)) is not None:
            columns[key] = coded
        else:
            arr = s.to_numpy(dtype=object)
            missing = s.isna().to_numpy()
            if missing.any():
                arr[missing] = None
            columns[key] = arr
    return columns


def _arrow_categories(col: Any) -> Categories | None:
    """Codes from Arrow's dictionary encoding, for string columns.

    Chunks are encoded first and their integer indices joined after (joining the strings
    would copy them all); indices without nulls are used in place, as Arrow's ``int32``.
    """
    import pyarrow as pa

    typ = col.type
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ)):
        return None
    try:
        encoded = col.dictionary_encode()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return None
    if isinstance(encoded, pa.ChunkedArray):
        if encoded.num_chunks == 0:
            return Categories(np.empty(0, dtype=np.int32), np.empty(0, dtype=object))
        encoded = encoded.combine_chunks()
    indices = encoded.indices
    if indices.null_count:
        import pyarrow.compute as pc  # only here: its first import costs a tenth of a second

        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False)
    labels = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return Categories(codes, labels)


def _from_arrow(table: Any, encode: bool = False) -> dict[str, Any]:
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        key = str(name)
        if key in columns:
            raise ValueError(f"column {key!r} appears more than once")
        typ = col.type
        if pa.types.is_dictionary(typ):
            col, typ = col.cast(typ.value_type), typ.value_type
        if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            arr = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
            columns[key] = np.asarray(arr, dtype=np.float64)
        elif pa.types.is_boolean(typ) and col.null_count == 0:
            columns[key] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)
        elif pa.types.is_timestamp(typ) or pa.types.is_date(typ):
            ns = col.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(zero_copy_only=False)
            columns[key] = np.asarray(ns, dtype=np.float64) / 1e9
        elif encode and (coded := _arrow_categories(col)) is not None:
            columns[key] = coded
        else:
            columns[key] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    return columns


@overload
def to_columns(data: Any, *, encode_categories: Literal[False] = False,
               ) -> dict[str, np.ndarray]: ...


@overload
def to_columns(data: Any, *, encode_categories: Literal[True],
               ) -> dict[str, np.ndarray | Categories]: ...


def to_columns(data: Any, *, encode_categories: bool = False,
               ) -> dict[str, np.ndarray] | dict[str, np.ndarray | Categories]:
    """Convert tabular data to a dict of 1-D numpy columns of equal length.

    Parameters
    ----------
    data
        A pandas or polars ``DataFrame``, a pyarrow ``Table`` or ``RecordBatch``, a mapping of
        column name to 1-D array-like, a structured numpy array, or a 2-D numpy array (columns
        are then named ``x0``, ``x1``, ...).
    encode_categories
        Return string and category columns of pandas, polars and Arrow inputs as
        :class:`Categories` (codes and labels) rather than ``object`` arrays.

    Returns
    -------
    dict
        Column name to array: ``float64`` for numbers (NaN for missing; datetimes as seconds
        since the epoch), ``bool`` for complete booleans, ``object`` otherwise.

    Examples
    --------
    >>> cols = to_columns({"age": [31, 45], "country": ["FR", None]})
    >>> cols["age"].dtype.name, cols["country"].tolist()
    ('float64', ['FR', None])
    >>> sorted(to_columns(np.zeros((3, 2))))
    ['x0', 'x1']
    >>> to_columns({"a": [1, 2], "b": [1]})
    Traceback (most recent call last):
    ...
    ValueError: column 'b' has 1 rows, expected 2 like column 'a'
    """
    module = _module(data)
    columns: dict[str, Any]
    if module == "pandas" and hasattr(data, "columns"):
        columns = _from_pandas(data, encode_categories)
    elif module == "polars" and hasattr(data, "to_arrow"):
        columns = _from_arrow(data.to_arrow(), encode_categories)
    elif module == "pyarrow" and hasattr(data, "column_names"):
        columns = _from_arrow(data, encode_categories)
    elif isinstance(data, Mapping):
        columns = {}
        for name, values in data.items():
            if _module(values) in ("pandas", "polars", "pyarrow") and hasattr(values, "to_numpy"):
                values = values.to_numpy()
            columns[str(name)] = _from_array(str(name), values)
    elif isinstance(data, np.ndarray) and data.dtype.names:
        columns = {name: _from_array(name, data[name]) for name in data.dtype.names}
    elif isinstance(data, np.ndarray | list | tuple):
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ValueError(f"an array of data must be 2-D (rows × columns), got {arr.shape}")
        columns = {f"x{j}": _from_array(f"x{j}", arr[:, j]) for j in range(arr.shape[1])}
    else:
        raise TypeError(
            "data must be a pandas/polars DataFrame, a pyarrow Table, a mapping of arrays or "
            f"a numpy array, got {type(data).__name__}"
        )
    first = None
    for name, col in columns.items():
        if first is None:
            first = (name, col.size)
        elif col.size != first[1]:
            raise ValueError(
                f"column {name!r} has {col.size} rows, expected {first[1]} like column "
                f"{first[0]!r}"
            )
    return columns


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``) or Parquet file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file cannot be parsed, or its format is not recognised from the suffix.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ref.csv")
    >>> _ = open(path, "w").write("x,kind\\n1.5,a\\n2.5,b\\n")
    >>> cols = read_table(path)
    >>> cols["x"].tolist(), cols["kind"].tolist()
    ([1.5, 2.5], ['a', 'b'])
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    if p.is_dir():
        raise ValueError(f"{p} is a directory, expected a CSV or Parquet file")
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst"):
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    import pyarrow as pa

    try:
        if kind in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(p)
        elif kind in (".csv", ".tsv", ".txt"):
            from pyarrow import csv

            parse = csv.ParseOptions(delimiter="\t" if kind == ".tsv" else ",")
            table = csv.read_csv(p, parse_options=parse)
        else:
            raise ValueError(
                f"cannot tell the format of {p} from its suffix: use .csv, .tsv or .parquet"
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {p}: {exc}") from None
    return _from_arrow(table)
