"""Aliases of a model's versions (champion, challenger, fallback, any name), every move kept.

An alias points at one version; moving it records the move (from, to, when, who, why) in
``alias_moves``. A rollback undoes the newest move that is not undone yet, so rolling back twice
after two promotions walks back two steps rather than toggling between the last two targets.
The registry's artifact manifest, signature and lineage of a version are written here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import opt_dict, timestamp
from watchkeeper.store._outliers import insert_audit

ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""What an alias may look like: a letter or digit, then letters, digits, ``_ . -``."""
MAX_REASON = 2_000
_ALIAS_LOCK = 7_271_003  # PostgreSQL advisory lock class: alias moves of one model, serialised


def _check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS.match(alias):
        raise ValueError(
            "alias: expected 1-64 letters, digits, '_', '.' or '-' starting with a letter or "
            f"digit, got {alias!r}"
        )
    return alias


def _check_text(value: Any, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{what}: expected a string of at most {limit} characters, got {value!r}")
    return value


def _move_dict(model: str, row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "model": model,
        "alias": row.alias,
        "from": row.from_version,
        "to": row.to_version,
        "kind": row.kind,
        "actor": row.actor,
        "reason": row.reason,
        "at": row.at,
        "changed": True,
    }


def _audit_move(conn: sa.Connection, project: str, move: dict[str, Any]) -> None:
    """The move in the audit log too (in its transaction), so every alias move, whoever made
    it (HTTP, CLI, the retraining loop's promotions), is there with the other admin actions."""
    if not move["changed"]:
        return
    reason = move["reason"]
    insert_audit(
        conn,
        "alias.rollback" if move["kind"] == "rollback" else "alias.move",
        project=project,
        actor=move["actor"],
        target=f"model:{move['model']}",
        details={
            "alias": move["alias"],
            "from": move["from"],
            "to": move["to"],
            "reason": None if reason is None else reason[:200],
        },
    )


class AliasesMixin(StoreBase):
    """Aliases, their history and rollback, and the registry fields of a version."""

    def _lock_aliases(self, conn: sa.Connection, model_id: int) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ALIAS_LOCK}, {int(model_id)})")

    def _version_exists(self, conn: sa.Connection, model_id: int, version: str) -> bool:
        mv = T.model_versions
        found = conn.execute(
            sa.select(mv.c.id).where(mv.c.model_id == model_id).where(mv.c.version == version)
        ).scalar()
        return found is not None

    def _move(
        self,
        conn: sa.Connection,
        model: str,
        model_id: int,
        alias: str,
        to: str,
        kind: str,
        actor: str | None,
        reason: str | None,
    ) -> dict[str, Any]:
        ma, am = T.model_aliases, T.alias_moves
        current = conn.execute(
            sa.select(ma.c.version).where(ma.c.model_id == model_id).where(ma.c.alias == alias)
        ).scalar()
        now = timestamp()
        move: dict[str, Any] = {
            "id": None,
            "model": model,
            "alias": alias,
            "from": current,
            "to": to,
            "kind": kind,
            "actor": actor,
            "reason": reason,
            "at": now,
            "changed": current != to,
        }
        if current == to:
            return move  # nothing moved: nothing to record, nothing for a rollback to undo
        if current is None:
            conn.execute(
                sa.insert(ma).values(model_id=model_id, alias=alias, version=to, updated_at=now)
            )
        else:
            conn.execute(
                sa.update(ma)
                .where(ma.c.model_id == model_id)
                .where(ma.c.alias == alias)
                .values(version=to, updated_at=now)
            )
        row = {"model_id": model_id, "alias": alias, "from_version": current, "to_version": to}
        move["id"] = int(
            conn.execute(
                sa.insert(am)
                .values(**row, kind=kind, actor=actor, reason=reason, at=now)
                .returning(am.c.id)
            ).scalar_one()
        )
        return move

    def set_alias(
        self,
        project: str,
        model: str,
        alias: str,
        version: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Point ``alias`` at a registered ``version`` and record the move.

        Returns the move: ``{"id", "model", "alias", "from", "to", "kind", "actor", "reason",
        "at", "changed"}`` (``from`` is None when the alias is new; ``changed`` is False, and
        nothing is recorded, when the alias pointed there already).

        Examples
        --------
        >>> from watchkeeper.store import Store
        >>> s = Store("sqlite://")
        >>> for v in ("v1", "v2"):
        ...     s.register_model_version("p", "m", v)
        >>> s.set_alias("p", "m", "champion", "v1", actor="ci", reason="first")["from"] is None
        True
        >>> s.set_alias("p", "m", "champion", "v2", actor="ana", reason="better AUC")["from"]
        'v1'
        >>> s.rollback_alias("p", "m", "champion", actor="bob", reason="alerts")["to"]
        'v1'
        >>> [(m["kind"], m["from"], m["to"]) for m in s.alias_history("p", "m")]
        [('set', None, 'v1'), ('set', 'v1', 'v2'), ('rollback', 'v2', 'v1')]
        >>> s.close()
        """
        alias = _check_alias(alias)
        check_name(version, "version")
        actor = _check_text(actor, "actor", 256)
        reason = _check_text(reason, "reason", MAX_REASON)
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._lock_aliases(conn, mid)
            if not self._version_exists(conn, mid, version):
                raise ValueError(
                    f"version: model {model!r} has no version {version!r} (register it first)"
                )
            move = self._move(conn, model, mid, alias, version, "set", actor, reason)
            _audit_move(conn, project, move)
        self._committed_model(project, model, mid)
        return move

    def get_alias(self, project: str, model: str, alias: str) -> str | None:
        """The version ``alias`` points at, or None when the alias is not set."""
        alias = _check_alias(alias)
        ma = T.model_aliases
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            found = conn.execute(
                sa.select(ma.c.version).where(ma.c.model_id == mid).where(ma.c.alias == alias)
            ).scalar()
        return None if found is None else str(found)

    def list_aliases(self, project: str, model: str) -> dict[str, str]:
        """Every alias of the model and the version it points at."""
        ma = T.model_aliases
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            rows = conn.execute(
                sa.select(ma.c.alias, ma.c.version).where(ma.c.model_id == mid).order_by(ma.c.alias)
            ).all()
        return {str(a): str(v) for a, v in rows}

    def alias_history(
        self, project: str, model: str, alias: str | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Moves of the model's aliases (or of one alias), oldest first; ``limit`` keeps the
        newest ``limit``."""
        if alias is not None:
            alias = _check_alias(alias)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit: expected a positive integer, got {limit!r}")
        am = T.alias_moves
        with self._tx() as conn:
            mid = self._model_id(conn, project, model)
            query = sa.select(am).where(am.c.model_id == mid)
            if alias is not None:
                query = query.where(am.c.alias == alias)
            query = query.order_by(am.c.id.desc())
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).all()
        return [_move_dict(model, r) for r in reversed(rows)]

    def rollback_alias(
        self,
        project: str,
        model: str,
        alias: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Move ``alias`` back to where it pointed before its newest move not yet undone, and
        record the rollback. ValueError when there is nothing to roll back to."""
        alias = _check_alias(alias)
        actor = _check_text(actor, "actor", 256)
        reason = _check_text(reason, "reason", MAX_REASON)
        am = T.alias_moves
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            self._lock_aliases(conn, mid)
            rows = conn.execute(
                sa.select(am.c.kind, am.c.from_version)
                .where(am.c.model_id == mid)
                .where(am.c.alias == alias)
                .order_by(am.c.id.desc())
            ).all()
            undone = 0
            target: str | None = None
            for kind, from_version in rows:
                if kind == "rollback":
                    undone += 1
                elif undone:
                    undone -= 1
                else:
                    target = from_version
                    break
            if target is None:
                raise ValueError(
                    f"alias: {alias!r} of model {model!r} has no earlier version to roll back to"
                )
            move = self._move(conn, model, mid, alias, target, "rollback", actor, reason)
            _audit_move(conn, project, move)
        self._committed_model(project, model, mid)
        return move

    def put_version_registry(
        self,
        project: str,
        model: str,
        version: str,
        *,
        manifest: Mapping[str, Any] | None = None,
        digest: str | None = None,
        artifact_uri: str | None = None,
        signature: str | None = None,
        lineage: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a registered version's artifact (manifest and its digest, where it is
        stored, an optional signature) and/or lineage; fields left None are kept."""
        check_name(version, "version")
        if digest is not None and (
            not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest)
        ):
            raise ValueError(f"digest: expected 64 lowercase hex digits, got {digest!r}")
        if (manifest is None) != (digest is None):
            raise ValueError("manifest: give the manifest and its digest together")
        values: dict[str, Any] = {
            "manifest": opt_dict(manifest, "manifest"),
            "sha256": digest,
            "artifact_uri": _check_text(artifact_uri, "artifact_uri", 4096),
            "signature": _check_text(signature, "signature", 4096),
            "lineage": opt_dict(lineage, "lineage"),
        }
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return
        mv = T.model_versions
        with self._tx(write=True) as conn:
            mid = self._model_id(conn, project, model)
            n = conn.execute(
                sa.update(mv)
                .where(mv.c.model_id == mid)
                .where(mv.c.version == version)
                .values(**values)
            ).rowcount
            if n != 1:
                raise ValueError(
                    f"version: model {model!r} has no version {version!r} (register it first)"
                )
        self._committed_model(project, model, mid)
