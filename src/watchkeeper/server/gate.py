"""What every request passes before any route reads it: authentication, a rate limit per caller,
the body cap of its route, a bound on concurrent heavy work, and the refusal of NUL characters.

Order, cheapest first, so a hostile request costs the server as little as possible:

1. a request to ``/v1/...`` without a valid token gets 401 before one byte of its body is read;
2. a caller past its rate limit gets 429 with ``Retry-After``, still before the body is read:
   one token bucket per token, and per client address for requests without a valid token
   (see :mod:`watchkeeper.server.ratelimit`); a heavy route costs ``rate_limit_heavy_cost``;
3. a body larger than its route's cap gets 413 (by its Content-Length before reading, else
   while streaming): events and labels batches may carry ``max_body_bytes``, every other route
   ``max_tool_body_bytes``;
4. a heavy request (``/v1/tools/...``, ``monitors:run``, ``:explain``) past
   ``max_heavy_requests`` in flight gets 429 with ``Retry-After``;
5. a NUL character in the path, the query or a JSON string of the body gets 422 naming the
   field (PostgreSQL cannot store one in text, and no name or id needs one).

The verified ``(project, scopes)`` goes to ``scope["state"]["auth"]``, where
:func:`~watchkeeper.server.deps.require_scope` finds it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.server.ratelimit import RateLimiter
from watchkeeper.server.settings import Settings

INGEST_SUFFIXES = ("/events:batch", "/labels:batch")
HEAVY_SUFFIXES = ("/monitors:run", ":explain")
HEAVY_PREFIXES = ("/v1/tools/",)
RETRY_AFTER_SECONDS = 1


def is_ingest(path: str) -> bool:
    """Whether ``path`` is an events or labels batch (the routes with the large body cap)."""
    return path.startswith("/v1/models/") and path.endswith(INGEST_SUFFIXES)


def is_heavy(path: str) -> bool:
    """Whether ``path`` runs CPU-heavy work (bounded in number, answered 429 past the bound)."""
    return path.startswith(HEAVY_PREFIXES) or (
        path.startswith("/v1/models/") and path.endswith(HEAVY_SUFFIXES)
    )


def body_limit(settings: Settings, path: str) -> int:
    """The largest body ``path`` accepts."""
    return settings.max_body_bytes if is_ingest(path) else settings.max_tool_body_bytes


def _nul_field(value: Any, where: str = "") -> str | None:
    """Where the first string holding a NUL character is in a decoded JSON value."""
    if isinstance(value, str):
        return (where or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if "\x00" in key:
                return name
            found = _nul_field(item, name)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_field(item, f"{where}[{i}]")
            if found:
                return found
    return None


class Gate:
    """ASGI middleware applying the checks of this module, in their order.

    Parameters
    ----------
    app
        The application behind the gate.
    settings
        The caps (``max_body_bytes``, ``max_tool_body_bytes``, ``max_heavy_requests``).
    authenticate
        ``token -> (project, scopes) | None``, may block (it is run in the thread pool unless
        ``cached`` answers).
    cached
        ``token -> (project, scopes) | None | False``: a cache answer without blocking (False:
        not cached).
    on_reject
        Called with a reason (``"unauthenticated"``, ``"rate_limited"``, ``"too_large"``,
        ``"validation"``, ``"busy"``) for the metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        authenticate: Callable[[str], Any],
        cached: Callable[[str], Any],
        on_reject: Callable[[str], None],
    ) -> None:
        self.app = app
        self.settings = settings
        self.authenticate = authenticate
        self.cached = cached
        self.on_reject = on_reject
        self._heavy = 0
        self._lock = threading.Lock()
        self.token_limiter = RateLimiter(
            settings.rate_limit_per_second, settings.rate_limit_burst, settings.rate_limit_max_keys
        )
        self.anonymous_limiter = RateLimiter(
            settings.rate_limit_anonymous_per_second,
            settings.rate_limit_anonymous_burst,
            settings.rate_limit_max_keys,
        )

    @staticmethod
    async def _reply(
        send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
    ) -> None:
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _refuse(
        self,
        send: Send,
        status: int,
        reason: str,
        detail: str,
        retry_after: int = RETRY_AFTER_SECONDS,
        **extra: Any,
    ) -> None:
        self.on_reject(reason)
        headers: list[tuple[bytes, bytes]] = []
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status == 413:
            headers.append((b"connection", b"close"))
        if status == 429:
            headers.append((b"retry-after", str(retry_after).encode()))
        await self._reply(send, status, {"detail": detail, **extra}, headers)

    async def _nul(self, send: Send, field: str) -> None:
        message = "NUL characters are not allowed"
        await self._refuse(
            send,
            422,
            "validation",
            f"{field}: {message}",
            errors=[{"field": field, "message": message}],
        )

    async def _auth(self, scope: Scope) -> tuple[str, Any] | str:
        """``(project, scopes)`` of the request's token, or why it has none."""
        header = ""
        for key, value in scope["headers"]:
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        if not header:
            return "missing Authorization header (use 'Bearer <token>')"
        kind, _, token = header.partition(" ")
        token = token.strip()
        if kind.lower() != "bearer" or not token:
            return "Authorization header must be 'Bearer <token>'"
        if len(token) > 512 or "\x00" in token:
            return "invalid or revoked token"
        found = self.cached(token)
        if found is False:
            found = await run_in_threadpool(self.authenticate, token)
        if found is None:
            return "invalid, expired or revoked token"
        # a short digest, not the token: less memory per bucket, and no secret kept by it
        scope.setdefault("state", {})["rate_key"] = hashlib.blake2b(
            token.encode(), digest_size=12
        ).hexdigest()
        return found  # type: ignore[no-any-return]

    async def _rate_limited(self, scope: Scope, send: Send, path: str, token: bool) -> bool:
        """Spend the request's cost from its caller's bucket; when it is not there, answer 429
        and return True."""
        settings = self.settings
        # only a request that will run is heavy; a refused one costs what any other does
        cost = settings.rate_limit_heavy_cost if token and is_heavy(path) else 1.0
        if token:
            limiter, rate, burst = (
                self.token_limiter,
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
            )
            key = scope["state"]["rate_key"]
            who, setting = "this token", "WATCHKEEPER_RATE_LIMIT_PER_SECOND"
        else:
            limiter, rate, burst = (
                self.anonymous_limiter,
                settings.rate_limit_anonymous_per_second,
                settings.rate_limit_anonymous_burst,
            )
            client = scope.get("client")
            key = f"ip:{client[0] if client else '-'}"
            who, setting = "this address", "WATCHKEEPER_RATE_LIMIT_ANONYMOUS_PER_SECOND"
        if rate <= 0:
            return False
        wait = limiter.take(key, cost)
        if wait <= 0:
            return False
        seconds = RateLimiter.retry_after(wait)
        await self._refuse(
            send,
            429,
            "rate_limited",
            f"rate limit of {rate:g} requests per second (burst {burst:g}) for {who} exceeded "
            f"({setting}); retry in {seconds} s",
            retry_after=seconds,
        )
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path:
            await self._nul(send, "path")
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            names = [k for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
                     if "\x00" in k or "\x00" in v]  # fmt: skip
            await self._nul(send, names[0] if names else "query")
            return
        if path.startswith("/v1/"):
            found = await self._auth(scope)
            if isinstance(found, str):
                # a refused token is charged to its address, which slows guessing
                if not await self._rate_limited(scope, send, path, token=False):
                    await self._refuse(send, 401, "unauthenticated", found)
                return
            scope.setdefault("state", {})["auth"] = found
            if await self._rate_limited(scope, send, path, token=True):
                return
        elif await self._rate_limited(scope, send, path, token=False):
            return
        if scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self._heavy_or_busy(scope, receive, send, path)
            return
        limit = body_limit(self.settings, path)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(send, length.decode(), limit, path)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, f"more than {size}", limit, path)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # a payload (a JPEG thumbnail) is binary: NUL bytes are its content, not an attack
        if path != "/v1/payloads" and (b"\\u0000" in body or b"\x00" in body):
            field = await run_in_threadpool(self._body_nul, body)
            if field is not None:
                await self._nul(send, field)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._heavy_or_busy(scope, replay, send, path)

    @staticmethod
    def _body_nul(body: bytes) -> str | None:
        if b"\x00" in body:
            return "body"
        try:
            return _nul_field(json.loads(body))
        except ValueError:
            return None  # not JSON: the route's own parser names the problem

    async def _too_large(self, send: Send, size: str, limit: int, path: str) -> None:
        setting = (
            "WATCHKEEPER_MAX_BODY_BYTES" if is_ingest(path) else ("WATCHKEEPER_MAX_TOOL_BODY_BYTES")
        )
        await self._refuse(
            send,
            413,
            "too_large",
            f"request body of {size} bytes exceeds the limit of {limit} bytes ({setting})"
            + ("; send smaller batches" if is_ingest(path) else ""),
        )

    async def _heavy_or_busy(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if not is_heavy(path):
            await self.app(scope, receive, send)
            return
        with self._lock:
            busy = self._heavy >= self.settings.max_heavy_requests
            if not busy:
                self._heavy += 1
        if busy:
            await self._refuse(
                send,
                429,
                "busy",
                f"{self.settings.max_heavy_requests} heavy requests are already running on this "
                f"server (WATCHKEEPER_MAX_HEAVY_REQUESTS); retry in {RETRY_AFTER_SECONDS} s",
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self._heavy -= 1
