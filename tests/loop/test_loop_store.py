"""What the loop keeps in the store, on SQLite and PostgreSQL: job outputs merged after the
job ended, and the loop's audit actions."""

from __future__ import annotations

import secrets
from typing import Any

import pytest


def test_job_outputs_merge_after_the_end_and_loop_actions_are_audited(store: Any) -> None:
    project = f"p{secrets.token_hex(4)}"
    store.register_model(project, "m")
    job = store.create_job(project, "m", spec={"a": 1})
    store.claim_job(project, job["id"], "h")
    store.finish_job(project, job["id"], "succeeded", outputs={"artifact": "x"})
    done = store.update_job_outputs(project, job["id"], {"gate": {"passed": True}})
    assert done["outputs"] == {"artifact": "x", "gate": {"passed": True}}
    assert done["state"] == "succeeded"  # merging outputs never changes the state
    done = store.update_job_outputs(project, job["id"], {"gate": {"passed": False}})
    assert done["outputs"]["gate"] == {"passed": False} and done["outputs"]["artifact"] == "x"
    with pytest.raises(ValueError, match="outputs"):
        store.update_job_outputs(project, job["id"], ["not", "a", "mapping"])
    with pytest.raises(KeyError):
        store.update_job_outputs(project, 10**9, {"gate": {}})
    store.audit("loop.gate_passed", project=project, actor="watchkeeper", target="m",
                details={"job": job["id"]})  # fmt: skip
    store.audit("job.queue", project=project, actor="token:abc", target="m")
    actions = [a["action"] for a in store.audit_log(project)]
    assert actions == ["job.queue", "loop.gate_passed"]
    with pytest.raises(ValueError, match="unknown audit action"):
        store.audit("loop.made_up", project=project)
