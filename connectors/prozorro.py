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
not readable is quarantined with its URL; one the server failed to give after every retry, or gave
in a copy older than the feed listed (a lagging replica), comes back marked ``retry``, and the ingest
run decides (retry queue, or the page fails): the cursor never passes an object that was neither
stored, quarantined nor queued. A feed answer that is not a feed page (no ``data`` list, an item
without id, no ``next_page``) fails the run with ``FeedError``; only ``data: []`` ends the feed.
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

    async def _fetch(self, object_id: str, listed_date: str | None = None) -> FetchedRecord:
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
        got, listed = _instant(data.get("dateModified")), _instant(listed_date)
        if got is not None and listed is not None and got < listed:
            # a copy older than the feed's pointer (a lagging replica): not stored over nothing, asked again later
            return record(None, f"the server gave an older copy (dateModified {data.get('dateModified')}) than "
                                f"the feed listed ({listed_date})", retry=True)
        return record(text)

    async def refetch(self, object_ids: list[str], listed: dict[str, str] | None = None) -> list[FetchedRecord]:
        """Fetch objects by id, concurrently (``listed``: the feed's dateModified of each, the oldest copy
        to accept); every fetch ends before an unexpected error is raised."""
        listed = listed or {}
        fetched = await asyncio.gather(*(self._fetch(object_id, listed.get(object_id)) for object_id in object_ids),
                                       return_exceptions=True)
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
            listed, next_offset = _listing(feed, f"{self.api_url}/{self.resource}", params)
            if not listed:
                yield Page([], offset or None, end=True)
                return
            skip = self.known(self.kind, listed)
            wanted = [object_id for object_id, _ in listed if object_id not in skip]
            records = await self.refetch(wanted, dict(listed))
            offset = next_offset
            yield Page(records, offset, listed=len(listed), known=len(listed) - len(wanted))


class FeedError(Exception):
    """A feed answer that is not a feed page: the run fails there, its cursor kept (nothing is skipped)."""


def _listing(feed: object, url: str, params: dict) -> tuple[list[tuple[str, str]], str]:
    """The (id, dateModified) pairs of a feed page and the offset after it; ``FeedError`` when the
    answer is not a feed page. An answer without ``data`` is not the end of the feed (``data: []`` is)."""
    where = f"feed page {url} (offset {params.get('offset', '(none)')!r})"
    data = feed.get("data") if isinstance(feed, dict) else None
    if not isinstance(data, list):
        keys = ", ".join(map(str, feed)) if isinstance(feed, dict) else type(feed).__name__
        raise FeedError(f"{where}: not a feed page, no list under 'data' (got: {keys or 'an empty object'})")
    listed = []
    for position, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise FeedError(f"{where}: data[{position}] has no object id")
        listed.append((item["id"], str(item.get("dateModified") or "")))
    next_page = feed.get("next_page")
    offset = next_page.get("offset") if isinstance(next_page, dict) else None
    if listed and offset is None:
        raise FeedError(f"{where}: no next_page.offset after {len(listed)} listed object(s)")
    return listed, str(offset)


def _instant(text: object) -> datetime | None:
    """An ISO 8601 date with its zone, or None (missing, unreadable, or without a zone)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
