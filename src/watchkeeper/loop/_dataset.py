"""The dataset builder: a training set and an evaluation set, as Parquet with a manifest.

From the store it takes the model's reference (its validation set) and its labelled production
events of a recent period, optionally narrowed to events curated by hand (a list of ids, or a
saved filter on tags). Production events are split by time: the evaluation set holds the latest
``eval_fraction`` of them and starts strictly after the training set ends, so no event, and no
id, is in both. The reference goes where the plan says (``reference: eval`` by default, so the
gate compares both models on the original validation set too). A generator hook adds samples
"as representative as possible" of the new reality when production data cannot be used
directly: a function ``generate(train: DataFrame, n: int, seed: int) -> DataFrame`` whose rows
join the training set only.

Every file's SHA-256, the row counts, the label counts and the time ranges go into
``manifest.json``; its ``fingerprint`` (a digest over the files) is what a model version's
lineage records as its training data.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.checks._config import parse_duration
from watchkeeper.window import Window

DATASET_DEFAULTS: dict[str, Any] = {
    "since": "30d",
    "eval_fraction": 0.3,
    "reference": "eval",
    "curated": None,
    "generator": None,
    "generated": 0,
    "min_labelled": 50,
    "max_events": 1_000_000,
}
"""The dataset recipe of a plan that says nothing."""


def dataset_config(value: Any, where: str = "dataset") -> dict[str, Any]:
    """The dataset recipe with defaults filled in and every field checked.

    Examples
    --------
    >>> dataset_config({"eval_fraction": 0.2})["reference"]
    'eval'
    >>> dataset_config({"reference": "both"})
    Traceback (most recent call last):
    ...
    ValueError: dataset.reference: expected train, eval or none, got 'both'
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    extra = set(value) - set(DATASET_DEFAULTS)
    if extra:
        raise ValueError(f"{where}.{sorted(extra)[0]}: unknown option")
    d = {**DATASET_DEFAULTS, **value}
    parse_duration(d["since"], f"{where}.since")
    frac = d["eval_fraction"]
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 < frac < 1:
        raise ValueError(f"{where}.eval_fraction: expected a number in (0, 1), got {frac!r}")
    if d["reference"] not in ("train", "eval", "none"):
        raise ValueError(f"{where}.reference: expected train, eval or none, got {d['reference']!r}")
    cur = d["curated"]
    if cur is not None:
        if not isinstance(cur, Mapping) or set(cur) - {"ids", "tags"}:
            raise ValueError(f"{where}.curated: expected a mapping with ids and/or tags")
        ids = cur.get("ids")
        if ids is not None and (
            not isinstance(ids, list) or len(ids) > 1_000_000
            or not all(isinstance(i, str | int) for i in ids)
        ):  # fmt: skip
            raise ValueError(f"{where}.curated.ids: expected a list of at most 1,000,000 ids")
        tags = cur.get("tags")
        if tags is not None and (
            not isinstance(tags, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str | list) for k, v in tags.items())
        ):
            raise ValueError(f"{where}.curated.tags: expected tag: value (or list of values)")
    gen = d["generator"]
    if gen is not None and (not isinstance(gen, str) or gen.count(":") != 1):
        raise ValueError(f"{where}.generator: expected 'package.module:function', got {gen!r}")
    for key, low, high in (("generated", 0, 10_000_000), ("min_labelled", 1, 10_000_000),
                           ("max_events", 1, 100_000_000)):  # fmt: skip
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ValueError(f"{where}.{key}: expected an integer in [{low}, {high}], got {v!r}")
    return {k: d[k] for k in DATASET_DEFAULTS}


@dataclass(frozen=True, slots=True)
class DatasetManifest:
    """What the builder wrote: paths, digests, counts, the split time and the recipe."""

    train: str
    eval: str
    fingerprint: str
    files: dict[str, Any]
    split_ts: float | None
    config: dict[str, Any]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (what ``manifest.json`` holds)."""
        return {
            "train": self.train,
            "eval": self.eval,
            "fingerprint": self.fingerprint,
            "files": self.files,
            "split_ts": self.split_ts,
            "config": self.config,
            "created_at": self.created_at,
        }


def _frame(w: Window, source: str, id_prefix: str = "") -> Any:
    import pandas as pd

    n = len(w)
    cols: dict[str, Any] = {
        "id": [id_prefix + str(i) for i in w.ids],
        "ts": np.asarray(w.ts, dtype=np.float64) if n else np.zeros(0),
        "source": [source] * n,
        "label": w.labels if w.labels is not None else np.full(n, None, dtype=object),
        "score": w.scores if w.scores is not None else np.full(n, np.nan),
    }
    if w.versions is not None:
        cols["version"] = w.versions
    for name, values in w.features.items():
        cols[f"feature.{name}"] = values
    for name, values in w.tags.items():
        cols[f"tag.{name}"] = values
    if w.embeddings is not None and w.embeddings.ndim == 2:
        cols["embedding"] = list(np.asarray(w.embeddings, dtype=np.float32))
    frame = pd.DataFrame(cols)
    frame["label"] = frame["label"].astype(object)
    return frame


def _curate(w: Window, curated: Mapping[str, Any] | None) -> Window:
    if not curated:
        return w
    keep = np.ones(len(w), dtype=bool)
    ids = curated.get("ids")
    if ids is not None:
        keep &= np.isin(np.asarray(w.ids, dtype=str), np.asarray([str(i) for i in ids]))
    for key, wanted in (curated.get("tags") or {}).items():
        values = w.tags.get(key)
        allowed = [wanted] if isinstance(wanted, str) else [str(x) for x in wanted]
        if values is None:
            keep &= False
        else:
            keep &= np.isin(np.asarray(values, dtype=str), allowed)
    return w.take(np.flatnonzero(keep))


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"{target!r} is not a callable")
    return fn  # type: ignore[no-any-return]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_dataset(
    store: Any,
    project: str,
    model: str,
    out_dir: str | Path,
    config: Mapping[str, Any] | None = None,
    *,
    generator: Callable[..., Any] | None = None,
    now: float | None = None,
    seed: int = 0,
) -> DatasetManifest:
    """Write ``train.parquet``, ``eval.parquet`` and ``manifest.json`` into ``out_dir``.

    Parameters
    ----------
    store
        An open :class:`~watchkeeper.store.Store`.
    config
        The plan's ``dataset`` section (see :func:`dataset_config`).
    generator
        Overrides ``config["generator"]``: ``generate(train, n, seed) -> DataFrame`` with the
        training set's columns (at least ``label``); its rows join the training set with
        ``source = "generated"``.
    now
        The end of the production period (default: the current time).

    Raises
    ------
    ValueError
        Fewer labelled production events than ``min_labelled``, or an evaluation set that
        would be empty.
    """
    import pandas as pd

    cfg = dataset_config(config)
    end = time.time() if now is None else float(now)
    start = end - parse_duration(cfg["since"], "dataset.since")
    window = store.read_window(project, model, start=start, end=end, embeddings=True)
    if len(window) > cfg["max_events"]:
        window = window.take(np.arange(len(window) - cfg["max_events"], len(window)))
    window = _curate(window, cfg["curated"])
    labelled = (
        np.array([v is not None for v in window.labels], dtype=bool)
        if window.labels is not None else np.zeros(len(window), dtype=bool)
    )  # fmt: skip
    prod = window.take(np.flatnonzero(labelled))
    if len(prod) < cfg["min_labelled"]:
        raise ValueError(
            f"dataset: {len(prod)} labelled production events in the last {cfg['since']}, "
            f"the recipe needs at least {cfg['min_labelled']} (dataset.min_labelled)"
        )
    order = np.argsort(prod.ts, kind="stable")
    ts = np.asarray(prod.ts, dtype=np.float64)[order]
    k = math.floor(len(ts) * (1 - cfg["eval_fraction"]))
    k = min(max(k, 1), len(ts) - 1)
    split = float(ts[k])
    # eval strictly after train: events at the split time all go to eval
    train_idx = order[ts < split]
    eval_idx = order[ts >= split]
    if train_idx.size == 0 or eval_idx.size == 0:
        raise ValueError("dataset: every labelled event has the same time; cannot split by time")
    train = _frame(prod.take(train_idx), "production")
    evaluation = _frame(prod.take(eval_idx), "production")
    if cfg["reference"] != "none":
        # the champion's reference (its scores are the champion's): not a challenger's,
        # which the gate stores too and may be newer
        champion = store.get_alias(project, model, "champion")
        ref = None
        for version in ([champion] if champion else []) + [None]:
            try:
                ref = store.get_reference(project, model, version)
                break
            except (KeyError, ValueError):
                continue
        if ref is not None and len(ref):
            rf = _frame(ref, "reference", id_prefix="reference:")
            rf["ts"] = np.nan
            if cfg["reference"] == "train":
                train = pd.concat([rf, train], ignore_index=True)
            else:
                evaluation = pd.concat([rf, evaluation], ignore_index=True)
    gen = generator
    if gen is None and cfg["generator"] is not None:
        gen = _load(cfg["generator"])
    if gen is not None and cfg["generated"] > 0:
        extra = gen(train, cfg["generated"], seed)
        if not isinstance(extra, pd.DataFrame) or "label" not in extra:
            raise ValueError("dataset.generator: expected a DataFrame with a label column")
        extra = extra.copy()
        extra["id"] = [f"generated:{i}" for i in range(len(extra))]
        extra["source"] = "generated"
        extra["ts"] = np.nan
        train = pd.concat([train, extra], ignore_index=True)
    both = set(train["id"]) & set(evaluation["id"])
    if both:  # cannot happen by construction; a loud failure rather than a leak
        raise RuntimeError(f"dataset: {len(both)} ids in both sets")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for name, frame in (("train", train), ("eval", evaluation)):
        path = out / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        labels = frame["label"].dropna().astype(str).value_counts().to_dict()
        prod_ts = frame.loc[frame["source"] == "production", "ts"]
        files[name] = {
            "path": path.name,
            "sha256": _sha256(path),
            "rows": len(frame),
            "sources": frame["source"].value_counts().to_dict(),
            "labels": labels,
            "ts_min": float(prod_ts.min()) if len(prod_ts) else None,
            "ts_max": float(prod_ts.max()) if len(prod_ts) else None,
        }
    fingerprint = hashlib.sha256(
        (files["train"]["sha256"] + files["eval"]["sha256"]).encode()
    ).hexdigest()
    manifest = DatasetManifest(
        train=str(out / "train.parquet"),
        eval=str(out / "eval.parquet"),
        fingerprint=fingerprint,
        files=files,
        split_ts=split,
        config={**cfg, "project": project, "model": model, "start": start, "end": end},
        created_at=time.time(),
    )
    (out / "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=2, default=str))
    return manifest
