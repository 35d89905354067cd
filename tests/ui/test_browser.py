"""The console in a real browser: Debian's Chromium driven by Playwright.

Sign in, open the firing alert, reach its samples in two clicks, filter them, see the
thumbnails, add some to a dataset; another project's read token sees nothing. Screenshots go to
``$WATCHKEEPER_ARTEFACTS`` (default ``build/artefacts``). Skips without Chromium or Playwright.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_data import MODEL, Seeded, seed

from watchkeeper.store._console import console

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def artefacts() -> Path:
    path = Path(os.environ.get("WATCHKEEPER_ARTEFACTS", "build/artefacts")) / "console"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded, Any]]:
    import uvicorn

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    tmp = tmp_path_factory.mktemp("browser")
    store = Store(str(tmp / "wk.db"))
    seeded = seed(store, tmp / "payloads")
    app = create_app(
        Settings(system_metrics=False, monitor_metrics=False, payload_url=str(tmp / "payloads")),
        store=store,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", seeded, store
    server.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # a broken Chromium install skips, as a missing one does
            pytest.skip(f"chromium does not start: {exc}")
        yield b
        b.close()


def _sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/ui/")
    assert "/ui/login" in page.url
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url(f"{url}/ui/")


def test_from_alert_to_samples_to_a_dataset(
    served: tuple[str, Seeded, Any], browser: Any, artefacts: Path
) -> None:
    url, s, store = served
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    _sign_in(page, url, s.read)
    assert page.inner_text(".status.firing") == "firing"
    page.screenshot(path=str(artefacts / "1-overview.png"), full_page=True)

    page.click(f"a[href='/ui/models/{MODEL}']")
    page.wait_for_selector("#chart-flags .main-svg")  # Plotly drew it, from the package
    page.screenshot(path=str(artefacts / "2-model.png"), full_page=True)

    page.goto(f"{url}/ui/")
    page.click("a.alert-link")  # click 1: the firing alert
    page.wait_for_selector("a.samples-link")
    page.click("a.samples-link")  # click 2: its samples
    page.wait_for_selector("tr.sample")
    assert "flagged=yes" in page.url and f"start={s.day2[0]}" in page.url
    # The rows come before their thumbnails have loaded: wait (bounded) for one to render.
    loaded = "[...document.querySelectorAll('img.thumb')]" \
        ".filter(i => i.complete && i.naturalWidth > 0).length"
    page.wait_for_function(f"() => {loaded} > 0", timeout=15_000)
    assert page.evaluate(f"() => {loaded}") > 0
    page.screenshot(path=str(artefacts / "3-samples.png"), full_page=False)

    page.fill("#filter-feature", "brightness:0.75:")
    page.click("#apply")
    page.wait_for_selector("tr.sample")
    values = page.eval_on_selector_all(
        "tr.sample td:last-child .pill",
        "ps => ps.map(p => parseFloat(p.textContent.split('=')[1]))",
    )
    assert values and min(values) >= 0.75

    boxes = page.query_selector_all("input[name=ids]")[:3]
    picked = [b.get_attribute("value") for b in boxes]
    for b in boxes:
        b.check()
    page.fill("#dataset-name", "faded-scans")
    page.click("#add-to-dataset")
    page.wait_for_selector("#added-note")
    page.screenshot(path=str(artefacts / "4-dataset.png"), full_page=False)
    stored = console(store).get_curated_set(s.project, MODEL, "faded-scans")
    assert stored is not None and stored["ids"] == picked
    assert all(r.startswith(url) for r in requests), "the console fetched something elsewhere"
    context.close()


def test_another_projects_token_sees_nothing(
    served: tuple[str, Seeded, Any], browser: Any, artefacts: Path
) -> None:
    url, s, _ = served
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, url, s.other_read)
    assert page.query_selector(".status.firing") is None
    assert page.inner_text("#project") == s.other
    response = page.goto(f"{url}/ui/alerts/{s.alert_id}")
    assert response is not None and response.status == 404
    page.goto(f"{url}/ui/models/{MODEL}/samples")
    assert page.query_selector("tr.sample") is None
    page.screenshot(path=str(artefacts / "5-other-project.png"))
    context.close()
