"""Register a model version's reference from a DataFrame, a dict of columns or a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.window import Window


@dataclass(frozen=True)
class RegisteredReference:
    """What :func:`register_reference` stored."""

    rows: int
    features: list[str]
    embedding_dim: int | None
    operating_point: dict[str, Any] | None
    expected_prevalence: float | None


def reference_window(
    data: Any,
    *,
    score_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    embedding_prefix: str | None = None,
    exclude: Sequence[str] = (),
) -> Window:
    """A reference :class:`Window` from a DataFrame (pandas, polars), a dict of columns, or a
    CSV/Parquet path: every column that is not the score, label, id or an embedding column
    (``PREFIX0``, ``PREFIX1``, ...) and not in ``exclude`` is a feature.

    Examples
    --------
    >>> w = reference_window({"x": [1.0, 2.0], "s": [0.1, 0.9], "y": [0, 1], "e0": [1, 2],
    ...                       "e1": [3, 4]}, score_column="s", label_column="y",
    ...                       embedding_prefix="e")
    >>> sorted(w.features), w.embeddings.shape
    (['x'], (2, 2))
    """
    from watchkeeper.frames import read_table, to_columns

    cols = read_table(data) if isinstance(data, str | Path) else to_columns(data)
    for option, name in (
        ("score_column", score_column),
        ("label_column", label_column),
        ("id_column", id_column),
    ):
        if name is not None and name not in cols:
            raise ValueError(f"{option}: no column {name!r} (have {sorted(cols)})")
    taken = {c for c in (score_column, label_column, id_column) if c} | set(exclude)
    embeddings = None
    if embedding_prefix:
        n = len(embedding_prefix)
        emb_cols = sorted(
            (c for c in cols if c.startswith(embedding_prefix) and c[n:].isdigit()),
            key=lambda c: int(c[n:]),
        )
        if not emb_cols:
            raise ValueError(f"embedding_prefix: no column named {embedding_prefix}0, ...")
        embeddings = np.column_stack([cols[c] for c in emb_cols]).astype(np.float32)
        taken |= set(emb_cols)
    return Window.from_columns(
        ids=None if id_column is None else cols[id_column],
        features={c: v for c, v in cols.items() if c not in taken},
        scores=None if score_column is None else cols[score_column],
        labels=None if label_column is None else cols[label_column],
        embeddings=embeddings,
    )


def register_reference(
    store: Any,
    project: str,
    model: str,
    version: str,
    data: Any,
    *,
    score_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    embedding_prefix: str | None = None,
    exclude: Sequence[str] = (),
    threshold: float | None = None,
    target_tpr: float | None = None,
    expected_prevalence: float | None = None,
    expected_volume: float | None = None,
    window: str | None = None,
    environment: Mapping[str, Any] | None = None,
) -> RegisteredReference:
    """Store ``data`` as the reference of ``model`` ``version`` with its profile and operating
    point (measured on the reference at ``threshold``, or at the highest threshold reaching
    ``target_tpr``; 0.5 by default), creating the project and model when new.

    ``environment`` is the training environment (``{"python", "packages": {...}}``) the
    environment check compares serving with; ``expected_prevalence`` defaults to the
    reference's share of positives.
    """
    from watchkeeper.profiles import binary_labels, profile

    ref = reference_window(
        data,
        score_column=score_column,
        label_column=label_column,
        id_column=id_column,
        embedding_prefix=embedding_prefix,
        exclude=exclude,
    )
    op_dict = None
    if ref.scores is not None and ref.labels is not None:
        from watchkeeper.estimation import OperatingPoint

        y = binary_labels(ref.labels)
        ok = np.isfinite(y) & np.isfinite(ref.scores)
        op = OperatingPoint.from_scores(
            ref.scores[ok], y[ok].astype(int), target_tpr=target_tpr, threshold=threshold
        )
        op_dict = op.to_dict()
        if expected_prevalence is None:
            expected_prevalence = float(y[ok].mean())
    if not store.has_project(project):
        store.create_project(project)
    store.register_model_version(
        project,
        model,
        version,
        operating_point=op_dict,
        environment=None if environment is None else dict(environment),
        expected_prevalence=expected_prevalence,
        expected_volume=expected_volume,
        window=window,
    )
    store.put_reference(project, model, version, ref, profile=profile(ref).to_dict())
    return RegisteredReference(
        rows=len(ref),
        features=list(ref.features),
        embedding_dim=None if ref.embeddings is None else int(ref.embeddings.shape[1]),
        operating_point=op_dict,
        expected_prevalence=expected_prevalence,
    )
