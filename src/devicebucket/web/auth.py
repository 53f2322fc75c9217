"""Who is calling: bearer tokens for the API, the admin token for the dashboard's sign-in.

:class:`TokenAuth` is a Starlette ``AuthenticationBackend``: it finds the token a request
presents (a stored token, or the admin token the server was started with) and says whether
that token may use a route (:meth:`TokenAuth.authorize`). The API and the dashboard both use
it; neither imports the other.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Final

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection

from ..core.store import Store
from ..core.tokens import Token, hash_token
from ..wire.routes import Access
from .headers import header
from .ratelimit import FailureLimit
from .responses import HTTPError

__all__ = [
    "ADMIN_TOKEN_ENV",
    "ENV_ADMIN_ID",
    "MIN_ADMIN_TOKEN_CHARS",
    "TokenAuth",
    "TokenUser",
    "check_admin_token",
]

ADMIN_TOKEN_ENV: Final = "DEVICEBUCKET_ADMIN_TOKEN"
#: An admin token given by the operator must be at least this long (issued ones are 64).
MIN_ADMIN_TOKEN_CHARS: Final = 24
#: The id of the admin token given in the environment (it has no stored record).
ENV_ADMIN_ID: Final = "env"


_INVALID: Final = "the bearer token is not valid or was revoked"


def _bearer(conn: HTTPConnection) -> str | None:
    """The secret of an ``Authorization: Bearer`` header, if there is one."""
    scheme, _, presented = (header(conn, b"authorization") or "").partition(" ")
    presented = presented.strip()
    return presented if scheme.lower() == "bearer" and presented else None


def _address(conn: HTTPConnection) -> str:
    client = conn.scope.get("client")  # (host, port), as ``conn.client`` reads it
    return str(client[0]) if client else "unknown"


def check_admin_token(admin_token: str | None) -> None:
    """Refuse (ValueError) an admin token given by the operator that is too short to guess
    at no cost."""
    if admin_token and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
        raise ValueError(
            f"{ADMIN_TOKEN_ENV} must be at least {MIN_ADMIN_TOKEN_CHARS} characters"
            " (for example: openssl rand -hex 24)"
        )


class TokenUser(BaseUser):
    """The caller: the token it presented (never its secret)."""

    def __init__(self, token: Token) -> None:
        self.token = token

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return f"{'admin' if self.token.is_admin else 'device'} token {self.token.id}"


class TokenAuth(AuthenticationBackend):
    """Bearer tokens over a store, plus the admin token from the environment."""

    def __init__(
        self,
        store: Store,
        admin_token: str | None,
        limit: FailureLimit | None = None,
        run_tokens: Mapping[str, Token] | None = None,
    ) -> None:
        check_admin_token(admin_token)
        self.store = store
        self.limit = limit
        # Run tokens (``Token.run``) by the SHA-256 of their secret: they live only here.
        self.run_tokens = dict(run_tokens or {})
        self.admin_hash = None if not admin_token else hashlib.sha256(admin_token.encode()).digest()
        # The configured admin token, created (as far as anyone can tell) when the app was.
        self.env_admin = Token(ENV_ADMIN_ID, None, time.time())

    async def check_token(self, presented: str) -> Token | None:
        """The token a presented secret belongs to (the configured admin token included)."""
        if self.admin_hash is not None and hmac.compare_digest(
            hashlib.sha256(presented.encode()).digest(), self.admin_hash
        ):
            return self.env_admin
        if self.run_tokens:
            run_token = self.run_tokens.get(hash_token(presented))
            if run_token is not None:
                return run_token
        return await self.store.authenticate(presented)

    def binding(self, token: Token) -> str:
        """What ties a session to the exact admin token it was opened with, beyond its id:
        for the configured admin token, a fingerprint of it (so a session ends when another
        token is configured); a stored token's id says it (it ends when revoked)."""
        if token.id != ENV_ADMIN_ID or self.admin_hash is None:
            return ""
        return hashlib.sha256(b"devicebucket-session:" + self.admin_hash).hexdigest()

    async def token_by_id(self, ident: str) -> Token | None:
        """A token that is still valid, by id (``ENV_ADMIN_ID`` for the configured one)."""
        if ident == ENV_ADMIN_ID:
            return self.env_admin if self.admin_hash is not None else None
        return await self.store.token(ident)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """None without an ``Authorization: Bearer`` header; AuthenticationError for a token
        that is not valid (or was revoked)."""
        presented = _bearer(conn)
        if presented is None:
            return None
        try:
            token = await self.verify(conn, presented)
        except HTTPError as exc:  # the middleware answers with its own error response
            raise AuthenticationError(str(exc)) from None
        scopes = ["authenticated", "admin" if token.is_admin else "device"]
        return AuthCredentials(scopes), TokenUser(token)

    async def caller(self, conn: HTTPConnection) -> Token:
        """The request's token, or a 401 answer (as :meth:`authenticate`, without building
        the credentials an API route does not use)."""
        presented = _bearer(conn)
        if presented is None:
            raise HTTPError(401, "unauthorized", "a bearer token is required")
        return await self.verify(conn, presented)

    async def verify(self, conn: HTTPConnection, presented: str) -> Token:
        """The token ``presented`` belongs to: 429 while the address is limited, 401 (and
        one failure more) when it is not valid."""
        self.refuse_if_limited(conn)
        token = await self.check_token(presented)
        if token is None:
            self.failed(conn)
            raise HTTPError(401, "unauthorized", _INVALID)
        return token

    def refuse_if_limited(self, conn: HTTPConnection) -> None:
        """429 for an address that failed to sign in too often lately."""
        if self.limit is None:
            return
        wait = self.limit.retry_after(_address(conn))
        if wait is not None:
            raise HTTPError(
                429,
                "too_many_failures",
                f"too many failed sign-ins from this address; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def failed(self, conn: HTTPConnection) -> None:
        """Count a failed sign-in of the request's address."""
        if self.limit is not None:
            self.limit.failed(_address(conn))

    @staticmethod
    def authorize(
        access: Access, token: Token | None, device: str | None, job: str | None = None
    ) -> None:
        """Refuse (403) a token that may not use a route of ``access`` on ``device`` (and
        ``job``). A run token is also an admin within its own device and job: it may register
        its job and read its job bucket's history."""
        if access is Access.PUBLIC or token is None or token.is_admin:
            return
        # A job-scoped token reaches only its job; a run token of a direct run, no job.
        if job is not None and job != token.job and (token.job is not None or token.run):
            reach = "no job" if token.job is None else f"only job {token.job}"
            raise HTTPError(403, "forbidden", f"this token reaches {reach}")
        if access is Access.ANY_TOKEN:
            return
        if access is Access.ADMIN and not (token.run and job is not None and job == token.job):
            raise HTTPError(403, "forbidden", "this route needs an admin token")
        if device is not None and device != token.device:
            raise HTTPError(
                403, "forbidden", "a device token may only use its own device's buckets"
            )
