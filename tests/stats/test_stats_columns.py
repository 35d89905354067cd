"""ColumnDrift / detect_drift: defaults, overrides, corrections, policies, inputs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from watchkeeper import stats as wk
from watchkeeper.frames import read_table, to_columns


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "x": rng.normal(shift, 1.0, size=n),
        "y": rng.exponential(size=n),
        "c": rng.choice(np.array(["a", "b", "c"], dtype=object), size=n),
    }


def test_default_methods_depend_on_type_and_size(rng: np.random.Generator) -> None:
    small = wk.detect_drift(_table(rng, 500), _table(rng, 500))
    assert {n: r.method for n, r in small.columns.items()} == {"x": "ks", "y": "ks", "c": "chi2"}
    large = wk.detect_drift(_table(rng, 5000), _table(rng, 5000))
    assert {n: r.method for n, r in large.columns.items()} == {
        "x": "wasserstein", "y": "wasserstein", "c": "jensen_shannon"}
    two = {"b": np.array([True] * 3 + [False] * 5)}
    assert wk.detect_drift(two, two).columns["b"].method == "fisher"


def test_tiny_shift_at_large_n_is_not_flagged_but_relevant_one_is(
        rng: np.random.Generator) -> None:
    ref = {"x": rng.normal(size=1_000_000)}
    tiny = wk.detect_drift(ref, {"x": rng.normal(0.02, size=1_000_000)})
    assert wk.ks(ref["x"], rng.normal(0.02, size=1_000_000)).drift  # a p-value would flag it
    assert not tiny.drift
    assert wk.detect_drift(ref, {"x": rng.normal(0.2, size=1_000_000)}).drift


def test_overrides_thresholds_and_corrections(rng: np.random.Generator) -> None:
    ref, cur = _table(rng, 400), _table(rng, 400, shift=0.4)
    det = wk.ColumnDrift(methods={"x": "anderson_darling", "c": "linf"}, correction="bonferroni",
                         thresholds={"linf": 0.5})
    report = det.fit(ref).test(cur)
    assert report.columns["x"].method == "anderson_darling"
    assert report.columns["c"].threshold == 0.5
    assert report.columns["y"].details["p_value_raw"] <= report.columns["y"].p_value
    raw = [report.columns[n].details["p_value_raw"] for n in ("x", "y")]
    expected = wk.adjust_p_values(raw, "bonferroni")
    assert [report.columns[n].p_value for n in ("x", "y")] == pytest.approx(expected)
    assert report.drift and report.drifted == ["x"]


def test_dataset_rule_share(rng: np.random.Generator) -> None:
    ref, cur = _table(rng, 400), _table(rng, 400, shift=0.5)
    assert wk.detect_drift(ref, cur).drift
    share = wk.detect_drift(ref, cur, dataset_rule="share", drift_share=0.5)
    assert share.details["n_drifted"] == 1
    assert not share.drift
    assert share.to_dict()["method"] == "share"


def test_missing_infinite_and_constant_columns_never_crash(rng: np.random.Generator) -> None:
    x = rng.normal(size=300)
    x[:30] = np.nan
    x[30:33] = np.inf
    ref = {"x": x, "const": np.ones(300), "empty": np.full(300, np.nan),
           "c": np.array(["a", None] * 150, dtype=object)}
    cur = {"x": rng.normal(size=300), "const": np.ones(300), "empty": np.full(300, np.nan),
           "c": np.array(["a", None, None] * 100, dtype=object)}
    report = wk.detect_drift(ref, cur)
    cols = report.columns
    assert cols["x"].details["missing_reference"] == 30
    assert cols["x"].details["infinite_reference"] == 3
    assert cols["x"].details["n_reference"] == 267
    assert not cols["const"].drift and cols["const"].statistic == 0.0
    assert "skipped" in cols["empty"].details and not cols["empty"].drift
    assert "<missing>" in str(cols["c"].to_dict()) or cols["c"].drift
    json.dumps(report.to_dict())  # JSON-ready whatever happened
    for method in ("wasserstein", "energy", "anderson_darling", "cramer_von_mises", "psi"):
        r = wk.ColumnDrift(methods={"const": method}).fit(ref).test(cur).columns["const"]
        assert not r.drift, method


def test_constant_reference_against_varying_current(rng: np.random.Generator) -> None:
    r = wk.wasserstein(np.zeros(100), rng.normal(size=100))
    assert np.isfinite(r.statistic) and r.drift


def test_accepts_frames_of_every_kind(rng: np.random.Generator) -> None:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    ref, cur = _table(rng, 300), _table(rng, 300)
    expected = wk.detect_drift(ref, cur).to_dict()
    for convert in (pd.DataFrame, pl.DataFrame, pa.table):
        got = wk.detect_drift(convert(ref), convert(cur)).to_dict()
        assert got["columns"]["x"]["p_value"] == pytest.approx(expected["columns"]["x"]["p_value"])
        assert got["columns"]["c"]["statistic"] == pytest.approx(
            expected["columns"]["c"]["statistic"])
    arr = np.column_stack([ref["x"], ref["y"]])
    assert set(wk.detect_drift(arr, arr).columns) == {"x0", "x1"}


def test_pandas_nullable_and_categorical_dtypes() -> None:
    import pandas as pd

    frame = pd.DataFrame({
        "i": pd.array([1, None, 3], dtype="Int64"),
        "s": pd.array(["a", None, "b"], dtype="string"),
        "k": pd.Categorical(["x", "y", None]),
        "t": pd.to_datetime(["2026-01-01", None, "2026-01-02"]),
        "b": [True, False, True],
    })
    cols = to_columns(frame)
    assert np.isnan(cols["i"][1]) and cols["i"].dtype == np.float64
    assert cols["s"].tolist() == ["a", None, "b"]
    assert cols["k"].tolist() == ["x", "y", None]
    assert cols["t"][0] == pytest.approx(1767225600.0) and np.isnan(cols["t"][1])
    assert cols["b"].dtype == bool


def test_read_table_csv_and_parquet(tmp_path, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    frame = pd.DataFrame(_table(rng, 20))
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    for name in ("a.csv", "a.parquet"):
        cols = read_table(tmp_path / name)
        assert cols["x"] == pytest.approx(frame["x"].to_numpy())
        assert cols["c"].tolist() == frame["c"].tolist()
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="directory"):
        read_table(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0}, "alpha must lie in"),
        ({"correction": "sidak"}, "correction must be one of"),
        ({"dataset_rule": "most"}, "dataset_rule must be one of"),
        ({"drift_share": 2}, "drift_share must lie in"),
        ({"large_n": 0}, "large_n must be a positive integer"),
        ({"bins": 1}, "bins must be an integer"),
        ({"thresholds": {"ks": 0.1}}, "thresholds: 'ks'"),
        ({"thresholds": {"psi": -1}}, "threshold must be a finite number"),
        ({"methods": {"x": "t_test"}}, r"methods\['x'\]: unknown method 't_test'"),
        ({"methods": {"nope": "ks"}}, "not in reference"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict, message: str,
                                    rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match=message):
        wk.detect_drift(_table(rng, 20), _table(rng, 20), **kwargs)


def test_bad_inputs_name_the_column(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="column 'b' has 2 rows"):
        to_columns({"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(ValueError, match="column 'a' must be one-dimensional"):
        to_columns({"a": np.zeros((2, 2))})
    with pytest.raises(TypeError, match="data must be"):
        to_columns(42)
    with pytest.raises(ValueError, match="missing from current: y"):
        wk.detect_drift(_table(rng, 20), {k: v for k, v in _table(rng, 20).items() if k != "y"})
    with pytest.raises(RuntimeError, match="call fit"):
        wk.ColumnDrift().test(_table(rng, 20))
    with pytest.raises(ValueError, match="reference must be one-dimensional"):
        wk.ks(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(TypeError, match="current is not numeric"):
        wk.ks(np.zeros(3), np.array(["a", "b", "c"], dtype=object))
    with pytest.raises(ValueError, match="fisher needs at most two categories"):
        wk.fisher(np.array(list("abc")), np.array(list("abc")))


def test_a_wrong_method_for_a_column_is_reported_not_raised(rng: np.random.Generator) -> None:
    report = wk.detect_drift(_table(rng, 50), _table(rng, 50), methods={"c": "ks"})
    assert "skipped" in report.columns["c"].details
    assert not report.columns["c"].drift


def test_type_mismatch_falls_back_to_categories(rng: np.random.Generator) -> None:
    ref = {"v": np.array([1.0, 2.0, 1.0, 2.0])}
    cur = {"v": np.array(["1.0", "2.0", "3.0", "3.0"], dtype=object)}
    r = wk.detect_drift(ref, cur).columns["v"]
    assert r.details["type_mismatch"] is True
