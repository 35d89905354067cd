"""Dependencies shared by every router: the store, the metrics, and the caller's project.

Use them as ``Annotated`` parameters::

    @router.get("/v1/things")
    def things(store: StoreDep, project: Annotated[str, Depends(require_scope("read"))]): ...

``require_scope`` answers 401 without a valid ``Authorization: Bearer <token>`` header and 403
when the token lacks the scope; the ``admin`` scope implies every other. The project it yields
comes from the token alone, so a router that passes it to every store call never reaches
another project's data.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request, status

from watchkeeper.server.metrics import ServerMetrics
from watchkeeper.server.schemas import EPOCH_LIMIT
from watchkeeper.server.settings import Settings

SCOPES = ("ingest", "read", "admin")
AUTH_CACHE_SECONDS = 5.0
"""Default of ``Settings.token_cache_seconds``: how long a verified token is trusted without
asking the store again (the revocation delay across replicas)."""




def epoch_query(description: str) -> Any:
    """A query parameter holding a time: finite and within :data:`EPOCH_LIMIT` (NaN, infinities
    and 1e400 get 422 naming the parameter; none of them may mean "no bound")."""
    return Query(ge=-EPOCH_LIMIT, le=EPOCH_LIMIT, allow_inf_nan=False, description=description)


VersionQuery = Annotated[
    str | None, Query(min_length=1, max_length=128, description="Only this model version.")
]


def get_store(request: Request) -> Any:
    """The app's :class:`~watchkeeper.store.Store`."""
    return request.app.state.store


def get_metrics(request: Request) -> ServerMetrics:
    """The app's :class:`~watchkeeper.server.metrics.ServerMetrics`."""
    metrics: ServerMetrics = request.app.state.metrics
    return metrics


def get_settings(request: Request) -> Settings:
    """The app's :class:`~watchkeeper.server.settings.Settings`."""
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[Any, Depends(get_store)]
MetricsDep = Annotated[ServerMetrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class TokenCache:
    """Verified tokens for ``ttl`` seconds, keyed by their SHA-256, so a stream of batches does
    not hash-and-query the store on every request.

    ``ttl`` is the revocation delay across replicas: a token revoked (or expired) elsewhere keeps
    working here until its entry ages out. A token revoked through this replica is forgotten
    at once.
    """

    def __init__(self, ttl: float = AUTH_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, str, frozenset[str]]] = {}

    def forget(self, token: str) -> None:
        """Drop a token at once (after it was revoked through this app)."""
        with self._lock:
            self._entries.pop(hashlib.sha256(token.encode()).hexdigest(), None)

    def cached(self, token: str) -> tuple[str, frozenset[str]] | Literal[False]:
        """The cached ``(project, scopes)`` of ``token``, or False when it must be looked up."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        return False

    def lookup(self, store: Any, token: str) -> tuple[str, frozenset[str]] | None:
        """``(project, scopes)`` of a valid token (from the cache or the store), else None."""
        hit = self.cached(token)
        if hit is not False:
            return hit
        found = store.authenticate(token)
        if found is None:
            return None
        project, scopes = found
        if self.ttl > 0:
            key = hashlib.sha256(token.encode()).hexdigest()
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[key] = (time.monotonic() + self.ttl, project, frozenset(scopes))
        return project, frozenset(scopes)


def _unauthorized(request: Request, detail: str) -> HTTPException:
    get_metrics(request).reject("unauthenticated")
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def require_scope(scope: str) -> Callable[[Request], str]:
    """A dependency yielding the caller's project when its token carries ``scope``.

    Parameters
    ----------
    scope
        One of ``"ingest"``, ``"read"``, ``"admin"``.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")

    def dependency(request: Request) -> str:
        found = getattr(request.state, "auth", None)  # verified by the gate before the body
        if found is None:
            header = request.headers.get("authorization")
            if not header:
                raise _unauthorized(request, "missing Authorization header (use 'Bearer <token>')")
            kind, _, token = header.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise _unauthorized(request, "Authorization header must be 'Bearer <token>'")
            cache: TokenCache = request.app.state.token_cache
            found = cache.lookup(get_store(request), token.strip())
            if found is None:
                raise _unauthorized(request, "invalid, expired or revoked token")
        project, scopes = found
        if scope not in scopes and "admin" not in scopes:
            get_metrics(request).reject("forbidden")
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this token lacks the '{scope}' scope "
                f"(it has: {', '.join(sorted(scopes))})",
            )
        return project

    dependency.__name__ = f"require_{scope}"
    return dependency


IngestProject = Annotated[str, Depends(require_scope("ingest"))]
ReadProject = Annotated[str, Depends(require_scope("read"))]
AdminProject = Annotated[str, Depends(require_scope("admin"))]
