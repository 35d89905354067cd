"""The ``watchkeeper drift`` command: table, JSON, overrides and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app


def _write(path: Path, n: int, shift: float, seed: int, drop: str | None = None) -> Path:
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(40 + shift * 10, 10, size=n),
        "income": rng.lognormal(10, 1, size=n),
        "country": rng.choice(["FR", "DE", "IT"], size=n, p=[0.5, 0.3, 0.2]),
    })
    if drop:
        frame = frame.drop(columns=[drop])
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return (_write(tmp_path / "ref.csv", 800, 0.0, 1),
            _write(tmp_path / "cur.parquet", 700, 0.5, 2))


def test_json_output_has_the_contract_shape(files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = CliRunner().invoke(create_app(), ["drift", str(files[0]), str(files[1]),
                                            "--format", "json", "--output", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report == json.loads(out.read_text())
    assert report["drift"] is True
    assert report["method"] == "any"
    assert set(report["columns"]) == {"age", "income", "country"}
    for col in report["columns"].values():
        assert {"method", "statistic", "p_value", "threshold", "drift"} <= set(col)
    assert report["columns"]["age"]["drift"] is True
    assert report["columns"]["income"]["drift"] is False
    assert report["columns"]["country"]["method"] == "chi2"


def test_table_output_and_overrides(files: tuple[Path, Path]) -> None:
    res = CliRunner().invoke(create_app(), ["drift", str(files[0]), str(files[1]),
                                            "--method", "age=psi", "--correction", "bh",
                                            "--fail-on-drift"])
    assert res.exit_code == 1  # drift with --fail-on-drift
    assert "psi" in res.output and "DRIFT" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.csv", "{cur}"], "no such file"),
        (["{ref}", "{cur}", "--method", "age"], "COLUMN=METHOD"),
        (["{ref}", "{cur}", "--method", "age=nonsense"], "unknown method 'nonsense'"),
        (["{ref}", "{cur}", "--correction", "sidak"], "correction must be one of"),
        (["{ref}", "{cur}", "--alpha", "2"], "alpha must lie in"),
        (["{ref}", "{bad}"], "cannot read"),
        (["{ref}", "{odd}"], "cannot tell the format"),
        (["{ref}", "{short}"], "column(s) missing from current: income"),
    ],
)
def test_errors_are_clear_and_nonzero(files: tuple[Path, Path], tmp_path: Path,
                                      args: list[str], message: str) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    short = _write(tmp_path / "short.csv", 50, 0.0, 3, drop="income")
    names = {"ref": files[0], "cur": files[1], "bad": bad, "odd": odd, "short": short}
    argv = ["drift", *[a.format(**names) for a in args]]
    res = CliRunner().invoke(create_app(), argv)
    assert res.exit_code == 2
    assert message in res.output


def test_extra_column_in_current_is_an_error(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.csv", 50, 0.0, 1, drop="country")
    cur = _write(tmp_path / "cur.csv", 50, 0.0, 2)
    res = CliRunner().invoke(create_app(), ["drift", str(ref), str(cur)])
    assert res.exit_code == 2
    assert "column(s) missing from reference: country" in res.output


def test_a_header_only_file_is_an_error_not_a_verdict(files: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    ref, _ = files
    empty = tmp_path / "empty.csv"
    empty.write_text("age,income,country\n")
    for args in ([str(ref), str(empty)], [str(empty), str(ref)]):
        result = CliRunner().invoke(create_app(), ["drift", *args])
        assert result.exit_code == 2, result.output
        assert "no rows" in result.output
        assert "no drift" not in result.output


def test_an_all_empty_column_is_data_quality_not_drift(files: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    import pandas as pd

    ref, _ = files
    frame = pd.read_csv(ref)
    frame["country"] = None  # a broken join: the column arrives empty
    cur = tmp_path / "cur.csv"
    frame.to_csv(cur, index=False)
    result = CliRunner().invoke(create_app(), ["drift", str(ref), str(cur), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    country = report["columns"]["country"]
    assert country["drift"] is False and country["details"]["no_values"] == "current"
    assert "data-quality" in country["details"]["skipped"]
    assert report["drift"] is False and report["n_drifted"] == 0
    table = CliRunner().invoke(create_app(), ["drift", str(ref), str(cur)])
    assert "Data quality" in table.output and "country (current)" in table.output
    # Every column empty: nothing to compare is an error.
    frame[["age", "income"]] = None
    frame.to_csv(cur, index=False)
    result = CliRunner().invoke(create_app(), ["drift", str(ref), str(cur)])
    assert result.exit_code == 2 and "every value of every column is missing" in result.output


def test_the_python_api_raises_on_no_data() -> None:
    from watchkeeper.stats import detect_drift

    ref = {"x": np.arange(10.0), "c": np.array(list("abababab ab"[:10]), dtype=object)}
    with pytest.raises(ValueError, match="current: no rows"):
        detect_drift(ref, {"x": np.empty(0), "c": np.empty(0, dtype=object)})
    with pytest.raises(ValueError, match="reference: no rows"):
        detect_drift({"x": np.empty(0)}, {"x": np.arange(3.0)})
    out = detect_drift(ref, {"x": np.full(5, np.nan), "c": np.array(["a"] * 5, dtype=object)})
    assert out.columns["x"].details["no_values"] == "current" and not out.columns["x"].drift
