"""Keys that expire: the rules, once for every store (pure: the caller gives the time).

A bucket row keeps its keys' expiry instants (``{"otp": 1795785000.0}``, Unix seconds) as
JSON beside the bucket, and the earliest of them, indexed, so a sweep finds the buckets due.
From its instant on an expired key is left out of every read, whether or not a sweep has
removed it yet; its removal is a write of its own, by the actor ``expiry``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Final

from .errors import InvalidValueError
from .values import JSONObject, decode, encode

__all__ = [
    "EXPIRY_ACTOR",
    "MAX_EXPIRE_IN",
    "Expiries",
    "after_write",
    "check_expire_in",
    "decode_expiries",
    "encode_expiries",
    "expired",
    "visible",
]

Expiries = dict[str, float]
#: Who the history says removed an expired key.
EXPIRY_ACTOR: Final = "expiry"
#: The longest expiry a key may be given, in seconds (ten years).
MAX_EXPIRE_IN: Final = 10 * 365 * 86_400


def check_expire_in(expire_in: object, keys: Iterable[str]) -> dict[str, float]:
    """``expire_in`` as checked: a mapping of keys of this write (``keys``) to seconds, each
    a number above 0 and at most ten years."""
    if not isinstance(expire_in, Mapping):
        raise InvalidValueError("expire_in must map keys of this set to seconds")
    written = set(keys)
    checked: dict[str, float] = {}
    for key, seconds in expire_in.items():
        if not isinstance(key, str) or key not in written:
            shown = key[:64] if isinstance(key, str) else type(key).__name__
            raise InvalidValueError(
                f"expire_in names {shown!r}, which this set does not write: only its own keys"
                " may be given an expiry"
            )
        if (
            type(seconds) not in (int, float)
            or not math.isfinite(seconds)
            or not 0 < seconds <= MAX_EXPIRE_IN
        ):
            raise InvalidValueError(
                f"expire_in of key {key[:64]!r} must be a number of seconds above 0 and at most"
                f" {MAX_EXPIRE_IN:,} (ten years)"
            )
        checked[key] = float(seconds)
    return checked


def encode_expiries(expiries: Expiries | None) -> tuple[str | None, float | None]:
    """A bucket's expiries as stored: their JSON (None: none) and the earliest instant."""
    if not expiries:
        return None, None
    return json.dumps(expiries, ensure_ascii=False, sort_keys=True), min(expiries.values())


def decode_expiries(text: str | None) -> Expiries | None:
    return None if text is None else dict(json.loads(text))


def expired(expiries: Expiries | None, now: float) -> list[str]:
    """The keys whose instant has come, sorted."""
    return sorted(k for k, at in (expiries or {}).items() if at <= now)


def visible(text: str, expiries: Expiries | None, now: float) -> str:
    """A bucket's text without its expired keys (the same text when none has expired)."""
    gone = expired(expiries, now)
    if not gone:
        return text
    data = decode(text)
    for key in gone:
        data.pop(key, None)
    return encode(data)


def after_write(
    expiries: Expiries | None,
    data: JSONObject,
    touched: Iterable[str],
    expire_in: Mapping[str, float] | None,
    now: float,
) -> Expiries | None:
    """The expiries after a write: a key the write set, removed or cleared loses its expiry
    (setting a key again without ``expire_in`` clears it), keys it gives ``expire_in``
    expire that many seconds from ``now``, and keys no longer in ``data`` have none."""
    if not expiries and not expire_in:
        return None
    kept = {k: at for k, at in (expiries or {}).items() if k in data}
    for key in touched:
        kept.pop(key, None)
    for key, seconds in (expire_in or {}).items():
        kept[key] = now + seconds
    return kept or None
