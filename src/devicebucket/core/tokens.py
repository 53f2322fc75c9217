"""Access tokens: ``dbk_<id>_<secret>``, stored only as a SHA-256 hash, compared in constant time.

Tokens are 256-bit random secrets, so a fast hash is the right tool (a slow password hash
would only slow every request down). The id part names the token in listings and revocation
and finds its hash; the secret part never leaves the response that created it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["Token", "hash_token", "new_token", "token_id", "token_matches"]

PREFIX: Final = "dbk_"
_FORMAT: Final = re.compile(r"dbk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class Token:
    """A token as stored and listed: who it speaks for, never its secret.

    ``device`` is None for an admin token. A *run token* (``run=True``) lives only in the
    memory of the server ``devicebucket run`` starts for a JavaScript automation: it stands
    for the runner's own (local) credential, narrowed to one device and, with ``job``, one
    job, whose registration and job bucket it may also manage.
    """

    id: str
    device: str | None
    created_at: float
    job: str | None = None
    run: bool = False

    @property
    def is_admin(self) -> bool:
        return self.device is None


def new_token() -> tuple[str, str]:
    """A fresh ``(id, token)``; show ``token`` once, store only ``hash_token(token)``."""
    token_id_ = secrets.token_hex(6)
    return token_id_, f"{PREFIX}{token_id_}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str | None:
    """The id part of a well-formed token, else None."""
    match = _FORMAT.fullmatch(token)
    return match.group(1) if match else None


def token_matches(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token).encode(), stored_hash.encode())
