"""Projects (tenants) and their API tokens."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import finite, timestamp
from watchkeeper.store._types import SCOPES

LAST_USED_EVERY = 60.0
"""Seconds between two writes of a token's ``last_used_at`` (the read path stays read-only)."""


class ProjectsMixin(StoreBase):
    """Projects and API tokens of the :class:`~watchkeeper.store.Store`."""

    def create_project(self, name: str) -> None:
        """Create a project (a tenant); doing it again is a no-op."""
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, name, create=True)
        self._remember_project(name, pid)

    def has_project(self, name: str) -> bool:
        """Whether the project exists."""
        check_name(name, "project")
        with self._tx() as conn:
            found = conn.execute(
                sa.select(T.projects.c.id).where(T.projects.c.name == name)
            ).scalar()
        return found is not None

    def list_projects(self) -> list[str]:
        """Names of every project."""
        with self._tx() as conn:
            return list(conn.execute(sa.select(T.projects.c.name).order_by("name")).scalars())

    @staticmethod
    def _hash_token(token: str) -> str:
        # Tokens are 256 random bits, so a plain SHA-256 is enough: there is no dictionary to
        # guess from, and a slow KDF would cost every authenticated request.
        return hashlib.sha256(token.encode()).hexdigest()

    def create_token(
        self, project: str, scopes: Iterable[str], *, expires_at: float | None = None
    ) -> str:
        """A new API token of the project with these scopes, returned once (stored hashed).

        ``expires_at`` (epoch seconds, in the future) is when it stops authenticating; None
        keeps it valid until revoked.
        """
        if isinstance(scopes, str) or not isinstance(scopes, Iterable):
            raise ValueError(f"scopes: expected a set of scope names, got {scopes!r}")
        wanted = set(scopes)
        if not wanted or not wanted <= SCOPES:
            raise ValueError(
                f"scopes: expected a non-empty subset of {sorted(SCOPES)}, "
                f"got {sorted(map(str, wanted))}"
            )
        now = timestamp()
        expiry = None
        if expires_at is not None:  # NaN must not mean "never"
            expiry = finite(expires_at, "expires_at")
            if expiry is None or not expiry > now:
                raise ValueError(f"expires_at: expected a time in the future, got {expires_at!r}")
        token = "wk_" + secrets.token_urlsafe(32)
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            conn.execute(
                sa.insert(T.api_tokens).values(
                    project_id=pid,
                    token_hash=self._hash_token(token),
                    prefix=token[:10],
                    scopes=json.dumps(sorted(wanted)),
                    created_at=now,
                    expires_at=expiry,
                )
            )
        return token

    def authenticate(self, token: str) -> tuple[str, frozenset[str]] | None:
        """``(project, scopes)`` of a valid token (unrevoked, unexpired), else None.

        Records when the token was last used, at most once every :data:`LAST_USED_EVERY`
        seconds per token, so a stream of requests costs no write each.
        """
        if not isinstance(token, str) or not token or "\x00" in token:
            return None
        tk = T.api_tokens
        now = timestamp()
        query = (
            sa.select(T.projects.c.name, tk.c.scopes, tk.c.id, tk.c.last_used_at)
            .join(T.projects, T.projects.c.id == tk.c.project_id)
            .where(tk.c.token_hash == self._hash_token(token))
            .where(tk.c.revoked_at.is_(None))
            .where(sa.or_(tk.c.expires_at.is_(None), tk.c.expires_at > now))
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if row[3] is None or now - float(row[3]) >= LAST_USED_EVERY:
            with self._tx(write=True) as conn:
                conn.execute(sa.update(tk).where(tk.c.id == row[2]).values(last_used_at=now))
        return str(row[0]), frozenset(json.loads(row[1]))

    def list_tokens(self, project: str) -> list[dict[str, Any]]:
        """Tokens of the project, newest first: ``prefix`` (the first 10 characters), ``scopes``,
        ``created_at``, ``expires_at``, ``last_used_at``, ``revoked_at`` (never the token)."""
        tk = T.api_tokens
        with self._tx() as conn:
            pid = self._project_id(conn, project)
            rows = conn.execute(
                sa.select(
                    tk.c.prefix,
                    tk.c.scopes,
                    tk.c.created_at,
                    tk.c.expires_at,
                    tk.c.last_used_at,
                    tk.c.revoked_at,
                )
                .where(tk.c.project_id == pid)
                .order_by(tk.c.created_at.desc(), tk.c.id.desc())
            ).all()
        return [
            {
                "prefix": r[0],
                "scopes": json.loads(r[1]),
                "created_at": r[2],
                "expires_at": r[3],
                "last_used_at": r[4],
                "revoked_at": r[5],
            }
            for r in rows
        ]

    def revoke_token(self, token: str) -> bool:
        """Revoke a token; True if it existed and was active."""
        if not isinstance(token, str) or not token:
            raise ValueError("token: expected the token string")
        with self._tx(write=True) as conn:
            result = conn.execute(
                sa.update(T.api_tokens)
                .where(T.api_tokens.c.token_hash == self._hash_token(token))
                .where(T.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=timestamp())
            )
        return bool(result.rowcount)
