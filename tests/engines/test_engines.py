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


def _with_time_and_embeddings(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pdf = _frame(n, seed)
    emb = rng.normal(size=(n, 6))
    rows: list[object] = list(emb)
    for i in rng.choice(n, n // 50, replace=False):
        rows[i] = None  # missing embeddings count as missing rows
    pdf["emb"] = rows
    pdf["ts"] = 1_790_000_000.0 + rng.uniform(0, 86_400 * 3, n)
    return pdf


def _in_memory_with(pdf: pd.DataFrame, rff_map: object) -> Profile:
    from watchkeeper.window import Window

    emb = np.stack([np.full(6, np.nan) if e is None else e for e in pdf["emb"]])
    w = Window.from_columns(features={"x": pdf["x"].to_numpy(), "c": pdf["c"].to_numpy(object)},
                            embeddings=emb, ts=pdf["ts"].to_numpy())
    return profile(w, embedding_map=rff_map)  # type: ignore[arg-type]


def _assert_embeddings_close(a: Profile, b: Profile) -> None:
    assert a.embeddings is not None and b.embeddings is not None
    ea, eb = a.embeddings, b.embeddings
    assert (ea.count, ea.missing, ea.dim, ea.rff_map) == (eb.count, eb.missing, eb.dim, eb.rff_map)
    assert ea.rff is not None and eb.rff is not None and ea.rff.count == eb.rff.count
    np.testing.assert_allclose(ea.rff.total, eb.rff.total, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(ea.rff.outer, eb.rff.outer, rtol=1e-9, atol=1e-7)
    assert (a.ts_min, a.ts_max) == (b.ts_min, b.ts_max)


def test_arrow_time_and_embeddings_equal_in_memory() -> None:
    import pyarrow as pa

    from watchkeeper.engines import ProfileOptions
    from watchkeeper.profiles import RFFMap

    pdf = _with_time_and_embeddings(20_000, 4)
    rff_map = RFFMap.from_sample(np.stack(pdf["emb"].dropna().to_list()[:500]), n_features=32)
    table = pa.Table.from_pandas(pdf, preserve_index=False)
    options = ProfileOptions.plan(table.schema.names, columns=["x", "c"], time_column="ts",
                                  embedding="emb", embedding_map=rff_map)
    parts = profile_batches(table.to_batches(max_chunksize=3000), chunk_rows=7000,
                            options=options)
    whole = _in_memory_with(pdf, rff_map)
    _assert_same(parts[""], whole)
    _assert_embeddings_close(parts[""], whole)
    assert parts[""].ts_min == pdf["ts"].min() and parts[""].ts_max == pdf["ts"].max()


def test_time_column_types_and_bad_input() -> None:
    import datetime as dt

    import pyarrow as pa

    from watchkeeper.engines import ProfileOptions, embedding_matrix, time_seconds

    stamps = pa.array([dt.datetime(2026, 11, 2, 12), None], type=pa.timestamp("ms"))
    assert time_seconds(stamps)[0] == dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC).timestamp()
    assert time_seconds(pa.array([dt.date(1970, 1, 3)]))[0] == 2 * 86_400
    with pytest.raises(ValueError, match="time_column"):
        time_seconds(pa.array(["2026-11-02"]))
    with pytest.raises(ValueError, match="embedding"):
        embedding_matrix(pa.array([[1.0, 2.0], [1.0]]))
    with pytest.raises(ValueError, match="embedding"):
        embedding_matrix(pa.array([1.0, 2.0]))
    for arg in ("time_column", "embedding", "by"):
        with pytest.raises(ValueError, match=arg):
            ProfileOptions.plan(["x"], **{arg: "nope"})
    with pytest.raises(ValueError, match="embedding_map"):
        ProfileOptions.plan(["x"], embedding_map="auto")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_categories"):
        ProfileOptions.plan(["x"], max_categories=0)


def test_spark_time_and_embeddings_equal_in_memory(spark) -> None:  # type: ignore[no-untyped-def]
    from watchkeeper.engines import spark as wks
    from watchkeeper.profiles import RFFMap

    pdf = _with_time_and_embeddings(20_000, 5)
    rff_map = RFFMap.from_sample(np.stack(pdf["emb"].dropna().to_list()[:500]), n_features=32)
    sdf = pdf.assign(emb=[None if e is None else e.tolist() for e in pdf["emb"]])
    df = spark.createDataFrame(sdf[["x", "c", "ts", "emb", "day"]]).repartition(3)
    p = wks.profile(df, columns=["x", "c"], time_column="ts", embedding="emb",
                    embedding_map=rff_map, batch_rows=4000)
    whole = _in_memory_with(pdf, rff_map)
    _assert_same(p, whole)
    _assert_embeddings_close(p, whole)
    # Without a map one is chosen on the driver, and every task uses it: the sums still add up.
    auto = wks.profile(df, columns=["x"], embedding="emb")
    assert auto.embeddings is not None and auto.embeddings.rff_map is not None
    assert auto.embeddings.rff is not None and auto.embeddings.rff.count == whole.embeddings.count
    with pytest.raises(ValueError, match="batch_rows"):
        wks.profile(df, batch_rows=0)


def test_spark_parquet_direct_equals_in_memory(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    from watchkeeper.engines import spark as wks

    pdf = _frame(30_000, seed=6)
    table = pa.Table.from_pandas(pdf, preserve_index=False)
    pq.write_to_dataset(table, tmp_path / "t", partition_cols=["day"])
    days = wks.profile_parquet(spark, str(tmp_path / "t"), by="day",
                               columns=["x", "k", "g", "c"], tasks=2)
    assert sorted(days) == sorted(pdf["day"].unique())
    for day, p in days.items():
        _assert_same(p, _in_memory(pdf[pdf["day"] == day]))
    whole = wks.profile_parquet(spark, str(tmp_path / "t"), columns=["x", "k", "g", "c"])
    _assert_same(whole[""], _in_memory(pdf))
    with pytest.raises(ValueError, match="columns"):
        wks.profile_parquet(spark, str(tmp_path / "t"), columns=["nope"])
    with pytest.raises(ValueError, match="tasks"):
        wks.profile_parquet(spark, str(tmp_path / "t"), tasks=0)


def test_dask_time_and_embeddings_equal_in_memory() -> None:
    dd = pytest.importorskip("dask.dataframe")
    from watchkeeper.engines import dask as wkd
    from watchkeeper.profiles import RFFMap

    pdf = _with_time_and_embeddings(20_000, 7)
    rff_map = RFFMap.from_sample(np.stack(pdf["emb"].dropna().to_list()[:500]), n_features=32)
    ddf = dd.from_pandas(pdf[["x", "c", "ts", "emb"]], npartitions=4)
    p = wkd.profile(ddf, columns=["x", "c"], time_column="ts", embedding="emb",
                    embedding_map=rff_map)
    whole = _in_memory_with(pdf, rff_map)
    _assert_same(p, whole)
    _assert_embeddings_close(p, whole)
    auto = wkd.profile(ddf, columns=["x"], embedding="emb")
    assert auto.embeddings is not None and auto.embeddings.rff_map is not None
