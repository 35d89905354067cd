"""Hostile inputs: what the worst requests cost the server (issue 11).

1. The flag band of ``/v1/tools/expect`` by volume: the exact convolution (forced, where it can
   still run) and what ships (exact below 200,000 likely values, Cornish-Fisher above), median
   of 5 calls each. Before, the cost grew with the square root of the volume and 10^18 took
   21 GB; now it is flat.
2. A 15 MiB body without a token: time to the 401, median of 5 (before: parsed first, 5.4 s).
3. The largest body a read token may send to the drift tool (4 MiB) with a token: time to the
   answer, and ``/healthz`` latency meanwhile.

No peer ships an HTTP server with these paths, so there is no peer column.

Run: ``.venv/bin/python -m benchmarks.hardening``
"""

from __future__ import annotations

import statistics
import threading
import time

from benchmarks._common import machine_line, median_time, write_section

REPEATS = 5


def _band_rows() -> list[str]:
    import watchkeeper.estimation._operating as operating
    from watchkeeper.estimation import OperatingPoint, expect_flags

    op = OperatingPoint(None, 0.9, 0.02, 500, 4500)
    expect_flags(op, 0.1, 1000)  # imports scipy
    rows = []
    shipped_cutoff = operating.EXACT_SUPPORT
    for volume in (10**3, 10**5, 10**6, 10**7, 10**8, 10**12, 10**18):
        shipped, e = median_time(lambda v=volume: expect_flags(op, 0.1, v), REPEATS)
        exact = "—"
        if volume <= 10**7:
            operating.EXACT_SUPPORT = 10**12
            try:
                t, _ = median_time(lambda v=volume: expect_flags(op, 0.1, v), REPEATS)
                exact = f"{t * 1000:.1f}"
            finally:
                operating.EXACT_SUPPORT = shipped_cutoff
        band = f"{e.low:,} – {e.high:,}"
        rows.append(f"| {volume:.0e} | {exact} | {shipped * 1000:.1f} | {e.method} | {band} |")
    return rows


def _http_rows() -> list[str]:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    store = Store("sqlite://")
    store.create_project("p")
    read = {"Authorization": "Bearer " + store.create_token("p", {"read"})}
    client = TestClient(create_app(Settings(system_metrics=False), store=store))
    client.__enter__()
    body15 = b'{"reference": {"x": [' + b"1.0," * (15 * 2**20 // 4) + b'1.0]}, "current": {}}'
    headers = {"Content-Type": "application/json"}
    t401, r = median_time(
        lambda: client.post("/v1/tools/drift", content=body15, headers=headers), REPEATS
    )
    assert r.status_code == 401
    n = 190_000  # about 3.9 MB of JSON: under the 4 MiB cap
    ref = [round(0.001 * (i % 997), 3) for i in range(n)]
    cur = [round(0.001 * ((i * 7) % 991), 3) for i in range(n)]
    big = {"reference": {"x": ref}, "current": {"x": cur}}
    waits: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            start = time.perf_counter()
            client.get("/healthz")
            waits.append(time.perf_counter() - start)
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    tdrift, r = median_time(lambda: client.post("/v1/tools/drift", json=big, headers=read), 3)
    done.set()
    poller.join()
    assert r.status_code == 200, r.text
    return [
        f"| 15 MiB body, no token → 401 | {t401 * 1000:.0f} ms (median of 5) |",
        f"| drift tool, 2 x {n:,} values (≈3.9 MB body) with a read token | "
        f"{tdrift * 1000:.0f} ms (median of 3) |",
        f"| `/healthz` meanwhile ({len(waits)} probes) | median "
        f"{statistics.median(waits) * 1000:.1f} ms, max {max(waits) * 1000:.1f} ms |",
    ]


def main() -> None:
    band = _band_rows()
    http = _http_rows()
    text = "\n".join(
        [
            "## Hostile inputs (issue 11)",
            "",
            machine_line(),
            "",
            "Flag band of `expect_flags` (validation counts 500/4500, prevalence 0.1), median of "
            f"{REPEATS} calls, milliseconds. *exact* forces the convolution at every volume (what "
            "ran before; past 10^7 it needs gigabytes); *shipped* switches to Cornish-Fisher past "
            "200,000 likely values.",
            "",
            "| volume | exact (ms) | shipped (ms) | method | 95% band |",
            "|---|---|---|---|---|",
            *band,
            "",
            "| request | time |",
            "|---|---|",
            *http,
            "",
            "Reproduce: `.venv/bin/python -m benchmarks.hardening`",
        ]
    )
    write_section("hardening", text)
    print(text)


if __name__ == "__main__":
    main()
