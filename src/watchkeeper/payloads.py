"""The payload store: what a person needs to see of an event (a thumbnail, a text snippet).

Payloads are content-addressed: a payload's reference is ``sha256:<hex digest of its bytes>``,
so the same thumbnail logged twice is stored once and a reference can be checked against what
it names. They are kept per project (``<root>/<project>/<aa>/<digest>``, with a small JSON
sidecar holding the media type) on the local disk or under any fsspec URL (``s3://bucket/p``,
``memory://x``); an event carries its reference as the tag ``payload_ref``.

:func:`thumbnail` downscales an image on the client (the serving process) before it is sent, and
every payload is capped at :data:`MAX_PAYLOAD_BYTES`, so the store never holds raw inputs.

Examples
--------
>>> import tempfile
>>> store = PayloadStore(tempfile.mkdtemp())
>>> ref = store.put("demo", b"hello", "text/plain")
>>> ref
'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
>>> store.get("demo", ref)
(b'hello', 'text/plain')
>>> store.get("other-project", ref) is None
True
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest payload accepted (a thumbnail or a snippet, not the raw input)."""
THUMBNAIL_SIZE = 160
"""Longest side of a thumbnail, in pixels."""
MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "text/plain")
_REF = re.compile(r"^sha256:([0-9a-f]{64})$")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def default_root(db: str | None = None, url: str | None = None) -> str:
    """Where payloads live: ``url`` when given, else ``payloads/`` beside a SQLite file ``db``,
    else ``./.watchkeeper/payloads``."""
    if url:
        return str(url)
    if db and db.startswith("sqlite:///") and len(db) > len("sqlite:///"):
        db = db[len("sqlite:///") :]
    if db and "://" not in db:
        return str(Path(db).expanduser().resolve().parent / "payloads")
    return str(Path(".watchkeeper") / "payloads")


def payload_ref(data: bytes) -> str:
    """The reference of a payload: ``sha256:`` and the hex digest of its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(ref: str) -> str:
    """The hex digest in a reference; ValueError naming ``payload_ref`` when malformed."""
    m = _REF.match(ref) if isinstance(ref, str) else None
    if m is None:
        raise ValueError(f"payload_ref: expected 'sha256:<64 hex digits>', got {ref!r}")
    return m.group(1)


def thumbnail(image: Any, size: int = THUMBNAIL_SIZE, quality: int = 80) -> bytes:
    """A JPEG thumbnail (longest side ``size`` pixels) of a PIL image, an array or image bytes.

    Arrays are ``(h, w)`` or ``(h, w, 3)``, floats in [0, 1] or integers in [0, 255], or
    ``(3, h, w)`` as a CHW tensor. Needs Pillow.

    Examples
    --------
    >>> import numpy as np
    >>> data = thumbnail(np.random.default_rng(0).random((400, 300)))
    >>> data[:2] == b"\\xff\\xd8", len(data) < MAX_PAYLOAD_BYTES
    (True, True)
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise ValueError(f"size: expected an integer in 8..1024, got {size!r}")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is there wherever torchvision is
        raise ImportError("thumbnails need Pillow: pip install pillow") from None
    import numpy as np

    img: Image.Image
    if isinstance(image, bytes | bytearray):
        img = Image.open(io.BytesIO(bytes(image)))
    elif isinstance(image, Image.Image):
        img = image
    else:
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
            array = np.moveaxis(array, 0, -1)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3):
            raise ValueError(f"image: expected (h, w) or (h, w, 3), got shape {array.shape}")
        if array.dtype.kind == "f":
            array = np.clip(np.nan_to_num(array) * 255.0, 0, 255)
        img = Image.fromarray(array.astype(np.uint8))
    img = img.convert("RGB") if img.mode not in ("L", "RGB") else img
    img.thumbnail((size, size))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


class PayloadStore:
    """Content-addressed payloads per project, on a local directory or an fsspec URL.

    Parameters
    ----------
    root
        A directory, or a URL fsspec understands (``file://``, ``memory://``, ``s3://`` ...).
    max_bytes
        Largest payload accepted.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"PayloadStore({str(self.root)!r})"

    def _fs(self) -> tuple[Any, str]:
        root = str(self.root)
        if "://" in root and not root.startswith("file://"):
            import fsspec

            fs, path = fsspec.core.url_to_fs(root)
            return fs, str(path).rstrip("/")
        return None, root.removeprefix("file://")

    def _path(self, project: str, digest: str) -> str:
        if not isinstance(project, str) or not _PROJECT.match(project):
            raise ValueError(f"project: expected a project name, got {project!r}")
        return f"{project}/{digest[:2]}/{digest}"

    def put(self, project: str, data: bytes, media_type: str = "image/jpeg") -> str:
        """Store ``data`` and return its reference (storing the same bytes again is a no-op)."""
        if not isinstance(data, bytes | bytearray) or not data:
            raise ValueError("data: expected non-empty bytes")
        if len(data) > self.max_bytes:
            raise ValueError(
                f"data: {len(data)} bytes exceeds the payload limit of {self.max_bytes} bytes "
                "(send a thumbnail or a snippet)"
            )
        if media_type not in MEDIA_TYPES:
            raise ValueError(f"media_type: expected one of {MEDIA_TYPES}, got {media_type!r}")
        ref = payload_ref(bytes(data))
        rel = self._path(project, digest_of(ref))
        meta = json.dumps({"media_type": media_type}).encode()
        fs, root = self._fs()
        if fs is None:
            path = Path(root) / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(bytes(data))
                path.with_suffix(".json").write_bytes(meta)
                os.replace(tmp, path)
        else:
            target = f"{root}/{rel}"
            if not fs.exists(target):
                fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                fs.pipe_file(f"{target}.json", meta)
                fs.pipe_file(target, bytes(data))
        return ref

    def get(self, project: str, ref: str) -> tuple[bytes, str] | None:
        """``(bytes, media type)`` of a payload of the project, or None when it has none."""
        rel = self._path(project, digest_of(ref))
        fs, root = self._fs()
        try:
            if fs is None:
                path = Path(root) / rel
                data = path.read_bytes()
                meta = json.loads(path.with_suffix(".json").read_bytes())
            else:
                data = fs.cat_file(f"{root}/{rel}")
                meta = json.loads(fs.cat_file(f"{root}/{rel}.json"))
        except (FileNotFoundError, OSError, ValueError):
            return None
        if payload_ref(data) != ref:  # a corrupted or replaced file is never shown
            return None
        return data, str(meta.get("media_type", "application/octet-stream"))
