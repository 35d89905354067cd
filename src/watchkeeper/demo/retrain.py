"""The demo's last act: the loop closes after the new scanner's model_change alerts.

The plan's trigger (a ``model_change`` verdict; the prior-shift day triggers nothing) queues a
retraining job. Reviewers label a sample of the scanner days; the dataset builder takes those
labelled events (curated by tag ``scanner: new``) plus generated faded-scanner documents (the
generator hook); the job fine-tunes the champion's weights in a subprocess (transfer: the
trainer starts from the champion's artifact); the gate compares both models on the original
validation set and the recent labelled slice; the challenger runs in shadow for a day
(:class:`watchkeeper.shadow.Shadow`); it is promoted, and the next day is monitored against its
own operating point.

:func:`fine_tune` and :func:`faded_documents` are the trainer and the generator the plan names.
The documents' pixels travel as payloads: a ``.npz`` file by event id (``WK_DEMO_PAYLOADS``)
and, for generated documents, a ``payload`` column of the training set.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.demo.documents import generate_documents


def faded_documents(train: Any, n: int, seed: int) -> Any:
    """The generator hook: ``n`` synthetic documents, two thirds from the new scanner."""
    import pandas as pd

    new = generate_documents(2 * n // 3, photocopy_share=0.3, new_scanner_share=1.0, seed=seed)
    old = generate_documents(n - 2 * n // 3, photocopy_share=0.3, seed=seed + 1)
    images = np.concatenate([new.images, old.images])
    labels = np.concatenate([new.labels, old.labels])
    scanner = np.concatenate([new.scanner, old.scanner])
    return pd.DataFrame({
        "label": labels.astype(np.int64),
        "tag.scanner": scanner,
        "payload": [img.tobytes() for img in images],
    })


def _images_of(frame: Any, payloads: Any) -> tuple[np.ndarray, np.ndarray]:
    from watchkeeper.demo.documents import SIZE

    images, labels = [], []
    for row in frame.itertuples(index=False):
        payload = getattr(row, "payload", None)
        if isinstance(payload, bytes | bytearray):
            images.append(np.frombuffer(payload, dtype=np.uint8).reshape(SIZE, SIZE, 3))
        elif str(row.id) in payloads:
            images.append(payloads[str(row.id)])
        else:
            continue
        labels.append(int(float(row.label)))
    return np.stack(images), np.asarray(labels)


def fine_tune(data: dict[str, str]) -> str:
    """The trainer: the champion's weights, fine-tuned on the training set; returns the artifact.

    Runs in the job's subprocess. Adam at a tenth of the original peak rate for two epochs:
    enough to adapt to the new scanner without forgetting the old one (the generated documents
    keep a third from the standard scanner).
    """
    import pandas as pd

    from watchkeeper.demo.model import build_model, require_torch, to_tensor

    torch = require_torch()
    torch.set_num_threads(int(os.environ.get("WK_DEMO_THREADS", "2")))
    train = pd.read_parquet(data["train"])
    with np.load(os.environ["WK_DEMO_PAYLOADS"]) as npz:
        payloads = {k: npz[k] for k in npz.files}
    images, labels = _images_of(train, payloads)
    model = build_model(0)
    model.load_state_dict(torch.load(data["champion"], weights_only=True))
    x, y = to_tensor(images), torch.from_numpy(labels.astype(np.float32))
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.train()
    for epoch in range(int(os.environ.get("WK_DEMO_EPOCHS", "3"))):
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            optimiser.zero_grad()
            loss = loss_fn(model(x[idx]).squeeze(1), y[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        sys.stdout.write(f"epoch {epoch + 1}: loss {total / len(x):.4f}\n")
    model.eval()
    out = Path(data["output"]) / "challenger.pt"
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    out.write_bytes(buffer.getvalue())
    sys.stdout.write(f"fine-tuned on {len(x)} documents in {time.perf_counter() - start:.1f} s\n")
    sys.stdout.flush()
    return str(out)


def load_weights(path: str | Path) -> Any:
    """A model with the weights of ``path``."""
    from watchkeeper.demo.model import build_model, require_torch

    torch = require_torch()
    model = build_model(0)
    model.load_state_dict(torch.load(str(path), weights_only=True))
    model.eval()
    return model


DAY = 86400.0


def _serve_day(
    net: Any, monitor: Any, docs: Any, ids: np.ndarray, ts: np.ndarray, shadow: Any = None
) -> None:
    """The champion scores a day through its monitoring hook; the shadow gets a mirror."""
    from watchkeeper.demo.model import require_torch, to_tensor
    from watchkeeper.demo.scenario import FEATURES
    from watchkeeper.integrations.images import image_properties

    torch = require_torch()
    props = image_properties(docs.images)
    with torch.no_grad():
        for i in range(0, len(ids), 250):
            sl = slice(i, i + 250)
            tags = {"branch": docs.branch[sl], "scanner": docs.scanner[sl]}
            monitor.annotate(ids=ids[sl], ts=ts[sl], tags=tags,
                             features={k: props[k][sl] for k in FEATURES})  # fmt: skip
            net(to_tensor(docs.images[sl]))
            if shadow is not None:
                shadow.submit(ids[sl], docs.images[sl], ts=ts[sl], tags=tags)


def close_the_loop(
    *, out: Any, store: Any, admin: Any, client: Any, hook: Any, net: Any, monitor: Any,
    weights: Path, op: Any, cfg: Any, reference: Any, val: Any, val_props: Any, base: float,
    day_docs: dict[int, Any], reports: list[Any], rng: np.random.Generator, artifacts: Path,
    report_day: Any, narrate_day: Any, estimator_for: Any,
) -> dict[str, Any]:  # fmt: skip
    """Run the loop after the scheduled days; print each phase and how long it took."""
    from watchkeeper.demo.model import predict
    from watchkeeper.demo.scenario import FEATURES, MODEL, PROJECT, VERSION
    from watchkeeper.estimation import OperatingPoint
    from watchkeeper.integrations.torch import monitor_module
    from watchkeeper.loop import EvalSet, MaintenancePlan, evaluate_gate, shadow_report
    from watchkeeper.loop._jobs import run_job
    from watchkeeper.loop._promote import check_watch, promote
    from watchkeeper.loop._triggers import due_triggers, maybe_retrain
    from watchkeeper.shadow import Shadow, shadow_model
    from watchkeeper.window import Window

    timings: dict[str, float] = {}
    result: dict[str, Any] = {"timings": timings}
    days = int(cfg.days)
    end_of_days = base + days * DAY
    t = time.perf_counter()
    out.print("\n[bold]4. Closing the loop.[/]")
    payload_file = artifacts / "payloads.npz"
    config = store.get_monitor_config(PROJECT, MODEL) or {}
    plan = {**config, "retraining": {
        "triggers": {"verdicts": ["model_change"]},
        "cooldown": "7d",
        "dataset": {
            "since": f"{days + 1}d", "eval_fraction": 0.3, "reference": "eval",
            "curated": {"tags": {"scanner": "new"}},
            "generator": "watchkeeper.demo.retrain:faded_documents",
            "generated": 500 if cfg.small else 800, "min_labelled": 50,
        },
        "trainer": {
            "callable": "watchkeeper.demo.retrain:fine_tune", "timeout": "10m",
            "env": {"WK_DEMO_PAYLOADS": str(payload_file), "WK_DEMO_EPOCHS": "2"},
        },
        "gate": {
            "target_tpr": 0.9, "alpha": 0.05, "n_bootstrap": 500,
            "rules": [
                {"metric": "accuracy", "test": "superior", "sets": ["recent"]},
                {"metric": "auc", "test": "not_worse", "margin": 0.02, "sets": ["validation"]},
                {"metric": "fpr_at_tpr", "test": "not_worse", "margin": 0.02,
                 "sets": ["validation"]},
            ],
            "segments": None,
        },
        "shadow": {"duration": "1d", "alpha": 0.05},
        "promotion": "auto",
        "rollback": {"watch": "2d", "verdicts": ["model_change"]},
    }}  # fmt: skip
    from watchkeeper.alerts import SinkPolicy

    policy = SinkPolicy.parse(hook.address, None)  # the demo server's: its webhook only
    reply = admin.put(f"/v1/models/{MODEL}/plan", json=plan)
    if reply.status_code >= 300:
        raise RuntimeError(f"PUT plan failed: {reply.status_code} {reply.text[:300]}")
    retraining = MaintenancePlan.from_dict(plan).validate(policy).retraining
    assert retraining is not None
    prior = [r for r in reports if r.act == "twice the photocopies"]
    if prior:
        p_start = base + (prior[0].day - 1) * DAY
        quiet = due_triggers(store, PROJECT, MODEL, retraining, now=p_start + DAY, since=p_start)
        out.print(f"   Maintenance plan stored over HTTP (trigger: a [bold]model_change[/] "
                  f"verdict). The prior-shift day {prior[0].day} triggers "
                  f"{quiet or '[green]nothing[/]'}: more photocopies is the "
                  "world changing, not the model.")  # fmt: skip
        result["prior_shift_triggers"] = quiet
    job = maybe_retrain(store, PROJECT, MODEL, now=end_of_days)
    if job is None:
        out.print("   No trigger fired: nothing to retrain.")
        return result
    fired = ", ".join(
        f"{f['kind']} {f.get('verdict', f.get('rule', ''))}".strip()
        for f in job["trigger"]["fired"]
    )
    out.print(f"   Trigger fired ({fired}): retraining job {job['id']} queued.")
    # Reviewers label a sample of the scanner days; the pixels go to the payload store.
    payloads: dict[str, np.ndarray] = {}
    n_labels = 0
    for _d, (ids, docs, _ts) in sorted(day_docs.items()):
        pick = rng.random(len(ids)) < 0.3
        client.log_labels(MODEL, ids[pick], docs.labels[pick].astype(np.int64))
        n_labels += int(pick.sum())
        payloads.update({str(i): img for i, img in zip(ids, docs.images, strict=True)})
    client.flush(timeout=60)
    np.savez(payload_file, **payloads)  # type: ignore[arg-type]
    out.print(f"   Reviewers labelled {n_labels:,} documents of the scanner days "
              f"({len(day_docs)} day(s)).")  # fmt: skip
    timings["trigger and labels"] = time.perf_counter() - t

    # --- the job: dataset + fine-tuning in a subprocess ----------------------------------------
    t = time.perf_counter()
    done = run_job(store, PROJECT, job["id"], workdir=artifacts / "jobs",
                   champion_artifact=str(weights))  # fmt: skip
    timings["dataset and training job"] = time.perf_counter() - t
    if done["state"] != "succeeded":
        out.print(f"   [red]Job {done['id']} {done['state']}[/]: {done.get('error')}")
        out.print(done.get("log", "")[-1500:])
        result["job"] = done["state"]
        return result
    ds = done["outputs"]["dataset"]
    tr, ev = ds["files"]["train"], ds["files"]["eval"]
    out.print(
        f"   Dataset {ds['fingerprint'][:12]}: train {tr['rows']:,} rows "
        f"({', '.join(f'{k} {v}' for k, v in tr['sources'].items())}), eval {ev['rows']:,} "
        f"({', '.join(f'{k} {v}' for k, v in ev['sources'].items())}); split by time, no id "
        "in both."
    )
    log_tail = [ln for ln in done["log"].splitlines() if ln.startswith("fine-tuned")]
    out.print(f"   Job {done['id']} [green]succeeded[/]: champion weights fine-tuned in a "
              f"subprocess ({log_tail[-1] if log_tail else 'done'}); "
              f"{timings['dataset and training job']:.0f} s.")  # fmt: skip
    result["job"] = "succeeded"

    # --- the gate --------------------------------------------------------------------------------
    t = time.perf_counter()
    import pandas as pd

    challenger = load_weights(done["outputs"]["artifact"])
    chall_val, chall_val_emb = predict(challenger, val.images)
    evaluation = pd.read_parquet(ds["eval"])
    recent = evaluation[evaluation["source"] == "production"]
    recent_images = np.stack([payloads[str(i)] for i in recent["id"]])
    chall_recent, _ = predict(challenger, recent_images)
    y_recent = recent["label"].astype(float).astype(np.int64).to_numpy()
    gate = evaluate_gate(
        {"validation": EvalSet(val.labels, reference.scores, chall_val),
         "recent": EvalSet(y_recent, recent["score"].to_numpy(np.float64), chall_recent,
                           tags={"scanner": recent["tag.scanner"].to_numpy()})},
        retraining["gate"], champion_threshold=float(op.threshold),
    )  # fmt: skip
    timings["gate"] = time.perf_counter() - t
    for line in gate.summary():
        line = line.replace("PASSED", "[green]PASSED[/]").replace("FAILED", "[red]FAILED[/]")
        out.print("   " + line)
    result["gate"] = gate.to_dict()
    if not gate.passed:
        out.print("   The challenger stays out of production.")
        return result
    threshold = float(gate.thresholds["challenger"])
    op2 = OperatingPoint.from_scores(chall_val, val.labels, threshold=threshold)
    version2 = "cnn-v2"
    sha2 = hashlib.sha256(Path(done["outputs"]["artifact"]).read_bytes()).hexdigest()
    reply = admin.post(f"/v1/models/{MODEL}/versions", json={
        "version": version2, "artifact_uri": Path(done["outputs"]["artifact"]).as_uri(),
        "sha256": sha2, "operating_point": op2.to_dict(),
        "expected_prevalence": cfg.prevalence, "expected_volume": float(cfg.volume),
        "window": "1d",
    })  # fmt: skip
    if reply.status_code >= 300:
        raise RuntimeError(f"POST version failed: {reply.status_code} {reply.text[:300]}")
    reference2 = Window.from_columns(
        ids=[f"val-{i}" for i in range(len(chall_val))],
        features={k: val_props[k] for k in FEATURES}, scores=chall_val,
        predicted=np.where(chall_val >= threshold, "1", "0"),
        labels=val.labels.astype(np.int64), embeddings=chall_val_emb,
        versions=np.full(len(chall_val), version2, dtype=object),
    )  # fmt: skip
    store.put_reference(PROJECT, MODEL, version2, reference2)
    if store.get_alias(PROJECT, MODEL, "champion") is None:
        store.set_alias(PROJECT, MODEL, "champion", VERSION, actor="demo", reason="first version")
    store.set_alias(PROJECT, MODEL, "challenger", version2, actor="watchkeeper",
                    reason=f"job {done['id']} passed the gate")  # fmt: skip
    out.print(f"   Registered [bold]{version2}[/] (threshold {threshold:.3f} re-fitted to TPR "
              f"0.90: TPR {op2.tpr:.1%}, FPR {op2.fpr:.1%} on validation) as the challenger.")

    # --- a shadow day ----------------------------------------------------------------------------
    t = time.perf_counter()
    admin.post("/v1/models", json={"name": shadow_model(MODEL)})
    d = days + 1
    start, end = base + days * DAY, base + d * DAY
    n = int(rng.poisson(cfg.volume))
    docs = generate_documents(n, photocopy_share=cfg.prevalence, new_scanner_share=1.0, seed=rng)
    ids = np.char.add(f"d{d}-", np.arange(n).astype(str)).astype(object)
    ts = np.sort(rng.uniform(start, end - 1.0, n))

    def challenger_scores(images: np.ndarray) -> dict[str, Any]:
        scores, _ = predict(challenger, images)
        return {"scores": scores}

    shadow = Shadow(challenger_scores, client, MODEL, version2, queue_size=1000)
    _serve_day(net, monitor, docs, ids, ts, shadow)
    shadow.flush(timeout=120)
    shadow.close()
    pick = rng.random(n) < 0.4
    client.log_labels(MODEL, ids[pick], docs.labels[pick].astype(np.int64))
    client.flush(timeout=60)
    run = admin.post(f"/v1/models/{MODEL}/monitors:run", params={"now": end})
    before = len(hook.received)
    report = report_day(store, {"day": d, "act": "new scanner, challenger in shadow"}, start,
                        end, op, cfg, reference, estimator_for(op, reference.scores,
                        reference.labels.astype(np.int64)), run.json(),
                        hook.received[before:])  # fmt: skip
    reports.append(report)
    narrate_day(out, report)
    champion_w = store.read_window(PROJECT, MODEL, start=start, end=end, embeddings=False)
    shadow_w = store.read_window(PROJECT, shadow_model(MODEL), start=start, end=end,
                                 embeddings=False)  # fmt: skip
    sr = shadow_report(
        champion_w, shadow_w, champion_threshold=float(op.threshold),
        challenger_threshold=threshold, challenger_op=op2,
        expected_prevalence=cfg.prevalence, alpha=retraining["shadow"]["alpha"],
    )  # fmt: skip
    timings["shadow day"] = time.perf_counter() - t
    out.print(f"   Reviewers labelled {int(pick.sum())} documents of the shadow day; "
              f"{shadow.stats.dropped} mirrored documents dropped.")  # fmt: skip
    for line in sr.summary():
        out.print("   " + line)
    result["shadow"] = sr.to_dict()
    if sr.decision != "promote":
        out.print("   The sequential test did not find the challenger better: no promotion.")
        return result

    # --- promotion and the day after --------------------------------------------------------------
    t = time.perf_counter()
    move = promote(store, PROJECT, MODEL, version2, actor="watchkeeper (promotion: auto)",
                   reason="gate passed; shadow: the sequential test found it more accurate",
                   now=end, policy=policy)  # fmt: skip
    _wait = time.monotonic() + 2.0
    while len(hook.received) == before and time.monotonic() < _wait:
        time.sleep(0.05)
    out.print(f"   [bold green]Promoted[/]: champion {move['from']} -> {move['to']} (alias "
              "history kept; the webhook was told); watching for 2 days.")
    result["promoted"] = version2
    d2 = d + 1
    start, end = base + d * DAY, base + d2 * DAY
    n = int(rng.poisson(cfg.volume))
    docs = generate_documents(n, photocopy_share=cfg.prevalence, new_scanner_share=1.0, seed=rng)
    ids = np.char.add(f"d{d2}-", np.arange(n).astype(str)).astype(object)
    ts = np.sort(rng.uniform(start, end - 1.0, n))
    new_monitor = monitor_module(challenger, client, MODEL, layer="embed", output="logits",
                                 version=version2, id_prefix="doc")  # fmt: skip
    try:
        _serve_day(challenger, new_monitor, docs, ids, ts)
        client.flush(timeout=60)
    finally:
        new_monitor.remove()
    before = len(hook.received)
    run = admin.post(f"/v1/models/{MODEL}/monitors:run", params={"now": end})
    report = report_day(store, {"day": d2, "act": "new scanner, cnn-v2 champion"}, start, end,
                        op2, cfg, reference2, estimator_for(op2, chall_val,
                        val.labels.astype(np.int64)), run.json(),
                        hook.received[before:])  # fmt: skip
    reports.append(report)
    narrate_day(out, report)
    watch = check_watch(store, PROJECT, MODEL, now=end, policy=policy)
    out.print("   Watch period: " + ("no rollback cause." if watch is None
                                    else f"{watch['outcome']}: {watch.get('cause', '')}"))
    result["watch"] = None if watch is None else watch["outcome"]
    timings["promotion and the day after"] = time.perf_counter() - t
    out.print("   Phase timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return result
