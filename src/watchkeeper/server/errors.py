"""Error replies: one readable line per problem, naming the field and the index."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

_TYPE_TAGS = {"float", "str", "int", "bool", "none", "constrained-str", "constrained-float"}
_OWN_PREFIXES = ("columns.", "events[", "labels", "ts", "body")


def error_field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("body", "events", 3, "score")`` -> ``"events[3].score"``.

    >>> error_field(("body", "columns", "features", "x", 17))
    'columns.features.x[17]'
    """
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif out and (part in _TYPE_TAGS or ("[" in str(part) and "]" in str(part))):
            # pydantic names union members ("float", "list[float]"): nothing for a reader.
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_response(errors: list[Any]) -> JSONResponse:
    """422 whose ``detail`` is one readable line per problem, field and index first."""
    items: list[dict[str, str]] = []
    for err in errors[:50]:
        field = error_field(tuple(err.get("loc", ())))
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if ":" in msg and msg.split(":", 1)[0].startswith(_OWN_PREFIXES):
            # our own validators already name the field
            field = msg.split(":", 1)[0]
            msg = msg.split(":", 1)[1].strip()
        if items and items[-1]["field"] == field:
            # a union reports once per member; one line per field is enough
            items[-1]["message"] += f" / {msg}" if msg not in items[-1]["message"] else ""
            continue
        items.append({"field": field, "message": msg})
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
    if len(errors) > 50:
        detail += f"; ... and {len(errors) - 50} more"
    return JSONResponse(status_code=422, content={"detail": detail, "errors": items})


class FieldError(BaseModel):
    """One problem of a request: where, and what."""

    field: str = Field(description="Where: 'events[3].score', 'columns.ids[0]', 'since', 'body'.")
    message: str


class ErrorOut(BaseModel):
    """Every 4xx reply: ``detail`` is one readable line; a 422 from validation also lists each
    problem in ``errors``."""

    detail: str = Field(description="One line, the field first: 'since: Input should be ...'.")
    errors: list[FieldError] | None = None


_WHY = {
    401: "No token, or an invalid, expired or revoked one ('Authorization: Bearer <token>').",
    403: "The token lacks the scope this route needs.",
    404: "The model (or the version, payload, dataset or token) is not in the token's project.",
    413: "The body exceeds the route's cap (or the batch the event limit); nothing was read.",
    422: "Invalid input; 'detail' names the field (and index) first.",
    429: "The token (or address) is past its rate limit, or too many heavy requests run on this "
    "server; retry after 'Retry-After' seconds.",
}


def _codes(path: str, method: str) -> list[int]:
    if not path.startswith("/v1/"):
        return []
    codes = [401, 403, 422]
    if "{" in path or path.endswith("/tokens:revoke"):  # a named thing may not exist
        codes.append(404)
    if method in {"post", "put", "patch"}:
        codes.append(413)
    codes.append(429)  # every route is rate limited per token
    return sorted(codes)


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say what the server answers on error: the codes each route
    can return, all with the :class:`ErrorOut` body (FastAPI's default 422 schema, a list of
    pydantic errors, is not what this server sends)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    out_schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(out_schema.pop("$defs", {}))
    schemas["ErrorOut"] = out_schema
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            if "422" in responses and not path.startswith("/v1/"):
                responses["422"] = {"description": _WHY[422], "content": ref}
            for code in _codes(path, method):
                described = responses.get(str(code), {}).get("description")
                responses[str(code)] = {"description": described or _WHY[code], "content": ref}
    return doc
