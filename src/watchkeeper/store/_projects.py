"""Projects (tenants) and their API tokens."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable

import sqlalchemy as sa

from watchkeeper.store import _schema as T
from watchkeeper.store._base import StoreBase
from watchkeeper.store._events import check_name
from watchkeeper.store._helpers import timestamp
from watchkeeper.store._types import SCOPES


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

    def create_token(self, project: str, scopes: Iterable[str]) -> str:
        """A new API token of the project with these scopes, returned once (stored hashed)."""
        if isinstance(scopes, str) or not isinstance(scopes, Iterable):
            raise ValueError(f"scopes: expected a set of scope names, got {scopes!r}")
        wanted = set(scopes)
        if not wanted or not wanted <= SCOPES:
            raise ValueError(
                f"scopes: expected a non-empty subset of {sorted(SCOPES)}, "
                f"got {sorted(map(str, wanted))}"
            )
        token = "wk_" + secrets.token_urlsafe(32)
        with self._tx(write=True) as conn:
            pid = self._project_id(conn, project)
            conn.execute(
                sa.insert(T.api_tokens).values(
                    project_id=pid,
                    token_hash=self._hash_token(token),
                    prefix=token[:10],
                    scopes=json.dumps(sorted(wanted)),
                    created_at=timestamp(),
                )
            )
        return token

    def authenticate(self, token: str) -> tuple[str, frozenset[str]] | None:
        """``(project, scopes)`` of a valid, unrevoked token, else None."""
        if not isinstance(token, str) or not token:
            return None
        query = (
            sa.select(T.projects.c.name, T.api_tokens.c.scopes)
            .join(T.projects, T.projects.c.id == T.api_tokens.c.project_id)
            .where(T.api_tokens.c.token_hash == self._hash_token(token))
            .where(T.api_tokens.c.revoked_at.is_(None))
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return str(row[0]), frozenset(json.loads(row[1]))

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
