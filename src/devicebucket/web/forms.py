"""The dashboard's forms, bounded before they are read.

Starlette's ``request.form()`` reads a whole body of any size, and spools a multipart file to
disk, before anything is checked. Every dashboard form is small and urlencoded, so a form here
is refused (``413``) when its declared or streamed length passes its limit, without reading
further, and anything but ``application/x-www-form-urlencoded`` (file uploads included) is
refused (``415``) unread.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request

from .headers import header

__all__ = [
    "MAX_FIELDS",
    "SIGN_IN_BYTES",
    "FormRefusedError",
    "edit_form_bytes",
    "read_bounded",
    "read_form",
]

#: The sign-in form: a token and where to go next.
SIGN_IN_BYTES: Final = 4 * 1024
#: No dashboard form has more fields than this.
MAX_FIELDS: Final = 16
_URLENCODED: Final = "application/x-www-form-urlencoded"


def edit_form_bytes(max_bucket_bytes: int) -> int:
    """An edit form may carry a value as large as a whole bucket, percent-encoded (up to
    three bytes a byte), and a few small fields."""
    return 3 * max_bucket_bytes + 16 * 1024


class FormRefusedError(Exception):
    """A form that is not read: ``status`` 413 (too large) or 415 (not urlencoded)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be over ``limit`` bytes (by its
    declared length, before any of it is read, or while it streams); the rest is not read."""
    length = header(request, b"content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    # The ASGI messages themselves, as ``request.stream()`` reads them, without the cost of
    # its async generator (a third of a small write's reading).
    body = bytearray()
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if not body and not more:  # the whole body at once
            return chunk if len(chunk) <= limit else None
        body += chunk
        if len(body) > limit:
            return None
        if not more:
            return bytes(body)


async def read_form(request: Request, limit: int) -> FormData:
    """The request's urlencoded form, read only while it stays within ``limit`` bytes."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != _URLENCODED:
        raise FormRefusedError(415, "This form must be sent urlencoded; files are not accepted.")
    body = await read_bounded(request, limit)
    if body is None:
        raise FormRefusedError(413, f"This form is over its limit of {limit:,} bytes.")
    try:
        pairs = parse_qsl(
            body.decode("ascii", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="utf-8",
            errors="replace",
        )
    except ValueError:  # more fields than MAX_FIELDS
        raise FormRefusedError(413, f"This form has more than {MAX_FIELDS} fields.") from None
    fields: list[tuple[str, str | UploadFile]] = list(pairs)
    return FormData(fields)
