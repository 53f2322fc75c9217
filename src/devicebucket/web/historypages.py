"""The dashboard's history pages: a bucket's changes, a diff of two kept versions, and
*Restore* (conditional on the version shown)."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..core.errors import ConflictError, DeviceBucketError, StoreUnavailableError
from ..core.ids import check_id
from ..core.masking import is_secret_key, mask_value
from ..core.operations import diff
from ..core.store import Store
from .pagekit import actor, back_to_bucket

__all__ = ["HistoryPages"]


class Pages(Protocol):
    """What the history pages use of the dashboard."""

    store: Store
    secret_keys: tuple[str, ...]

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse: ...


class HistoryPages:
    """The history pages of one dashboard (its store, templates and secret words)."""

    def __init__(self, ui: Pages) -> None:
        self.ui = ui

    async def history(
        self, request: Request, session: dict[str, str], **outcome: Any
    ) -> HTMLResponse:
        device = check_id(request.path_params["device"])
        job = request.query_params.get("job") or None
        current = await self.ui.store.get(device, job=job)
        changes = await self.ui.store.history(device, job=job, limit=200)
        return self.ui.render(
            "history.html",
            outcome.pop("status", 200),
            session=session,
            device=device,
            job=job,
            current=current.version,
            changes=changes,
            kept={c.version for c in changes if c.kept} | {0},
            **outcome,
        )

    async def diff(self, request: Request, session: dict[str, str]) -> Response:
        device = check_id(request.path_params["device"])
        query = request.query_params
        job = query.get("job") or None
        raw_from, raw_to = query.get("from", ""), query.get("to", "")
        if not (raw_from.isdigit() and raw_to.isdigit() and len(raw_from + raw_to) < 30):
            return self.ui.render(
                "error.html", 400, session=session, message="Give two versions: from and to."
            )
        before_version, after = int(raw_from), int(raw_to)
        old = await self.ui.store.at_version(device, before_version, job=job)
        new = await self.ui.store.at_version(device, after, job=job)
        reveal = query.get("reveal") == "1"
        changes = diff(old.data, new.data)
        return self.ui.render(
            "diff.html",
            session=session,
            device=device,
            job=job,
            before=before_version,
            after=after,
            changes=changes,
            reveal=reveal,
            secret=lambda key: is_secret_key(key, self.ui.secret_keys),
            masked=lambda value: mask_value(value, self.ui.secret_keys),
        )

    async def restore(self, request: Request, session: dict[str, str]) -> Response:
        device = check_id(request.path_params["device"])
        form: FormData = request.state.form
        job = str(form.get("job", "")) or None
        try:
            version = int(str(form.get("version", "")))
            expected = int(str(form.get("current", "")))
        except ValueError:
            return self.ui.render("error.html", 400, session=session, message="Missing version.")
        try:
            restored = await self.ui.store.restore(
                device, version, job=job, expected_version=expected, actor=actor(session)
            )
        except ConflictError as exc:
            message = (
                f"Not restored: the bucket changed since you loaded this page (version"
                f" {expected} → {exc.actual}). Check the newest changes below, then restore again."
            )
            return await self.history(request, session, status=409, error=message)
        except StoreUnavailableError:
            raise  # the page says so, without the store's details
        except DeviceBucketError as exc:
            return await self.history(request, session, status=422, error=str(exc))
        notice = {"restored": str(version), "now": str(restored.version)}
        return back_to_bucket(device, job, notice)
