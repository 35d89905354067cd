"""Accuracy-weighted ensembles of recent versions (AWE; Wang, Fan, Yu and Han, KDD 2003).

On a drifting stream the newest model is not always the best, and the oldest not always
useless: an ensemble of recent versions, each weighted by how well it does on the **latest
labelled chunk**, follows the drift without forgetting what still holds. A member's weight is

    w_i = MSE_r - MSE_i

where ``MSE_i`` is the member's mean squared error on the chunk, ``mean((1 - p_i(true class))^2)``
(for a binary model scoring ``p = P(positive)``, ``mean((y - p)^2)``), and ``MSE_r`` the error of
a model that predicts at random with the chunk's class distribution, ``sum_c p(c) (1 - p(c))^2``
(``pi (1 - pi)`` for two classes). A member no better than that random model gets a weight of
zero or less and is dropped; at most ``max_members`` of the highest weights are kept. The
ensemble's score is the weighted mean of its members' scores.

:func:`fit_awe` is the statistics on plain arrays; :func:`register_awe` scores the model's recent
registry versions on a labelled chunk with a scorer, fits the weights, writes ``ensemble.json``
and registers the ensemble as a version whose lineage names its members and their weights. A
maintenance plan chooses it with ``retraining.strategy: awe`` (see :func:`ensemble_config`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

STRATEGIES = ("transfer", "awe")
"""``transfer``: the trainer fine-tunes the champion's weights (its artifact is the trainer's
``{champion}``); ``awe``: the new version is an accuracy-weighted ensemble of recent ones."""

ENSEMBLE_DEFAULTS: dict[str, Any] = {"max_members": 5, "scorer": None, "min_labelled": 50}
"""The ``retraining.ensemble`` section of a plan that says nothing."""

MAX_MEMBERS = 20
ENSEMBLE_FILE = "ensemble.json"


def ensemble_config(
    value: Any, strategy: str = "awe", where: str = "retraining.ensemble"
) -> dict[str, Any] | None:
    """The plan's ``ensemble`` section, defaults filled in, every field checked.

    ``scorer`` names ``score(artifact_path, frame) -> scores``: the function that loads one
    member's artifact and scores a data frame (the dataset builder's columns); it is required
    with ``strategy: awe``.

    Examples
    --------
    >>> ensemble_config({"scorer": "mypkg.score:predict"})["max_members"]
    5
    >>> ensemble_config({"max_members": 1, "scorer": "m:f"})
    Traceback (most recent call last):
    ...
    ValueError: retraining.ensemble.max_members: expected an integer in [2, 20], got 1
    >>> ensemble_config(None)
    Traceback (most recent call last):
    ...
    ValueError: retraining.ensemble.scorer: required with strategy awe ('package.module:function')
    """
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    extra = set(value) - set(ENSEMBLE_DEFAULTS)
    if extra:
        raise ValueError(
            f"{where}.{sorted(extra)[0]}: unknown option (known: {', '.join(ENSEMBLE_DEFAULTS)})"
        )
    d = {**ENSEMBLE_DEFAULTS, **value}
    for key, low, high in (("max_members", 2, MAX_MEMBERS), ("min_labelled", 1, 10_000_000)):
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ValueError(f"{where}.{key}: expected an integer in [{low}, {high}], got {v!r}")
    scorer = d["scorer"]
    if scorer is None:
        if strategy == "awe":
            raise ValueError(
                f"{where}.scorer: required with strategy awe ('package.module:function')"
            )
        return None if not value else {k: d[k] for k in ENSEMBLE_DEFAULTS}
    if not isinstance(scorer, str) or scorer.count(":") != 1 or scorer.startswith(":") or (
        scorer.endswith(":")
    ):
        raise ValueError(f"{where}.scorer: expected 'package.module:function', got {scorer!r}")
    return {k: d[k] for k in ENSEMBLE_DEFAULTS}


def _binary(y: Any, where: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{where}: expected a non-empty 1-d array of 0/1 labels")
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected 0/1 labels, got {arr.dtype}") from None
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"{where}: expected 0/1 labels only")
    return values


def _member_scores(scores: Any, n: int, where: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"{where}: expected {n} scores, got shape {s.shape}")
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValueError(f"{where}: expected probabilities in [0, 1]")
    return s


def awe_weights(y: Any, scores: Mapping[str, Any]) -> dict[str, float]:
    """Each member's AWE weight ``MSE_r - MSE_i`` on the labelled chunk ``y``.

    ``scores[name]`` is the member's probability of the positive class for each event.

    Examples
    --------
    >>> y = [1, 0, 1, 0]
    >>> w = awe_weights(y, {"good": [0.9, 0.1, 0.8, 0.2], "coin": [0.5] * 4})
    >>> round(w["good"], 3), round(w["coin"], 3)
    (0.225, 0.0)
    """
    labels = _binary(y)
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores: expected a mapping of member name to scores")
    if len(scores) > 1000:
        raise ValueError("scores: at most 1,000 members")
    prevalence = float(labels.mean())
    mse_random = prevalence * (1.0 - prevalence)
    out = {}
    for name, member in scores.items():
        s = _member_scores(member, len(labels), f"scores[{name!r}]")
        out[str(name)] = mse_random - float(np.mean((labels - s) ** 2))
    return out


@dataclass(frozen=True)
class WeightedEnsemble:
    """Members (version names) and their AWE weights; the score is the weighted mean.

    Examples
    --------
    >>> e = WeightedEnsemble(["v2", "v1"], [0.15, 0.05])
    >>> e.predict({"v1": [0.2, 0.6], "v2": [0.8, 0.4]}).round(2).tolist()
    [0.65, 0.45]
    """

    members: list[str]
    weights: list[float]
    mse_random: float = math.nan
    candidates: dict[str, float] = field(default_factory=dict)
    """Every candidate's weight, the dropped ones (weight <= 0, or beyond ``max_members``)
    included."""

    def __post_init__(self) -> None:
        if not self.members or len(self.members) != len(self.weights):
            raise ValueError("members: expected as many members as weights, at least one")
        if any(not (isinstance(w, int | float) and math.isfinite(w) and w > 0)
               for w in self.weights):  # fmt: skip
            raise ValueError("weights: expected positive finite weights")

    def predict(self, scores: Mapping[str, Any]) -> np.ndarray:
        """The weighted mean of the members' scores (``scores[member]``, one array each)."""
        missing = [m for m in self.members if m not in scores]
        if missing:
            raise ValueError(f"scores: no scores for member {missing[0]!r}")
        first = np.asarray(scores[self.members[0]], dtype=np.float64)
        total = np.zeros(first.shape, dtype=np.float64)
        for name, w in zip(self.members, self.weights, strict=True):
            total += w * _member_scores(scores[name], len(first), f"scores[{name!r}]")
        result: np.ndarray = total / float(sum(self.weights))
        return result

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``ensemble.json`` holds)."""
        return {
            "strategy": "awe", "members": list(self.members),
            "weights": [float(w) for w in self.weights],
            "mse_random": None if math.isnan(self.mse_random) else float(self.mse_random),
            "candidates": {k: float(v) for k, v in self.candidates.items()},
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightedEnsemble:
        """Read :meth:`to_dict`'s output; errors name the field."""
        if not isinstance(d, Mapping):
            raise ValueError("ensemble: expected a mapping")
        members, weights = d.get("members"), d.get("weights")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValueError("ensemble.members: expected a list of version names")
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"ensemble.members: at most {MAX_MEMBERS}")
        if not isinstance(weights, list) or not all(
            isinstance(w, int | float) and not isinstance(w, bool) for w in weights
        ):
            raise ValueError("ensemble.weights: expected a list of numbers")
        mse = d.get("mse_random")
        return cls(list(members), [float(w) for w in weights],
                   math.nan if mse is None else float(mse),
                   {str(k): float(v) for k, v in dict(d.get("candidates") or {}).items()})


def fit_awe(y: Any, scores: Mapping[str, Any], *, max_members: int = 5) -> WeightedEnsemble:
    """The AWE ensemble of the candidates ``scores`` on the labelled chunk ``y``.

    Candidates with a weight of zero or less (no better than guessing with the chunk's class
    mix) are dropped, then the ``max_members`` highest weights are kept.

    Raises
    ------
    ValueError
        No candidate beats the random model (nothing to ensemble), or bad input (named).

    Examples
    --------
    >>> y = [1, 0, 1, 0, 1, 0]
    >>> e = fit_awe(y, {"new": [.9, .1, .8, .2, .7, .3], "old": [.6, .4, .6, .4, .5, .5],
    ...                 "wrong": [.1, .9, .2, .8, .3, .7]})
    >>> e.members, sorted(e.candidates)
    (['new', 'old'], ['new', 'old', 'wrong'])
    """
    if isinstance(max_members, bool) or not isinstance(max_members, int) or not (
        1 <= max_members <= MAX_MEMBERS
    ):
        raise ValueError(f"max_members: expected an integer in [1, {MAX_MEMBERS}]")
    labels = _binary(y)
    weights = awe_weights(labels, scores)
    kept = sorted(((w, n) for n, w in weights.items() if w > 0), key=lambda t: -t[0])
    kept = kept[:max_members]
    if not kept:
        raise ValueError(
            "scores: no candidate does better than a random guess on the labelled chunk "
            f"(weights {', '.join(f'{n} {w:.4f}' for n, w in weights.items())})"
        )
    prevalence = float(labels.mean())
    return WeightedEnsemble([n for _, n in kept], [w for w, _ in kept],
                            prevalence * (1 - prevalence), weights)  # fmt: skip


def _load_scorer(target: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, name = str(target).partition(":")
    fn = getattr(importlib.import_module(module), name, None)
    if not callable(fn):
        raise ValueError(f"retraining.ensemble.scorer: {target!r} is not a callable")
    return fn  # type: ignore[no-any-return]


def _local_path(uri: str) -> str:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return uri


def candidate_versions(
    store: Any, project: str, model: str, *, max_candidates: int = MAX_MEMBERS
) -> list[dict[str, Any]]:
    """The model's most recent versions with an artifact, newest first, ensembles excluded
    (an ensemble's members are models, not other ensembles)."""
    out = []
    for record in reversed(store.list_model_versions(project, model)):
        lineage = record.get("lineage") or {}
        if not record.get("artifact_uri") or lineage.get("strategy") == "awe":
            continue
        out.append(record)
        if len(out) >= max_candidates:
            break
    return out


def ensemble_scores(
    ensemble: WeightedEnsemble,
    artifacts: Mapping[str, str],
    frame: Any,
    scorer: str | Callable[..., Any],
) -> np.ndarray:
    """Score ``frame`` with every member (``artifacts[member]`` is its path) and combine."""
    fn = _load_scorer(scorer)
    return ensemble.predict({m: fn(artifacts[m], frame) for m in ensemble.members})


def register_awe(
    store: Any,
    project: str,
    model: str,
    version: str,
    *,
    labels: Any,
    frame: Any,
    scorer: str | Callable[..., Any],
    out_dir: str | Path,
    max_members: int = 5,
    extra: Mapping[str, str] | None = None,
    parent: str | None = None,
    chunk: Mapping[str, Any] | None = None,
) -> WeightedEnsemble:
    """Fit and register an AWE ensemble of the model's recent versions as ``version``.

    Parameters
    ----------
    labels, frame
        The latest labelled chunk: its labels and what the scorer needs to score it (typically
        the production rows of the dataset builder's evaluation set).
    scorer
        ``score(artifact_path, frame) -> scores``, or its ``"package.module:function"`` name.
    out_dir
        Where ``ensemble.json`` is written (the ensemble's artifact).
    max_members
        Candidates are the ``max_members`` most recent versions with an artifact (the newest,
        just trained, first) plus ``extra``; at most ``max_members`` are kept.
    extra
        Candidates not registered yet, ``{version: artifact path}``; each is registered with
        its artifact before the ensemble (a member is always a registry version).
    parent
        The lineage's parent (default: the ``champion`` alias's version, if any).
    chunk
        What the lineage records about the chunk (e.g. the dataset's fingerprint).

    Returns
    -------
    WeightedEnsemble
        The members and weights, as registered; the version's lineage holds
        ``strategy: awe``, ``members``, ``weights`` and every candidate's weight.
    """
    if version in (extra or {}):
        raise ValueError(f"version: {version!r} is also a candidate's name")
    fn = _load_scorer(scorer)
    y = _binary(labels, "labels")
    for name, extra_path in (extra or {}).items():
        p = Path(extra_path)
        if not p.is_file():
            raise ValueError(f"extra[{name!r}]: {extra_path!r} is not a file")
        store.register_model_version(project, model, name, artifact_uri=p.resolve().as_uri(),
                                     sha256=hashlib.sha256(p.read_bytes()).hexdigest())
    records = candidate_versions(store, project, model, max_candidates=max_members)
    artifacts = {r["version"]: _local_path(str(r["artifact_uri"])) for r in records}
    if not artifacts:
        raise ValueError(f"model {model!r} has no version with an artifact to ensemble")
    scores = {}
    for name, member_path in artifacts.items():
        s = np.asarray(fn(member_path, frame), dtype=np.float64)
        scores[name] = _member_scores(s, len(y), f"scorer({name!r})")
    ensemble = fit_awe(y, scores, max_members=max_members)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = {**ensemble.to_dict(), "artifacts": {m: artifacts[m] for m in ensemble.members}}
    path = out / ENSEMBLE_FILE
    path.write_text(json.dumps(body, indent=2))
    if parent is None and hasattr(store, "get_alias"):
        parent = store.get_alias(project, model, "champion")
    store.register_model_version(project, model, version, artifact_uri=path.resolve().as_uri(),
                                 sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    lineage = {
        "parent": parent, "strategy": "awe", "members": list(ensemble.members),
        "weights": dict(zip(ensemble.members, ensemble.weights, strict=True)),
        "candidates": ensemble.candidates, "mse_random": ensemble.mse_random,
        "chunk": {"rows": len(y), "positives": int(y.sum()), **dict(chunk or {})},
    }  # fmt: skip
    store.put_version_registry(project, model, version, lineage=lineage)
    return ensemble


def load_ensemble(path: str | Path) -> tuple[WeightedEnsemble, dict[str, str]]:
    """An ``ensemble.json`` as the ensemble and its members' artifact paths."""
    body = json.loads(Path(path).read_text())
    ensemble = WeightedEnsemble.from_dict(body)
    artifacts = body.get("artifacts") or {}
    if not isinstance(artifacts, Mapping) or set(ensemble.members) - set(artifacts):
        raise ValueError("ensemble.artifacts: expected a path for every member")
    return ensemble, {str(k): str(v) for k, v in artifacts.items()}


def awe_members(lineage: Mapping[str, Any] | None) -> Sequence[str]:
    """The member versions an AWE version's lineage names (empty for any other version)."""
    if not lineage or lineage.get("strategy") != "awe":
        return []
    return list(lineage.get("members") or [])


def awe_after_training(
    store: Any,
    project: str,
    model: str,
    job_id: int,
    *,
    artifact: str,
    eval_path: str,
    config: Mapping[str, Any],
    out_dir: str | Path,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """A job's last step with ``strategy: awe``: the trainer's artifact joins the registry as
    version ``job-<id>``, and the ensemble of it and the recent versions, weighted on the
    evaluation set's labelled production rows (the latest chunk), is registered as
    ``job-<id>-awe``. Returns what the job's outputs record."""
    import pandas as pd

    cfg = ensemble_config(config)
    assert cfg is not None  # ensemble_config requires the scorer with strategy awe
    frame = pd.read_parquet(eval_path)
    chunk = frame[frame["source"] == "production"].reset_index(drop=True)
    if len(chunk) < cfg["min_labelled"]:
        raise ValueError(
            f"retraining.ensemble.min_labelled: the latest chunk has {len(chunk)} labelled "
            f"events, fewer than {cfg['min_labelled']}"
        )
    labels = chunk["label"].astype(float).astype(np.int64).to_numpy()
    member, version = f"job-{job_id}", f"job-{job_id}-awe"
    ensemble = register_awe(
        store, project, model, version, labels=labels, frame=chunk, scorer=cfg["scorer"],
        out_dir=out_dir, max_members=cfg["max_members"], extra={member: artifact},
        chunk={"fingerprint": fingerprint} if fingerprint else None,
    )  # fmt: skip
    # The gate judges the job's challenger by its scores on the evaluation set: the ensemble's,
    # written beside its artifact, so the gate compares the ensemble (not the new member).
    _, members = load_ensemble(Path(out_dir) / ENSEMBLE_FILE)
    fn = _load_scorer(cfg["scorer"])
    rows = frame[frame["label"].notna()].reset_index(drop=True)
    scores = {
        name: _member_scores(np.asarray(fn(path, rows), np.float64), len(rows), f"scorer({name!r})")
        for name, path in members.items()
    }
    written = pd.DataFrame({"id": rows["id"].astype(str), "score": ensemble.predict(scores)})
    written.to_parquet(Path(out_dir) / "eval_scores.parquet", index=False)
    return {"version": version, "member": member, **ensemble.to_dict()}
