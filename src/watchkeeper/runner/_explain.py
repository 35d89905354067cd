"""``explain(store, project, model, finding_id)``: which features and segments account for a
stored finding, computed from the version's reference and the finding's window, and kept in
the finding's details.

Examples
--------
>>> import numpy as np
>>> from watchkeeper.store import Store
>>> from watchkeeper.window import Window
>>> rng = np.random.default_rng(0)
>>> store = Store("sqlite://")
>>> def batch(n, shift, t0):
...     region = rng.choice(["eu", "us"], n)
...     x = rng.normal(size=n) + shift * (region == "eu")
...     return Window.from_columns(ids=[f"{t0}-{i}" for i in range(n)], ts=t0 + np.arange(n),
...         features={"x": x, "y": rng.normal(size=n)}, tags={"region": region})
>>> store.register_model("p", "m")
>>> store.put_reference("p", "m", None, batch(2000, 0.0, 0))
>>> _ = store.log_events("p", "m", batch(2000, 2.0, 10_000))
>>> _ = store.add_findings("p", "m", [{"check": "feature_drift", "subject": "x",
...     "drift": True, "window_start": 10_000.0, "window_end": 12_000.0}])
>>> fid = store.list_findings("p", "m")[0]["id"]
>>> e = explain(store, "p", "m", fid)
>>> e["features"][0]["name"], e["segments"][0]["value"]
('x', 'eu')
>>> store.get_finding("p", "m", fid)["details"]["explanation"]["features"][0]["name"]
'x'
>>> store.close()
"""

from __future__ import annotations

import math
import time
from typing import Any

from watchkeeper.checks.explain import explain_shift
from watchkeeper.runner._run import SERVING, load_context

MAX_EXPLAIN_EVENTS = 200_000
"""Most events of the finding's window read (the newest, when it holds more)."""


def explain(
    store: Any,
    project: str,
    model: str,
    finding_id: int,
    *,
    save: bool = True,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Explain finding ``finding_id`` of ``model``: the domain classifier's features and each
    segment's share (see :mod:`watchkeeper.checks.explain`), as plain data; ``save`` keeps it
    in the finding's details (``details["explanation"]``).

    KeyError when the model has no such finding; ValueError when the finding has no window or
    there is no reference to compare with.
    """
    finding = store.get_finding(project, model, finding_id)
    start, end = finding.get("window_start"), finding.get("window_end")
    if start is None or end is None:
        raise ValueError(f"finding_id: finding {finding_id} has no window to explain")
    version = (finding.get("details") or {}).get("version")
    ctx = load_context(store, project, model, version=SERVING if version is None else version)
    if ctx is None:
        raise ValueError(f"model: {model!r} has no reference to explain a finding against")
    window = store.read_window(
        project,
        model,
        start=float(start),
        end=math.nextafter(float(end), math.inf),  # the window's last event is at its end
        last_n=MAX_EXPLAIN_EVENTS,
        version=version,
        embeddings=False,
    )
    if len(window) == 0:
        raise ValueError(f"finding_id: the window of finding {finding_id} holds no events now")
    op = ctx.prepared.op
    threshold = op.threshold if op is not None and op.threshold is not None else 0.5
    result = explain_shift(
        ctx.reference,
        window,
        subject=finding.get("subject"),
        performance="performance" in str(finding.get("check")),
        threshold=float(threshold),
        positive_label=ctx.config.positive_label,
        alpha=alpha,
        seed=seed,
    ).to_dict()
    result["finding_id"] = finding_id
    result["check"] = finding.get("check")
    result["computed_at"] = time.time()
    result["details"]["truncated"] = len(window) >= MAX_EXPLAIN_EVENTS
    if save:
        store.set_finding_explanation(project, model, finding_id, result)
    return result
