"""Register, verify and load model artifacts through the store's registry records."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchkeeper.registry._artifacts import (
    ArtifactStore,
    IntegrityError,
    VerifyResult,
    check_manifest,
    manifest_digest,
    verify_tree,
)

ARTIFACTS_ENV = "WATCHKEEPER_ARTIFACTS"
PUBLIC_KEY_ENV = "WATCHKEEPER_SIGNING_PUBLIC_KEY"


@contextmanager
def open_store(store_or_url: Any) -> Iterator[Any]:
    """The store itself, or a :class:`~watchkeeper.store.Store` opened on a URL or path (and
    closed afterwards)."""
    if store_or_url is None or isinstance(store_or_url, str | Path):
        from watchkeeper.store import Store

        store = Store(None if store_or_url is None else str(store_or_url))
        try:
            yield store
        finally:
            store.close()
    else:
        yield store_or_url


def artifact_root(store: Any, artifacts: str | Path | None = None) -> str | Path:
    """Where the store's artifacts live: ``artifacts`` if given, else ``$WATCHKEEPER_ARTIFACTS``,
    else an ``artifacts`` directory beside the SQLite file, else ``./.watchkeeper/artifacts``.

    >>> from watchkeeper.store import Store
    >>> str(artifact_root(Store("runs/wk.db")))
    'runs/artifacts'
    """
    if artifacts is not None:
        return artifacts
    env = os.environ.get(ARTIFACTS_ENV)
    if env:
        return env
    from watchkeeper.store._base import resolve_url

    url = resolve_url(getattr(store, "url", None))
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///") :]).parent / "artifacts"
    return Path(".watchkeeper") / "artifacts"


def _public_key(public_key: str | Path | None) -> str | Path | None:
    return public_key if public_key is not None else (os.environ.get(PUBLIC_KEY_ENV) or None)


def register_artifact(
    store_or_url: Any,
    project: str,
    model: str,
    version: str,
    path: str | Path,
    *,
    artifacts: str | Path | None = None,
    sign_key: str | Path | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a version's artifact (a file or a directory) content-addressed, record its
    manifest and digest on the version (registered if new), optionally signed with an ed25519
    private key and with its lineage; returns the version's record.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from watchkeeper.store import Store
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "model.bin").write_bytes(b"weights")
    >>> store = Store(str(tmp / "wk.db"))
    >>> record = register_artifact(store, "p", "fraud", "v1", tmp / "model.bin")
    >>> record["sha256"] == record["manifest"]["digest"]
    True
    >>> load(store, "p", "fraud", version="v1").read_bytes()
    b'weights'
    >>> store.close()
    """
    with open_store(store_or_url) as store:
        root = artifact_root(store, artifacts)
        manifest = ArtifactStore(root).put(path)
        digest = manifest["digest"]
        signature = None
        if sign_key is not None:
            from watchkeeper.registry._signing import sign_digest

            signature = sign_digest(digest, sign_key)
        store.register_model_version(project, model, version)
        store.put_version_registry(
            project,
            model,
            version,
            manifest=manifest,
            digest=digest,
            artifact_uri=str(root),
            signature=signature,
            lineage=lineage,
        )
        record: dict[str, Any] = store.get_model_version(project, model, version)
        return record


def resolve_version(
    store: Any, project: str, model: str, alias: str | None = None, version: str | None = None
) -> str:
    """The version named, or the one ``alias`` points at; ValueError when the alias is unset."""
    if version is not None:
        return version
    if alias is None:
        raise ValueError("version: give a version or an alias")
    found = store.get_alias(project, model, alias)
    if found is None:
        raise ValueError(
            f"alias: model {model!r} has no {alias!r} alias "
            f"(set one: watchkeeper model alias {model} {alias} VERSION)"
        )
    return str(found)


def _integrity_key(model: str, version: str) -> str:
    return f"integrity:{model}:{version}"


def record_integrity_failure(
    store: Any,
    project: str,
    model: str,
    version: str,
    *,
    digest: str | None,
    problems: list[str],
    alias: str | None = None,
    method: str = "sha256",
) -> None:
    """Store an ``integrity`` finding and raise (or update) a critical alert for the version."""
    now = time.time()
    details = {"version": version, "digest": digest, "problems": problems[:50], "alias": alias}
    store.add_findings(
        project,
        model,
        [
            {
                "check": "integrity",
                "subject": f"version:{version}",
                "method": method,
                "statistic": float(len(problems)),
                "drift": True,
                "severity": "critical",
                "details": details,
            }
        ],
    )
    summary = (
        f"integrity on {model}: version {version} does not match what was registered "
        f"({problems[0] if problems else 'unknown problem'})"
    )
    key = _integrity_key(model, version)
    store.upsert_alert(
        project,
        {
            "key": key,
            "fingerprint": key,
            "rule": "integrity",
            "project": project,
            "model": model,
            "version": version,
            "status": "firing",
            "severity": "critical",
            "started_at": now,
            "resolved_at": None,
            "subjects": [f"version:{version}"],
            "labels": {"project": project, "model": model, "rule": "integrity", "version": version},
            "summary": summary,
            "details": details,
        },
    )


def _resolve_integrity_alert(store: Any, project: str, model: str, version: str) -> None:
    key = _integrity_key(model, version)
    for alert in store.list_alerts(project, model=model, status="firing"):
        if alert.get("key") == key:
            store.upsert_alert(
                project, {"key": key, "status": "resolved", "resolved_at": time.time()}
            )


def _check_version(
    store: Any,
    project: str,
    model: str,
    version: str,
    artifacts: str | Path | None,
    public_key: str | Path | None,
) -> tuple[VerifyResult, Path | None]:
    """Verify the version's artifact; the result and the verified local path (None when the
    artifact could not be laid out)."""
    record = store.get_model_version(project, model, version)
    manifest = record.get("manifest")
    if manifest is None:
        raise ValueError(f"version: {model!r} {version!r} has no registered artifact")
    started = time.perf_counter()
    registered = record.get("sha256")
    problems: list[str] = []
    path: Path | None = None
    try:
        check_manifest(manifest)
        if manifest_digest(manifest) != registered:
            problems.append("manifest: its digest differs from the registered one")
    except ValueError as exc:
        problems.append(str(exc))
    result: VerifyResult | None = None
    if not problems:
        try:
            path = ArtifactStore(artifact_root(store, artifacts)).checkout(manifest)
            result = verify_tree(manifest, path)
            problems.extend(result.problems)
        except IntegrityError as exc:
            problems.extend(exc.problems or [str(exc)])
    signature = "unchecked"
    key = _public_key(public_key)
    if key is not None and registered:
        from watchkeeper.registry._signing import check_signature

        signature = check_signature(registered, record.get("signature"), key)
        if signature != "valid":
            problems.append(f"signature: {signature} (checked against {key})")
    final = VerifyResult(
        digest=str(registered),
        ok=not problems,
        files=0 if result is None else result.files,
        bytes=0 if result is None else result.bytes,
        seconds=time.perf_counter() - started,
        problems=tuple(problems),
        signature=signature,
        extra={"model": model, "version": version},
    )
    return final, path


def verify(
    store_or_url: Any,
    project: str,
    model: str,
    version: str | None = None,
    *,
    alias: str | None = None,
    artifacts: str | Path | None = None,
    public_key: str | Path | None = None,
    record: bool = True,
) -> VerifyResult:
    """Re-read every byte of a version's artifact (or the one ``alias`` points at) and compare
    with the registered SHA-256s, and the signature when a public key is given (or set in
    ``$WATCHKEEPER_SIGNING_PUBLIC_KEY``). A mismatch is stored as an ``integrity`` finding with
    a critical alert unless ``record=False``; a match resolves that alert."""
    with open_store(store_or_url) as store:
        name = resolve_version(store, project, model, alias, version)
        result, _ = _check_version(store, project, model, name, artifacts, public_key)
        if record:
            if result.ok:
                _resolve_integrity_alert(store, project, model, name)
            else:
                record_integrity_failure(
                    store, project, model, name, digest=result.digest,
                    problems=list(result.problems), alias=alias,
                )  # fmt: skip
        return result


@dataclass(frozen=True)
class LoadedArtifact:
    """A verified local copy of a model version's artifact.

    Attributes
    ----------
    path
        The file (a one-file artifact) or the directory holding the artifact's files.
    model, version, digest
        What was loaded.
    alias
        The alias it was resolved through (``"fallback"`` after a fallback), or None.
    fell_back_from
        The version that failed and was replaced by the fallback, or None.
    failure
        Why that version failed, or None.
    """

    path: Path
    model: str
    version: str
    digest: str
    alias: str | None = None
    fell_back_from: str | None = None
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "path": str(self.path),
            "model": self.model,
            "version": self.version,
            "digest": self.digest,
            "alias": self.alias,
            "fell_back_from": self.fell_back_from,
            "failure": self.failure,
        }


def _load_one(
    store: Any,
    project: str,
    model: str,
    version: str,
    alias: str | None,
    artifacts: str | Path | None,
    public_key: str | Path | None,
) -> LoadedArtifact:
    result, path = _check_version(store, project, model, version, artifacts, public_key)
    if not result.ok or path is None:
        record_integrity_failure(
            store, project, model, version, digest=result.digest,
            problems=list(result.problems), alias=alias,
        )  # fmt: skip
        raise IntegrityError(
            f"model {model!r} version {version!r} failed verification and was not loaded: "
            + "; ".join(result.problems[:5]),
            list(result.problems),
        )
    return LoadedArtifact(
        path=path, model=model, version=version, digest=result.digest, alias=alias
    )


def load_version(
    store_or_url: Any,
    project: str,
    model: str,
    alias: str = "champion",
    *,
    version: str | None = None,
    artifacts: str | Path | None = None,
    public_key: str | Path | None = None,
    fallback: bool = True,
) -> LoadedArtifact:
    """Resolve ``alias`` (or take ``version``), verify the artifact and return its verified
    local copy. When it fails verification (or has no artifact) an ``integrity`` finding and a
    critical alert are stored; with ``fallback`` the ``fallback`` alias's version is then
    tried, and :class:`~watchkeeper.registry.IntegrityError` is raised only if that fails too.
    """
    with open_store(store_or_url) as store:
        name = resolve_version(store, project, model, None if version else alias, version)
        used_alias = None if version else alias
        try:
            return _load_one(store, project, model, name, used_alias, artifacts, public_key)
        except (IntegrityError, ValueError) as exc:
            backup = None
            if fallback and used_alias != "fallback":
                backup = store.get_alias(project, model, "fallback")
            if backup is None or backup == name:
                raise
            try:
                loaded = _load_one(store, project, model, backup, "fallback", artifacts, public_key)
            except (IntegrityError, ValueError) as second:
                raise exc from second
            return LoadedArtifact(
                path=loaded.path,
                model=model,
                version=loaded.version,
                digest=loaded.digest,
                alias="fallback",
                fell_back_from=name,
                failure=str(exc),
            )


def load(
    store_or_url: Any,
    project: str,
    model: str,
    alias: str = "champion",
    *,
    version: str | None = None,
    artifacts: str | Path | None = None,
    public_key: str | Path | None = None,
    fallback: bool = True,
) -> Path:
    """The verified local path of a model's artifact: :func:`load_version`'s ``path``."""
    return load_version(
        store_or_url,
        project,
        model,
        alias,
        version=version,
        artifacts=artifacts,
        public_key=public_key,
        fallback=fallback,
    ).path


def check_serving_digest(store: Any, project: str, model: str, version: str, digest: str) -> bool:
    """Compare the digest a serving process reports for ``version`` with the registered one;
    a mismatch is stored as an ``integrity`` finding and alert. True when they agree (or the
    version has no registered digest)."""
    try:
        registered = store.get_model_version(project, model, version).get("sha256")
    except (KeyError, ValueError):
        registered = None
    if registered is None or registered == digest:
        return True
    record_integrity_failure(
        store, project, model, version, digest=registered, method="serving_digest",
        problems=[f"serving reports digest {digest[:16]}..., registered {registered[:16]}..."],
    )  # fmt: skip
    return False


def check_serving_digests(
    store: Any, project: str, model: str, digests: Mapping[str, Any]
) -> list[str]:
    """:func:`check_serving_digest` for each ``version -> digest`` a batch header reports
    (at most 16, malformed entries ignored); returns the versions that do not match."""
    bad: list[str] = []
    for version, digest in list(digests.items())[:16]:
        if not isinstance(version, str) or not version or len(version) > 128:
            continue
        if not isinstance(digest, str) or len(digest) != 64:
            continue
        if not check_serving_digest(store, project, model, version, digest.lower()):
            bad.append(version)
    return bad
