"""Spark, Dask and in-memory profiles agree; per-day profiles in one pass; bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from watchkeeper.engines import merge_all, profile_arrow, profile_batches
from watchkeeper.profiles import CategoricalSummary, NumericSummary, Profile, profile

warnings.filterwarnings("ignore", category=FutureWarning)


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, n)
    x[rng.uniform(size=n) < 0.05] = np.nan
    cat = rng.choice(np.array(["a", "b", "c", None], dtype=object), n)
    return pd.DataFrame({
        "x": x,
        "k": rng.integers(0, 7, n),
        "g": rng.gamma(2.0, 1.0, n),
        "c": pd.array(cat, dtype="string"),
        "day": rng.choice(["2026-11-01", "2026-11-02", "2026-11-03"], n),
    })


def _assert_same(a: Profile, b: Profile) -> None:
    """Exact equality of everything but float sums, which depend on the order of addition."""
    assert a.n == b.n
    assert set(a.features) == set(b.features)
    for name, s in a.features.items():
        t = b.features[name]
        assert type(s) is type(t), name
        if isinstance(s, NumericSummary):
            assert isinstance(t, NumericSummary)
            assert (s.count, s.missing, s.min, s.max, s.integral) == (
                t.count, t.missing, t.min, t.max, t.integral), name
            assert s.sketch == t.sketch, name  # bucket counts: exact
            assert s.sum == pytest.approx(t.sum, rel=1e-9, abs=1e-6)
            assert s.sumsq == pytest.approx(t.sumsq, rel=1e-9)
        else:
            assert isinstance(s, CategoricalSummary) and isinstance(t, CategoricalSummary)
            assert (s.counts, s.missing) == (t.counts, t.missing), name


def _in_memory(pdf: pd.DataFrame) -> Profile:
    return profile({c: pdf[c].to_numpy(dtype=object if c == "c" else None)
                    for c in pdf.columns if c != "day"})


def test_arrow_batches_equal_in_memory() -> None:
    import pyarrow as pa

    pdf = _frame(30_000)
    table = pa.Table.from_pandas(pdf, preserve_index=False)
    parts = profile_batches(table.to_batches(max_chunksize=4096), chunk_rows=10_000,
                            columns=["x", "k", "g", "c"])
    _assert_same(parts[""], _in_memory(pdf))
    by_day = profile_batches(table.to_batches(max_chunksize=4096), by="day", chunk_rows=10_000)
    for day, p in by_day.items():
        _assert_same(p, _in_memory(pdf[pdf["day"] == day]))
    _assert_same(merge_all(by_day.values()), _in_memory(pdf))


def test_arrow_bad_input() -> None:
    import pyarrow as pa

    table = pa.table({"x": [1.0]})
    with pytest.raises(ValueError, match="columns"):
        profile_arrow(table, columns=["y"])
    with pytest.raises(ValueError, match="by"):
        profile_batches(table.to_batches(), by="day")


def test_spark_profile_equals_in_memory(spark) -> None:  # type: ignore[no-untyped-def]
    from watchkeeper.engines import spark as wks

    pdf = _frame(40_000, seed=1)
    df = spark.createDataFrame(pdf).repartition(5)
    _assert_same(wks.profile(df, columns=["x", "k", "g", "c"]), _in_memory(pdf))
    days = wks.profile_by(df, "day")
    assert sorted(days) == sorted(pdf["day"].unique())
    for day, p in days.items():
        _assert_same(p, _in_memory(pdf[pdf["day"] == day]))
    with pytest.raises(ValueError, match="columns"):
        wks.profile(df, columns=["nope"])
    with pytest.raises(ValueError, match="by"):
        wks.profile_by(df, "nope")


def test_top_level_modules_name_the_engines() -> None:
    import watchkeeper.dask
    import watchkeeper.spark

    assert watchkeeper.spark.profile.__module__ == "watchkeeper.engines.spark"
    assert watchkeeper.dask.profile.__module__ == "watchkeeper.engines.dask"


def test_dask_profile_equals_in_memory() -> None:
    dd = pytest.importorskip("dask.dataframe")
    from watchkeeper.engines import dask as wkd

    pdf = _frame(30_000, seed=2)
    ddf = dd.from_pandas(pdf, npartitions=4)
    _assert_same(wkd.profile(ddf, columns=["x", "k", "g", "c"]), _in_memory(pdf))
    days = wkd.profile_by(ddf, "day")
    for day, p in days.items():
        _assert_same(p, _in_memory(pdf[pdf["day"] == day]))
    with pytest.raises(ValueError, match="columns"):
        wkd.profile(ddf, columns=["nope"])
