"""The operator's rules for sinks: which hosts alerts may be sent to, which secrets they may use.

A project admin writes sink configurations; the server's operator decides where they may point
and which environment variables they may read. Both lists come from the operator (environment
variables or :class:`~watchkeeper.server.Settings`), never from a project:

``WATCHKEEPER_SINK_HOSTS``
    Comma-separated hosts a sink may send to: ``hooks.slack.com`` (any port),
    ``smtp.example.org:587`` (that port only), ``*.example.org`` (its subdomains) or ``*`` (any
    public host). Loopback, private, link-local (the cloud metadata service 169.254.169.254
    included), shared, multicast and reserved addresses are refused unless an entry names that
    very host (no wildcard reaches them); a name is resolved when the alert is sent, and every
    address it resolves to must pass.
``WATCHKEEPER_SINK_SECRET_ENV``
    Comma-separated names of environment variables a sink's ``headers_env`` or ``password_env``
    may name. Any other name is refused with the same message whether such a variable exists or
    not, at configuration time and at send time.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

HOSTS_VAR = "WATCHKEEPER_SINK_HOSTS"
SECRETS_VAR = "WATCHKEEPER_SINK_SECRET_ENV"

Resolver = Callable[[str, int], list[str]]


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def _resolve(host: str, port: int) -> list[str]:
    import socket

    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def is_internal(address: str) -> bool:
    """Whether an IP address is one a sink must not reach without an explicit entry.

    Examples
    --------
    >>> [is_internal(a) for a in ("169.254.169.254", "10.1.2.3", "::1", "93.184.216.34")]
    [True, True, True, False]
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified or not ip.is_global
    )  # fmt: skip


def _parse_entry(entry: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port or "")."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else ""
    if entry.count(":") == 1:
        name, port = entry.split(":")
        return name, port
    return entry, ""


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


@dataclass(frozen=True)
class SinkPolicy:
    """Hosts and secret names the operator allows sinks to use (see the module docstring).

    Parameters
    ----------
    hosts
        Allowed destinations: ``host``, ``host:port``, ``*.domain`` or ``*``.
    secret_env
        Environment variables a sink may read a secret from.

    Examples
    --------
    >>> policy = SinkPolicy(hosts=("hooks.example.org", "127.0.0.1:9000"),
    ...                     secret_env=("SLACK_TOKEN",))
    >>> policy.check_url("https://hooks.example.org/T0", "url", resolve=False)
    >>> policy.check_url("http://127.0.0.1:9000/hook", "url", resolve=False)
    >>> policy.check_url("http://169.254.169.254/latest", "url", resolve=False)
    Traceback (most recent call last):
    ...
    ValueError: url: host '169.254.169.254' is not on the operator's list of sink hosts ...
    >>> policy.secret("headers_env.Authorization", "HOME", environ={"HOME": "/root"})
    Traceback (most recent call last):
    ...
    ValueError: headers_env.Authorization: 'HOME' is not a sink secret the operator provides ...
    """

    hosts: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()

    @classmethod
    def parse(cls, hosts: str | Iterable[str] | None, secret_env: str | Iterable[str] | None
              ) -> SinkPolicy:  # fmt: skip
        """From comma-separated text (or lists) as the settings hold them."""
        h = _split(hosts) if isinstance(hosts, str | None) else tuple(hosts)
        s = _split(secret_env) if isinstance(secret_env, str | None) else tuple(secret_env)
        return cls(hosts=tuple(x.lower() for x in h), secret_env=s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SinkPolicy:
        """Read ``WATCHKEEPER_SINK_HOSTS`` and ``WATCHKEEPER_SINK_SECRET_ENV``."""
        env = os.environ if environ is None else environ
        return cls.parse(env.get(HOSTS_VAR), env.get(SECRETS_VAR))

    # -- destinations --------------------------------------------------------------------------

    def _entry(self, host: str, port: int) -> str | None:
        """How ``host:port`` is allowed: ``"exact"``, ``"public"`` (a wildcard) or ``None``."""
        host = host.lower().rstrip(".")
        literal = _literal(host)
        how = None
        for entry in self.hosts:
            name, want = _parse_entry(entry)
            if want and want != str(port):
                continue
            if name == host or (literal is not None and _literal(name) == literal):
                return "exact"
            if name == "*" or (name.startswith("*.") and host.endswith(name[1:])):
                how = "public"
        return how

    def check_host(
        self, host: str, port: int, field: str, *, resolve: bool | Resolver = True
    ) -> None:
        """Refuse a destination the operator has not allowed (``ValueError`` naming ``field``).

        ``resolve`` (at send time) also resolves a name and refuses it when a wildcard entry
        let it through and any of its addresses is internal.
        """
        how = self._entry(host, port)
        literal = _literal(host.lower())
        local_name = host.lower() == "localhost" or host.lower().endswith(".localhost")
        internal = local_name or (literal is not None and is_internal(literal))
        if how is None or (how == "public" and internal):
            raise ValueError(
                f"{field}: host {host!r} is not on the operator's list of sink hosts ({HOSTS_VAR})"
            )
        if how == "public" and literal is None and resolve:
            resolver = _resolve if resolve is True else resolve
            try:
                addresses = resolver(host, port)
            except OSError as exc:
                raise ValueError(f"{field}: host {host!r} does not resolve") from exc
            if any(is_internal(a) for a in addresses):
                raise ValueError(
                    f"{field}: host {host!r} resolves to an internal address; only an exact "
                    f"entry in {HOSTS_VAR} allows that"
                )

    def check_url(self, url: str, field: str, *, resolve: bool | Resolver = True) -> None:
        """:meth:`check_host` on an http(s) URL's host and port."""
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"{field}: bad port in {url!r}") from exc
        if not parts.hostname:
            raise ValueError(f"{field}: no host in {url!r}")
        self.check_host(parts.hostname, port, field, resolve=resolve)

    # -- secrets -------------------------------------------------------------------------------

    def check_secret_name(self, field: str, name: object) -> None:
        """Refuse a variable name the operator has not listed; the same text whether or not
        such a variable exists."""
        if not isinstance(name, str) or name not in self.secret_env:
            raise ValueError(
                f"{field}: {name!r} is not a sink secret the operator provides ({SECRETS_VAR})"
            )

    def secret(self, field: str, name: object, environ: Mapping[str, str] | None = None) -> str:
        """The value of an allowed secret; an unset one gets the same error as a refused one."""
        self.check_secret_name(field, name)
        env = os.environ if environ is None else environ
        value = env.get(str(name))
        if not value:
            raise ValueError(
                f"{field}: {name!r} is not a sink secret the operator provides ({SECRETS_VAR})"
            )
        return value
