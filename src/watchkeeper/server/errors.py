"""Error replies: one readable line per problem, naming the field and the index."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

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
