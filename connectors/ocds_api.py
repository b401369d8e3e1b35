"""Generic OCDS package API: release or record packages paged with ``links.next``.

Domain: any publisher configured under ``[[ocds.publishers]]`` (for example Moldova's MTender).
Each response is a release package (``releases``) or a record package (``records``); records go
through the same OCDS mapping as ``monitor load``.

Cursor: the URL of the next page (``links.next``); a first run starts from the configured URL with
the start-date parameter set to ``--since`` when the publisher has one. When a page has no
``links.next`` the feed is exhausted for now and the cursor stays on that page, so the next run
re-reads it (unchanged records cost nothing) and follows any link added since.

A stored cursor the publisher no longer accepts (404 or 410: a paging token that expired, an API
that moved its pages) restarts the feed once per run from the configured start of the run that began
that cursor (``start``; its ``--since`` date or the default start), as the ProZorro feed does, so
nothing published after it is missed. A 404 on a link followed within the run fails the run.

Caveats: publishers differ in how they page; one that pages by page number instead of
``links.next`` needs its own module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import orjson
import structlog

from connectors.base import FetchedRecord, Page
from connectors.http import HttpClient, HttpError, NotFound

log = structlog.get_logger(__name__)


class OcdsPackageApi:
    """One OCDS publisher's package API."""

    def __init__(
        self,
        client: HttpClient,
        name: str,
        url: str,
        *,
        package_type: str = "release",
        since_param: str | None = None,
        since: datetime | None = None,
        start: str | None = None,
    ) -> None:
        """``start``: the first URL of the stored cursor's chain (where a rejected cursor restarts), when
        resuming one; otherwise ``url`` with ``since`` in ``since_param``."""
        if package_type not in ("release", "record"):
            raise ValueError(f"{name}: package_type must be release or record, not {package_type!r}")
        self.client, self.name, self.source = client, name, name
        self.package_type = package_type
        self.start_url = url
        if since_param and since is not None:
            self.start_url = str(httpx.URL(url).copy_merge_params({since_param: since.isoformat()}))
        if start:
            self.start_url = start
        self.start = self.start_url  # noted on the run's row, as the ProZorro feeds' starts are

    def _records(self, url: str, package: dict) -> list[FetchedRecord]:
        if self.package_type == "release":
            releases = package.get("releases")
            if not isinstance(releases, list):
                return [FetchedRecord("ocds-compiled", url, None, "release package without a releases list")]
            return [
                FetchedRecord("ocds-compiled" if _is_compiled(r) else "ocds-release", url, orjson.dumps(r).decode())
                for r in releases
            ]
        records = package.get("records")
        if not isinstance(records, list):
            return [FetchedRecord("ocds-record", url, None, "record package without a records list")]
        return [FetchedRecord("ocds-record", url, orjson.dumps(r).decode()) for r in records]

    async def pages(self, cursor: str | None) -> AsyncIterator[Page]:
        url = cursor or self.start_url
        stored = url if cursor else None  # only the stored cursor may be rejected and restarted from the start
        while url:
            try:
                package, text = await self.client.get_json(url)
            except HttpError as exc:
                if url == stored and url != self.start_url and (isinstance(exc, NotFound) or exc.status == 410):
                    log.warning("cursor rejected by the publisher; restarting from the configured start",
                                source=self.name, rejected=url, status=exc.status, restart=self.start_url)
                    stored, url = None, self.start_url
                    yield Page([], url, restarted=True, rejected=cursor)
                    continue
                raise HttpError(url, f"{self.name}: {exc.reason}", exc.status) from exc
            if not isinstance(package, dict):
                yield Page([FetchedRecord("ocds-compiled", url, text, "response is not an OCDS package")], url,
                           end=True)
                return
            records = self._records(url, package)
            next_url = (package.get("links") or {}).get("next")
            yield Page(records, next_url or url, listed=len(records), end=not next_url)
            if not next_url or next_url == url:
                return
            url = next_url


def _is_compiled(release: object) -> bool:
    tag = release.get("tag") if isinstance(release, dict) else None
    return isinstance(tag, list) and "compiled" in tag
