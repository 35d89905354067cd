"""Models, their versions and the reference set of each version."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._codec import window_from_bytes, window_to_bytes
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import finite, loads, opt_dict, timestamp
from watchkeeper.window import Window


class ModelsMixin(StoreBase):
    """Models, versions and references of the :class:`~watchkeeper.store.Store`."""

    def register_model(self, project: str, model: str) -> None:
        """Register a model (and its project if new); doing it again is a no-op."""
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model, create=True)
        self._committed_model(project, model, mid)

    def has_model(self, project: str, model: str) -> bool:
        """Whether the project has this model."""
        check_name(project, "project")
        check_name(model, "model")
        if (project, model) in self._models:
            return True
        try:
            with self._tx() as conn:
                mid = self._model_id(conn, project, model)
        except ValueError:
            return False
        self._committed_model(project, model, mid)
        return True

    def list_models(self, project: str) -> list[str]:
        """Names of the project's models."""
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            return list(
                conn.execute(
                    sa.select(T.models.c.name).where(T.models.c.project_id == pid).order_by("name")
                ).scalars()
            )

    def register_model_version(
        self,
        project: str,
        model: str,
        version: str,
        *,
        artifact_uri: str | None = None,
        sha256: str | None = None,
        data_fingerprint: str | None = None,
        environment: dict[str, Any] | None = None,
        operating_point: dict[str, Any] | None = None,
        expected_prevalence: float | None = None,
        expected_volume: float | None = None,
        window: str | None = None,
    ) -> None:
        """Record a model version (registering the model if new).

        Registering an existing version again updates the fields given (not None) and keeps
        the others.
        """
        check_name(version, "version")
        if artifact_uri is not None and not isinstance(artifact_uri, str):
            raise ValueError(f"artifact_uri: expected a string, got {artifact_uri!r}")
        if sha256 is not None and (
            not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256)
        ):
            raise ValueError(f"sha256: expected 64 hex digits, got {sha256!r}")
        if data_fingerprint is not None and not isinstance(data_fingerprint, str):
            raise ValueError(f"data_fingerprint: expected a string, got {data_fingerprint!r}")
        if window is not None and not isinstance(window, str):
            raise ValueError(f"window: expected a string such as '1h', got {window!r}")
        prevalence = finite(expected_prevalence, "expected_prevalence")
        if prevalence is not None and not 0.0 <= prevalence <= 1.0:
            raise ValueError(f"expected_prevalence: expected a share in [0, 1], got {prevalence}")
        volume = finite(expected_volume, "expected_volume")
        if volume is not None and volume < 0:
            raise ValueError(f"expected_volume: expected a count >= 0, got {volume}")
        fields = {
            "artifact_uri": artifact_uri,
            "sha256": None if sha256 is None else sha256.lower(),
            "data_fingerprint": data_fingerprint,
            "environment": opt_dict(environment, "environment"),
            "operating_point": opt_dict(_operating_point(operating_point), "operating_point"),
            "expected_prevalence": prevalence,
            "expected_volume": volume,
            "window": window,
        }
        given = {k: v for k, v in fields.items() if v is not None}
        mv = T.model_versions
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model, create=True)
            existing = conn.execute(
                sa.select(mv.c.id).where(mv.c.model_id == mid).where(mv.c.version == version)
            ).scalar()
            if existing is None:
                conn.execute(
                    sa.insert(mv).values(
                        model_id=mid, version=version, created_at=timestamp(), **fields
                    )
                )
            elif given:
                conn.execute(sa.update(mv).where(mv.c.id == existing).values(**given))
        self._committed_model(project, model, mid)

    @staticmethod
    def _version_dict(model: str, row: Any) -> dict[str, Any]:
        return {
            "model": model,
            "version": row.version,
            "artifact_uri": row.artifact_uri,
            "sha256": row.sha256,
            "data_fingerprint": row.data_fingerprint,
            "environment": loads(row.environment),
            "operating_point": loads(row.operating_point),
            "expected_prevalence": row.expected_prevalence,
            "expected_volume": row.expected_volume,
            "window": row.window,
            "created_at": row.created_at,
            "manifest": loads(row.manifest),
            "signature": row.signature,
            "lineage": loads(row.lineage),
        }

    def get_model_version(self, project: str, model: str, version: str) -> dict[str, Any]:
        """The version's record as a dict; KeyError when the version is unknown."""
        check_name(version, "version")
        mv = T.model_versions
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            row = conn.execute(
                sa.select(mv).where(mv.c.model_id == mid).where(mv.c.version == version)
            ).first()
        if row is None:
            raise KeyError(f"model {model!r} has no version {version!r}")
        return self._version_dict(model, row)

    def list_model_versions(self, project: str, model: str) -> list[dict[str, Any]]:
        """Every version of the model, oldest first."""
        mv = T.model_versions
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            rows = conn.execute(
                sa.select(mv).where(mv.c.model_id == mid).order_by(mv.c.created_at, mv.c.id)
            ).all()
        return [self._version_dict(model, r) for r in rows]

    def put_reference(
        self,
        project: str,
        model: str,
        version: str | None,
        reference: Window,
        profile: dict[str, Any] | None = None,
    ) -> None:
        """Store the reference set of a model version (replacing an earlier one).

        ``version=None`` stores a reference of the model as a whole. The window is stored as
        one compact binary blob (numeric columns as raw bytes, embeddings as ``float32``).
        """
        if version is not None:
            check_name(version, "version")
        if not isinstance(reference, Window):
            raise ValueError(
                f"reference: expected a watchkeeper.window.Window, got {type(reference).__name__}"
            )
        data = window_to_bytes(reference)
        profile_text = opt_dict(profile, "profile")
        rs = T.reference_sets
        key = version or ""
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model, create=True)
            conn.execute(sa.delete(rs).where(rs.c.model_id == mid).where(rs.c.version == key))
            conn.execute(
                sa.insert(rs).values(
                    model_id=mid,
                    version=key,
                    n_rows=len(reference),
                    data=data,
                    profile=profile_text,
                    created_at=timestamp(),
                )
            )
        self._committed_model(project, model, mid)

    def _reference_row(
        self, project: str, model: str, version: str | None, columns: Sequence[Any]
    ) -> Any:
        rs = T.reference_sets
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = sa.select(*columns).where(rs.c.model_id == mid)
            if version is not None:
                check_name(version, "version")
                query = query.where(rs.c.version == version)
            return conn.execute(query.order_by(rs.c.created_at.desc(), rs.c.id.desc())).first()

    def get_reference(self, project: str, model: str, version: str | None = None) -> Window:
        """The reference of a version (``None``: the most recently stored one); KeyError if
        there is none."""
        row = self._reference_row(project, model, version, [T.reference_sets.c.data])
        if row is None:
            raise KeyError(
                f"model {model!r} has no reference"
                + ("" if version is None else f" for version {version!r}")
            )
        return window_from_bytes(bytes(row[0]))

    def get_reference_profile(
        self, project: str, model: str, version: str | None = None
    ) -> dict[str, Any] | None:
        """The profile stored with the reference, or None."""
        row = self._reference_row(project, model, version, [T.reference_sets.c.profile])
        if row is None:
            return None
        out: dict[str, Any] | None = loads(row[0])
        return out


def _operating_point(op: Any) -> Any:
    """Refuse what would otherwise be stored silently changed: NaN (stored as null), booleans
    (stored as 0/1), rates outside [0, 1], negative or fractional counts."""
    if not isinstance(op, Mapping):
        return op  # opt_dict names the wrong type
    out = dict(op)
    for key in ("threshold", "tpr", "fpr"):
        value = out.get(key)
        if value is None:
            continue
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
            raise ValueError(f"operating_point.{key}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"operating_point.{key}: expected a finite number, got {value!r}")
        out[key] = float(value)
        if key != "threshold" and not 0.0 <= out[key] <= 1.0:
            raise ValueError(f"operating_point.{key}: expected a rate in [0, 1], got {value!r}")
    for key in ("n_positive", "n_negative"):
        value = out.get(key)
        if value is None:
            continue
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise ValueError(f"operating_point.{key}: expected a count, got {value!r}")
        if value < 0:
            raise ValueError(f"operating_point.{key}: expected a count >= 0, got {value!r}")
        out[key] = int(value)
    return out
