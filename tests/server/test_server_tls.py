"""``watchkeeper server --ssl-certfile/--ssl-keyfile`` serves HTTPS (a self-signed certificate
made in the test), and bad TLS options are refused naming the option."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_speaks_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchkeeper", "server", "--db", str(tmp_path / "wk.db"),
         "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
         "--no-access-log"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{port}/healthz"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, context=trusted, timeout=5) as reply:
                    assert reply.status == 200
                    break
            except (urllib.error.URLError, ConnectionError) as exc:
                if isinstance(getattr(exc, "reason", None), ssl.SSLError):
                    raise
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        # a client that does not trust the certificate is refused by its own TLS check
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(url, context=ssl.create_default_context(), timeout=5)
        # and plain HTTP to the port gets no HTTP answer
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--ssl-certfile", "CERT"], "--ssl-keyfile"),
        (["--ssl-keyfile", "CERT"], "--ssl-certfile"),
        (["--ssl-certfile", "CERT", "--ssl-keyfile", "/no/such/key.pem"], "--ssl-keyfile"),
        (["--ssl-keyfile-password-env", "X"], "--ssl-keyfile-password-env"),
    ],
)
def test_bad_tls_options_name_the_option(tmp_path: Path, args: list[str], option: str) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    argv = ["server", "--db", str(tmp_path / "wk.db")]
    argv += [str(cert) if a == "CERT" else a for a in args]
    out = CliRunner().invoke(create_app(), argv)
    assert out.exit_code != 0
    assert option in out.output


def test_bad_rate_limit_environment_stops_the_server(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        create_app(),
        ["server", "--db", str(tmp_path / "wk.db")],
        env={"WATCHKEEPER_RATE_LIMIT_BURST": "0"},
    )
    assert out.exit_code != 0 and "rate_limit_burst" in out.output
