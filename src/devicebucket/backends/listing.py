"""Device listings, tokens and job summaries for a store that can only list devices in
order (the HTTP store): found by paging through ``_devices``, as a SQL store's queries would
find them."""

from __future__ import annotations

from abc import abstractmethod

from ..core.limits import MAX_DEVICE_PAGE
from ..core.model import DeviceInfo, DevicePage, Job
from ..core.tokens import Token

__all__ = ["PagedListings"]


class PagedListings:
    """The listing hooks of ``Store``, built on ``_devices``, ``_tokens`` and ``_jobs``."""

    @abstractmethod
    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]: ...

    @abstractmethod
    async def _tokens(self) -> list[Token]: ...

    @abstractmethod
    async def _jobs(self) -> list[Job]: ...

    async def _device_page(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage:
        """Pages through every device."""
        found: list[DeviceInfo] = []
        after: str | None = None
        needle = search.lower()
        while batch := await self._devices(after, MAX_DEVICE_PAGE):
            after = batch[-1].device
            found += [
                d for d in batch if needle in d.device.lower() and (job is None or job in d.jobs)
            ]
        found.sort(key=lambda d: d.device)
        if sort != "device":
            found.sort(key=lambda d: getattr(d, sort), reverse=descending)
        elif descending:
            found.reverse()
        return DevicePage(found[offset : offset + limit], len(found))

    async def _device(self, device: str) -> DeviceInfo | None:
        """Searches the listing for the id."""
        offset = 0
        while True:
            page = await self._device_page(device, None, "device", False, offset, MAX_DEVICE_PAGE)
            for info in page.devices:
                if info.device == device:
                    return info
            offset += MAX_DEVICE_PAGE
            if offset >= page.total:
                return None

    async def _token(self, ident: str) -> Token | None:
        """Scans the token list."""
        return next((t for t in await self._tokens() if t.id == ident), None)

    async def _job_summaries(self) -> list[tuple[Job, int]]:
        """Counts each job's devices in turn."""
        jobs = await self._jobs()
        pages = [await self._device_page("", j.job, "device", False, 0, 1) for j in jobs]
        return [(j, page.total) for j, page in zip(jobs, pages, strict=True)]
