"""Optional ed25519 signatures of artifact digests, offline (the ``cryptography`` package).

A project keeps a private key where it registers models and ships the public key to where
models are loaded. The signature covers the manifest digest, and so every byte of every file.
Stored as ``ed25519:<key id>:<hex signature>``; the key id is the first 16 hex digits of the
SHA-256 of the raw public key, so an operator can tell which key signed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

_CONTEXT = b"watchkeeper-artifact-v1:"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ImportError(
            "signing artifacts needs the cryptography package: pip install 'watchkeeper[registry]'"
        ) from None
    return ed25519


def _raw_public(public: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def key_id(public: Any) -> str:
    """The first 16 hex digits of the SHA-256 of a raw ed25519 public key."""
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def generate_key(private_path: str | Path, public_path: str | Path) -> str:
    """Write a new ed25519 key pair as PEM files (the private one readable by its owner only);
    returns the key id."""
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    private = ed25519.Ed25519PrivateKey.generate()
    priv = Path(private_path)
    priv.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    priv.chmod(0o600)
    public = private.public_key()
    Path(public_path).write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_id(public)


def _load_private(path: str | Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"sign_key: {str(path)!r} is not an ed25519 private key")
    return key


def _load_public(path: str | Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"public_key: {str(path)!r} is not an ed25519 public key")
    return key


def sign_digest(digest: str, private_key: str | Path) -> str:
    """The signature of a manifest digest with the private key in a PEM file."""
    key = _load_private(private_key)
    signature = key.sign(_CONTEXT + digest.encode())
    return f"ed25519:{key_id(key.public_key())}:{signature.hex()}"


def check_signature(digest: str, signature: str | None, public_key: str | Path) -> str:
    """``"valid"``, ``"invalid"`` or ``"absent"``: the signature of ``digest`` against the
    public key in a PEM file."""
    from cryptography.exceptions import InvalidSignature

    key = _load_public(public_key)
    if not signature:
        return "absent"
    parts = signature.split(":")
    if len(parts) != 3 or parts[0] != "ed25519":
        return "invalid"
    try:
        key.verify(bytes.fromhex(parts[2]), _CONTEXT + digest.encode())
    except (InvalidSignature, ValueError):
        return "invalid"
    return "valid"
