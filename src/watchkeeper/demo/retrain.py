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


def _fade_estimate(train: Any, reference: Any) -> tuple[float, float]:
    """The new scanner's washout and fade, estimated from image properties.

    ``train`` holds the labelled new-scanner documents (``feature.colourfulness``,
    ``feature.brightness``); ``reference`` the same properties of freshly drawn
    standard-scanner documents. A fade ``f`` maps a pixel ``v`` to ``1 - f (1 - v)``, so it
    scales ``1 - brightness`` by ``f``; a washout keeping a share ``s`` of the chroma scales
    Hasler and Süsstrunk's colourfulness (linear in the chroma) by ``s f``. Genuine originals
    carry the colour, so the colour ratio is taken on them.
    """
    label = train["label"].astype(float).to_numpy()
    genuine = label == 0
    b_new = float(np.median(train["feature.brightness"].to_numpy(np.float64)))
    b_old = float(np.median(reference["brightness"]))
    fade = float(np.clip((1.0 - b_new) / max(1.0 - b_old, 1e-6), 0.5, 1.0))
    c_new = float(np.median(train.loc[genuine, "feature.colourfulness"].to_numpy(np.float64)))
    c_old = float(np.median(reference["colourfulness"][reference["label"] == 0]))
    washout = float(np.clip(c_new / max(c_old * fade, 1e-6), 0.0, 1.0))
    return washout, fade


def faded_documents(train: Any, n: int, seed: int) -> Any:
    """The generator hook: ``n`` documents "as representative as possible" of the new scanner.

    The simulator's new scanner is not known to the loop; what it knows is the labelled
    production documents of the training set. From their brightness and colourfulness it
    estimates how much the new scanner fades documents and washes out their colour
    (:func:`_fade_estimate`), then applies that to freshly drawn standard-scanner documents
    (each with its own jitter around the estimate): two thirds of the batch. The last third is
    left as the standard scanner makes it, so the fine-tuned model does not forget it.
    """
    import pandas as pd

    from watchkeeper.integrations.images import image_properties

    rng = np.random.default_rng(seed)
    docs = generate_documents(n, photocopy_share=0.3, seed=rng)
    props = image_properties(docs.images)
    n_new = 2 * n // 3
    scanner = np.full(n, "standard", dtype=object)
    images = docs.images
    if n_new and {"feature.brightness", "feature.colourfulness"} <= set(train.columns):
        prod = train[train["source"] == "production"] if "source" in train else train
        if len(prod) >= 20 and (prod["label"].astype(float) == 0).sum() >= 10:
            washout, fade = _fade_estimate(prod, {**props, "label": docs.labels})
            images = images.copy()
            x = images[:n_new].astype(np.float32) / 255.0
            luma = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
            s = np.clip(washout * rng.uniform(0.5, 1.5, n_new), 0, 1)
            f = np.clip(fade + rng.uniform(-0.05, 0.05, n_new), 0.5, 1)
            x = luma + s.astype(np.float32)[:, None, None, None] * (x - luma)
            x = 1.0 - (1.0 - x) * f.astype(np.float32)[:, None, None, None]
            images[:n_new] = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
            scanner[:n_new] = "new"
    return pd.DataFrame({
        "label": docs.labels.astype(np.int64),
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

    Runs in the job's subprocess. Transfer learning: every layer starts from the champion's
    weights and Adam follows a one-cycle schedule peaking at ``WK_DEMO_LR`` (default 3e-3,
    below the 5e-3 of the first training) for ``WK_DEMO_EPOCHS`` epochs (default 4): enough to
    learn the faded scans, while the standard-scanner third of the generated documents keeps
    the old scanner in mind. Batch norm re-estimates its statistics on the new mix.
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
    epochs = int(os.environ.get("WK_DEMO_EPOCHS", "4"))
    batch = 64
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=float(os.environ.get("WK_DEMO_LR", "3e-3")),
        total_steps=epochs * ((len(x) + batch - 1) // batch),
    )  # fmt: skip
    loss_fn = torch.nn.BCEWithLogitsLoss()
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            optimiser.zero_grad()
            loss = loss_fn(model(x[idx]).squeeze(1), y[idx])
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        sys.stdout.write(f"epoch {epoch + 1}: loss {total / len(x):.4f}\n")
        sys.stdout.flush()
    model.eval()
    out = Path(data["output"]) / "challenger.pt"
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    out.write_bytes(buffer.getvalue())
    sys.stdout.write(f"fine-tuned on {len(x)} documents, {epochs} epochs, in "
                     f"{time.perf_counter() - start:.1f} s\n")  # fmt: skip
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
    net: Any, monitor: Any, docs: Any, ids: np.ndarray, ts: np.ndarray, shadow: Any = None,
    payloads: Any = None,
) -> None:
    """The champion scores a day through its monitoring hook; the shadow gets a mirror."""
    from watchkeeper.demo.model import require_torch, to_tensor
    from watchkeeper.demo.scenario import FEATURES, PROJECT
    from watchkeeper.integrations.images import image_properties
    from watchkeeper.payloads import thumbnail

    torch = require_torch()
    props = image_properties(docs.images)
    with torch.no_grad():
        for i in range(0, len(ids), 250):
            sl = slice(i, i + 250)
            tags = {"branch": docs.branch[sl], "scanner": docs.scanner[sl]}
            # the thumbnails a person looks at, as on the scheduled days
            refs = None if payloads is None else [
                payloads.put(PROJECT, thumbnail(img, size=96)) for img in docs.images[sl]]
            monitor.annotate(ids=ids[sl], ts=ts[sl], tags=tags, payload_refs=refs,
                             features={k: props[k][sl] for k in FEATURES})  # fmt: skip
            net(to_tensor(docs.images[sl]))
            if shadow is not None:
                shadow.submit(ids[sl], docs.images[sl], ts=ts[sl], tags=tags)


REVIEWED_SHARE = 0.5
"""Share of the scanner days' documents the reviewers label once the retraining starts."""
SHADOW_LABELLED = 0.4
"""Share of the shadow day's documents that get a label."""
DAYS_AFTER = 2
"""Days served by the promoted challenger, the length of the watch period."""
SHADOW_MAX_DAYS = 3
"""The shadow test's maximum duration: it ends as soon as the sequential test decides."""


def _recent_reference(
    model: Any, images: np.ndarray, features: dict[str, np.ndarray], labels: np.ndarray,
    ids: np.ndarray, version: str, target_tpr: float,
) -> tuple[Any, Any]:  # fmt: skip
    """A version's operating point and reference, fitted on recent labelled documents.

    A model that serves faded scans is monitored against faded scans: its threshold is the
    highest that detects ``target_tpr`` of the recent photocopies, its FPR is measured on the
    same documents, and the reference (scores, embeddings, image properties, labels) is what
    its days are compared with. None of these documents was in its training set.
    """
    from watchkeeper.demo.model import predict
    from watchkeeper.estimation import OperatingPoint
    from watchkeeper.window import Window

    scores, emb = predict(model, images)
    op = OperatingPoint.from_scores(scores, labels, target_tpr=target_tpr)
    assert op.threshold is not None  # from_scores always sets it
    reference = Window.from_columns(
        ids=[f"recent:{i}" for i in ids], features=features, scores=scores,
        predicted=np.where(scores >= op.threshold, "1", "0"),
        labels=labels.astype(np.int64), embeddings=emb,
        versions=np.full(len(scores), version, dtype=object),
    )  # fmt: skip
    return op, reference


def _register_reference(
    admin: Any, store: Any, version: str, op: Any, reference: Any, cfg: Any, extra: dict[str, Any]
) -> None:
    from watchkeeper.demo.scenario import MODEL, PROJECT

    reply = admin.post(f"/v1/models/{MODEL}/versions", json={
        "version": version, "operating_point": op.to_dict(),
        "expected_prevalence": cfg.prevalence, "expected_volume": float(cfg.volume),
        "window": "1d", **extra,
    })  # fmt: skip
    if reply.status_code >= 300:
        raise RuntimeError(f"POST version failed: {reply.status_code} {reply.text[:300]}")
    store.put_reference(PROJECT, MODEL, version, reference)


def _new_day(cfg: Any, rng: np.random.Generator, d: int, start: float) -> tuple[Any, Any, Any]:
    n = int(rng.poisson(cfg.volume))
    docs = generate_documents(n, photocopy_share=cfg.prevalence, new_scanner_share=1.0, seed=rng)
    ids = np.char.add(f"d{d}-", np.arange(n).astype(str)).astype(object)
    ts = np.sort(rng.uniform(start, start + DAY - 1.0, n))
    return docs, ids, ts


def close_the_loop(
    *, out: Any, store: Any, admin: Any, client: Any, hook: Any, net: Any, monitor: Any,
    weights: Path, op: Any, cfg: Any, reference: Any, val: Any, val_props: Any, base: float,
    day_docs: dict[int, Any], reports: list[Any], rng: np.random.Generator, artifacts: Path,
    report_day: Any, narrate_day: Any, estimator_for: Any, payloads: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the loop after the scheduled days; print each phase and how long it took."""
    from watchkeeper.demo.model import predict
    from watchkeeper.demo.scenario import FEATURES, MODEL, PROJECT, VERSION
    from watchkeeper.integrations.images import image_properties
    from watchkeeper.integrations.torch import monitor_module
    from watchkeeper.loop import EvalSet, MaintenancePlan, evaluate_gate, shadow_report
    from watchkeeper.loop._jobs import run_job
    from watchkeeper.loop._promote import check_watch, promote
    from watchkeeper.loop._triggers import maybe_retrain
    from watchkeeper.shadow import Shadow, shadow_model

    timings: dict[str, float] = {}
    result: dict[str, Any] = {"timings": timings}
    days = int(cfg.days)
    end_of_days = base + days * DAY
    t = time.perf_counter()
    out.print("\n[bold]4. Closing the loop.[/]")
    payload_file = artifacts / "payloads.npz"
    config = store.get_monitor_config(PROJECT, MODEL) or {}
    target_tpr = 0.9
    plan = {**config, "retraining": {
        "triggers": {"verdicts": ["model_change"]},
        "cooldown": "7d",
        "strategy": "transfer",
        "dataset": {
            "since": f"{days + 1}d", "eval_fraction": 0.3, "reference": "eval",
            "curated": {"tags": {"scanner": "new"}},
            "generator": "watchkeeper.demo.retrain:faded_documents",
            "generated": 600 if cfg.small else 900, "min_labelled": 50,
        },
        "trainer": {
            "callable": "watchkeeper.demo.retrain:fine_tune", "timeout": "10m",
            "env": {"WK_DEMO_PAYLOADS": str(payload_file), "WK_DEMO_EPOCHS": "4",
                    "WK_DEMO_LR": "3e-3"},
        },
        "gate": {
            "target_tpr": target_tpr, "alpha": 0.05, "n_bootstrap": 500,
            "rules": [
                {"metric": "accuracy", "test": "superior", "sets": ["recent"]},
                {"metric": "auc", "test": "not_worse", "margin": 0.02, "sets": ["validation"]},
                {"metric": "fpr_at_tpr", "test": "not_worse", "margin": 0.02,
                 "sets": ["validation"]},
            ],
            "segments": None,
        },
        "shadow": {"duration": f"{SHADOW_MAX_DAYS}d", "alpha": 0.05},
        "promotion": "auto",
        "rollback": {"watch": f"{DAYS_AFTER}d", "verdicts": ["model_change"]},
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
        # The loop as it stood at the end of the prior-shift day: does anything queue a job?
        p_end = base + prior[0].day * DAY
        quiet = maybe_retrain(store, PROJECT, MODEL, now=p_end)
        if quiet is not None:
            store.cancel_job(PROJECT, quiet["id"])
        result["prior_shift_job"] = None if quiet is None else quiet["id"]
        out.print(f"   Maintenance plan stored over HTTP (trigger: a [bold]model_change[/] "
                  f"verdict). At the end of the prior-shift day {prior[0].day} the loop queues "
                  f"{'[red]a job[/]' if quiet else '[green]nothing[/]'}: more photocopies is "
                  "the world changing, not the model.")  # fmt: skip
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
    pixels: dict[str, np.ndarray] = {}
    n_labels = 0
    for _d, (ids, docs, _ts) in sorted(day_docs.items()):
        pick = rng.random(len(ids)) < REVIEWED_SHARE
        client.log_labels(MODEL, ids[pick], docs.labels[pick].astype(np.int64))
        n_labels += int(pick.sum())
        pixels.update({str(i): img for i, img in zip(ids, docs.images, strict=True)})
    client.flush(timeout=60)
    np.savez(payload_file, **pixels)  # type: ignore[arg-type]
    out.print(f"   Reviewers labelled {n_labels:,} documents of the {len(day_docs)} scanner "
              f"days ({REVIEWED_SHARE:.0%}).")  # fmt: skip
    timings["trigger and labels"] = time.perf_counter() - t
    out.print(f"   [dim]({timings['trigger and labels']:.1f} s)[/]")

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
    out.print(f"   Job {done['id']} [green]succeeded[/]: the champion's weights fine-tuned in "
              f"a subprocess ({log_tail[-1] if log_tail else 'done'}) "
              f"[dim]({timings['dataset and training job']:.1f} s)[/]")  # fmt: skip
    result["job"] = "succeeded"

    # --- the gate --------------------------------------------------------------------------------
    t = time.perf_counter()
    import pandas as pd

    challenger = load_weights(done["outputs"]["artifact"])
    chall_val, _ = predict(challenger, val.images)
    evaluation = pd.read_parquet(ds["eval"])
    recent = evaluation[evaluation["source"] == "production"]
    recent_ids = recent["id"].to_numpy(dtype=object)
    recent_images = np.stack([pixels[str(i)] for i in recent_ids])
    chall_recent, _ = predict(challenger, recent_images)
    y_recent = recent["label"].astype(float).astype(np.int64).to_numpy()
    # "recent" first: the challenger's threshold is re-fitted where it will serve.
    gate = evaluate_gate(
        {"recent": EvalSet(y_recent, recent["score"].to_numpy(np.float64), chall_recent,
                           tags={"scanner": recent["tag.scanner"].to_numpy()}),
         "validation": EvalSet(val.labels, reference.scores, chall_val)},
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
    version2 = "cnn-v2"
    recent_features = {k: recent[f"feature.{k}"].to_numpy(np.float64) for k in FEATURES}
    op2, reference2 = _recent_reference(challenger, recent_images, recent_features, y_recent,
                                        recent_ids, version2, target_tpr)  # fmt: skip
    artifact2 = Path(done["outputs"]["artifact"])
    _register_reference(admin, store, version2, op2, reference2, cfg, {
        "artifact_uri": artifact2.as_uri(),
        "sha256": hashlib.sha256(artifact2.read_bytes()).hexdigest(),
    })  # fmt: skip
    from watchkeeper.registry import record_lineage

    record_lineage(store, PROJECT, MODEL, version2, parent=VERSION, code=None,
                   params={"strategy": "transfer", "epochs": 4, "max_lr": 3e-3},
                   metrics={"recent_accuracy": float(np.mean(
                       (chall_recent >= float(op2.threshold)) == (y_recent == 1)))})  # fmt: skip
    store.put_version_registry(PROJECT, MODEL, version2, lineage={
        **store.get_model_version(PROJECT, MODEL, version2)["lineage"],
        "dataset": ds["fingerprint"], "job": done["id"],
    })  # fmt: skip
    if store.get_alias(PROJECT, MODEL, "champion") is None:
        store.set_alias(PROJECT, MODEL, "champion", VERSION, actor="demo", reason="first version")
    store.set_alias(PROJECT, MODEL, "challenger", version2, actor="watchkeeper",
                    reason=f"job {done['id']} passed the gate")  # fmt: skip
    out.print(f"   Registered [bold]{version2}[/] as the challenger, monitored against its own "
              f"operating point and reference: threshold {op2.threshold:.3f} re-fitted to TPR "
              f"{target_tpr:.2f} on the {len(y_recent)} recent labelled documents (not trained "
              f"on): TPR {op2.tpr:.1%}, FPR {op2.fpr:.1%} "
              f"[dim]({timings['gate']:.1f} s)[/]")  # fmt: skip

    # --- the shadow test: a day at a time until the sequential test decides --------------------
    t = time.perf_counter()
    admin.post("/v1/models", json={"name": shadow_model(MODEL)})

    def challenger_scores(images: np.ndarray) -> dict[str, Any]:
        scores, _ = predict(challenger, images)
        return {"scores": scores}

    shadow_start = base + days * DAY
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # labelled: images, labels, ids
    d = days
    for _k in range(SHADOW_MAX_DAYS):
        d += 1
        start, end = base + (d - 1) * DAY, base + d * DAY
        docs, ids, ts = _new_day(cfg, rng, d, start)
        shadow = Shadow(challenger_scores, client, MODEL, version2, queue_size=1000)
        _serve_day(net, monitor, docs, ids, ts, shadow, payloads=payloads)
        shadow.flush(timeout=120)
        shadow.close()
        pick = rng.random(len(ids)) < SHADOW_LABELLED
        client.log_labels(MODEL, ids[pick], docs.labels[pick].astype(np.int64))
        client.flush(timeout=60)
        seen.append((docs.images[pick], docs.labels[pick].astype(np.int64), ids[pick]))
        run = admin.post(f"/v1/models/{MODEL}/monitors:run", params={"now": end})
        before = len(hook.received)
        report = report_day(store, {"day": d, "act": "new scanner, challenger in shadow"},
                            start, end, op, cfg, reference, estimator_for(op, reference.scores,
                            reference.labels.astype(np.int64)), run.json(),
                            hook.received[before:])  # fmt: skip
        reports.append(report)
        narrate_day(out, report)
        # The whole shadow period so far: the sequential test is valid at every look.
        champion_w = store.read_window(PROJECT, MODEL, start=shadow_start, end=end,
                                       embeddings=False)  # fmt: skip
        shadow_w = store.read_window(PROJECT, shadow_model(MODEL), start=shadow_start, end=end,
                                     embeddings=False)  # fmt: skip
        sr = shadow_report(
            champion_w, shadow_w, champion_threshold=float(op.threshold),
            challenger_threshold=float(op2.threshold), challenger_op=op2,
            expected_prevalence=cfg.prevalence, alpha=retraining["shadow"]["alpha"],
        )  # fmt: skip
        out.print(f"   Reviewers labelled {int(pick.sum())} documents of the shadow day; "
                  f"{shadow.stats.dropped} mirrored documents dropped; sequential test: "
                  f"[bold]{sr.decision}[/].")  # fmt: skip
        if sr.decision != "continue":
            break
    timings["shadow"] = time.perf_counter() - t
    out.print(f"   [dim]({timings['shadow']:.1f} s)[/]")
    for line in sr.summary():
        out.print("   " + line)
    result["shadow"] = sr.to_dict()
    result["shadow_days"] = len(seen)
    if sr.decision != "promote":
        out.print("   The sequential test did not find the challenger better: no promotion.")
        return result

    # --- promotion and the days after -------------------------------------------------------------
    t = time.perf_counter()
    # Before it serves, the challenger's operating point and reference take in the shadow
    # days' labelled documents too (scored by the challenger in shadow, never trained on).
    shadow_images = np.concatenate([x[0] for x in seen])
    shadow_props = image_properties(shadow_images)
    op2, reference2 = _recent_reference(
        challenger, np.concatenate([recent_images, shadow_images]),
        {k: np.concatenate([recent_features[k], shadow_props[k]]) for k in FEATURES},
        np.concatenate([y_recent, *(x[1] for x in seen)]),
        np.concatenate([recent_ids, *(x[2] for x in seen)]), version2, target_tpr,
    )  # fmt: skip
    _register_reference(admin, store, version2, op2, reference2, cfg, {})
    from watchkeeper.estimation import expect_flags

    band = expect_flags(op2, cfg.prevalence, int(cfg.volume))
    out.print(f"   {version2}'s operating point re-fitted on {len(reference2)} recent labelled "
              f"documents (the gate's slice and the shadow's): threshold "
              f"{op2.threshold:.3f}, TPR {op2.tpr:.1%}, FPR {op2.fpr:.1%}; expect "
              f"{band.expected:.0f} flags a day, band [{band.low}, {band.high}].")  # fmt: skip
    before = len(hook.received)
    move = promote(store, PROJECT, MODEL, version2, actor="watchkeeper (promotion: auto)",
                   reason="gate passed; shadow: the sequential test found it more accurate",
                   now=end, policy=policy)  # fmt: skip
    _wait = time.monotonic() + 2.0
    while len(hook.received) == before and time.monotonic() < _wait:
        time.sleep(0.05)
    out.print(f"   [bold green]Promoted[/]: champion {move['from']} -> {move['to']} (alias "
              f"history kept; the webhook was told); watching for {DAYS_AFTER} days.")
    result["promoted"] = version2
    new_monitor = monitor_module(challenger, client, MODEL, layer="embed", output="logits",
                                 version=version2, id_prefix="doc")  # fmt: skip
    estimator2 = estimator_for(op2, reference2.scores, reference2.labels.astype(np.int64))
    result["after"] = []
    watch = None
    try:
        for k in range(1, DAYS_AFTER + 1):
            d2 = d + k
            start, end = base + (d2 - 1) * DAY, base + d2 * DAY
            docs, ids, ts = _new_day(cfg, rng, d2, start)
            _serve_day(challenger, new_monitor, docs, ids, ts, payloads=payloads)
            client.flush(timeout=60)
            before = len(hook.received)
            run = admin.post(f"/v1/models/{MODEL}/monitors:run", params={"now": end})
            report = report_day(store, {"day": d2, "act": f"new scanner, {version2} champion"},
                                start, end, op2, cfg, reference2, estimator2, run.json(),
                                hook.received[before:])  # fmt: skip
            reports.append(report)
            narrate_day(out, report)
            result["after"].append({"day": d2, "verdict": report.verdict, "flags": report.flags,
                                    "low": report.low, "high": report.high})  # fmt: skip
            watch = check_watch(store, PROJECT, MODEL, now=end, policy=policy)
            if watch is not None:
                break
    finally:
        new_monitor.remove()
    if watch is None:
        out.print("   Watch period: no rollback cause so far.")
    elif watch["outcome"] == "confirmed":
        out.print(f"   Watch period over: [bold green]promotion confirmed[/] ({version2} stays "
                  "the champion).")  # fmt: skip
    else:
        out.print(f"   Watch period: [bold red]{watch['outcome']}[/]: {watch.get('cause', '')}")
    result["watch"] = None if watch is None else watch["outcome"]
    timings["promotion and the days after"] = time.perf_counter() - t
    out.print(f"   [dim]({timings['promotion and the days after']:.1f} s)[/]")
    return result
