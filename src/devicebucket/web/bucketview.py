"""What the device page shows of one bucket: a page of its keys, long values cut short.

Pure and synchronous, so the dashboard runs it in a worker thread: a bucket of a hundred
thousand keys, or of one value of a megabyte, costs the page a bounded amount of HTML and
never holds up the server's other requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..core.masking import MASK, has_secret, is_secret_key, mask_value
from ..core.model import Snapshot
from ..core.schema import schema_errors
from .pagekit import kind, pretty

__all__ = ["KEYS_PER_PAGE", "SHOWN_CHARS", "BucketView", "Entry", "bucket_view", "entry"]

#: Keys of one bucket on one page.
KEYS_PER_PAGE: Final = 100
#: The most characters of one value a page shows; the rest is one click away.
SHOWN_CHARS: Final = 2_000


@dataclass(frozen=True, slots=True)
class Entry:
    """One key as the page shows it."""

    key: str
    kind: str
    secret: bool  # the key's name looks secret: its value is hidden until revealed
    hidden: bool  # the value is masked (the whole of it, or secrets inside it)
    text: str  # what the page shows: the value's JSON (masked where hidden), maybe cut short
    cut: bool  # ``text`` is the start of a longer value
    edit: str  # what the edit form starts with: the value's JSON, or "" if hidden or cut
    expires: float | None = None  # when the key expires (Unix seconds), if it does
    expires_in: str = ""  # the time left, for reading ("4 min 59 s")


def time_left(seconds: float) -> str:
    """A time left as a person reads it: ``2 h 5 min``, ``4 min 59 s``, ``12 s``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def entry(
    key: str,
    value: Any,
    secret_keys: tuple[str, ...],
    revealed: bool,
    expires: float | None = None,
    now: float = 0.0,
) -> Entry:
    secret = is_secret_key(key, secret_keys)
    hidden = not revealed and (secret or has_secret(value, secret_keys))
    if hidden and secret:
        text = MASK
    else:
        text = pretty(mask_value(value, secret_keys) if hidden else value)
    cut = len(text) > SHOWN_CHARS
    edit = "" if hidden or cut else text
    left = "" if expires is None else time_left(expires - now)
    shown = text[:SHOWN_CHARS] if cut else text
    return Entry(key, kind(value), secret, hidden, shown, cut, edit, expires, left)


@dataclass(frozen=True, slots=True)
class BucketView:
    """One bucket on the device page."""

    job: str | None
    name: str  # '' for the device bucket
    version: int
    updated_at: float | None
    keys: int  # in the whole bucket
    entries: list[Entry]  # this page's
    page: int
    pages: int
    first: int  # the number of this page's first key (1-based; 0 when empty)
    schema: Any
    errors: list[tuple[str, str, str]]


def bucket_view(
    snapshot: Snapshot,
    job: str | None,
    schema_text: str | None,
    secret_keys: tuple[str, ...],
    reveal: str | None,
    page: int,
    schema: Any = None,
    expires: dict[str, float] | None = None,
    now: float = 0.0,
) -> BucketView:
    """Page ``page`` of a bucket's keys (sorted), ``reveal`` the key shown unmasked, each
    with its expiry (``expires``) and the time left from ``now``."""
    data = snapshot.data
    pages = max(1, -(-len(data) // KEYS_PER_PAGE))
    page = min(max(page, 1), pages)
    start = (page - 1) * KEYS_PER_PAGE
    keys = sorted(data)[start : start + KEYS_PER_PAGE]
    when = expires or {}
    entries = [
        entry(key, data[key], secret_keys, key == reveal, when.get(key), now) for key in keys
    ]
    errors = [] if schema_text is None else schema_errors(data, schema_text)
    return BucketView(
        job,
        job or "",
        snapshot.version,
        snapshot.updated_at,
        len(data),
        entries,
        page,
        pages,
        start + 1 if keys else 0,
        schema,
        errors,
    )
