"""Promotion, the watch period after it, and automatic rollback; every step notified and kept.

Promotion moves the ``champion`` alias (the registry records the move: from, to, when, who,
why). A watch period follows (``rollback.watch`` of the plan): while it lasts, an
operating-point finding whose verdict the plan lists (``model_change`` by default) or, with
``rollback.gate_breach``, a realised-performance finding that breached, in a window that started
after the promotion, rolls the alias back at once. Each step goes to the plan's sinks and to the
loop's event log (:func:`loop_events`), beside the alias history.
"""

from __future__ import annotations

import time
from typing import Any

from watchkeeper.checks._config import parse_duration
from watchkeeper.loop._plan import get_plan
from watchkeeper.loop._triggers import loop_state, save_loop_state

MAX_EVENTS = 200


def notify(
    store: Any, project: str, model: str, step: str, summary: str, *,
    severity: str = "info", details: dict[str, Any] | None = None, now: float | None = None,
    policy: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Record a loop step in the model's event log and the audit log (``loop.<step>``) and
    send it to the plan's sinks.

    A sink that fails is noted in the event, never raised: the loop's state must not depend on
    a webhook being up.
    """
    from watchkeeper.alerts import AlertEvent, sink_from_dict

    now = time.time() if now is None else float(now)
    event = {"at": now, "step": step, "summary": summary, "details": details or {}}
    alert = {
        "key": f"loop:{model}:{step}:{int(now)}", "rule": f"loop.{step}", "model": model,
        "project": project, "status": "firing", "severity": severity,
        "summary": f"{model}: {summary}", "started_at": now, "updated_at": now,
        "subjects": [], "labels": {"step": step}, "findings": [],
    }  # fmt: skip
    found = get_plan(store, project, model)
    errors = []
    for cfg in found[1].monitors.sinks if found else []:
        try:
            sink_from_dict(cfg, policy).send([AlertEvent("firing", alert)])
        except Exception as exc:  # a sink's failure is recorded, not raised
            errors.append(f"{cfg.get('type')}: {exc}")
    if errors:
        event["sink_errors"] = errors
    if hasattr(store, "audit"):
        actor = str((details or {}).get("actor") or "watchkeeper")
        store.audit(f"loop.{step}", project=project, actor=actor, target=model,
                    details={"summary": summary[:2000], **(details or {})})  # fmt: skip
    state = loop_state(store, project, model)
    state["events"] = [*(state.get("events") or [])[-(MAX_EVENTS - 1):], event]
    save_loop_state(store, project, model, state)
    return event


def loop_events(store: Any, project: str, model: str) -> list[dict[str, Any]]:
    """The loop's steps for a model, oldest first (the newest 200)."""
    return list(loop_state(store, project, model).get("events") or [])


def promote(
    store: Any, project: str, model: str, version: str, *, actor: str = "watchkeeper",
    reason: str = "promoted", now: float | None = None, policy: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Point ``champion`` at ``version``, start the watch period, notify; returns the move.

    ``policy``: the operator's :class:`~watchkeeper.alerts.SinkPolicy` for the notification.
    """
    now = time.time() if now is None else float(now)
    move = store.set_alias(project, model, "champion", version, actor=actor, reason=reason)
    found = get_plan(store, project, model)
    watch = "3d"
    if found is not None and found[1].retraining is not None:
        watch = found[1].retraining["rollback"]["watch"]
    state = loop_state(store, project, model)
    state["watch"] = {
        "version": version, "previous": move.get("from"), "since": now,
        "until": now + parse_duration(watch, "rollback.watch"),
    }  # fmt: skip
    state.pop("pending", None)
    save_loop_state(store, project, model, state)
    notify(
        store, project, model, "promoted",
        f"{version} is the champion (was {move.get('from')}); watching for {watch}",
        details={"move": move, "actor": actor, "reason": reason}, now=now, policy=policy,
    )  # fmt: skip
    return dict(move)


def check_watch(
    store: Any, project: str, model: str, *, now: float | None = None, policy: Any = None
) -> dict[str, Any] | None:
    """During the watch period, roll back on a listed verdict or a performance breach.

    Returns ``{"outcome": "rolled_back" | "confirmed", ...}`` when the watch ended now, else
    ``None``.
    """
    now = time.time() if now is None else float(now)
    state = loop_state(store, project, model)
    watch = state.get("watch")
    if not watch:
        return None
    found = get_plan(store, project, model)
    rollback: dict[str, Any] = {"verdicts": ["model_change"], "gate_breach": True}
    if found is not None and found[1].retraining is not None:
        rollback = found[1].retraining["rollback"]
    since = float(watch["since"])
    cause = None
    for f in store.list_findings(project, model, since=since, check="operating_point"):
        verdict = (f.get("details") or {}).get("verdict")
        starts = f.get("window_start")
        after = starts is None or starts >= since
        if f.get("drift") and verdict in rollback["verdicts"] and after:
            cause = f"operating point verdict {verdict} in the window ending {f.get('window_end')}"
            break
    if cause is None and rollback["gate_breach"]:
        for f in store.list_findings(project, model, since=since, check="realised_performance"):
            starts = f.get("window_start")
            if f.get("drift") and (starts is None or starts >= since):
                cause = f"realised {f.get('subject')} breached in the window ending " \
                        f"{f.get('window_end')}"
                break
    if cause is not None:
        move = store.rollback_alias(project, model, "champion", actor="watchkeeper",
                                    reason=f"automatic rollback: {cause}")  # fmt: skip
        state = loop_state(store, project, model)
        state.pop("watch", None)
        save_loop_state(store, project, model, state)
        notify(store, project, model, "rolled_back",
               f"champion rolled back {move['from']} -> {move['to']}: {cause}",
               severity="critical", details={"move": move}, now=now, policy=policy)  # fmt: skip
        return {"outcome": "rolled_back", "cause": cause, "move": move}
    if now >= float(watch["until"]):
        state = loop_state(store, project, model)
        state.pop("watch", None)
        save_loop_state(store, project, model, state)
        notify(store, project, model, "confirmed",
               f"{watch['version']} stays the champion: the watch period passed without a "
               "rollback cause", now=now, policy=policy)  # fmt: skip
        return {"outcome": "confirmed", "version": watch["version"]}
    return None
