"""Exported Prometheus rules pass promtool; the dashboard queries the series that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from watchkeeper.alerts.grafana import export_dashboard, grafana_dashboard
from watchkeeper.alerts.prometheus import alerting_rules, export_rules

REPO = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _promtool() -> str:
    if not Path(PROMTOOL).exists():
        pytest.skip("promtool is not installed")
    return PROMTOOL


def test_exported_rules_pass_promtool_check_and_unit_tests(tmp_path: Path) -> None:
    promtool = _promtool()
    rules, tests = export_rules(tmp_path)
    check = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        [promtool, "test", "rules", tests.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "SUCCESS" in test.stdout


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: break one expected value and promtool must say so."""
    promtool = _promtool()
    _, tests = export_rules(tmp_path)
    tests.write_text(tests.read_text().replace("16.67%", "99%"))
    test = subprocess.run(
        [promtool, "test", "rules", tests.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert test.returncode != 0


def test_committed_deploy_files_are_current(tmp_path: Path) -> None:
    export_rules(tmp_path)
    export_dashboard(tmp_path)
    for sub, name in [
        ("prometheus", "watchkeeper-rules.yml"),
        ("prometheus", "watchkeeper-rules.test.yml"),
        ("grafana", "watchkeeper-dashboard.json"),
    ]:
        committed = REPO / "deploy" / sub / name
        assert committed.read_text() == (tmp_path / name).read_text(), (
            f"deploy/{sub}/{name} is stale: run `watchkeeper alerts export-rules deploy`"
        )


def test_rules_and_dashboard_use_only_exposed_series() -> None:
    from prometheus_client import CollectorRegistry

    from watchkeeper.runner._collector import METRIC_NAMES
    from watchkeeper.server.metrics import ServerMetrics

    registry = CollectorRegistry()
    ServerMetrics(registry)
    exposed = set(METRIC_NAMES.values())
    for family in registry.collect():
        exposed.add(family.name)
        if family.type == "counter":
            exposed.add(family.name + "_total")
        if family.type == "histogram":
            exposed.update(family.name + x for x in ("_bucket", "_count", "_sum"))
        exposed.update(s.name for s in family.samples)
    text = json.dumps(alerting_rules()) + json.dumps(grafana_dashboard())
    used = set(re.findall(r"watchkeeper_[a-z_]+", text))
    assert used <= exposed, used - exposed
