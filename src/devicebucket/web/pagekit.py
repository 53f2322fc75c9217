"""What the dashboard's pages share: the template filters, reading an edit's JSON value, and
the small rules of where a page leads next (pure: no I/O)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from ..core.actors import actor as written
from ..core.actors import token_credential
from ..wire.shapes import rfc3339

__all__ = [
    "actor",
    "back_to_bucket",
    "kind",
    "next_page",
    "page_number",
    "parse_value",
    "pretty",
    "size",
    "when",
]


def when(timestamp: float | None) -> str:
    """A time as every surface writes it (RFC 3339, UTC); "–" for never."""
    return rfc3339(timestamp) if timestamp else "–"


def size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {str: "string", int: "number", float: "number", list: "array"}.get(type(value), "object")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def back_to_bucket(device: str, job: str | None, notice: dict[str, str]) -> Response:
    """After a change: the device page, scrolled to the bucket, saying what was done."""
    anchor = f"bucket-{job}" if job else "bucket-device"
    return RedirectResponse(f"/ui/devices/{device}?{urlencode(notice)}#{anchor}", 303)


def actor(session: dict[str, str]) -> str:
    """Who writes from the dashboard (``core.actors``)."""
    return written(token_credential(session["token"], admin=True), "dashboard")


def parse_value(form: FormData) -> Any:
    raw = str(form.get("value", ""))
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"The value is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno});"
            ' write text in quotes, e.g. "hello".'
        ) from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"The value is not valid JSON: {name} is not JSON.")


def page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and 0 < int(raw) < 10**6 else 1


def next_page(raw: str | None) -> str:
    """Where to go after signing in: only a dashboard path, never another site."""
    if raw and raw.startswith("/ui/") and not raw.startswith("/ui//") and "\\" not in raw:
        return raw
    return "/ui/devices"
