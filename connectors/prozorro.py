"""ProZorro (Ukraine) public API: the tenders, contracts and plans feeds.

Domain: https://public-api.prozorro.gov.ua/api/2.5 (openprocurement.api), no authentication.

Cursor: the feed's ``next_page.offset``, kept as an opaque string exactly as received (its format
changed four times since 2015). A first run starts from ``--since`` (a Unix timestamp offset, which
the API accepts) or, with ``--full``, from the beginning (``offset=""``).

Paging: forward, oldest write first. Each page lists ids with their dateModified; objects whose
dateModified is already stored are skipped, the others are fetched in full with bounded
concurrency. The feed ends when a page has ``data: []`` (``next_page`` is always present). A
modified object moves to the end of the feed, so the next run sees it again.

Caveats: a 404 on the offset means the server no longer accepts it; paging restarts, as the
official crawler does, from the configured start (``restart``: where the run that began the
stored cursor's chain started, i.e. its ``--since`` or default start, or the beginning of the
feed after ``--full``), once per run. Objects already stored are skipped, so re-listing is cheap,
and nothing listed after that start can be missed. The feed's dateModified may be older than the
object's (it moved again); the object's own dateModified is what is stored. Test objects
(``mode: test``) are not in the default feed. An object listed but gone (404 after the listing) or
not readable is quarantined with its URL; one the server failed to give after every retry comes back
marked ``retry``, and the ingest run decides (retry queue, or the page fails): the cursor never passes
an object that was neither stored, quarantined nor queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import structlog

from connectors.base import FetchedRecord, KnownLookup, Page, nothing_known
from connectors.http import HttpClient, HttpError, NotFound

log = structlog.get_logger(__name__)

DEFAULT_API_URL = "https://public-api.prozorro.gov.ua/api/2.5"
RESOURCES = {"tenders": "tender", "contracts": "contract", "plans": "plan"}


def start_offset(since: datetime | None) -> str:
    """The offset a first run starts from: ``since`` as a Unix timestamp, or the beginning."""
    return "" if since is None else f"{since.timestamp():.1f}"


class ProzorroFeed:
    """One ProZorro feed (``tenders``, ``contracts`` or ``plans``)."""

    source = "prozorro"

    def __init__(
        self,
        client: HttpClient,
        resource: str,
        *,
        api_url: str = DEFAULT_API_URL,
        start: str = "",
        page_limit: int = 100,
        known: KnownLookup = nothing_known,
    ) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"unknown ProZorro resource {resource!r}; one of {', '.join(RESOURCES)}")
        self.client, self.resource, self.kind = client, resource, RESOURCES[resource]
        self.name = f"prozorro-{resource}"
        self.api_url = api_url.rstrip("/")
        # start: also where paging restarts when the server rejects a cursor (the start of the cursor's chain)
        self.start, self.page_limit, self.known = start, page_limit, known

    async def _fetch(self, object_id: str) -> FetchedRecord:
        url = f"{self.api_url}/{self.resource}/{object_id}"

        def record(text: str | None, error: str | None = None, retry: bool = False) -> FetchedRecord:
            return FetchedRecord("prozorro", url, text, error, object_id=object_id, retry=retry)

        try:
            document, text = await self.client.get_json(url)
        except NotFound:
            return record(None, "listed in the feed but GET returned 404 (removed or hidden)")
        except HttpError as exc:
            # exhausted: the server or the network, not the object (retry queue or a failed page)
            return record(None, f"could not be fetched: {exc.reason}", retry=exc.exhausted)
        data = document.get("data") if isinstance(document, dict) else None
        if not isinstance(data, dict) or data.get("id") != object_id:
            return record(text, "response is not the requested object")
        return record(text)

    async def refetch(self, object_ids: list[str]) -> list[FetchedRecord]:
        """Fetch objects by id, concurrently; every fetch ends before an unexpected error is raised."""
        fetched = await asyncio.gather(*(self._fetch(object_id) for object_id in object_ids), return_exceptions=True)
        for result in fetched:
            if isinstance(result, BaseException):
                raise result
        return list(fetched)

    async def pages(self, cursor: str | None) -> AsyncIterator[Page]:
        """Pages from ``cursor`` (or the configured start) to the current end of the feed."""
        offset = self.start if cursor is None else cursor
        restarted = False
        while True:
            params = {"offset": offset, "limit": self.page_limit} if offset else {"limit": self.page_limit}
            try:
                feed, _ = await self.client.get_json(f"{self.api_url}/{self.resource}", params=params)
            except NotFound:
                if restarted or offset == self.start:
                    raise
                log.warning("cursor rejected by the server (404); restarting from the configured start",
                            source=self.name, rejected=offset, restart=self.start or "(the beginning of the feed)")
                rejected, offset, restarted = offset, self.start, True
                yield Page([], self.start or None, restarted=True, rejected=rejected)
                continue
            listed = [(item["id"], item.get("dateModified", "")) for item in feed.get("data", [])]
            if not listed:
                yield Page([], offset or None, end=True)
                return
            skip = self.known(self.kind, listed)
            wanted = [object_id for object_id, _ in listed if object_id not in skip]
            records = await self.refetch(wanted)
            offset = str(feed["next_page"]["offset"])
            yield Page(records, offset, listed=len(listed), known=len(listed) - len(wanted))
