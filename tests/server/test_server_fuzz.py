"""Schemathesis against the app's own OpenAPI: every operation, four callers (no token, read,
ingest, admin), a fixed seed. No 5xx, and every reply as the document says (status code,
content type, body schema).

CI runs about 300 cases; ``make fuzz`` sets ``WATCHKEEPER_FUZZ_EXAMPLES`` for 5,000+.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES = int(os.environ.get("WATCHKEEPER_FUZZ_EXAMPLES", "3"))
"""Generated cases per (operation, caller, positive or negative inputs): about 300 in all at 3;
``make fuzz`` sets 30 and ``WATCHKEEPER_FUZZ_DEEP=1`` for 5,000+ (the run prints the count)."""
SEED = 20261201
DEEP = os.environ.get("WATCHKEEPER_FUZZ_DEEP", "") not in ("", "0")


def _app_and_tokens(tmp: str) -> tuple[Any, dict[str, dict[str, str]]]:
    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    store = Store(f"sqlite:///{tmp}/fuzz.db")
    store.create_project("fuzz")
    store.register_model("fuzz", "m")
    headers: dict[str, dict[str, str]] = {"none": {}}
    for scope in ("read", "ingest", "admin"):
        token = store.create_token("fuzz", {scope})
        headers[scope] = {"Authorization": f"Bearer {token}"}
    app = create_app(
        Settings(system_metrics=False, max_body_bytes=1_000_000, max_tool_body_bytes=200_000),
        store=store,
    )
    return app, headers


_TMP = os.environ.get("WATCHKEEPER_FUZZ_DIR") or __import__("tempfile").mkdtemp(prefix="wkfuzz")
APP, HEADERS = _app_and_tokens(_TMP)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Both positive (valid by the schema) and negative (invalid) inputs, each up to EXAMPLES; the
# deep run adds schemathesis' coverage phase (boundary values of every parameter).
SCHEMA.config.generation.update(max_examples=EXAMPLES)
SCHEMA.config.phases.update(phases=["examples", "fuzzing", *(["coverage"] if DEEP else [])])
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


CALLS = {"cases": 0, "4xx": 0}


@pytest.fixture(scope="module", autouse=True)
def _lifespan() -> Iterator[None]:
    from fastapi.testclient import TestClient

    with TestClient(APP):
        yield
    print(f"\nfuzz: {CALLS['cases']} cases, {CALLS['4xx']} answered 4xx, none 5xx")


@pytest.mark.fuzz
@pytest.mark.parametrize("caller", ["none", "read", "ingest", "admin"])
@SCHEMA.parametrize()
@hypothesis.seed(SEED)
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    database=None,
)
def test_fuzz(case: Any, caller: str) -> None:
    headers = {**(case.headers or {}), **HEADERS[caller]}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    CALLS["cases"] += 1
    CALLS["4xx"] += 400 <= response.status_code < 500
