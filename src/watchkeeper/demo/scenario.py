"""The document-fraud scenario of docs/design.md, through the real path, with a narrative.

1. Draw synthetic documents, train the small CNN on the CPU, pick the operating point at 90% TPR
   on validation and record its FPR.
2. Start a Watchkeeper server on an embedded SQLite file and a local webhook receiver; register
   the model version over HTTP (operating point, prevalence 10%, 1,000 documents a day) and its
   reference (the validation images' properties, embeddings, scores and labels); store the
   monitor configuration with the webhook as alert sink.
3. Replay simulated days: the CNN scores each day's documents with a PyTorch hook that logs the
   ``embed`` layer's activations, the scores and the image properties through the SDK
   :class:`~watchkeeper.sdk.Client` to the server; then the server runs the monitors
   (``POST /v1/models/{model}/monitors:run``, :func:`watchkeeper.runner.run_monitors`), which
   check the day and send alerts. Normal days, a day with twice the photocopies, then a new
   scanner that fades documents and washes out their colour. Labels for a sample of each day
   arrive a few days late and the realised performance is set against the estimate.

Every figure the narrative prints comes from the monitors' stored findings or from Watchkeeper's
own estimation functions applied to windows read back from the store; nothing is taken from the
simulation's ground truth except the late labels, which travel through the SDK like real ones.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.demo.documents import generate_documents
from watchkeeper.integrations.images import image_properties

MODEL = "document-fraud"
VERSION = "cnn-v1"
PROJECT = "demo"
DAY = 86400.0
DEFAULT_DB = Path(".watchkeeper") / "demo.db"
FEATURES = ("brightness", "contrast", "colourfulness", "grayscale_score", "sharpness", "noise")


@dataclass
class DemoConfig:
    """What the scenario does; ``small`` is the quick version the test suite runs.

    Parameters
    ----------
    days
        Simulated days (at least 4 for every act of the story); ``None``: 10, or 6 when small.
    small
        Fewer training documents, a shorter training and 600 documents a day.
    db
        SQLite file of the run; ``None``: ``.watchkeeper/demo.db``, recreated on each run. A path
        you give must not exist yet, so the demo never overwrites your data.
    serve
        Keep the server running at the end, for exploring the API.
    seed
        Seed of everything random.
    volume, prevalence
        Documents a day and share of photocopies on a normal day.
    label_share, label_delay
        Share of each day's documents that get a label, and after how many days.
    n_train, n_val, epochs
        Training and validation documents and training epochs; ``None``: 6,000, 4,000 and 5
        (3,000, 2,000 and 4 when small).
    """

    days: int | None = None
    small: bool = False
    db: str | Path | None = None
    serve: bool = False
    seed: int = 7
    volume: int | None = None
    prevalence: float = 0.1
    label_share: float = 0.25
    label_delay: int = 2
    n_train: int | None = None
    n_val: int | None = None
    epochs: int | None = None

    def resolved(self) -> DemoConfig:
        """A copy with defaults filled in and every field checked (errors name the field)."""
        days = self.days if self.days is not None else (6 if self.small else 10)
        volume = self.volume if self.volume is not None else (600 if self.small else 1000)
        if not isinstance(days, int) or days < 1:
            raise ValueError(f"days: must be a positive integer, got {days!r}")
        if days > 60:
            raise ValueError(f"days: at most 60 simulated days, got {days}")
        if not isinstance(volume, int) or volume < 100:
            raise ValueError(f"volume: at least 100 documents a day, got {volume!r}")
        if not 0.01 <= self.prevalence <= 0.4:
            raise ValueError(f"prevalence: must be within [0.01, 0.4], got {self.prevalence}")
        if not 0.0 < self.label_share <= 1.0:
            raise ValueError(f"label_share: must be within (0, 1], got {self.label_share}")
        if self.label_delay < 1:
            raise ValueError(f"label_delay: at least one day, got {self.label_delay}")
        n_train = self.n_train or (3000 if self.small else 6000)
        n_val = self.n_val or (2000 if self.small else 4000)
        epochs = self.epochs or (4 if self.small else 5)
        for name, value, least in (("n_train", n_train, 500), ("n_val", n_val, 500),
                                   ("epochs", epochs, 1)):
            if value < least:
                raise ValueError(f"{name}: at least {least}, got {value}")
        return DemoConfig(days, self.small, self.db, self.serve, self.seed, volume,
                          self.prevalence, self.label_share, self.label_delay, n_train, n_val,
                          epochs)

    def schedule(self) -> list[dict[str, Any]]:
        """Per day: its act (normal, prior shift, new scanner) and the share of photocopies."""
        days = int(self.days or 10)
        prior_day = max(2, round(days * 0.4)) if days >= 4 else None
        scanner_day = (prior_day + 2 if prior_day is not None and prior_day + 2 <= days
                       else None)
        out = []
        for d in range(1, days + 1):
            if scanner_day is not None and d >= scanner_day:
                out.append({"day": d, "act": "new scanner", "share": self.prevalence,
                            "scanner": 1.0})
            elif d == prior_day:
                out.append({"day": d, "act": "twice the photocopies",
                            "share": 2 * self.prevalence, "scanner": 0.0})
            else:
                out.append({"day": d, "act": "normal", "share": self.prevalence, "scanner": 0.0})
        return out


@dataclass
class DayReport:
    """What the monitors said about one day."""

    day: int
    act: str
    n: int
    flags: int
    expected: float
    low: float
    high: float
    verdict: str
    prevalence: float
    prevalence_low: float
    prevalence_high: float
    drifted_features: list[str]
    embedding_drift: bool | None
    alerts: list[str]
    estimated: dict[str, dict[str, float]] = field(default_factory=dict)
    realised: dict[str, dict[str, float]] = field(default_factory=dict)
    labels: int = 0
    source: str = "runner"
    count_verdict: str = ""
    count_prevalence: float = math.nan
    diagnosis_p_value: float = math.nan
    agrees: bool | None = None
    count_p_value: float = math.nan


@dataclass
class DemoResult:
    """Everything the scenario produced, for the CLI, the test and the curious."""

    config: DemoConfig
    days: list[DayReport]
    operating_point: dict[str, Any]
    training: dict[str, Any]
    alerts: list[Any]
    db: Path
    url: str | None
    tensorboard: Path | None
    notes: list[str]
    seconds: float
    server: Any = None
    loop: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase of the run, in order."""


def _console(console: Any) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(highlight=False)


def _prepare_db(db: str | Path | None) -> Path:
    if db is None:
        path = DEFAULT_DB.resolve()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(path.parent / "demo-artifacts", ignore_errors=True)
    else:
        path = Path(db).resolve()
        if path.exists():
            raise ValueError(f"db: {path} exists; give a new file (the demo never overwrites data)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _fmt_interval(value: float, low: float, high: float, digits: int = 2) -> str:
    """``value [low, high]``, or ``n/a`` when any is undefined."""
    if not all(math.isfinite(v) for v in (value, low, high)):
        return "n/a"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def run_demo(config: DemoConfig | None = None, console: Any = None) -> DemoResult:
    """Run the scenario and print its narrative; see the module docstring for the story."""
    cfg = (config or DemoConfig()).resolved()
    db = _prepare_db(cfg.db)  # before any work: a --db that exists is refused at once
    out = _console(console)
    started = time.perf_counter()
    from watchkeeper.demo.model import predict, require_torch, train_model

    torch = require_torch()
    torch.set_num_threads(2)
    from watchkeeper.estimation import OperatingPoint, expect_flags

    notes: list[str] = []
    timings: dict[str, float] = {}
    volume = int(cfg.volume or 1000)
    n_train, n_val, epochs = int(cfg.n_train or 0), int(cfg.n_val or 0), int(cfg.epochs or 0)

    out.rule("[bold]Watchkeeper demo: the document-fraud model")
    out.print(
        "A CNN flags black-and-white [bold]photocopies[/] among scanned documents. We train it, "
        "put it in production behind Watchkeeper, and watch "
        f"{cfg.days} simulated days of about {volume:,} documents go by."
    )

    # --- 1. data and model ---------------------------------------------------------------------
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    train = generate_documents(n_train, photocopy_share=0.3, seed=rng)
    val = generate_documents(n_val, photocopy_share=cfg.prevalence, seed=rng)
    timings["drawing documents"] = time.perf_counter() - t0
    out.print(
        f"\n[bold]1. Training.[/] {n_train:,} synthetic documents (genuine colour originals and "
        f"B/W photocopies, with stamps, photos, skew and noise) drawn in "
        f"{time.perf_counter() - t0:.1f} s."
    )
    t0 = time.perf_counter()
    net, trained = train_model(train.images, train.labels, epochs=epochs, seed=cfg.seed)
    out.print(f"   Small CNN trained on the CPU in {trained.seconds:.0f} s "
              f"({trained.epochs} epochs, final loss {trained.loss:.3f}).")
    val_scores, val_emb = predict(net, val.images)
    op = OperatingPoint.from_scores(val_scores, val.labels, target_tpr=0.9)
    assert op.threshold is not None  # from_scores always sets it
    band = expect_flags(op, cfg.prevalence, volume)
    out.print(
        f"   Operating point on {n_val:,} validation documents: threshold {op.threshold:.3f}, "
        f"[bold]TPR {op.tpr:.1%}[/], [bold]FPR {op.fpr:.1%}[/]. At {cfg.prevalence:.0%} "
        f"photocopies and {volume:,} documents a day, expect [bold]{band.expected:.0f} flags[/] "
        f"a day, band [{band.low}, {band.high}] (σ ≈ {band.sigma:.1f})."
    )
    val_props = image_properties(val.images)
    from watchkeeper.estimation import realised_performance

    val_perf = _metric_dict(realised_performance(
        val_scores, val.labels, float(op.threshold), metrics=("precision", "recall")))
    timings["training and operating point"] = time.perf_counter() - t0
    t0 = time.perf_counter()

    # --- 2. the real path ----------------------------------------------------------------------
    artifacts = db.parent / "demo-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    weights = artifacts / f"{MODEL}-{VERSION}.pt"
    weights.write_bytes(buffer.getvalue())
    sha = hashlib.sha256(buffer.getvalue()).hexdigest()

    from watchkeeper.demo.server import WebhookReceiver, start_server
    from watchkeeper.window import Window

    store_mod = _optional("watchkeeper.store")
    if store_mod is None:
        raise RuntimeError(
            "the demo needs watchkeeper.store (the event store), which is not available in this "
            "build; the training and operating point above are all it can show"
        )
    store = store_mod.Store(f"sqlite:///{db}")
    hook = WebhookReceiver().start()
    # The webhook is local: the demo's server allow-lists exactly that host and port.
    server = start_server(store, project=PROJECT, sink_hosts=hook.address)
    out.print(
        f"\n[bold]2. Production.[/] Watchkeeper server at [cyan]{server.url}[/] on the embedded "
        f"SQLite file [cyan]{db}[/]; alerts go to a webhook at [cyan]{hook.url}[/]."
    )
    import httpx

    admin = httpx.Client(base_url=server.url, timeout=300,
                         headers={"Authorization": f"Bearer {server.admin_token}"})
    from watchkeeper.sdk.environment import serving_environment

    version_body = {
        "version": VERSION,
        "artifact_uri": weights.as_uri(),
        "sha256": sha,
        "environment": serving_environment(),
        "operating_point": op.to_dict(),
        "expected_prevalence": cfg.prevalence,
        "expected_volume": float(volume),
        "window": "1d",
    }
    for path, body in (("/v1/models", {"name": MODEL}),
                       (f"/v1/models/{MODEL}/versions", version_body)):
        reply = admin.post(path, json=body)
        if reply.status_code >= 300:
            raise RuntimeError(f"POST {path} failed: {reply.status_code} {reply.text[:300]}")
    reference = Window.from_columns(
        ids=[f"val-{i}" for i in range(n_val)],
        features={k: val_props[k] for k in FEATURES},
        scores=val_scores,
        predicted=np.where(val_scores >= op.threshold, "1", "0"),
        labels=val.labels.astype(np.int64),
        embeddings=val_emb,
        versions=np.full(n_val, VERSION, dtype=object),
    )
    store.put_reference(PROJECT, MODEL, VERSION, reference)
    config_dict = _monitor_config(reference, op, volume, cfg.prevalence, hook.url, notes)
    if config_dict is not None:
        reply = admin.put(f"/v1/models/{MODEL}/monitors", json=config_dict)
        if reply.status_code == 404 and "model" not in reply.text:  # no monitors router
            store.put_monitor_config(PROJECT, MODEL, config_dict)
        elif reply.status_code >= 300:
            raise RuntimeError(f"PUT monitors failed: {reply.status_code} {reply.text[:300]}")
    out.print(
        f"   Registered [bold]{MODEL}[/] version [bold]{VERSION}[/] over HTTP (sha256 "
        f"{sha[:12]}…, operating point, prevalence {cfg.prevalence:.0%}, {volume:,}/day) and "
        f"its reference: {n_val:,} validation documents' image properties, 32-d embeddings, "
        "scores and labels."
    )

    # --- 3. the days ---------------------------------------------------------------------------
    from watchkeeper.demo.retrain import DAYS_AFTER, SHADOW_MAX_DAYS
    from watchkeeper.integrations.torch import monitor_module
    from watchkeeper.payloads import PayloadStore, default_root, thumbnail
    from watchkeeper.sdk import Client

    # What a person needs to see of each document: a small thumbnail, made on the client and
    # kept in the payload store beside the database, named on the event by its payload_ref.
    payloads = PayloadStore(default_root(str(db)))

    client = Client(server.url, server.ingest_token, spool_dir=artifacts / "spool",
                    flush_interval=0.2, system_metrics=False)
    monitor = monitor_module(net, client, MODEL, layer="embed", output="logits",
                             version=VERSION, id_prefix="doc")
    tb = _tensorboard(db.parent / "demo-tensorboard", notes)
    runner = _optional("watchkeeper.runner")
    if runner is None:
        notes.append("watchkeeper.runner is not available: the operating-point verdict, prior "
                     "shift and drift below are computed with watchkeeper.estimation and "
                     "watchkeeper.stats directly on the stored windows, and no alert is sent")
    # more days in the past: the loop's shadow days and the days after the promotion
    base = math.floor(time.time() / DAY) * DAY - (
        cfg.days + SHADOW_MAX_DAYS + DAYS_AFTER) * DAY  # type: ignore[operator]
    day_docs: dict[int, tuple[np.ndarray, Any, np.ndarray]] = {}
    day_ids: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    reports: list[DayReport] = []
    estimator = _estimator(op, val_scores, val.labels)
    timings["server, registration, reference"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out.print("\n[bold]3. The days.[/]")
    for plan in cfg.schedule():
        d = plan["day"]
        start, end = base + (d - 1) * DAY, base + d * DAY
        n = int(rng.poisson(volume))
        docs = generate_documents(n, photocopy_share=plan["share"],
                                  new_scanner_share=plan["scanner"], seed=rng)
        props = image_properties(docs.images)
        ids = np.char.add(f"d{d}-", np.arange(n).astype(str)).astype(object)
        ts = np.sort(rng.uniform(start, end - 1.0, n))
        from watchkeeper.demo.model import to_tensor

        with torch.no_grad():
            for i in range(0, n, 250):
                sl = slice(i, i + 250)
                refs = [payloads.put(PROJECT, thumbnail(img, size=96)) for img in docs.images[sl]]
                monitor.annotate(
                    ids=ids[sl], ts=ts[sl],
                    features={k: props[k][sl] for k in FEATURES},
                    tags={"branch": docs.branch[sl], "scanner": docs.scanner[sl]},
                    payload_refs=refs,
                )
                net(to_tensor(docs.images[sl]))
        day_ids[d] = (ids, docs.labels)
        if plan["scanner"] > 0:
            day_docs[d] = (ids, docs, ts)
        # Labels of an earlier day arrive today.
        late = d - cfg.label_delay
        if late in day_ids:
            lids, llabels = day_ids[late]
            pick = rng.random(len(lids)) < cfg.label_share
            client.log_labels(MODEL, lids[pick], llabels[pick].astype(np.int64))
        if not client.flush(timeout=60):
            notes.append(f"day {d}: the SDK could not deliver everything within 60 s")
        before = len(hook.received)
        run = None
        if runner is not None:
            # The server runs the monitors as of the day's end (what its scheduler does each
            # day); without that endpoint, the same function is called in process.
            reply = admin.post(f"/v1/models/{MODEL}/monitors:run", params={"now": end})
            if reply.status_code < 300:
                run = reply.json()
            else:
                run = runner.run_monitors(
                    store, PROJECT, MODEL, now=end, sink_policy=server.sink_policy
                )
            _wait_for(lambda b=before: len(hook.received) > b, 2.0)  # sinks may post async
        report = _report_day(store, plan, start, end, op, cfg, reference, estimator, run,
                             hook.received[before:])
        reports.append(report)
        _narrate_day(out, report)
        if late in day_ids:
            _realised(out, store, reports, late, start_of=base + (late - 1) * DAY, op=op,
                      validation=val_perf)
        if tb is not None:
            _write_tensorboard(tb, report)

    timings["the days"] = time.perf_counter() - t0
    from watchkeeper.demo.retrain import close_the_loop

    loop = close_the_loop(
        out=out, store=store, admin=admin, client=client, hook=hook, net=net, monitor=monitor,
        weights=weights, op=op, cfg=cfg, reference=reference, val=val, val_props=val_props,
        base=base, day_docs=day_docs, reports=reports, rng=rng, artifacts=artifacts,
        report_day=_report_day, narrate_day=_narrate_day, estimator_for=_estimator,
        payloads=payloads,
    )
    timings.update({f"loop: {k}": v for k, v in loop.get("timings", {}).items()})
    client.close(timeout=30)
    monitor.remove()
    admin.close()
    if tb is not None:
        tb.close()

    # --- 4. where things are -------------------------------------------------------------------
    result = DemoResult(
        config=cfg, days=reports, operating_point=op.to_dict(),
        training={"epochs": trained.epochs, "seconds": trained.seconds, "loss": trained.loss,
                  "n_train": trained.n_train},
        alerts=list(hook.received), db=db, url=server.url,
        tensorboard=(db.parent / "demo-tensorboard") if tb is not None else None,
        notes=notes, seconds=time.perf_counter() - started, server=server, loop=loop,
        timings=timings,
    )
    _summary(out, result, server)
    hook.stop()
    if cfg.serve:
        out.print(f"\n[bold]Serving[/] at [cyan]{server.url}[/]; Ctrl-C stops it. Try:")
        out.print(f"   Console: {server.url}/ui/ (sign in with the read token "
                  f"{server.read_token}); the firing alert, then 'samples →', shows the faded "
                  "scans.", soft_wrap=True)
        out.print(f"   curl -H 'Authorization: Bearer {server.read_token}' "
                  f"{server.url}/v1/models/{MODEL}/stats", soft_wrap=True)
        out.print(f"   OpenAPI: {server.url}/docs", soft_wrap=True)
        server.wait()
    else:
        server.stop()
    return result


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _monitor_config(
    reference: Any, op: Any, volume: int, prevalence: float, webhook: str, notes: list[str]
) -> dict[str, Any] | None:
    checks = _optional("watchkeeper.checks")
    if checks is None:
        notes.append("watchkeeper.checks is not available: no monitor configuration stored")
        return None
    config = checks.default_config(reference, op, expected_volume=volume, window="1d")
    config.checks.setdefault("operating_point", {})["expected_prevalence"] = prevalence
    config.checks.setdefault("feature_drift", {})["features"] = list(FEATURES)
    # A whole day's documents are compared: the drift rule fires on two drifted days of three,
    # the operating point as soon as the flag count leaves its band twice.
    config.sinks = [{"type": "webhook", "name": "demo-webhook", "url": webhook}]
    result: dict[str, Any] = config.validate().to_dict()
    return result


def print_notes(out: Any, notes: Sequence[str]) -> None:
    """Print notes as written: escaped, so that ``watchkeeper[tensorboard]`` is not read as rich
    markup (and printed as ``watchkeeper``)."""
    from rich.markup import escape

    for note in notes:
        out.print(f"[yellow]Note:[/] {escape(note)}")


def _tensorboard(path: Path, notes: list[str]) -> Any:
    if _optional("tensorboard") is None:
        notes.append("tensorboard is not installed: no TensorBoard scalars written "
                     "(pip install 'watchkeeper[tensorboard]')")
        return None
    from watchkeeper.integrations.tensorboard import TensorBoardWriter

    shutil.rmtree(path, ignore_errors=True)
    return TensorBoardWriter(path, prefix=MODEL)


def _estimator(op: Any, scores: np.ndarray, labels: np.ndarray) -> Any:
    from watchkeeper.estimation import PerformanceEstimator

    # the demo's days differ by their class mix (or by a broken scanner, which the mixture
    # test catches): the correction is justified without features
    est = PerformanceEstimator(
        threshold=float(op.threshold),
        metrics=("precision", "recall", "f1", "accuracy"),
        prior_correction=True,
    )
    return est.fit(scores, labels)


def _metric_dict(estimate: Any) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, mv in estimate.metrics.items():
        out[name] = {"value": float(mv.value), "low": float(mv.low), "high": float(mv.high)}
    return out


def _finding_list(store: Any, start: float, end: float) -> list[dict[str, Any]]:
    try:
        found = store.list_findings(PROJECT, MODEL, since=start)
    except TypeError:
        found = store.list_findings(PROJECT, MODEL)
    out = []
    for f in found:
        ws = f.get("window_start")
        if ws is None or not isinstance(ws, int | float) or start - 1 <= float(ws) < end:
            out.append(dict(f))
    return out


def _alert_names(body: Any) -> list[str]:
    """Short texts of the alerts in one webhook body (``{"events": [{"kind", "text"}]}``)."""
    if isinstance(body, Mapping):
        events = body.get("events")
        if isinstance(events, Sequence) and not isinstance(events, str):
            names = []
            for e in events:
                if isinstance(e, Mapping):
                    text = e.get("text") or e.get("alert") or e
                    names.append(f"{e.get('kind', 'alert')}: {text}"[:160])
            if names:
                return names
        for key in ("title", "summary", "rule", "name", "message", "text"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return [value]
    return [str(body)[:160]]


def _report_day(
    store: Any, plan: Mapping[str, Any], start: float, end: float, op: Any, cfg: DemoConfig,
    reference: Any, estimator: Any, run: Any, alerts: list[Any],
) -> DayReport:
    from watchkeeper.estimation import check_flags, diagnose_shift

    window = store.read_window(PROJECT, MODEL, start=start, end=end)
    scores = np.asarray(window.scores, dtype=np.float64)
    n = len(scores)
    flags = int((scores >= op.threshold).sum())
    findings = _finding_list(store, start, end) if run is not None else []
    op_finding = next((f for f in findings if str(f.get("check", "")).startswith(
        "operating_point")), None)
    # The operating-point check reads the count alone; the runner's finding holds its band and
    # verdict. Without a runner, the same function is called here on the stored window.
    count: Mapping[str, Any] = (op_finding or {}).get("details") or check_flags(
        op, cfg.prevalence, n, flags).to_dict()
    # Whether a class mix explains the day is a question for the scores, not the count:
    # diagnose_shift fits the mix of validation score distributions to the day's scores.
    diagnosis = diagnose_shift(reference.scores, reference.labels.astype(np.int64), scores,
                               expected_prevalence=cfg.prevalence)
    _store_diagnosis(store, diagnosis, start, end)
    if run is not None:
        drifted = sorted({
            str(f.get("subject")) for f in findings
            if str(f.get("check", "")).startswith("feature_drift") and f.get("drift")
            and f.get("subject") not in (None, "", "dataset", "*")
        })
        emb = [f for f in findings if str(f.get("check", "")).startswith("embedding_drift")]
        embedding_drift: bool | None = any(bool(f.get("drift")) for f in emb) if emb else None
    else:
        drifted, embedding_drift = _direct_drift(reference, window)
    estimate = estimator.estimate(scores) if n else None
    return DayReport(
        day=int(plan["day"]), act=str(plan["act"]), n=n, flags=flags,
        expected=float(count.get("expected", math.nan)),
        low=float(count.get("low", math.nan)), high=float(count.get("high", math.nan)),
        verdict=diagnosis.verdict, prevalence=float(diagnosis.prevalence),
        prevalence_low=float(diagnosis.prevalence_low),
        prevalence_high=float(diagnosis.prevalence_high),
        drifted_features=drifted, embedding_drift=embedding_drift,
        alerts=[name for a in alerts for name in _alert_names(a)],
        estimated=_metric_dict(estimate) if estimate is not None else {},
        source="runner" if run is not None else "direct",
        count_verdict=str(count.get("verdict", "")),
        count_prevalence=float(count.get("prevalence") or math.nan),
        count_p_value=float(count.get("p_value") or math.nan),
        diagnosis_p_value=float(diagnosis.p_value),
    )


def _store_diagnosis(store: Any, diagnosis: Any, start: float, end: float) -> None:
    """Keep the score diagnosis with the monitors' findings, so it is stored like them."""
    store.add_findings(PROJECT, MODEL, [{
        "check": "shift_diagnosis", "subject": "scores", "method": "diagnose_shift",
        "statistic": float(diagnosis.prevalence), "p_value": float(diagnosis.p_value),
        "alpha": float(diagnosis.alpha), "threshold": None,
        "drift": diagnosis.verdict != "as_expected",
        "severity": "critical" if diagnosis.verdict == "model_change" else "warning",
        "window_start": start, "window_end": end, "details": diagnosis.to_dict(),
    }])


def _direct_drift(reference: Any, window: Any) -> tuple[list[str], bool | None]:
    stats = importlib.import_module("watchkeeper.stats")
    ref = {k: reference.features[k] for k in FEATURES}
    cur = {k: window.features[k] for k in FEATURES if k in window.features}
    result = stats.detect_drift(ref, cur)
    drifted = sorted(k for k, r in result.columns.items() if r.drift)
    mmd_cls = getattr(stats, "MMDDrift", None)
    if mmd_cls is None or window.embeddings is None:
        return drifted, None
    rng = np.random.default_rng(0)
    ref_e = reference.embeddings[rng.permutation(len(reference.embeddings))[:1000]]
    cur_e = window.embeddings[rng.permutation(len(window.embeddings))[:1000]]
    return drifted, bool(mmd_cls().fit(ref_e).test(cur_e).drift)


VERDICTS = {
    "as_expected": "[green]as expected[/]",
    "prior_shift": "[yellow]prior shift[/] (more or fewer photocopies; the model is fine)",
    "model_change": "[red]model or data change[/] (no mix of the validation score distributions "
    "fits the day's scores)",
}


def _narrate_day(out: Any, r: DayReport) -> None:
    inside = r.low <= r.flags <= r.high
    band = f"band [{r.low:.0f}, {r.high:.0f}]"
    flag_text = (f"[green]{r.flags} flags[/], inside the {band}" if inside
                 else f"[bold red]{r.flags} flags[/], [bold]outside[/] the {band}")
    out.print(f"[bold]Day {r.day:>2}[/] ({r.act}): {r.n:,} documents, {flag_text}.")
    prev = _fmt_interval(r.prevalence, r.prevalence_low, r.prevalence_high)
    if not inside and r.count_verdict == "as_expected":
        out.print(f"        Just outside the 95% band, as one normal day in twenty is: the "
                  f"operating-point check keeps it as expected (p = {r.count_p_value:.2f}).")
    elif not inside and math.isfinite(r.count_prevalence):
        out.print(f"        The count alone: a {r.count_prevalence:.0%} share of photocopies "
                  "would explain it; the scores decide.")
    if r.verdict == "model_change":
        # A mixture share is meaningless when no mixture fits: say so instead of printing one.
        out.print(f"        Verdict from the scores: {VERDICTS['model_change']}, "
                  f"p = {r.diagnosis_p_value:.3f}.")
    elif not inside or r.verdict != "as_expected":
        verdict = VERDICTS.get(r.verdict, r.verdict)
        out.print(f"        Verdict from the scores: {verdict}; estimated share of photocopies "
                  f"{prev}.")
    drift = []
    if r.drifted_features:
        drift.append("features drifted: [bold]" + ", ".join(r.drifted_features) + "[/]")
    if r.embedding_drift:
        drift.append("[bold]embeddings drifted[/]")
    if drift:
        note = " (more photocopies look different: expected)" if r.verdict == "prior_shift" \
            else ""
        out.print("        " + "; ".join(drift) + note + ".")
    for name in r.alerts:
        out.print(f"        [bold magenta]Webhook received:[/] {name}")


def consistent(estimate: Mapping[str, float], successes: int, trials: int,
               alpha: float = 0.05) -> bool:
    """Whether ``successes`` of ``trials`` labelled events agree with an estimated rate.

    A bootstrap interval of a proportion observed at 0% or 100% collapses to a point, so
    overlapping intervals would call a perfect small sample a contradiction; instead, a two-sided
    binomial test at the estimate's value and at its interval bounds: consistent when any of
    them is not rejected at ``alpha``.

    Examples
    --------
    >>> consistent({"value": 0.96, "low": 0.93, "high": 0.99}, 25, 25)
    True
    >>> consistent({"value": 1.0, "low": 1.0, "high": 1.0}, 43, 100)
    False
    """
    from scipy.stats import binomtest

    if trials == 0:
        return True
    for p in (estimate["value"], estimate["low"], estimate["high"]):
        if math.isfinite(p) and binomtest(successes, trials, min(max(p, 0.0), 1.0)).pvalue >= alpha:
            return True
    return False


def _realised(out: Any, store: Any, reports: list[DayReport], day: int, start_of: float,
              op: Any, validation: Mapping[str, Mapping[str, float]]) -> None:
    from watchkeeper.estimation import realised_performance

    window = store.read_window(PROJECT, MODEL, start=start_of, end=start_of + DAY)
    if window.labels is None:
        return
    known = np.array([v is not None for v in window.labels], dtype=bool)
    if not known.any():
        return
    labels = np.array([v if v is not None else -1 for v in window.labels], dtype=np.int64)
    y = labels[known] == 1
    flagged = window.scores[known] >= op.threshold
    real = realised_performance(
        window.scores[known], labels[known], float(op.threshold),
        metrics=("precision", "recall", "f1", "accuracy"),
    )
    rep = reports[day - 1]
    rep.realised = _metric_dict(real)
    rep.labels = int(known.sum())
    counts = {"precision": (int((flagged & y).sum()), int(flagged.sum())),
              "recall": (int((flagged & y).sum()), int(y.sum()))}
    head = f"        Labels for day {day} arrived ({rep.labels} documents): "
    if rep.verdict == "model_change":
        # The label-free estimate assumes the model behaves as on validation; on a day the
        # scores say it does not, the labels are the judge.
        parts = []
        for m in ("precision", "recall"):
            if m in rep.realised:
                r = rep.realised[m]
                parts.append(f"{m} {_fmt_interval(r['value'], r['low'], r['high'])} "
                             f"(validation {validation[m]['value']:.2f})")
        fell = rep.realised.get("precision", {}).get("high", 1.0) < validation["precision"][
            "value"]
        verdict = ("[bold]the labels confirm the model change[/]" if fell
                   else "no loss of precision visible in the labels yet")
        out.print(head + "; ".join(parts) + f": {verdict}.")
        rep.agrees = fell
        return
    parts = []
    agrees = True
    for metric in ("precision", "recall"):
        if metric not in rep.estimated or metric not in rep.realised:
            continue
        e, real_m = rep.estimated[metric], rep.realised[metric]
        ok = consistent(e, *counts[metric])
        agrees &= ok
        mark = "[green]agree[/]" if ok else "[red]disagree[/]"
        parts.append(
            f"{metric} realised "
            f"{_fmt_interval(real_m['value'], real_m['low'], real_m['high'])} vs estimated "
            f"{_fmt_interval(e['value'], e['low'], e['high'])} ({mark})"
        )
    rep.agrees = agrees
    out.print(head + "; ".join(parts) + ".")


def _write_tensorboard(tb: Any, r: DayReport) -> None:
    tb.add_flag_check({"observed": r.flags, "expected": r.expected, "low": r.low,
                       "high": r.high, "prevalence": r.prevalence}, step=r.day)
    tb.add_performance({"metrics": r.estimated}, step=r.day, kind="estimated")
    if r.realised:
        tb.add_performance({"metrics": r.realised}, step=r.day, kind="realised")
    tb.add_scalars({f"drift/feature/{k}": 1.0 for k in r.drifted_features}, step=r.day)
    tb.flush()


def _summary(out: Any, result: DemoResult, server: Any) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title="Days at a glance", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
                  collapse_padding=True)
    for col in ("day", "act", "flags", "band", "verdict", "copies", "drift", "alerts",
                "labels"):
        table.add_column(col, no_wrap=True)
    acts = {"twice the photocopies": "2x copies", "new scanner": "scanner"}
    labels_text = {True: "agree", False: "differ", None: "-"}
    for r in result.days:
        drift = f"{len(r.drifted_features)}" if r.drifted_features else "-"
        if r.embedding_drift:
            drift += " + emb"
        agree = labels_text[r.agrees]
        if r.verdict == "model_change" and r.agrees is not None:
            agree = "confirm" if r.agrees else "-"
        table.add_row(
            str(r.day), acts.get(r.act, r.act), str(r.flags), f"{r.low:.0f}-{r.high:.0f}",
            r.verdict.replace("_", " ").replace("as expected", "expected"),
            "-" if r.verdict == "model_change" else f"{r.prevalence:.0%}",
            drift, str(len(r.alerts)), agree,
        )
    out.print()
    out.print(table)
    print_notes(out, result.notes)
    step = 5 if result.loop else 4  # "4. Closing the loop" comes before when the loop ran
    out.print(f"\n[bold]{step}. Where the findings are.[/] Everything is in the SQLite file "
              f"[cyan]{result.db}[/] (events, labels, reference, findings, metrics, alerts).")
    # Paths and commands are printed unwrapped so they can be copied.
    lines = [
        "   Python:  [cyan]from watchkeeper.store import Store; "
        f"Store('sqlite:///{result.db}').list_findings('{PROJECT}', '{MODEL}')[/]",
        f"   SQL:     [cyan]sqlite3 {result.db} '.tables'[/]",
        "   HTTP:    [cyan]watchkeeper demo --serve[/] keeps the server up and prints a token.",
    ]
    if result.tensorboard is not None:
        lines.append(f"   TensorBoard: [cyan]tensorboard --logdir {result.tensorboard}[/]")
    for line in lines:
        out.print(line, soft_wrap=True)
    if result.timings:
        out.print("Phase timings: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in result.timings.items()), soft_wrap=True)
    out.print(f"Done in {result.seconds:.0f} s.")
