"""Console sessions: a signed cookie naming a token by its hash, and a CSRF token per session.

The cookie holds ``{"h": sha256 of the API token, "p": project, "x": expiry, "c": csrf}``,
signed with HMAC-SHA256 under the app's secret. It never holds the token itself, and every
request checks again (through a short cache) that the token it names is not revoked, so
revoking a token ends its console sessions too.

Examples
--------
>>> signer = Signer(b"k" * 32)
>>> cookie = signer.sign({"p": "demo"})
>>> signer.verify(cookie)
{'p': 'demo'}
>>> signer.verify(cookie[:-2] + "xx") is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

COOKIE = "wk_session"
SESSION_SECONDS = 8 * 3600
MAX_COOKIE = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signing of small JSON payloads."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("ui_secret: expected at least 16 bytes")
        self.secret = secret

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())

    def sign(self, payload: dict[str, Any]) -> str:
        """``body.mac``: the payload, readable but not forgeable."""
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def verify(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a value signed with this secret, else None."""
        if not value or len(value) > MAX_COOKIE or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, json.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None


def new_session(token_hash: str, project: str, now: float | None = None) -> dict[str, Any]:
    """A session payload for a verified token."""
    at = time.time() if now is None else now
    return {"h": token_hash, "p": project, "x": at + SESSION_SECONDS, "c": secrets.token_hex(16)}


def live(payload: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether a verified payload is a session that has not expired."""
    if payload is None:
        return False
    at = time.time() if now is None else now
    expiry = payload.get("x")
    return (
        isinstance(expiry, int | float)
        and expiry > at
        and isinstance(payload.get("h"), str)
        and isinstance(payload.get("p"), str)
        and isinstance(payload.get("c"), str)
    )
