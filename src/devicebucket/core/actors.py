"""Who wrote a change, as the history records it: one scheme on every surface.

An actor is ``"<credential> via <surface>"``. The credential is ``local`` (the store opened
directly: whoever can open its file or database), ``admin token <id>`` (``env`` for the admin
token a server was given) or ``device token <id>``; the surface is ``cli``, ``http``,
``dashboard``, ``library`` (a store's methods), ``agent`` (the agent API outside an automation)
or ``automation <file>[ in job <job>]``. A store opened directly
vouches for ``local``; through a server, the client names only the surface and the server
adds the token it was given.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LOCAL", "actor", "automation_surface", "token_credential"]

LOCAL: Final = "local"


def actor(credential: str, surface: str) -> str:
    return f"{credential} via {surface}"


def token_credential(token_id: str, admin: bool) -> str:
    return f"{'admin' if admin else 'device'} token {token_id}"


def automation_surface(automation: str | None, job: str | None) -> str:
    surface = f"automation {automation}" if automation else "agent"  # the agent API itself
    return f"{surface} in job {job}" if job else surface
