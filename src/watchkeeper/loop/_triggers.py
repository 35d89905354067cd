"""When to retrain: the plan's triggers evaluated against what the monitors stored.

Each trigger kind reads the store only: firing alerts of the named rules; operating-point
findings whose verdict is listed (``model_change`` by default, never ``prior_shift`` unless the
plan says so); realised-performance findings under the bound; the cron schedule; labelled events
since the last retraining. A retraining starts when any fires and the cooldown since the last one
has passed; the loop's memory (the last trigger time) is kept in the store's state.
"""

from __future__ import annotations

import time
from typing import Any

from watchkeeper.checks._config import parse_duration
from watchkeeper.loop._plan import Cron, get_plan


def _state_key(model: str) -> str:
    return f"loop:{model}"


def loop_state(store: Any, project: str, model: str) -> dict[str, Any]:
    """The loop's memory for a model: last trigger, last job, promotion under watch."""
    return store.get_state(project, _state_key(model)) or {}


def save_loop_state(store: Any, project: str, model: str, state: dict[str, Any]) -> None:
    """Store the loop's memory for a model."""
    store.put_state(project, _state_key(model), state)


def due_triggers(
    store: Any, project: str, model: str, retraining: dict[str, Any], *, now: float | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The triggers that fired in ``(since, now]`` (``since``: the last retraining, else a day)."""
    t = retraining["triggers"]
    now = time.time() if now is None else float(now)
    since = now - 86400.0 if since is None else float(since)
    fired: list[dict[str, Any]] = []
    if t["alerts"]:
        for alert in store.list_alerts(project, model=model, status="firing"):
            if alert.get("rule") in t["alerts"] and float(alert.get("updated_at") or 0) > since:
                fired.append({"kind": "alert", "rule": alert["rule"],
                              "summary": alert.get("summary")})  # fmt: skip
    def in_range(f: dict[str, Any]) -> bool:
        end = f.get("window_end")
        return end is None or since < float(end) <= now

    if t["verdicts"]:
        for f in store.list_findings(project, model, since=since, check="operating_point"):
            if not in_range(f):
                continue
            verdict = (f.get("details") or {}).get("verdict")
            if f.get("drift") and verdict in t["verdicts"]:
                fired.append({"kind": "verdict", "verdict": verdict,
                              "window_end": f.get("window_end")})  # fmt: skip
                break
    rp = t["realised_performance"]
    if rp is not None:
        for f in store.list_findings(project, model, since=since, check="realised_performance"):
            if not in_range(f):
                continue
            value = (f.get("details") or {}).get("value", f.get("statistic"))
            if f.get("subject") == rp["metric"] and value is not None and value < rp["below"]:
                fired.append({"kind": "realised_performance", "metric": rp["metric"],
                              "value": value, "below": rp["below"]})  # fmt: skip
                break
    if t["schedule"] is not None and Cron.parse(t["schedule"]).due(since, now):
        fired.append({"kind": "schedule", "schedule": t["schedule"]})
    if t["new_labels"] is not None:
        w = store.read_window(project, model, start=since, end=now, embeddings=False)
        n = 0 if w.labels is None else sum(v is not None for v in w.labels)
        if n >= t["new_labels"]:
            fired.append({"kind": "new_labels", "labelled": n, "needed": t["new_labels"]})
    return fired


def maybe_retrain(
    store: Any, project: str, model: str, *, now: float | None = None, force: bool = False
) -> dict[str, Any] | None:
    """Queue a retraining job when a trigger fired and the cooldown passed (or ``force``).

    Returns the queued job, or ``None`` when nothing is due (or a job is already active).
    """
    found = get_plan(store, project, model)
    if found is None:
        return None
    retraining = found[1].retraining
    if retraining is None or (not retraining["enabled"] and not force):
        return None
    now = time.time() if now is None else float(now)
    state = loop_state(store, project, model)
    last = state.get("last_trigger_at")
    if force:
        fired = [{"kind": "manual"}]
    else:
        if last is not None and now - last < parse_duration(retraining["cooldown"], "cooldown"):
            return None
        fired = due_triggers(store, project, model, retraining, now=now, since=last)
        if not fired:
            return None
    spec = {"dataset": retraining["dataset"], "trainer": retraining["trainer"], "now": now,
            "strategy": retraining.get("strategy", "transfer"),
            "ensemble": retraining.get("ensemble")}  # fmt: skip
    try:
        job = store.create_job(project, model, spec=spec, trigger={"fired": fired, "at": now})
    except ValueError:
        return None  # a job is already queued or running
    state.update({"last_trigger_at": now, "last_job": job["id"]})
    save_loop_state(store, project, model, state)
    return dict(job)
