"""Training/serving skew on shared ids, and environment skew of package versions.

Training/serving skew: when the same ids are logged at training (the reference) and at serving,
the features computed for them should be identical; a mismatch means the two pipelines compute
features differently. Environment skew: a model trained with one version of numpy, torch or
scikit-learn and served with another may behave differently without any input drifting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.profiles import missing_mask
from watchkeeper.window import Window


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    value = default if options is None else options.get(key, default)
    return default if value is None else value


def training_serving_skew(
    training: Window, serving: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Per feature, the share of shared ids whose serving value differs from training.

    Numbers differ when ``|a - b| > tolerance * (1 + |a|)``; categories when their text differs;
    missing on one side only is a difference too. No finding when no id is shared.

    Examples
    --------
    >>> t = Window.from_columns(ids=["a", "b", "c"], features={"x": [1.0, 2.0, 3.0]})
    >>> s = Window.from_columns(ids=["c", "b", "z"], features={"x": [3.0, 2.5, 9.0]})
    >>> f = training_serving_skew(t, s)[0]
    >>> f.subject, f.statistic, f.drift, f.details["shared"]
    ('x', 0.5, True, 2)
    """
    tol = float(_opt(options, "tolerance", 1e-6))
    bound = float(_opt(options, "max_mismatch_rate", 0.01))
    severity = str(_opt(options, "severity", "warning"))
    _, ti, si = np.intersect1d(
        training.ids.astype(str), serving.ids.astype(str), return_indices=True
    )
    if ti.size == 0:
        return []
    out = []
    for name, tcol in training.features.items():
        scol = serving.features.get(name)
        if scol is None:
            continue
        a, b = np.asarray(tcol)[ti], np.asarray(scol)[si]
        ma, mb = missing_mask(a), missing_mask(b)
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            differ = np.abs(a - b) > tol * (1 + np.abs(a))
        else:
            differ = a.astype(str) != b.astype(str)
        differ = np.where(ma | mb, ma != mb, differ)
        rate = float(differ.mean())
        examples = training.ids[ti][differ][:5].tolist()
        out.append(
            finding(
                "training_serving_skew",
                name,
                "mismatch_rate",
                rate,
                rate > bound,
                window=serving,
                threshold=bound,
                severity=severity,
                details={"shared": int(ti.size), "mismatched": int(differ.sum()), "ids": examples},
            )
        )
    return out


def _version_key(version: str, level: str) -> tuple[str, ...]:
    parts = str(version).split("+")[0].split(".")
    keep = {"major": 1, "minor": 2, "patch": 3, "exact": 99}[level]
    return tuple(parts[:keep])


def environment_skew(
    training: Mapping[str, Any] | None,
    serving: Iterable[Mapping[str, Any]],
    options: Mapping[str, Any] | None = None,
    *,
    window: Window | None = None,
) -> list[Finding]:
    """Packages whose serving version differs from training at ``level`` (major, minor, patch,
    exact), and a Python version change; one finding per package that differs and one for ``*``.

    Environments are dicts as the SDK reports them: ``{"python": ..., "packages": {...}}``.

    Examples
    --------
    >>> train = {"python": "3.11.9", "packages": {"numpy": "2.1.0", "torch": "2.3.1"}}
    >>> serve = [{"python": "3.11.9", "packages": {"numpy": "2.4.0", "torch": "2.3.2"}}]
    >>> [(f.subject, f.drift) for f in environment_skew(train, serve)]
    [('numpy', True), ('*', True)]
    """
    level = str(_opt(options, "level", "minor"))
    if level not in ("major", "minor", "patch", "exact"):
        raise ValueError(f"environment.level must be major, minor, patch or exact, got {level!r}")
    severity = str(_opt(options, "severity", "warning"))
    only = _opt(options, "packages", None)
    if not training:
        return []
    train_pk = dict(training.get("packages") or {})
    if training.get("python"):
        train_pk["python"] = training["python"]
    seen: dict[str, set[str]] = {}
    for env in serving:
        pk = dict(env.get("packages") or {})
        if env.get("python"):
            pk["python"] = env["python"]
        for name, version in pk.items():
            seen.setdefault(name, set()).add(str(version))
    out = []
    for name in sorted(train_pk):
        if (only is not None and name not in only and name != "python") or name not in seen:
            continue
        want = _version_key(train_pk[name], level)
        differing = sorted(v for v in seen[name] if _version_key(v, level) != want)
        if differing:
            out.append(
                finding(
                    "environment",
                    name,
                    "version_change",
                    1.0,
                    True,
                    window=window,
                    threshold=0.5,
                    severity=severity,
                    details={"training": str(train_pk[name]), "serving": differing},
                )
            )
    out.append(
        finding(
            "environment",
            "*",
            "packages_changed",
            float(len(out)),
            bool(out),
            window=window,
            threshold=0.5,
            severity=severity,
            details={"level": level, "changed": [f.subject for f in out]},
        )
    )
    return out
