"""A content-addressed artifact store: files kept under their SHA-256, a manifest per artifact.

Layout under the store's root (a local directory, or any fsspec URL such as ``s3://bucket/wk``
or ``memory://wk``)::

    blobs/sha256/ab/abcdef...      one file per distinct content
    manifests/<digest>.json        the artifact: its kind and every file's path, size, SHA-256

The *manifest digest* is the SHA-256 of the manifest's canonical JSON, so one 64-hex string
names the whole artifact (a file, or a directory of weights, tokenizer and config). Checking an
artifact re-reads every byte and compares, streaming in large blocks: verification runs at the
speed of SHA-256 or of the disk, whichever is slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

BLOCK = 8 * 1024 * 1024
"""Bytes read per call while hashing: large enough that SHA-256, not Python, sets the pace."""
MAX_FILES = 100_000
"""Most files one artifact may hold."""
MAX_PATH = 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class IntegrityError(Exception):
    """An artifact does not match what was registered (a changed, missing or extra file, a bad
    signature); it must not be loaded. ``problems`` lists what was found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the bytes a digest is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """SHA-256 (hex) of a manifest's ``kind`` and ``files``, the artifact's one name.

    >>> m = {"kind": "file", "files": [{"path": "w.bin", "size": 0, "sha256": "e3" + "0" * 62}]}
    >>> len(manifest_digest(m))
    64
    """
    core = {"kind": manifest["kind"], "files": manifest["files"]}
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()


def hash_stream(handle: BinaryIO, buffer: bytearray | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and length of everything left in ``handle``, read in :data:`BLOCK` s."""
    digest = hashlib.sha256()
    buf = buffer if buffer is not None else bytearray(BLOCK)
    view = memoryview(buf)
    size = 0
    readinto = getattr(handle, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
            if not n:
                break
            digest.update(view[:n])
        else:  # a file-like without readinto (some fsspec files)
            chunk = handle.read(BLOCK)
            if not chunk:
                break
            n = len(chunk)
            digest.update(chunk)
        size += n
    return digest.hexdigest(), size


def hash_file(path: str | Path, buffer: bytearray | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and size of a local file.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> hash_file(p)[0][:16], hash_file(p)[1]
    ('ba7816bf8f01cfea', 3)
    """
    with open(path, "rb", buffering=0) as handle:
        return hash_stream(handle, buffer)


def check_relpath(value: Any, what: str = "path") -> str:
    """A relative POSIX path inside an artifact (no ``..``, not absolute), else ValueError."""
    if not isinstance(value, str) or not value or len(value) > MAX_PATH:
        raise ValueError(f"{what}: expected a relative path of at most {MAX_PATH} characters")
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or "\\" in value or "\x00" in value or str(p) != value:
        raise ValueError(f"{what}: {value!r} is not a plain relative path inside the artifact")
    return value


def check_manifest(manifest: Any) -> dict[str, Any]:
    """A manifest as stored (kind, files with path/size/sha256), validated; ValueError else."""
    if not isinstance(manifest, dict) or manifest.get("kind") not in ("file", "dir"):
        raise ValueError("manifest: expected a dict with kind 'file' or 'dir'")
    files = manifest.get("files")
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise ValueError(f"manifest.files: expected 1 to {MAX_FILES} files")
    seen = set()
    for i, f in enumerate(files):
        if not isinstance(f, dict):
            raise ValueError(f"manifest.files[{i}]: expected a dict")
        check_relpath(f.get("path"), f"manifest.files[{i}].path")
        if not isinstance(f.get("sha256"), str) or not _HEX64.match(f["sha256"]):
            raise ValueError(f"manifest.files[{i}].sha256: expected 64 lowercase hex digits")
        size = f.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"manifest.files[{i}].size: expected a byte count >= 0")
        if f["path"] in seen:
            raise ValueError(f"manifest.files[{i}].path: {f['path']!r} appears twice")
        seen.add(f["path"])
    if manifest["kind"] == "file" and len(files) != 1:
        raise ValueError("manifest.files: a 'file' artifact holds exactly one file")
    return manifest


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


@dataclass(frozen=True)
class VerifyResult:
    """What checking an artifact found.

    Attributes
    ----------
    digest
        The manifest digest checked.
    ok
        True when every file is present with its registered size and SHA-256, no other file is
        there, and the signature (when one was asked for) is valid.
    files, bytes
        How many files and bytes were read.
    seconds
        Wall time of the check.
    problems
        One line per mismatch (empty when ``ok``).
    signature
        ``"valid"``, ``"invalid"``, ``"absent"`` (a key was given, the version is unsigned) or
        ``"unchecked"`` (no key given).
    """

    digest: str
    ok: bool
    files: int
    bytes: int
    seconds: float
    problems: tuple[str, ...] = ()
    signature: str = "unchecked"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "digest": self.digest,
            "ok": self.ok,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "problems": list(self.problems),
            "signature": self.signature,
            **self.extra,
        }


def verify_tree(manifest: dict[str, Any], root: Path) -> VerifyResult:
    """Check a local copy of an artifact: ``root`` is the file itself (kind ``file``) or the
    directory holding its files (kind ``dir``)."""
    started = time.perf_counter()
    check_manifest(manifest)
    digest = manifest_digest(manifest)
    problems: list[str] = []
    buf = bytearray(BLOCK)
    n_bytes = 0
    expected = {f["path"]: f for f in manifest["files"]}
    if manifest["kind"] == "file":
        targets = {manifest["files"][0]["path"]: root}
    else:
        targets = {p: root / p for p in expected}
        if root.is_dir():
            present = {p.relative_to(root).as_posix() for p in _walk(root)}
            for extra in sorted(present - set(expected))[:100]:
                problems.append(f"{extra}: not part of the registered artifact")
        else:
            problems.append(f"{root}: the artifact's directory is missing")
    for rel, path in targets.items():
        want = expected[rel]
        if path.is_symlink() or not path.is_file():
            problems.append(f"{rel}: missing (or not a regular file)")
            continue
        got, size = hash_file(path, buf)
        n_bytes += size
        if size != want["size"]:
            problems.append(f"{rel}: {size} bytes, registered {want['size']}")
        elif got != want["sha256"]:
            problems.append(
                f"{rel}: SHA-256 {got[:16]}... differs from the registered {want['sha256'][:16]}..."
            )
    return VerifyResult(
        digest=digest,
        ok=not problems,
        files=len(targets),
        bytes=n_bytes,
        seconds=time.perf_counter() - started,
        problems=tuple(problems),
    )


class ArtifactStore:
    """Content-addressed files under a root: a local directory or an fsspec URL.

    Parameters
    ----------
    root
        A directory path (created on first write) or a URL fsspec understands
        (``s3://...``, ``gs://...``, ``memory://...``; the remote ones need their fsspec
        driver installed).
    cache
        Where remote artifacts are copied to be loaded (default: ``~/.cache/watchkeeper``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "weights.bin").write_bytes(b"\\x00" * 1000)
    >>> arts = ArtifactStore(tmp / "artifacts")
    >>> manifest = arts.put(tmp / "weights.bin")
    >>> manifest["kind"], manifest["files"][0]["size"]
    ('file', 1000)
    >>> path = arts.checkout(manifest)
    >>> path.read_bytes() == b"\\x00" * 1000, verify_tree(manifest, path).ok
    (True, True)
    """

    def __init__(self, root: str | Path, *, cache: str | Path | None = None) -> None:
        self.root = root
        self.cache = cache

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    # ------------------------------------------------------------------ where things are
    @property
    def is_local(self) -> bool:
        """Whether the root is a local directory (not a remote fsspec URL)."""
        text = str(self.root)
        return "://" not in text or text.startswith("file://")

    def _local_root(self) -> Path:
        text = str(self.root)
        return Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()

    def _fs(self) -> tuple[Any, str]:
        try:
            import fsspec
        except ImportError:  # pragma: no cover - fsspec comes with torch and the registry extra
            raise ImportError(
                "a remote artifact store needs fsspec: pip install 'watchkeeper[registry]'"
            ) from None
        fs, path = fsspec.core.url_to_fs(str(self.root))
        return fs, str(path).rstrip("/")

    @staticmethod
    def blob_key(sha256: str) -> str:
        """The blob's path under the root."""
        return f"blobs/sha256/{sha256[:2]}/{sha256}"

    def _cache_dir(self) -> Path:
        if self.is_local:
            return self._local_root() / "checkouts"
        base = (
            Path(self.cache) if self.cache is not None else Path.home() / ".cache" / "watchkeeper"
        )
        return base / "artifacts"

    # ------------------------------------------------------------------ writing
    def put(self, source: str | Path) -> dict[str, Any]:
        """Store a file or a directory's files (hashing each while copying it once) and its
        manifest; returns the manifest (with its ``digest``). Storing the same content again
        writes nothing new."""
        src = Path(source)
        if src.is_symlink() or not (src.is_file() or src.is_dir()):
            raise ValueError(f"path: {str(source)!r} is not a file or a directory")
        if src.is_file():
            kind, pairs = "file", [(src.name, src)]
        else:
            kind = "dir"
            pairs = []
            for p in _walk(src):
                if p.is_symlink() or not p.is_file():
                    raise ValueError(
                        f"path: {p} is a link or special file; artifacts hold plain files"
                    )
                pairs.append((p.relative_to(src).as_posix(), p))
                if len(pairs) > MAX_FILES:
                    raise ValueError(f"path: more than {MAX_FILES} files")
            if not pairs:
                raise ValueError(f"path: {str(source)!r} is an empty directory")
        files: list[dict[str, Any]] = []
        buf = bytearray(BLOCK)
        for rel, path in pairs:
            check_relpath(rel)
            sha, size = self._put_blob(path, buf)
            files.append({"path": rel, "size": size, "sha256": sha})
        files.sort(key=lambda f: f["path"])
        manifest: dict[str, Any] = {"format": 1, "kind": kind, "files": files}
        digest = manifest_digest(manifest)
        manifest["digest"] = digest
        self._write_bytes(f"manifests/{digest}.json", canonical_json(manifest).encode())
        return manifest

    def _put_blob(self, path: Path, buf: bytearray) -> tuple[str, int]:
        """Copy one file in, hashing on the way: one read of the source."""
        view = memoryview(buf)
        digest = hashlib.sha256()
        size = 0
        tmp_key = f"tmp/{uuid.uuid4().hex}"
        with open(path, "rb", buffering=0) as src, self._open_write(tmp_key) as out:
            while n := src.readinto(view):
                digest.update(view[:n])
                out.write(view[:n])
                size += n
        sha = digest.hexdigest()
        self._commit(tmp_key, self.blob_key(sha))
        return sha, size

    def _open_write(self, key: str) -> Any:
        if self.is_local:
            target = self._local_root() / key
            target.parent.mkdir(parents=True, exist_ok=True)
            return open(target, "wb")
        fs, root = self._fs()
        return fs.open(f"{root}/{key}", "wb")

    def _commit(self, tmp_key: str, key: str) -> None:
        if self.is_local:
            root = self._local_root()
            target = root / key
            if target.exists():
                (root / tmp_key).unlink()
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(root / tmp_key, target)
            return
        fs, base = self._fs()
        if fs.exists(f"{base}/{key}"):
            fs.rm(f"{base}/{tmp_key}")
        else:
            fs.mv(f"{base}/{tmp_key}", f"{base}/{key}")

    def _write_bytes(self, key: str, data: bytes) -> None:
        with self._open_write(key) as out:
            out.write(data)

    # ------------------------------------------------------------------ reading
    def manifest(self, digest: str) -> dict[str, Any]:
        """The stored manifest of an artifact; KeyError when it is not in this store."""
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ValueError(f"digest: expected 64 lowercase hex digits, got {digest!r}")
        key = f"manifests/{digest}.json"
        try:
            if self.is_local:
                data = (self._local_root() / key).read_bytes()
            else:
                fs, root = self._fs()
                data = fs.cat_file(f"{root}/{key}")
        except FileNotFoundError:
            raise KeyError(f"artifact {digest[:16]}... is not in {self!r}") from None
        return check_manifest(json.loads(data))

    def checkout(self, manifest: dict[str, Any]) -> Path:
        """A local path holding the artifact (the file itself, or its directory), laid out
        from the blobs (hard links on a local store, a download into the cache otherwise).
        Not verified: see :func:`verify_tree`, which :func:`watchkeeper.registry.load` runs."""
        check_manifest(manifest)
        digest = manifest_digest(manifest)
        base = self._cache_dir() / digest
        if not base.exists():
            staging = base.with_name(f".{digest}.{uuid.uuid4().hex}")
            try:
                for f in manifest["files"]:
                    target = staging / check_relpath(f["path"])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._materialise(f["sha256"], target)
                with contextlib.suppress(OSError):  # another process laid it out first
                    os.replace(staging, base)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        if manifest["kind"] == "file":
            return base / str(manifest["files"][0]["path"])
        return base

    def _materialise(self, sha256: str, target: Path) -> None:
        key = self.blob_key(sha256)
        if self.is_local:
            blob = self._local_root() / key
            if not blob.is_file():
                raise IntegrityError(
                    f"blob {sha256[:16]}... is missing from {self!r}", [f"{sha256}: missing"]
                )
            try:
                os.link(blob, target)  # same bytes, no copy: verifying the checkout reads them
            except OSError:
                shutil.copyfile(blob, target)
            return
        fs, root = self._fs()
        try:
            fs.get_file(f"{root}/{key}", str(target))
        except FileNotFoundError:
            raise IntegrityError(
                f"blob {sha256[:16]}... is missing from {self!r}", [f"{sha256}: missing"]
            ) from None

    def digests(self) -> list[str]:
        """Manifest digests of every artifact in the store."""
        if self.is_local:
            folder = self._local_root() / "manifests"
            return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        fs, root = self._fs()
        try:
            names = fs.ls(f"{root}/manifests", detail=False)
        except FileNotFoundError:
            return []
        return sorted(PurePosixPath(n).stem for n in names if str(n).endswith(".json"))

    def _open_read(self, key: str) -> Any:
        if self.is_local:
            return open(self._local_root() / key, "rb")
        fs, root = self._fs()
        return fs.open(f"{root}/{key}", "rb")

    def has_blob(self, sha256: str) -> bool:
        """Whether the content with this SHA-256 is stored."""
        key = self.blob_key(sha256)
        if self.is_local:
            return (self._local_root() / key).is_file()
        fs, root = self._fs()
        return bool(fs.exists(f"{root}/{key}"))

    def copy_from(self, source: ArtifactStore) -> dict[str, int]:
        """Copy every artifact of ``source`` that this store lacks (a backup, a restore, a move
        to shared storage), re-hashing each blob on the way: a corrupted source blob raises
        :class:`IntegrityError` and is not stored. Returns counts of artifacts, blobs copied
        and bytes."""
        counts = {"artifacts": 0, "blobs": 0, "bytes": 0}
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        for digest in source.digests():
            manifest = source.manifest(digest)
            if manifest_digest(manifest) != digest:
                raise IntegrityError(f"manifest {digest[:16]}... does not match its name")
            for f in manifest["files"]:
                sha = f["sha256"]
                if self.has_blob(sha):
                    continue
                tmp_key = f"tmp/{uuid.uuid4().hex}"
                hasher = hashlib.sha256()
                try:
                    with (
                        source._open_read(source.blob_key(sha)) as src,
                        self._open_write(tmp_key) as out,
                    ):
                        while n := src.readinto(view):
                            hasher.update(view[:n])
                            out.write(view[:n])
                            counts["bytes"] += n
                except FileNotFoundError:
                    raise IntegrityError(
                        f"blob {sha[:16]}... of {digest[:16]}... is missing from {source!r}"
                    ) from None
                if hasher.hexdigest() != sha:
                    self._remove(tmp_key)
                    raise IntegrityError(
                        f"blob {sha[:16]}... of {digest[:16]}... is corrupted in {source!r}"
                    )
                self._commit(tmp_key, self.blob_key(sha))
                counts["blobs"] += 1
            self._write_bytes(f"manifests/{digest}.json", canonical_json(manifest).encode())
            counts["artifacts"] += 1
        return counts

    def _remove(self, key: str) -> None:
        if self.is_local:
            (self._local_root() / key).unlink(missing_ok=True)
            return
        fs, root = self._fs()
        fs.rm(f"{root}/{key}")
