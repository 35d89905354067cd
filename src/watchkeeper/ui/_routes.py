"""The console's routes under ``/ui``: sign-in, overview, model page, alerts, samples, datasets."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from watchkeeper.payloads import PayloadStore, default_root
from watchkeeper.store._console import MAX_PAGE, SampleQuery, console
from watchkeeper.ui import _session as S
from watchkeeper.ui import _views as V
from watchkeeper.ui._render import render
from watchkeeper.ui.segments import segment_tables, weak_segments

PREFIX = "/ui"
STATIC = Path(__file__).with_name("static")
TOKEN_CACHE_SECONDS = 5.0
_YES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


class Session:
    """The signed-in caller: its project and the CSRF token of its forms."""

    def __init__(self, project: str, csrf: str) -> None:
        self.project = project
        self.csrf = csrf


class _Tokens:
    """Whether a session's token is still valid, asked of the store at most every few seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, str | None]] = {}

    def project(self, store: Any, token_hash: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(token_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = console(store).token_by_hash(token_hash)
        project = None if found is None else found[0]
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[token_hash] = (now + TOKEN_CACHE_SECONDS, project)
        return project


def _state(request: Request) -> Any:
    return request.app.state


def _signer(request: Request) -> S.Signer:
    signer: S.Signer = _state(request).ui_signer
    return signer


def _login_redirect(request: Request) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/login?" + urlencode({"next": target})
    return HTTPException(303, detail="sign in first", headers={"Location": location})


def current_session(request: Request) -> Session:
    """The caller's session; a redirect to the sign-in page without a valid one."""
    payload = _signer(request).verify(request.cookies.get(S.COOKIE))
    if not S.live(payload):
        raise _login_redirect(request)
    assert payload is not None
    project = _state(request).ui_tokens.project(_state(request).store, payload["h"])
    if project is None or project != payload["p"]:
        raise _login_redirect(request)
    return Session(project, str(payload["c"]))


SessionDep = Annotated[Session, Depends(current_session)]


def _check_csrf(session: Session, given: str) -> None:
    if not hmac.compare_digest(session.csrf.encode(), (given or "").encode()):
        raise HTTPException(403, detail="csrf: the form is stale or forged; reload the page")


def _model(request: Request, session: Session, model: str) -> str:
    if len(model) > 128 or not _state(request).store.has_model(session.project, model):
        raise HTTPException(404, detail=f"model {model!r} not found")
    return model


def _page(request: Request, template: str, session: Session | None, **context: Any) -> Response:
    html = render(
        template, prefix=PREFIX, session=session, path=request.url.path, iso=V.iso, **context
    )
    return HTMLResponse(html, headers=_HEADERS)


_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _opt_float(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {raw[:40]!r}")
    return value


def _opt_bool(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name, "").strip().lower()
    if not raw or raw == "any":
        return None
    if raw not in _YES:
        raise ValueError(f"{name}: expected yes, no or any, got {raw[:20]!r}")
    return _YES[raw]


def parse_query(params: Any) -> tuple[SampleQuery, str | None, int]:
    """The explorer's query string as a :class:`SampleQuery`, a cursor and a page size.

    Repeated ``tag=name=value`` and ``feature=name:low:high`` (either end empty) or
    ``feature=name=value``; ValueError names the parameter.
    """
    single = {k: v for k, v in params.items() if k not in ("tag", "feature")}
    for key, value in single.items():
        if len(value) > 512:
            raise ValueError(f"{key}: at most 512 characters")
    tags: dict[str, str] = {}
    for item in params.getlist("tag")[:20]:
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"tag: expected name=value, got {item[:40]!r}")
        tags[name] = value
    features: dict[str, Any] = {}
    for item in params.getlist("feature")[:20]:
        if not item.strip():
            continue
        if "=" in item and ":" not in item.split("=", 1)[0]:
            name, _, value = item.partition("=")
            features[name] = value
            continue
        parts = item.split(":")
        if len(parts) != 3 or not parts[0]:
            raise ValueError(f"feature: expected name:low:high or name=value, got {item[:40]!r}")
        bounds = {"low": parts[1], "high": parts[2]}
        features[parts[0]] = (_opt_float(bounds, "low"), _opt_float(bounds, "high"))
    limit_raw = single.get("limit", "").strip() or "100"
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_PAGE:
        raise ValueError(f"limit: expected an integer in 1..{MAX_PAGE}, got {limit_raw[:20]!r}")
    query = SampleQuery(
        start=_opt_float(single, "start"),
        end=_opt_float(single, "end"),
        version=single.get("version") or None,
        score_min=_opt_float(single, "score_min"),
        score_max=_opt_float(single, "score_max"),
        outlier_p_max=_opt_float(single, "outlier_p_max"),
        flagged=_opt_bool(single, "flagged"),
        predicted=single.get("predicted") or None,
        label=single.get("label") or None,
        labelled=_opt_bool(single, "labelled"),
        correct=_opt_bool(single, "correct"),
        tags=tags,
        features=features,
        order=single.get("order") or "newest",
    ).validate()
    return query, single.get("cursor") or None, int(limit_raw)


def _payloads(request: Request) -> PayloadStore:
    payloads: PayloadStore = _state(request).payloads
    return payloads


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    return _page(request, "login.html", None, next=_safe_next(next), error=None)


def _safe_next(target: str) -> str:
    # only a path of this console: never an absolute URL (an open redirect)
    if target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target[:1000]
    return PREFIX + "/"


@router.post("/login")
def login(
    request: Request, token: Annotated[str, Form(max_length=512)], next: Annotated[str, Form()] = ""
) -> Response:
    store = _state(request).store
    found = store.authenticate(token.strip()) if token.strip() else None
    if found is None or not ({"read", "admin"} & set(found[1])):
        response = _page(
            request,
            "login.html",
            None,
            next=_safe_next(next),
            error="This token is not valid for reading (it needs the read or admin scope).",
        )
        response.status_code = 401
        return response
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    cookie = _signer(request).sign(S.new_session(digest, found[0]))
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        S.COOKIE,
        cookie,
        max_age=S.SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PREFIX,
    )
    return response


@router.post("/logout")
def logout(session: SessionDep, csrf: Annotated[str, Form(max_length=128)]) -> Response:
    _check_csrf(session, csrf)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(S.COOKIE, path=PREFIX)
    return response


@router.get("/")
def overview(request: Request, session: SessionDep) -> Response:
    rows = V.overview(_state(request).store, session.project)
    return _page(request, "overview.html", session, rows=rows)


@router.get("/models/{model}")
def model_page(request: Request, session: SessionDep, model: str) -> Response:
    _model(request, session, model)
    page = V.model_page(_state(request).store, session.project, model)
    return _page(request, "model.html", session, page=page)


@router.get("/models/{model}/embedding")
def embedding(
    request: Request,
    session: SessionDep,
    model: str,
    start: float | None = None,
    end: float | None = None,
) -> Response:
    _model(request, session, model)
    store = _state(request).store
    if start is None:
        last = store.list_findings(session.project, model, limit=1)
        if last:
            start, end = last[0]["window_start"], last[0]["window_end"]
    chart = V.embedding_map(store, session.project, model, start, end, PREFIX)
    return _page(request, "embedding.html", session, model=model, chart=chart, start=start, end=end)


def _finding(request: Request, session: Session, model: str, finding_id: int) -> dict[str, Any]:
    for f in _state(request).store.list_findings(session.project, model, limit=MAX_FINDING_SCAN):
        if f["id"] == finding_id:
            return dict(f)
    raise HTTPException(404, detail=f"finding {finding_id} not found")


MAX_FINDING_SCAN = 20_000


@router.get("/models/{model}/findings/{finding_id}/samples")
def finding_samples(request: Request, session: SessionDep, model: str, finding_id: int) -> Response:
    _model(request, session, model)
    finding = _finding(request, session, model, finding_id)
    params = V.finding_filters(_state(request).store, session.project, model, finding)
    params.append(("finding", str(finding_id)))
    return RedirectResponse(f"{PREFIX}/models/{model}/samples?{urlencode(params)}", 303)


@router.get("/models/{model}/findings/{finding_id}")
def finding_page(request: Request, session: SessionDep, model: str, finding_id: int) -> Response:
    """One finding: its figures, its details, and its explanation when one was computed."""
    _model(request, session, model)
    if not 1 <= finding_id <= 2**62:
        raise HTTPException(404, detail=f"finding {finding_id} not found")
    try:
        finding = _state(request).store.get_finding(session.project, model, finding_id)
    except KeyError:
        raise HTTPException(404, detail=f"finding {finding_id} not found") from None
    details = dict(finding.get("details") or {})
    explanation = details.pop("explanation", None)
    return _page(
        request,
        "finding.html",
        session,
        model=model,
        finding=finding,
        details=V.plain_details(details),
        explanation=explanation,
        samples=V.samples_link(model, finding),
    )


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, session: SessionDep, alert_id: int) -> Response:
    store = _state(request).store
    alert = next((a for a in store.list_alerts(session.project) if a["id"] == alert_id), None)
    if alert is None or not alert.get("model"):
        raise HTTPException(404, detail=f"alert {alert_id} not found")
    model = str(alert["model"])
    wanted = {(f.get("check"), f.get("subject")) for f in alert.get("findings") or []}
    at = alert.get("updated_at")
    findings = [
        f
        for f in store.list_findings(session.project, model, limit=2_000)
        if f.get("drift")
        and (f["check"], f["subject"]) in wanted
        and (at is None or f.get("window_end") is None or f["window_end"] <= at + 1e-6)
    ]
    if findings:
        last = max(f.get("window_end") or 0.0 for f in findings)
        findings = [f for f in findings if (f.get("window_end") or 0.0) == last]
    rows = V.finding_rows(model, findings)
    return _page(request, "alert.html", session, alert=alert, model=model, findings=rows)


@router.get("/models/{model}/samples")
def samples(request: Request, session: SessionDep, model: str) -> Response:
    _model(request, session, model)
    store = _state(request).store
    partial = request.headers.get("hx-request") == "true"
    try:
        query, cursor, limit = parse_query(request.query_params)
        settings = _state(request).settings
        page = console(store).sample_page(
            session.project,
            model,
            query,
            cursor=cursor,
            limit=limit,
            default_threshold=settings.flag_threshold,
        )
        error = None
    except ValueError as exc:
        query, page, error = SampleQuery(), None, str(exc)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    more = (
        None
        if page is None or page.next_cursor is None
        else f"{PREFIX}/models/{model}/samples?{urlencode([*params, ('cursor', page.next_cursor)])}"
    )
    context = {
        "model": model,
        "query": query,
        "page": page,
        "error": error,
        "more": more,
        "params": request.query_params,
        "tags": request.query_params.getlist("tag"),
        "features": request.query_params.getlist("feature"),
        "versions": [v["version"] for v in store.list_model_versions(session.project, model)],
        "datasets": console(store).list_curated_sets(session.project, model),
        "finding": request.query_params.get("finding"),
    }
    response = _page(request, "_rows.html" if partial else "samples.html", session, **context)
    if error is not None:
        response.status_code = 422
    return response


@router.post("/models/{model}/datasets")
async def add_to_dataset(request: Request, session: SessionDep, model: str) -> Response:
    _model(request, session, model)
    form = await request.form(max_files=0, max_fields=MAX_PAGE + 10)
    _check_csrf(session, str(form.get("csrf", "")))
    name = str(form.get("name", "")).strip()
    ids = [str(i) for i in form.getlist("ids")][:MAX_PAGE]
    try:
        stored = console(_state(request).store).create_curated_set(
            session.project, model, name, ids, actor=f"console:{session.project}"
        )
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    target = f"{PREFIX}/models/{model}/datasets?{urlencode({'added': len(ids), 'name': name})}"
    if request.headers.get("hx-request") == "true":
        return HTMLResponse(
            render(
                "_added.html",
                prefix=PREFIX,
                model=model,
                name=stored["name"],
                added=len(ids),
                size=len(stored["ids"]),
            ),
            headers=_HEADERS,
        )
    return RedirectResponse(target, status_code=303)


@router.get("/models/{model}/datasets")
def datasets(request: Request, session: SessionDep, model: str, name: str = "") -> Response:
    _model(request, session, model)
    store = console(_state(request).store)
    chosen = store.get_curated_set(session.project, model, name) if name else None
    return _page(
        request,
        "datasets.html",
        session,
        model=model,
        sets=store.list_curated_sets(session.project, model),
        chosen=chosen,
    )


@router.get("/models/{model}/segments")
def segments(
    request: Request,
    session: SessionDep,
    model: str,
    start: float | None = None,
    end: float | None = None,
) -> Response:
    _model(request, session, model)
    store = _state(request).store
    if start is None:
        last = store.list_findings(session.project, model, limit=1)
        if last:
            start, end = last[0]["window_start"], last[0]["window_end"]
    window = store.read_window(
        session.project,
        model,
        start=start,
        end=end,
        embeddings=False,
        **({} if start is not None else {"last_n": 10_000}),
    )
    thresholds = console(store).flag_thresholds(
        session.project, model, _state(request).settings.flag_threshold
    )
    tables = segment_tables(window, thresholds, _expected_rate(store, session.project, model))
    weak = weak_segments(window, thresholds)
    return _page(
        request,
        "segments.html",
        session,
        model=model,
        tables=tables,
        weak=weak,
        start=start,
        end=end,
    )


def _expected_rate(store: Any, project: str, model: str) -> float | None:
    """The newest version's expected flag rate, TPR·π + FPR·(1−π), when it has them."""
    versions = store.list_model_versions(project, model)
    for v in reversed(versions):
        op = v.get("operating_point") or {}
        prevalence = v.get("expected_prevalence")
        if prevalence is not None and op.get("tpr") is not None and op.get("fpr") is not None:
            return float(op["tpr"] * prevalence + op["fpr"] * (1 - prevalence))
    return None


@router.get("/payloads/{digest}")
def payload(request: Request, session: SessionDep, digest: str) -> Response:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise HTTPException(404, detail="no such payload")
    found = _payloads(request).get(session.project, f"sha256:{digest}")
    if found is None:
        raise HTTPException(404, detail="no such payload")
    data, media_type = found
    headers = {**_HEADERS, "Cache-Control": "private, max-age=86400"}
    return Response(data, media_type=media_type, headers=headers)


def install(app: FastAPI, settings: Any) -> None:
    """Add the console to an app: its routes under ``/ui``, its static files, its secret."""
    secret = getattr(settings, "ui_secret", None)
    app.state.ui_signer = S.Signer(secret.encode() if secret else secrets.token_bytes(32))
    app.state.ui_tokens = _Tokens()
    db = settings.db or getattr(app.state.store, "url", None)
    app.state.payloads = PayloadStore(default_root(db, settings.payload_url))
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/", include_in_schema=False)
    def _root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)
