"""Crash injection: the SDK process dies at every step of send, advance and renew of its spool;
no spooled batch is lost, none is sent twice beyond the one in flight, and ``flush`` never says
"all delivered" while a batch waits."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sdk_fixtures import LiveServer, free_port

from watchkeeper.sdk._spool import Outgoing, Spool

WORKER = Path(__file__).with_name("spool_crash_worker.py")


def _run_crash_matrix(tmp_path: Path, n_setup: int, n_more: int, size: int) -> None:
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("needs os.fork")
    from watchkeeper.store import Store

    store = Store(f"sqlite:///{tmp_path / 'wk.db'}")
    project = f"crash-{secrets.token_hex(3)}"
    store.create_project(project)
    store.register_model(project, "m")
    token = store.create_token(project, {"ingest", "read"})
    server = LiveServer(store, free_port())
    server.start()
    try:
        out = subprocess.run(
            [sys.executable, str(WORKER), server.url, token, str(tmp_path),
             str(n_setup), str(n_more), str(size)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-4000:]
        ids = store.read_window(project, "m", last_n=10**6).ids.tolist()
    finally:
        server.stop()
        store.close()
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    steps = rows[-1]["crash"]["steps"]
    assert not rows[-1]["crashed"] and len(rows) == steps + 1
    # every step of the spool's owner: fsync/rename before and after, sends before and after
    assert steps >= 4 * (n_setup + n_more), steps
    stored = Counter(str(i).split("-", 1)[0] for i in ids)
    expected = (n_setup + n_more + 1) * size
    for row in rows:
        k, recover = str(row["k"]), row["recover"]
        assert stored[k] == expected, f"crash at step {k}: {stored[k]} of {expected} stored"
        assert recover["flushed"] and recover["pending"] == 0, (k, recover)
        # only the batch in flight at the crash may be sent again
        assert recover["duplicates"] <= size, (k, recover)
        if row["crash"] is not None:
            assert row["crash"]["flushed"], row
            assert recover["accepted"] == size, f"flush said done at step {k}, yet {recover}"


def test_killed_at_every_step_of_the_spool_loses_nothing(tmp_path: Path) -> None:
    _run_crash_matrix(tmp_path, n_setup=1, n_more=1, size=2)


@pytest.mark.slow
def test_killed_at_every_step_with_longer_spools(tmp_path: Path) -> None:
    _run_crash_matrix(tmp_path, n_setup=6, n_more=4, size=20)


def test_an_offset_of_an_earlier_file_is_not_trusted(tmp_path: Path) -> None:
    # The process died after the emptied file was renamed in and before the offset was
    # rewritten: the stale offset is past the new file's batches and must not hide them.
    s = Spool(tmp_path, "http://x")
    s.open()
    s.append([Outgoing("events", "m", 1, b'{"big":"' + b"x" * 500 + b'"}')])
    head = s.head()
    assert head is not None
    s._save_offset(head[1])
    stale = s.offset_path.read_bytes()
    s._renew()  # ... and the crash comes here, before the offset of the new file is saved
    s.append([Outgoing("events", "m", 2, b"{}")])
    s.close()
    assert s.offset_path.read_bytes() == stale
    again = Spool(tmp_path, "http://x")
    again.open()
    assert again.pending() and again.pending_events() == 2
    head = again.head()
    assert head is not None and head[0].n == 2
    again.close()


def test_an_offset_beyond_the_file_is_not_trusted(tmp_path: Path) -> None:
    s = Spool(tmp_path, "http://x")
    s.open()
    s.append([Outgoing("labels", "m", 3, b"{}")])
    s.close()
    text = s.offset_path.read_text() if s.offset_path.exists() else ""
    generation = text.split(" ")[0] if text else s._generation
    s.offset_path.write_text(f"{generation} 999999")
    again = Spool(tmp_path, "http://x")
    again.open()
    assert again.pending_events() == 3
    again.close()


def test_a_spool_written_before_generations_is_replayed(tmp_path: Path) -> None:
    s = Spool(tmp_path, "http://x")
    line = b'{"kind": "events", "model": "m", "n": 4}\t{}\n'
    path = tmp_path / f"{s.key}-0.jsonl"
    path.write_bytes(line + line)
    (tmp_path / f"{s.key}-0.offset").write_text(str(len(line)))
    s.open()
    assert s.pending_events() == 4
    head = s.head()
    assert head is not None
    s.advance(head[1])
    assert not s.pending()
    s.close()
