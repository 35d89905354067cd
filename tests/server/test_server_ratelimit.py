"""Rate limits per token and per client address, end to end over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest

from watchkeeper.server.ratelimit import RateLimiter


def _client(store: Any, **settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    return TestClient(create_app(Settings(system_metrics=False, **settings), store=store))


@pytest.fixture
def tokens(store: Any) -> dict[str, str]:
    from server_fixtures import unique_project

    project = unique_project()
    store.create_project(project)
    store.register_model(project, "m")
    return {
        "a": store.create_token(project, {"read"}),
        "b": store.create_token(project, {"read"}),
        "admin": store.create_token(project, {"admin"}),
    }


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_burst_gets_429_with_retry_after_and_other_tokens_pass(
    store: Any, tokens: dict[str, str]
) -> None:
    settings = {
        "rate_limit_per_second": 0.5,
        "rate_limit_burst": 5,
        "rate_limit_heavy_cost": 1,
        "public_metrics": True,
    }
    with _client(store, **settings) as client:
        codes = [
            client.get("/v1/models/m/aliases", headers=_h(tokens["a"])).status_code
            for _ in range(8)
        ]
        assert codes[:5] == [200] * 5
        assert codes[5:] == [429] * 3
        refused = client.get("/v1/models/m/aliases", headers=_h(tokens["a"]))
        assert refused.status_code == 429
        # a whole credit comes back in 2 s at 0.5/s (less of it is missing when the requests
        # took time): the header says so, in whole seconds
        assert refused.headers["retry-after"] in {"1", "2"}
        body = refused.json()
        assert set(body) == {"detail"}
        assert "WATCHKEEPER_RATE_LIMIT_PER_SECOND" in body["detail"]
        # another token has its own bucket
        assert client.get("/v1/models/m/aliases", headers=_h(tokens["b"])).status_code == 200
        metrics = client.get("/metrics").text
        assert 'watchkeeper_events_rejected_total{reason="rate_limited"} 4.0' in metrics


def test_the_bucket_refills(store: Any, tokens: dict[str, str]) -> None:
    settings = {"rate_limit_per_second": 0.5, "rate_limit_burst": 2, "rate_limit_heavy_cost": 1}
    with _client(store, **settings) as client:
        url, head = "/v1/models/m/aliases", _h(tokens["a"])
        codes = [client.get(url, headers=head).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:]
        time.sleep(2.1)  # at 0.5 per second: at least one whole credit back
        assert client.get(url, headers=head).status_code == 200
        assert client.get(url, headers=head).status_code == 429  # and only about one


def test_rate_limit_comes_before_the_body_is_read(store: Any, tokens: dict[str, str]) -> None:
    settings = {"rate_limit_per_second": 0.01, "rate_limit_burst": 1, "rate_limit_heavy_cost": 1}
    with _client(store, **settings) as client:
        head = _h(tokens["admin"])
        assert client.get("/v1/models/m/aliases", headers=head).status_code == 200
        # a body over the cap would get 413 if it were looked at; the limit answers first
        big = b"x" * (5 * 1024 * 1024)
        refused = client.put("/v1/models/m/monitors", content=big, headers=head)
        assert refused.status_code == 429


def test_heavy_routes_cost_more(store: Any, tokens: dict[str, str]) -> None:
    settings = {"rate_limit_per_second": 0.01, "rate_limit_burst": 12, "rate_limit_heavy_cost": 10}
    with _client(store, **settings) as client:
        head = _h(tokens["a"])
        body = {"reference": [1.0, 2.0, 3.0] * 10, "current": [1.0, 2.0, 3.0] * 10}
        first = client.post("/v1/tools/drift", json=body, headers=head)
        assert first.status_code != 429, first.text
        # 2 credits left: a heavy request (10) is refused, a light one (1) passes
        assert client.post("/v1/tools/drift", json=body, headers=head).status_code == 429
        assert client.get("/v1/models/m/aliases", headers=head).status_code == 200


def test_requests_without_a_token_are_limited_per_address(
    store: Any, tokens: dict[str, str]
) -> None:
    settings = {"rate_limit_anonymous_per_second": 0.01, "rate_limit_anonymous_burst": 3}
    with _client(store, **settings) as client:
        codes = [client.get("/healthz").status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        assert client.get("/healthz").status_code == 429
        # refused tokens are charged to the address too: guessing is slowed
        bad = client.get("/v1/models/m/aliases", headers=_h("wk_guess"))
        assert bad.status_code == 429 and "retry-after" in bad.headers
        # a valid token is counted on its own bucket, not the address's
        assert client.get("/v1/models/m/aliases", headers=_h(tokens["a"])).status_code == 200


def test_rate_limit_off(store: Any, tokens: dict[str, str]) -> None:
    with _client(store, rate_limit_per_second=0, rate_limit_burst=1) as client:
        head = _h(tokens["a"])
        assert {client.get("/v1/models/m/aliases", headers=head).status_code
                for _ in range(20)} == {200}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rate_limit_per_second": -1.0}, "rate_limit_per_second"),
        ({"rate_limit_per_second": float("nan")}, "rate_limit_per_second"),
        ({"rate_limit_burst": 0.5}, "rate_limit_burst"),
        ({"rate_limit_anonymous_burst": float("inf")}, "rate_limit_anonymous_burst"),
        ({"rate_limit_anonymous_per_second": -0.1}, "rate_limit_anonymous_per_second"),
        ({"rate_limit_heavy_cost": 0.0}, "rate_limit_heavy_cost"),
        ({"rate_limit_heavy_cost": 50.0, "rate_limit_burst": 20.0}, "rate_limit_burst"),
        ({"rate_limit_max_keys": 0}, "rate_limit_max_keys"),
    ],
)
def test_bad_rate_limit_settings_name_the_field(changes: dict[str, Any], field: str) -> None:
    from watchkeeper.server import Settings

    with pytest.raises(ValueError, match=field):
        Settings(**changes).validate()


def test_bad_rate_limit_environment_names_the_variable() -> None:
    from watchkeeper.server import Settings

    with pytest.raises(ValueError, match="WATCHKEEPER_RATE_LIMIT_BURST"):
        Settings.from_env({"WATCHKEEPER_RATE_LIMIT_BURST": "lots"})
    s = Settings.from_env({"WATCHKEEPER_RATE_LIMIT_PER_SECOND": "7.5"})
    assert s.rate_limit_per_second == 7.5


def test_limiter_memory_is_bounded_and_evicts_the_least_recent() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=100, clock=lambda: now[0])
    assert limiter.take("hot") == 0.0
    for i in range(1000):
        limiter.take(f"ip:{i}")
        if i % 10 == 0:
            assert limiter.take("hot") > 0  # kept (recently used), still empty
    assert len(limiter) == 100
    assert limiter.take("ip:0") == 0.0  # evicted long ago: a fresh (full) bucket


def test_limiter_spends_nothing_when_refusing() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=3, clock=lambda: now[0])
    assert limiter.take("a", 2) == 0.0
    assert limiter.take("a", 2) == pytest.approx(1.0)  # 1 credit left, 2 needed
    now[0] = 1.0
    assert limiter.take("a", 2) == 0.0  # the refusal did not spend the credit
    assert RateLimiter.retry_after(0.01) == 1 and RateLimiter.retry_after(2.2) == 3
