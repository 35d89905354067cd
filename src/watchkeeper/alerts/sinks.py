"""Where alerts go: a JSON webhook, a Slack-compatible webhook, e-mail, Prometheus Alertmanager.

Every sink has ``validate()`` and ``send(events)``; :func:`sink_from_dict` builds one from its
configuration entry (``{"type": "webhook", "url": ...}``). Secrets are read from environment
variables named in the configuration (``password_env``, ``headers_env``), never stored in it.

Where a sink may send and which variables it may name is the operator's decision, a
:class:`~watchkeeper.alerts.SinkPolicy` (``WATCHKEEPER_SINK_HOSTS``,
``WATCHKEEPER_SINK_SECRET_ENV``): :func:`validate_alerting` checks a configuration against it
when it is stored, and every ``send`` checks again.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from watchkeeper.alerts._policy import SinkPolicy
from watchkeeper.alerts._rules import AlertEvent


def _iso(ts: float | None) -> str:
    when = dt.datetime.fromtimestamp(float(ts or 0.0), tz=dt.UTC)
    return when.isoformat().replace("+00:00", "Z")


def _http_url(url: Any, field: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{field} must be an http(s) URL, got {url!r}")
    return url


def _text(event: AlertEvent) -> str:
    a = event.alert
    head = "RESOLVED" if event.kind == "resolved" else str(a.get("severity", "warning")).upper()
    link = f" {a['console_url']}" if a.get("console_url") else ""
    return f"[{head}] {a.get('summary', a.get('rule'))}{link}"


class Sink:
    """Base class: a named destination for alert events."""

    type = "base"
    policy: SinkPolicy | None = None
    """The operator's policy; ``None`` reads it from the environment when it is needed. Not a
    constructor argument, so no configuration entry can set it."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def with_policy(self, policy: SinkPolicy | None) -> Sink:
        """Bind the operator's policy (``None``: read the environment at use); return ``self``."""
        self.policy = policy
        return self

    def _policy(self) -> SinkPolicy:
        return self.policy if self.policy is not None else SinkPolicy.from_env()

    def check(self, *, resolve: bool = False) -> Sink:
        """Raise ``ValueError`` when the operator's policy forbids this sink's destination or
        secrets (``resolve``: also resolve host names, as ``send`` does); return ``self``."""
        return self

    @property
    def label(self) -> str:
        """The name rules refer to (its ``name``, else its type)."""
        return self.name or self.type

    def validate(self) -> Sink:
        """Raise ``ValueError`` naming a bad field; return ``self``."""
        return self

    def send(self, events: Sequence[AlertEvent]) -> None:
        """Deliver ``events`` (raise on failure, so the runner can retry next window)."""
        raise NotImplementedError


class WebhookSink(Sink):
    """POST ``{"version": 1, "events": [{"kind", "alert"}, ...]}`` as JSON to ``url``.

    Parameters
    ----------
    url
        The receiver.
    headers
        Extra HTTP headers.
    headers_env
        Header name -> environment variable holding its value (e.g. an Authorization token).
    timeout
        Seconds.
    """

    type = "webhook"

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        headers_env: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.headers = headers
        self.headers_env = headers_env
        self.timeout = timeout

    def validate(self) -> WebhookSink:
        _http_url(self.url, "url")
        if self.headers_env is not None and not isinstance(self.headers_env, Mapping):
            raise ValueError("headers_env: expected a mapping of header name to variable name")
        return self

    def check(self, *, resolve: bool = False) -> WebhookSink:
        policy = self._policy()
        policy.check_url(self.url, "url", resolve=resolve)
        for header, var in (self.headers_env or {}).items():
            policy.check_secret_name(f"headers_env.{header}", var)
        return self

    def _headers(self) -> dict[str, str]:
        out = dict(self.headers or {})
        policy = self._policy()
        for header, var in (self.headers_env or {}).items():
            out[header] = policy.secret(f"headers_env.{header}", var)
        return out

    def _post(self, payload: Any) -> None:
        import httpx

        response = httpx.post(self.url, json=payload, headers=self._headers(), timeout=self.timeout)
        response.raise_for_status()

    def payload(self, events: Sequence[AlertEvent]) -> dict[str, Any]:
        """The JSON body sent."""
        return {
            "version": 1,
            "events": [{"kind": e.kind, "text": _text(e), "alert": e.alert} for e in events],
        }

    def send(self, events: Sequence[AlertEvent]) -> None:
        events = [e for e in events if e.kind != "refresh"]
        if events:
            self.validate().check(resolve=True)._post(self.payload(events))


class SlackSink(WebhookSink):
    """A Slack-compatible incoming webhook (also Mattermost, Rocket.Chat): ``text`` + blocks."""

    type = "slack"

    def payload(self, events: Sequence[AlertEvent]) -> dict[str, Any]:
        lines = [_text(e) for e in events]
        blocks: list[dict[str, Any]] = []
        for e in events:
            a = e.alert
            fields = [
                {"type": "mrkdwn", "text": f"*Model*\n{a.get('model')}"},
                {"type": "mrkdwn", "text": f"*Rule*\n{a.get('rule')}"},
                {"type": "mrkdwn", "text": f"*Status*\n{e.kind}"},
                {"type": "mrkdwn", "text": f"*Severity*\n{a.get('severity')}"},
            ]
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _text(e)}})
            blocks.append({"type": "section", "fields": fields})
        return {"text": "\n".join(lines), "blocks": blocks}


class SmtpSink(Sink):
    """E-mail over SMTP, one message per send with every event in it.

    Parameters
    ----------
    host, port
        The SMTP server.
    sender
        ``From`` address.
    recipients
        ``To`` addresses.
    starttls
        Upgrade the connection with STARTTLS before logging in.
    username, password_env
        Login, with the password read from the named environment variable.
    """

    type = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str = "watchkeeper@localhost",
        recipients: Sequence[str] = (),
        starttls: bool = False,
        username: str | None = None,
        password_env: str | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.starttls = starttls
        self.username = username
        self.password_env = password_env
        self.timeout = timeout

    def validate(self) -> SmtpSink:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError("host: an SMTP server host name is required")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"port must be an integer in 1..65535, got {self.port!r}")
        if isinstance(self.recipients, str) or not self.recipients:
            raise ValueError("recipients: a list of at least one address is required")
        for r in [self.sender, *self.recipients]:
            if "@" not in str(r):
                raise ValueError(f"recipients/sender: {r!r} is not an e-mail address")
        return self

    def check(self, *, resolve: bool = False) -> SmtpSink:
        policy = self._policy()
        policy.check_host(self.host, self.port, "host", resolve=resolve)
        if self.password_env is not None:
            policy.check_secret_name("password_env", self.password_env)
        return self

    def message(self, events: Sequence[AlertEvent]) -> EmailMessage:
        """The e-mail sent for ``events``."""
        msg = EmailMessage()
        firing = sum(e.kind == "firing" for e in events)
        resolved = sum(e.kind == "resolved" for e in events)
        msg["Subject"] = f"[watchkeeper] {firing} firing, {resolved} resolved: " + "; ".join(
            sorted({str(e.alert.get("rule")) for e in events})
        )
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        body = []
        for e in events:
            a = e.alert
            body.append(_text(e))
            body.append(f"  model: {a.get('model')}  since: {_iso(a.get('started_at'))}")
            if a.get("subjects"):
                body.append(f"  subjects: {', '.join(map(str, a['subjects']))}")
            body.append("")
        msg.set_content("\n".join(body))
        return msg

    def send(self, events: Sequence[AlertEvent]) -> None:
        events = [e for e in events if e.kind != "refresh"]
        if not events:
            return
        self.validate().check(resolve=True)
        password = ""
        if self.username and self.password_env is not None:
            password = self._policy().secret("password_env", self.password_env)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, password)
            smtp.send_message(self.message(events))


class AlertmanagerSink(Sink):
    """Prometheus Alertmanager's v2 API (``POST /api/v2/alerts``).

    Alertmanager forgets an alert at its ``endsAt``. A firing alert is therefore posted with
    ``endsAt = now + ttl`` and re-posted on every evaluation while it fires (``"refresh"``
    events), well before it expires; a resolved alert is posted with ``endsAt = now``.

    Parameters
    ----------
    url
        Alertmanager's base URL, e.g. ``http://alertmanager:9093``.
    ttl
        Seconds a posted firing alert stays valid; keep it above twice the run interval.
    generator_url
        Link shown in Alertmanager (e.g. the dashboard of the model).
    labels
        Extra labels on every alert (e.g. ``team``).
    """

    type = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 3600.0,
        generator_url: str | None = None,
        labels: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.url = url
        self.ttl = ttl
        self.generator_url = generator_url
        self.labels = labels
        self.timeout = timeout

    def validate(self) -> AlertmanagerSink:
        _http_url(self.url, "url")
        if not float(self.ttl) > 0:
            raise ValueError(f"ttl must be positive, got {self.ttl}")
        return self

    def check(self, *, resolve: bool = False) -> AlertmanagerSink:
        self._policy().check_url(self.url, "url", resolve=resolve)
        return self

    def payload(self, events: Sequence[AlertEvent], now: float) -> list[dict[str, Any]]:
        """The list of alerts posted."""
        out = []
        for e in events:
            a = e.alert
            labels = {
                "alertname": str(a.get("rule")),
                "project": str(a.get("project", "default")),
                "model": str(a.get("model")),
                "severity": str(a.get("severity", "warning")),
                "source": "watchkeeper",
                **{str(k): str(v) for k, v in (a.get("labels") or {}).items()},
                **{str(k): str(v) for k, v in (self.labels or {}).items()},
            }
            labels.pop("rule", None)
            ends = now if e.kind == "resolved" else now + float(self.ttl)
            item: dict[str, Any] = {
                "labels": labels,
                "annotations": {
                    "summary": str(a.get("summary", "")),
                    "subjects": ", ".join(map(str, a.get("subjects") or [])),
                },
                "startsAt": _iso(a.get("started_at") or now),
                "endsAt": _iso(ends),
            }
            if a.get("console_url") or self.generator_url:
                item["generatorURL"] = a.get("console_url") or self.generator_url
            out.append(item)
        return out

    def send(self, events: Sequence[AlertEvent], now: float | None = None) -> None:
        if not events:
            return
        import time

        import httpx

        self.validate().check(resolve=True)
        when = time.time() if now is None else now
        response = httpx.post(
            self.url.rstrip("/") + "/api/v2/alerts",
            json=self.payload(events, when),
            timeout=self.timeout,
        )
        response.raise_for_status()


SINK_TYPES: dict[str, type[Sink]] = {
    "webhook": WebhookSink,
    "slack": SlackSink,
    "smtp": SmtpSink,
    "alertmanager": AlertmanagerSink,
}


def sink_from_dict(d: Mapping[str, Any], policy: SinkPolicy | None = None) -> Sink:
    """Build a sink from its configuration entry, bound to the operator's ``policy`` (``None``:
    read from the environment when it is needed).

    Examples
    --------
    >>> sink_from_dict({"type": "slack", "url": "https://hooks.example/T0"}).validate().type
    'slack'
    >>> sink_from_dict({"type": "pager"})
    Traceback (most recent call last):
    ...
    ValueError: type: unknown sink 'pager'; known: alertmanager, slack, smtp, webhook
    """
    kind = d.get("type")
    cls = SINK_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"type: unknown sink {kind!r}; known: {', '.join(sorted(SINK_TYPES))}")
    kw = {k: v for k, v in d.items() if k != "type"}
    try:
        return cls(**kw).with_policy(policy)
    except TypeError as exc:
        raise ValueError(f"{kind}: {exc}") from exc


def validate_alerting(
    rules: Sequence[Mapping[str, Any]],
    sinks: Sequence[Mapping[str, Any]],
    policy: SinkPolicy | None = None,
) -> None:
    """Validate the ``rules`` and ``sinks`` of a monitor configuration, naming the bad entry.

    Each sink's destination and secret names are checked against the operator's ``policy``
    (``None``: the environment's); host names are not resolved here, only at send time.
    """
    from watchkeeper.alerts._rules import AlertEngine

    AlertEngine(rules)._rules()
    names = []
    for i, s in enumerate(sinks):
        try:
            names.append(sink_from_dict(s, policy).validate().check().label)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"sinks[{i}]: {exc}") from exc
    for i, r in enumerate(rules):
        for ref in r.get("sinks") or []:
            if ref not in names:
                raise ValueError(f"rules[{i}].sinks: no sink named {ref!r} (have {names})")


def deliver(
    sinks: Sequence[Sink], events: Sequence[AlertEvent], *, now: float | None = None
) -> dict[str, str | None]:
    """Send each event to the sinks its rule names (all when it names none).

    Returns sink label -> ``None`` on success or the error text; one failing sink does not stop
    the others.
    """
    out: dict[str, str | None] = {}
    for sink in sinks:
        mine = [
            e
            for e in events
            if not e.alert.get("suppressed")
            and (e.alert.get("sinks") is None or sink.label in e.alert["sinks"])
        ]
        if not mine:
            continue
        try:
            if isinstance(sink, AlertmanagerSink):
                sink.send(mine, now=now)
            else:
                sink.send(mine)
            out[sink.label] = None
        except Exception as exc:  # a sink down must not stop the others or the run
            out[sink.label] = f"{type(exc).__name__}: {exc}"
    return out


def dumps(events: Sequence[AlertEvent]) -> str:
    """Events as JSON lines (for logs and the CLI)."""
    return "\n".join(json.dumps({"kind": e.kind, "alert": e.alert}, default=str) for e in events)
